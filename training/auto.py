"""What `auto` means for `model.preset` and the `train:` keys batch_tokens, max_steps,
warmup_steps, learning_rate and min_lr.

Decided once, when a run starts, from the device and the size of the train split, so that the
defaults fit the machine: on CUDA the paper's setup (gpt2-117m, batches of 512 sequences of
1024 tokens, at most 100,000 steps); on a CPU a run of minutes (small-cpu, one micro-batch per
step, at most 2,000 steps). On both, a batch shrinks until an epoch of the train split is at least
MIN_STEPS_PER_EPOCH steps, and the run stops after a few epochs of a small split. The trainer logs
the choice at start and records it in log.jsonl's `config` record; a resumed run keeps the values
its checkpoint recorded, so a run's schedule never changes with the machine it resumes on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from training.config import AUTO, ModelConfig, TrainConfig
from training.model import PRESET_LEARNING_RATES

MIN_STEPS_PER_EPOCH = 10  # fewer steps per pass over the train split: a warning, and `auto` shrinks the batch
MAX_SENSIBLE_EPOCHS = 100  # more passes than this: a warning that the model will memorise the split
WARMUP_FRACTION = 0.02  # of max_steps (2,000 of 100,000)
MIN_LR_FRACTION = 0.1  # GPT-3 decays the learning rate to 10% of its peak
AUTO_TRAIN_KEYS = ("batch_tokens", "max_steps", "warmup_steps", "learning_rate", "min_lr")


@dataclass(frozen=True)
class DeviceDefaults:
    """What `auto` picks on one kind of device."""

    preset: str
    batch_sequences: int | None  # per optimiser step; None: one micro-batch per process
    max_steps: int
    max_epochs: int  # of the train split; bounds max_steps on a small split


CUDA_DEFAULTS = DeviceDefaults(preset="gpt2-117m", batch_sequences=512, max_steps=100_000, max_epochs=10)
CPU_DEFAULTS = DeviceDefaults(preset="small-cpu", batch_sequences=None, max_steps=2_000, max_epochs=5)


def device_defaults(device: torch.device) -> DeviceDefaults:
    """The paper's setup on CUDA; the CPU's on anything else."""
    return CUDA_DEFAULTS if device.type == "cuda" else CPU_DEFAULTS


def resolve_preset(model_config: ModelConfig, device: torch.device) -> str:
    """The preset the config names, or the device's for `auto`."""
    return device_defaults(device).preset if model_config.preset == AUTO else model_config.preset


def fitting_batch_sequences(windows: int, micro_batch_size: int, world: int) -> int:
    """The most sequences per step (a multiple of micro_batch_size x processes, at least one such
    unit) that still give an epoch of `windows` at least MIN_STEPS_PER_EPOCH steps."""
    unit = micro_batch_size * world
    return max(unit, windows // MIN_STEPS_PER_EPOCH // unit * unit)


def resolve_train(config: TrainConfig, preset: str, block_size: int, device: torch.device, train_windows: int,
                  world: int, recorded: dict | None = None) -> tuple[TrainConfig, dict]:
    """(`config` with every `auto` key replaced, {key: value} of the replaced keys). On a resume,
    `recorded` (the checkpoint's train settings) gives each `auto` key the run's own value."""
    chosen = {key: recorded[key] for key in AUTO_TRAIN_KEYS
              if getattr(config, key) == AUTO and recorded and key in recorded}

    def value(key):
        return chosen.get(key, getattr(config, key))

    defaults = device_defaults(device)
    if value("batch_tokens") == AUTO:
        unit = config.micro_batch_size * world
        wanted = max(unit, round((defaults.batch_sequences or unit) / unit) * unit)
        chosen["batch_tokens"] = min(wanted, fitting_batch_sequences(train_windows, config.micro_batch_size, world)) \
            * block_size
    if value("max_steps") == AUTO:
        steps_per_epoch = train_windows / (value("batch_tokens") / block_size)
        chosen["max_steps"] = max(1, min(defaults.max_steps, math.ceil(defaults.max_epochs * steps_per_epoch)))
    if value("warmup_steps") == AUTO:
        chosen["warmup_steps"] = round(WARMUP_FRACTION * value("max_steps"))
    if value("learning_rate") == AUTO:
        chosen["learning_rate"] = PRESET_LEARNING_RATES[preset]
    if value("min_lr") == AUTO:
        chosen["min_lr"] = MIN_LR_FRACTION * value("learning_rate")
    return config.model_copy(update=chosen), chosen


def data_size_warnings(config: TrainConfig, block_size: int, train_windows: int, train_tokens: int, split: str,
                       world: int) -> list[str]:
    """Warnings, with the numbers and the fix, for a train split that one batch exceeds, that an
    epoch covers in a handful of steps, or that the run passes over so often it memorises it."""
    sequences = config.batch_tokens / block_size
    steps_per_epoch = train_windows / sequences
    where = (f"the {split!r} split ({train_tokens:,} tokens = {train_windows:,} windows of {block_size + 1}) "
             f"with train.batch_tokens={config.batch_tokens:,} ({sequences:,.0f} sequences of {block_size})")
    fitting = fitting_batch_sequences(train_windows, config.micro_batch_size, world)
    if fitting < sequences:
        fix = (f"--set train.batch_tokens={fitting * block_size} ({train_windows / fitting:.0f} steps per epoch) or "
               "train.batch_tokens=auto, or train on more data")
    else:
        fix = "lower train.micro_batch_size or model.block_size, or train on more data"
    warnings = []
    if steps_per_epoch < 1:
        warnings.append(f"{where}: one batch is larger than the whole split, so every step sees each window "
                        f"{1 / steps_per_epoch:.1f} times. Fix: {fix}")
    elif steps_per_epoch < MIN_STEPS_PER_EPOCH:
        warnings.append(f"{where}: an epoch is only {steps_per_epoch:.1f} steps. Fix: {fix}")
    epochs = config.max_steps / steps_per_epoch
    if epochs > MAX_SENSIBLE_EPOCHS:
        warnings.append(f"{where}: train.max_steps={config.max_steps:,} passes over the split {epochs:,.0f} times, "
                        "so the model will memorise it. Fix: lower train.max_steps (auto: at most "
                        f"{CPU_DEFAULTS.max_epochs} epochs on CPU, {CUDA_DEFAULTS.max_epochs} on CUDA), or train on "
                        "more data")
    return warnings


def describe(config: TrainConfig, chosen: dict, auto_preset: str | None, device: torch.device, block_size: int,
             train_windows: int, resumed: bool) -> str:
    """One line saying what `auto` chose (and why, on a fresh run), for the start of the log."""
    sequences = config.batch_tokens // block_size
    why = {
        "batch_tokens": f"{sequences} sequences of {block_size}",
        "max_steps": f"{config.max_steps * sequences / train_windows:.1f} epochs of the train split",
        "warmup_steps": f"{WARMUP_FRACTION:.0%} of max_steps",
        "learning_rate": "the preset's",
        "min_lr": f"{MIN_LR_FRACTION:g} x learning_rate",
    }
    parts = [f"model.preset={auto_preset}"] if auto_preset else []
    parts += [f"train.{key}={value:g}" + ("" if resumed else f" ({why[key]})") for key, value in chosen.items()]
    source = "as the run's checkpoint recorded" if resumed else \
        f"for {device.type.upper()} and a train split of {train_windows:,} windows"
    return f"auto settings {source}: " + ", ".join(parts)
