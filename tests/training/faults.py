"""Fault injectors for the checkpoint tests: damage a file the way a bad disk or copy would."""

from __future__ import annotations

from pathlib import Path

from training.checkpoint import load_checkpoint

WEIGHT = "transformer.h.0.mlp.c_fc.weight"


def flip_weight_bytes(file: Path, count: int = 64, name: str = WEIGHT) -> None:
    """Invert `count` bytes of the stored weight `name` in place: the file stays a readable torch
    archive of the same size, only the weights are wrong."""
    weight = load_checkpoint(file)["model"][name].numpy().tobytes()
    data = bytearray(file.read_bytes())
    start = data.find(weight[:count])
    assert start > 0 and data.count(weight[:count]) == 1, "the weight's bytes are not stored verbatim"
    data[start:start + count] = bytes(byte ^ 0xFF for byte in data[start:start + count])
    file.write_bytes(bytes(data))
