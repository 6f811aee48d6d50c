"""The fused cross-entropy the model trains with: same loss and gradient as F.cross_entropy."""

import math

import pytest
import torch
import torch.nn.functional as F

from training.cross_entropy import cross_entropy


def _logits_and_targets(rows=24, vocab=97, ignored=5):
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(rows, vocab, generator=g) * 4  # peaked rows: max-shift and exp matter
    targets = torch.randint(0, vocab, (rows,), generator=g)
    targets[:ignored] = -1
    return logits, targets


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-6), (torch.bfloat16, 1e-3)])
def test_loss_and_gradient_match_torch(dtype, atol):
    logits, targets = _logits_and_targets()
    ours = logits.to(dtype).requires_grad_()
    theirs = logits.to(dtype).requires_grad_()
    loss = cross_entropy(ours, targets, ignore_index=-1)
    expected = F.cross_entropy(theirs.float(), targets, ignore_index=-1)
    (loss * 0.37).backward()  # an upstream gradient other than 1, as with gradient accumulation
    (expected * 0.37).backward()
    assert loss.dtype == torch.float32 and ours.grad.dtype == dtype
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)
    assert torch.allclose(ours.grad.float(), theirs.grad.float(), atol=atol)
    assert ours.grad[:5].abs().max() == 0  # ignored rows get no gradient
    assert torch.equal(ours, logits.to(dtype))  # the input logits are left as they were


def test_extreme_logits_stay_finite():
    logits = torch.tensor([[1e4, 0.0, -1e4], [-1e4, 1e4, 0.0]], requires_grad=True)
    targets = torch.tensor([2, 0])
    loss = cross_entropy(logits, targets)
    loss.backward()
    assert loss.item() == pytest.approx(2e4)  # -log softmax = max - target logit
    assert torch.isfinite(logits.grad).all()


def test_all_targets_ignored_gives_nan_like_torch():
    logits, _ = _logits_and_targets(rows=4)
    targets = torch.full((4,), -1)
    assert math.isnan(cross_entropy(logits, targets).item())
    assert math.isnan(F.cross_entropy(logits, targets, ignore_index=-1).item())


def test_second_backward_is_refused():
    logits, targets = _logits_and_targets()
    logits.requires_grad_()
    loss = cross_entropy(logits, targets)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="can run only once"):
        loss.backward()
