"""The training loss: mean token cross-entropy, fused so its backward reuses the forward's buffer."""

from __future__ import annotations

import torch


class FusedCrossEntropy(torch.autograd.Function):
    """Mean token cross-entropy whose backward reuses the forward's exp buffer.

    `F.cross_entropy` over a 50257-way vocabulary writes four batch x vocab buffers per step
    (logits, log-softmax, a zero-filled NLL gradient, the log-softmax gradient) and runs exp over
    them twice. Here the forward keeps exp(logits - max) and its row sums, and the backward turns
    that buffer in place into the gradient, softmax - one_hot: one buffer and one exp pass fewer,
    less memory traffic and fewer fresh pages. Math in fp32 whatever the logits' dtype (bf16 under
    autocast); targets equal to `ignore_index` add nothing to loss or gradient.
    """

    @staticmethod
    def forward(ctx, logits, targets, ignore_index: int):
        valid = targets != ignore_index  # (N,)
        safe_targets = targets.masked_fill(~valid, 0).unsqueeze(1)  # (N, 1)
        logits32 = logits.float()  # (N, V)
        row_max = logits32.amax(dim=1, keepdim=True)  # (N, 1)
        exp = logits32.sub_(row_max) if logits32 is not logits else logits32 - row_max  # own copy: in place
        target_logit = exp.gather(1, safe_targets).squeeze(1)  # shifted by row_max, like the lse below
        exp.exp_()
        row_sum = exp.sum(dim=1, keepdim=True)  # (N, 1)
        count = valid.sum()
        loss = ((row_sum.squeeze(1).log() - target_logit) * valid).sum() / count  # 0/0 = nan if none count
        ctx.save_for_backward(exp, row_sum, safe_targets, valid, count)
        ctx.logits_dtype = logits.dtype
        ctx.consumed = False
        return loss

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_loss):
        if ctx.consumed:  # the saved buffer became the gradient the first time
            raise RuntimeError("FusedCrossEntropy's backward reuses its saved buffer and can run only once "
                               "(no retain_graph=True second pass)")
        ctx.consumed = True
        exp, row_sum, safe_targets, valid, count = ctx.saved_tensors
        row_scale = (grad_loss / count * valid).unsqueeze(1)
        grad = exp.mul_(row_scale / row_sum)  # softmax * scale
        grad.scatter_add_(1, safe_targets, -row_scale)  # minus one_hot * scale
        return grad.to(ctx.logits_dtype), None, None


def cross_entropy(logits, targets, ignore_index: int = -1):
    """Mean cross-entropy of (N, V) logits against (N,) targets, skipping `ignore_index`."""
    return FusedCrossEntropy.apply(logits, targets, ignore_index)
