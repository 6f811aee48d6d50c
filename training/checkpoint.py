"""webtext checkpoints: one torch.save'd dict per file, written atomically.

Layout: {"format": "webtext-gpt2-v1", "model_config": asdict(GPTConfig), "model": state_dict,
"tokenizer_dir": str | None, **extra}; the trainer adds optimizer/scheduler/rng/data-cursor
state in `extra`. Files are loaded with `weights_only=True`, so `extra` may hold tensors,
numbers, strings, lists and dicts only (no numpy arrays or arbitrary objects).
"""

from __future__ import annotations

import re
from dataclasses import asdict
from pathlib import Path

import torch

from core.fsio import atomic_open
from training.devices import resolve_device
from training.model import GPT, GPTConfig
from training.tokenizer import Tokenizer, load_tokenizer

FORMAT = "webtext-gpt2-v1"
LATEST = "latest.pt"
_NUMBERED = re.compile(r"ckpt-(\d+)\.pt$")


def unwrap(model: torch.nn.Module) -> GPT:
    """The GPT inside torch.compile (`_orig_mod`) and DistributedDataParallel (`module`) wrappers."""
    while not isinstance(model, GPT):
        inner = getattr(model, "_orig_mod", None)
        inner = getattr(model, "module", None) if inner is None else inner
        if inner is None:
            raise TypeError(f"not a webtext GPT model: {type(model).__name__}")
        model = inner
    return model


def save_model_checkpoint(path, model: GPT, extra: dict | None = None) -> None:
    """Write the model (and the trainer's `extra` state) so it appears complete or not at all."""
    model = unwrap(model)
    clash = {"format", "model_config", "model"} & set(extra or {})
    if clash:
        raise ValueError(f"extra checkpoint state may not replace {sorted(clash)}")
    payload = {"format": FORMAT, "model_config": asdict(model.config), "model": model.state_dict(),
               "tokenizer_dir": None, **(extra or {})}
    with atomic_open(str(path), "wb") as file:
        torch.save(payload, file)


def resolve_checkpoint(path) -> Path:
    """A checkpoint file, or in a run directory `latest.pt`, else the highest `ckpt-N.pt`."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such checkpoint file or run directory")
    if (path / LATEST).is_file():
        return path / LATEST
    numbered = [(int(match.group(1)), file) for file in path.glob("ckpt-*.pt")
                if (match := _NUMBERED.search(file.name))]
    if not numbered:
        raise FileNotFoundError(f"{path}: directory holds no {LATEST} or ckpt-N.pt checkpoint")
    return max(numbered)[1]


def load_checkpoint(path, map_location="cpu") -> dict:
    """The checkpoint dict; clear errors for missing, truncated, corrupted or foreign files."""
    file = resolve_checkpoint(path)
    try:
        checkpoint = torch.load(file, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/EOFError/... by cause
        raise ValueError(f"{file}: corrupted, truncated or not a torch checkpoint ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        found = checkpoint.get("format") if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise ValueError(f"{file}: not a webtext checkpoint (format {found!r}, expected {FORMAT!r})")
    for key in ("model_config", "model"):
        if key not in checkpoint:
            raise ValueError(f"{file}: webtext checkpoint without {key!r}")
    return checkpoint


def load_model(path) -> tuple[GPT, dict]:
    """Rebuild the GPT stored in a checkpoint: (model on the CPU in eval mode, checkpoint dict)."""
    checkpoint = load_checkpoint(path)
    try:
        model = GPT(GPTConfig(**checkpoint["model_config"]))
        model.load_state_dict(checkpoint["model"])
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{resolve_checkpoint(path)}: model does not match its config: {exc}") from None
    return model.eval(), checkpoint


def load_for_inference(path, tokenizer_dir, device_name: str) -> tuple[GPT, Tokenizer | None, torch.device]:
    """The model (eval mode, on its device), its tokenizer (`tokenizer_dir`, else the one the
    checkpoint names, else None) and the device."""
    device = resolve_device(device_name)
    model, checkpoint = load_model(path)
    model.to(device).eval()
    tokenizer_dir = tokenizer_dir or checkpoint.get("tokenizer_dir")
    tokenizer = load_tokenizer(tokenizer_dir) if tokenizer_dir else None
    return model, tokenizer, device
