"""webtext checkpoints: one torch.save'd dict per file, written atomically, with a checksum.

Layout: {"format": "webtext-gpt2-v1", "model_config": asdict(GPTConfig), "model": state_dict,
"tokenizer_dir": str | None, **extra, "content_sha256": hex}; the trainer adds optimizer/
scheduler/rng/data-cursor state in `extra`. Files are loaded with `weights_only=True`, so
`extra` may hold tensors, numbers, strings, lists and dicts only (no numpy arrays or arbitrary
objects).

`content_sha256` is the sha256 of everything else in the dict: every key, number and string,
and every tensor's dtype, shape and bytes. torch's zip container has no check of its own that
torch reads (flipped bytes in a tensor load silently), so every load recomputes it before the
weights are used. It lives inside the file rather than in a sidecar so that a copied checkpoint
carries it, and it covers the loaded content rather than the file's bytes so that it survives
torch's container layout. Files written before it existed load with a warning that they are
unverified.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import asdict
from pathlib import Path

import torch

from core.fsio import atomic_open
from training.devices import resolve_device
from training.model import GPT, GPTConfig
from training.tokenizer import Tokenizer, load_tokenizer

log = logging.getLogger(__name__)

FORMAT = "webtext-gpt2-v1"
CHECKSUM_KEY = "content_sha256"
LATEST = "latest.pt"
_NUMBERED = re.compile(r"ckpt-(\d+)\.pt$")


class CorruptCheckpointError(ValueError):
    """A checkpoint file that cannot be read, or whose content does not match its checksum."""


def content_sha256(payload: dict) -> str:
    """sha256 of a checkpoint dict's content, independent of how torch lays out the file."""
    digest = hashlib.sha256()
    _feed(digest, payload)
    return digest.hexdigest()


def _feed(digest, value) -> None:
    """Add one value to the digest, tagged by type and length so that no two contents collide."""
    if isinstance(value, torch.Tensor):
        data = value.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
        digest.update(f"T{value.dtype}{tuple(value.shape)}{data.numel()}:".encode())
        digest.update(data.numpy())
    elif isinstance(value, dict):
        digest.update(f"d{len(value)}:".encode())
        for key, item in value.items():
            _feed(digest, key)
            _feed(digest, item)
    elif isinstance(value, (list, tuple)):
        digest.update(f"{'l' if isinstance(value, list) else 't'}{len(value)}:".encode())
        for item in value:
            _feed(digest, item)
    elif isinstance(value, str):
        encoded = value.encode("utf-8", "surrogatepass")
        digest.update(f"s{len(encoded)}:".encode() + encoded)
    elif isinstance(value, bytes):
        digest.update(f"b{len(value)}:".encode() + value)
    elif value is None or isinstance(value, bool):
        digest.update(f"{value!r};".encode())
    elif isinstance(value, int):
        digest.update(f"i{value};".encode())
    elif isinstance(value, float):
        digest.update(f"f{value.hex()};".encode())
    else:
        raise TypeError(f"checkpoint content may not hold a {type(value).__name__}")


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
    clash = {"format", "model_config", "model", CHECKSUM_KEY} & set(extra or {})
    if clash:
        raise ValueError(f"extra checkpoint state may not replace {sorted(clash)}")
    write_checkpoint(path, {"format": FORMAT, "model_config": asdict(model.config), "model": model.state_dict(),
                            "tokenizer_dir": None, **(extra or {})})


def write_checkpoint(path, payload: dict) -> None:
    """Write a checkpoint dict (as save_model_checkpoint builds it) with its content checksum."""
    with atomic_open(str(path), "wb") as file:
        torch.save({**payload, CHECKSUM_KEY: content_sha256(payload)}, file)


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
    """The checkpoint dict (without its checksum), verified against the checksum written with it;
    clear errors for missing, truncated, corrupted or foreign files (CorruptCheckpointError for
    the first two kinds of damage)."""
    file = resolve_checkpoint(path)
    try:
        checkpoint = torch.load(file, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises RuntimeError/UnpicklingError/EOFError/... by cause
        raise CorruptCheckpointError(
            f"{file}: corrupted, truncated or not a torch checkpoint ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}); use another checkpoint or a backup copy") from None
    if isinstance(checkpoint, dict) and CHECKSUM_KEY in checkpoint:
        recorded = checkpoint.pop(CHECKSUM_KEY)
        actual = content_sha256(checkpoint)
        if actual != recorded:
            raise CorruptCheckpointError(
                f"{file}: corrupted: its content (sha256 {actual[:16]}) does not match the checksum written "
                f"with it ({str(recorded)[:16]}); use another checkpoint or a backup copy")
    elif isinstance(checkpoint, dict) and checkpoint.get("format") == FORMAT:
        log.warning("%s: written without a content checksum (by an older webtext): loaded unverified", file)
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
