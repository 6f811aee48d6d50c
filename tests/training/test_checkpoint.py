"""Checkpoint files: round trip, run-directory resolution, the content checksum, clear errors
for damaged files."""

import logging

import pytest
import torch

from tests.training.faults import flip_weight_bytes
from training.checkpoint import (FORMAT, CorruptCheckpointError, content_sha256, load_checkpoint, load_for_inference,
                                 load_model, resolve_checkpoint, save_model_checkpoint)
from training.model import GPT, GPTConfig


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return GPT(GPTConfig(n_layer=1, n_head=2, n_embd=16, vocab_size=50, block_size=8))


def test_round_trip_keeps_weights_tying_and_extra_state(model, tmp_path):
    opt = torch.optim.AdamW(model.param_groups(0.1), lr=1e-3)
    model(torch.zeros(1, 8, dtype=torch.long), torch.zeros(1, 8, dtype=torch.long))[1].backward()
    opt.step()
    extra = {"optimizer": opt.state_dict(), "step": 3, "rng": torch.get_rng_state(), "tokenizer_dir": "/t"}
    save_model_checkpoint(tmp_path / "c.pt", model, extra)
    loaded, saved = load_model(tmp_path / "c.pt")
    assert saved["format"] == FORMAT and saved["step"] == 3 and saved["tokenizer_dir"] == "/t"
    assert saved["model_config"]["n_embd"] == 16 and not loaded.training
    assert loaded.lm_head.weight is loaded.transformer.wte.weight
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    opt2 = torch.optim.AdamW(loaded.param_groups(0.1), lr=1e-3)
    opt2.load_state_dict(saved["optimizer"])
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind


def test_wrapped_models_are_saved_as_the_plain_model(model, tmp_path):
    class Wrapper(torch.nn.Module):  # stands for DistributedDataParallel's `.module`
        def __init__(self, inner):
            super().__init__()
            self.module = inner

    save_model_checkpoint(tmp_path / "w.pt", Wrapper(model))
    assert set(load_checkpoint(tmp_path / "w.pt")["model"]) == set(model.state_dict())
    with pytest.raises(TypeError, match="not a webtext GPT"):
        save_model_checkpoint(tmp_path / "x.pt", torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="may not replace"):
        save_model_checkpoint(tmp_path / "x.pt", model, {"model": {}})
    assert not (tmp_path / "x.pt").exists()


def test_run_directory_resolves_latest_then_highest_step(model, tmp_path):
    for step in (2, 10, 9):
        save_model_checkpoint(tmp_path / f"ckpt-{step}.pt", model, {"step": step})
    assert resolve_checkpoint(tmp_path).name == "ckpt-10.pt"
    assert load_checkpoint(tmp_path)["step"] == 10
    save_model_checkpoint(tmp_path / "latest.pt", model, {"step": 11})
    assert load_checkpoint(tmp_path)["step"] == 11
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no latest.pt or ckpt-N.pt"):
        resolve_checkpoint(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")


def test_damaged_or_foreign_files_give_clear_errors(model, tmp_path):
    save_model_checkpoint(tmp_path / "good.pt", model)
    data = (tmp_path / "good.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.pt").write_bytes(b"\x00garbage" * 100)
    for name in ("truncated.pt", "garbage.pt"):
        with pytest.raises(ValueError, match="corrupted, truncated or not a torch checkpoint"):
            load_model(tmp_path / name)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "foreign.pt")
    with pytest.raises(ValueError, match="not a webtext checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="not a webtext checkpoint"):
        load_checkpoint(tmp_path / "list.pt")
    saved = load_checkpoint(tmp_path / "good.pt")
    saved["model_config"]["n_embd"] = 32
    torch.save(saved, tmp_path / "mismatch.pt")
    with pytest.raises(ValueError, match="does not match its config"):
        load_model(tmp_path / "mismatch.pt")


def test_flipped_weight_bytes_are_caught_before_the_weights_are_used(model, tmp_path):
    """64 inverted bytes inside a weight leave a loadable torch file; the checksum must refuse it."""
    save_model_checkpoint(tmp_path / "ckpt-00000007.pt", model, {"step": 7})
    flip_weight_bytes(tmp_path / "ckpt-00000007.pt")
    for load in (load_checkpoint, load_model, lambda path: load_for_inference(path, None, "cpu")):
        with pytest.raises(CorruptCheckpointError, match=r"ckpt-00000007\.pt: corrupted: its content .* does not "
                                                         r"match the checksum.*use another checkpoint"):
            load(tmp_path)
    save_model_checkpoint(tmp_path / "ckpt-00000007.pt", model, {"step": 7})
    assert load_checkpoint(tmp_path)["step"] == 7  # the same content, rewritten, verifies


def test_checkpoint_without_checksum_loads_with_a_one_line_warning(model, tmp_path, caplog):
    """Checkpoints written before checksums existed still load, said to be unverified."""
    legacy = {"format": FORMAT, "model_config": vars(model.config), "model": model.state_dict(),
              "tokenizer_dir": None, "step": 5}
    torch.save(legacy, tmp_path / "old.pt")
    with caplog.at_level(logging.WARNING, logger="training.checkpoint"):
        loaded, saved = load_model(tmp_path / "old.pt")
    assert saved["step"] == 5 and torch.equal(loaded.transformer.wte.weight, model.transformer.wte.weight)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "old.pt" in warnings[0] and "unverified" in warnings[0]
    assert "\n" not in warnings[0]


def test_checksum_tells_apart_every_kind_of_content_change():
    base = {"format": FORMAT, "step": 3, "lr": 0.5, "name": "a", "flags": [True, None], "pair": (1, 2),
            "weights": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    variants = [
        {**base, "step": 4}, {**base, "lr": 0.25}, {**base, "name": "b"}, {**base, "flags": [False, None]},
        {**base, "pair": [1, 2]}, {**base, "step": 3.0}, {**base, "step": "3"},
        {**base, "weights": base["weights"].reshape(3, 2)},
        {**base, "weights": base["weights"].view(torch.int32)},
        {**base, "weights": base["weights"] + torch.tensor([[0, 0, 1e-6], [0, 0, 0]])},
        {key: base[key] for key in reversed(list(base))},  # the same items in another order
    ]
    hashes = {content_sha256(base)} | {content_sha256(variant) for variant in variants}
    assert len(hashes) == len(variants) + 1
    assert content_sha256(base) == content_sha256({**base, "weights": base["weights"].t().contiguous().t()})
