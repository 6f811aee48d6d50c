"""The GPT-2 training loop (`webtext train`).

AdamW (decay on weight matrices only), linear warmup + cosine decay, gradient accumulation
up to `train.batch_tokens` per optimiser step, global-norm clipping, bf16 autocast on CUDA and
fp32 on CPU, optional torch.compile, and DDP under torchrun. Every checkpoint holds what the
next step depends on (weights, optimiser, step, data cursor, every rank's RNG states), so a
run that is stopped and resumed logs the same losses, bit for bit, as one that never stopped.
A resume skips (and moves aside) corrupted checkpoints, refuses a changed model shape, and
applies and logs changed training settings; one process at a time writes a run directory.
`auto` settings (training/auto.py) are resolved at the start and recorded with the run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import signal
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from core.lock import exclusive_folder
from training import host_memory
from training.auto import data_size_warnings, describe, resolve_preset, resolve_train
from training.checkpoint import CorruptCheckpointError, load_checkpoint, save_model_checkpoint
from training.config import AUTO, ModelConfig, TrainConfig
from training.data import ShuffledStream, TokenManifest, TokenWindows, sequential_batches
from training.devices import autocast_for, compute_dtype, init_distributed, resolve_device
from training.evaluate import score_batches, token_byte_lengths
from training.logging_utils import RunLogger, measure_gemm_flops, plot_loss_curve, read_jsonl_log
from training.model import GPT, GPTConfig, model_config_from, model_overrides
from training.tokenizer import load_tokenizer

log = logging.getLogger(__name__)
CHECKPOINT_GLOB = "ckpt-*.pt"


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss or gradient and the NaN policy says stop."""


class StopWithoutSaving(KeyboardInterrupt):
    """A second Ctrl-C: the run stops at once, without finishing the step or saving it."""

    def __init__(self, step: int):
        super().__init__(f"interrupted during step {step}, which was not saved")
        self.step = step


# ---------------------------------------------------------------- schedule and batch


def lr_at(step: int, config: TrainConfig) -> float:
    """Linear warmup over `warmup_steps`, then cosine decay to `min_lr` at `max_steps`."""
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    if step >= config.max_steps:
        return config.min_lr
    progress = (step - config.warmup_steps) / max(1, config.max_steps - config.warmup_steps)
    return config.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (config.learning_rate - config.min_lr)


def grad_accum_steps(batch_tokens: int, micro_batch: int, block_size: int, world: int) -> int:
    """Micro-steps per optimiser step; the target batch must split evenly over ranks."""
    per_micro = micro_batch * block_size * world
    if batch_tokens % per_micro:
        raise ValueError(
            f"train.batch_tokens={batch_tokens} is not a multiple of micro_batch_size x block_size x "
            f"processes = {micro_batch} x {block_size} x {world} = {per_micro}"
        )
    return batch_tokens // per_micro


# ---------------------------------------------------------------- RNG state


def rng_state(device: torch.device) -> dict:
    numpy_state = np.random.get_state()
    python_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].astype(np.int64)), *map(float, numpy_state[2:])],
        "python": [python_state[0], list(python_state[1]), python_state[2]],
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# ---------------------------------------------------------------- checkpoints


def checkpoint_file(run_dir: Path, step: int) -> Path:
    return run_dir / f"ckpt-{step:08d}.pt"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints of a run, oldest first (names sort by step)."""
    return sorted(p for p in Path(run_dir).glob(CHECKPOINT_GLOB) if p.is_file())


def prune_checkpoints(run_dir: Path, keep: int, protected: Path | None = None) -> None:
    """Delete all but the newest `keep` checkpoints, and never `protected`."""
    for old in list_checkpoints(run_dir)[:-keep]:
        if old != protected:
            old.unlink()


# ---------------------------------------------------------------- stop requests


class StopRequest:
    """SIGINT/SIGTERM ask for a checkpoint at the end of the current step, then a clean exit;
    `announce(signal name)` tells the user so at once. A second SIGINT raises StopWithoutSaving
    for `current_step()` (handlers run between Python bytecodes, so within one torch op)."""

    def __init__(self, announce: Callable[[str], None], current_step: Callable[[], int]):
        self.requested = False
        self.signal_name = ""
        self._announce = announce
        self._current_step = current_step
        self._previous = {}

    def __enter__(self):
        for number in (signal.SIGINT, signal.SIGTERM):
            self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc):
        for number, handler in self._previous.items():
            signal.signal(number, handler)

    def _handle(self, number, frame):
        if self.requested:
            if number == signal.SIGINT:
                raise StopWithoutSaving(self._current_step())
            return
        self.requested = True
        self.signal_name = signal.Signals(number).name
        self._announce(self.signal_name)


# ---------------------------------------------------------------- throughput


class Throughput:
    """Tokens per second of the training steps alone: time spent `paused()` (validation,
    checkpoints) is left out of the rate, though not out of the run's seconds."""

    def __init__(self):
        self.started = time.perf_counter()
        self.tokens = 0  # trained in this run
        self._since, self._tokens_since = self.started, 0

    def add(self, tokens: int) -> None:
        self.tokens += tokens

    def rate(self) -> float:
        """Tokens per second since the previous call (or the start)."""
        now = time.perf_counter()
        rate = (self.tokens - self._tokens_since) / max(now - self._since, 1e-9)
        self._since, self._tokens_since = now, self.tokens
        return rate

    @contextlib.contextmanager
    def paused(self):
        paused_at = time.perf_counter()
        yield
        self._since += time.perf_counter() - paused_at

    def seconds(self) -> float:
        return time.perf_counter() - self.started


# ---------------------------------------------------------------- the trainer


@dataclass
class TrainResult:
    run_dir: Path
    step: int
    tokens: int
    final_loss: float | None
    val: dict | None
    checkpoint: Path | None
    stopped_by: str  # "max_steps", "until_step", or the signal name


class Trainer:
    """One training run in RUNDIR over the token shards in TOKENS (fresh or resumed)."""

    def __init__(self, train_config: TrainConfig, model_config: ModelConfig, tokens_dir: str | Path,
                 run_dir: str | Path, resume: bool = False, tokenizer_dir: str | Path | None = None):
        self.config = config = train_config
        self.tokens_dir = Path(tokens_dir)
        self.run_dir = Path(run_dir)
        if config.num_threads:
            torch.set_num_threads(config.num_threads)
        self.device = resolve_device(config.device, int(os.environ.get("LOCAL_RANK", "0")))
        self.processes = init_distributed(config.ddp_backend, self.device)
        self.dtype = compute_dtype(config.dtype, self.device)
        # No fresh, zeroed pages for each step's large buffers on CPU; CUDA has its own caching allocator.
        self.kept_freed_memory = self.device.type == "cpu" and host_memory.keep_freed_memory()
        self.manifest = TokenManifest.load(self.tokens_dir)

        checkpoint = self._resume_checkpoint() if resume else None
        if checkpoint is None and list_checkpoints(self.run_dir):
            raise ValueError(f"{self.run_dir} already holds checkpoints: pass --resume to continue "
                             "that run, or choose another --out")

        seed_everything(config.seed)  # the same initial weights on every rank
        self.preset = resolve_preset(model_config, self.device)
        self.gpt_config = model_config_from(model_config, vocab_size=self.manifest.vocab_size, preset=self.preset)
        if checkpoint is not None:
            if model_config.preset == AUTO:  # the run's own preset, whatever this machine would pick
                self.preset = checkpoint.get("model_preset")
            self.gpt_config = self._resumed_model_config(checkpoint, model_config)
        self.block_size = self.gpt_config.block_size
        self.train_windows = TokenWindows(self.tokens_dir, config.train_split, self.block_size, self.manifest)
        self.config = config = self._resolve_auto(train_config, model_config.preset == AUTO, checkpoint)
        self.config_changes = self._changed_settings(checkpoint) if checkpoint is not None else {}
        self.model = GPT(self.gpt_config).to(self.device)
        self.accumulation_steps = grad_accum_steps(config.batch_tokens, config.micro_batch_size, self.block_size,
                                                   self.processes.world)
        self.optimizer = torch.optim.AdamW(
            self.model.param_groups(config.weight_decay), lr=config.learning_rate,
            betas=(config.beta1, config.beta2), eps=config.eps,
            fused=True,  # one pass per tensor instead of ~8 elementwise ops, on CUDA and CPU alike
        )
        self.stream = ShuffledStream(self.train_windows, config.seed)
        self.val_windows = self._val_windows()
        self.tokenizer_dir = self._tokenizer_dir(tokenizer_dir or (checkpoint or {}).get("tokenizer_dir"))
        self.byte_lengths = self._byte_lengths()

        self.step = 0
        self.cursor = 0  # global window position in the shuffled stream
        self.nan_skips = 0
        self.consecutive_skips = 0  # of this run()
        if checkpoint is not None:
            self._restore(checkpoint)
        else:
            torch.manual_seed(config.seed + self.processes.rank)  # per-rank dropout streams

        self.train_model = self.model
        if config.compile:
            self.train_model = torch.compile(self.model)
        if self.processes.distributed:
            from torch.nn.parallel import DistributedDataParallel

            self.train_model = DistributedDataParallel(
                self.train_model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.resumed_from = checkpoint["_path"] if checkpoint is not None else None
        # Never pruned: the newest checkpoint written before the current run of non-finite steps.
        self.last_good_checkpoint = self.resumed_from
        self._running_step = self.step

    # -- setup helpers

    def _resume_checkpoint(self) -> dict | None:
        """The newest intact checkpoint of the run. Corrupted newer ones are moved aside (to
        `NAME.corrupt`, out of the way of pruning and of `sample RUNDIR`) with a warning."""
        found = list_checkpoints(self.run_dir)
        if not found:
            log.warning("--resume: no checkpoint in %s, starting a fresh run", self.run_dir)
            return None
        damaged = []
        for path in reversed(found):
            try:
                checkpoint = load_checkpoint(path)
                break
            except (CorruptCheckpointError, FileNotFoundError) as exc:  # FileNotFound: rank 0 moved it
                damaged.append((path, exc))
        else:
            raise ValueError(f"{self.run_dir}: no intact checkpoint to resume from: "
                             + "; ".join(str(exc) for _, exc in damaged))
        for key in ("step", "cursor", "optimizer", "rng"):
            if key not in checkpoint:
                raise ValueError(f"{path}: not a training checkpoint (no {key!r}); cannot resume from it")
        if self.processes.main:
            for bad, exc in damaged:
                aside = bad.with_name(bad.name + ".corrupt")
                bad.replace(aside)
                log.warning("--resume: %s moved aside to %s, resuming from %s instead: %s",
                            bad.name, aside.name, path.name, exc)
        checkpoint["_path"] = path
        return checkpoint

    def _resumed_model_config(self, checkpoint: dict, model_config: ModelConfig) -> GPTConfig:
        """The checkpoint's model with this run's dropout; any other difference from the settings
        (`self.gpt_config`) is an error naming the keys: a model's shape cannot change mid-run.
        `model.preset: auto` is the run's own preset, whatever this machine would pick."""
        saved, wanted = GPTConfig(**checkpoint["model_config"]), self.gpt_config
        if model_config.preset == AUTO:
            wanted = replace(saved, **model_overrides(model_config, self.manifest.vocab_size))
        differing = [name for name in asdict(saved)
                     if name != "dropout" and getattr(saved, name) != getattr(wanted, name)]
        if differing:
            details = ", ".join(
                f"{'vocab_size of the token shards' if name == 'vocab_size' else 'model.' + name}="
                f"{getattr(wanted, name)!r} (checkpoint: {getattr(saved, name)!r})" for name in differing)
            raise ValueError(f"{checkpoint['_path']}: --resume cannot change the model's shape: {details}; "
                             "resume with the run's model settings, or train into another --out")
        return replace(saved, dropout=wanted.dropout)

    def _resolve_auto(self, train_config: TrainConfig, preset_was_auto: bool, checkpoint: dict | None) -> TrainConfig:
        """`train_config` with its `auto` keys resolved (a resume keeps the run's recorded values);
        the choice and any warning about the train split's size are logged once."""
        windows = self.train_windows.num_windows
        resolved, chosen = resolve_train(train_config, self.preset, self.block_size, self.device, windows,
                                         self.processes.world, (checkpoint or {}).get("train_config"))
        auto_preset = (self.preset or "the checkpoint's") if preset_was_auto else None
        self.auto_settings = ({"model.preset": self.preset} if preset_was_auto else {}) | {
            f"train.{key}": value for key, value in chosen.items()}
        if self.processes.main:
            if self.auto_settings:
                log.info("%s", describe(resolved, chosen, auto_preset, self.device, self.block_size, windows,
                                        resumed=checkpoint is not None))
            for warning in data_size_warnings(resolved, self.block_size, windows, self.train_windows.num_tokens,
                                              resolved.train_split, self.processes.world):
                log.warning("%s", warning)
        return resolved

    def _changed_settings(self, checkpoint: dict) -> dict:
        """{key: {"from": checkpoint's value, "to": this run's}} of the settings a resume changes
        (all are applied; warned here, recorded in log.jsonl as a `config_change` record)."""
        changes = {}
        saved_dropout = checkpoint["model_config"].get("dropout")
        if saved_dropout != self.gpt_config.dropout:
            changes["model.dropout"] = {"from": saved_dropout, "to": self.gpt_config.dropout}
        saved_train = checkpoint.get("train_config", {})
        for key, value in self.config.model_dump(mode="json").items():
            if key in saved_train and saved_train[key] != value:
                changes[f"train.{key}"] = {"from": saved_train[key], "to": value}
        tokens = str(self.tokens_dir.resolve())
        if checkpoint.get("tokens_dir", tokens) != tokens:
            changes["--tokens"] = {"from": checkpoint["tokens_dir"], "to": tokens}
        if changes and self.processes.main:
            log.warning("resuming %s with changed settings (recorded in log.jsonl; the run will not match an "
                        "uninterrupted one): %s", checkpoint["_path"],
                        ", ".join(f"{key} {change['from']!r} -> {change['to']!r}" for key, change in changes.items()))
        return changes

    def _restore(self, checkpoint: dict) -> None:
        self.model.load_state_dict(checkpoint["model"])
        settings = [{key: group[key] for key in ("weight_decay", "betas", "eps")}
                    for group in self.optimizer.param_groups]
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        for group, own in zip(self.optimizer.param_groups, settings):
            group.update(own)  # this run's AdamW settings, not the checkpoint's (a change is logged)
        self.step = int(checkpoint["step"])
        self.cursor = int(checkpoint["cursor"])
        self.nan_skips = int(checkpoint.get("nan_skips", 0))
        states = checkpoint["rng"]
        if len(states) == self.processes.world:
            set_rng_state(states[self.processes.rank], self.device)
        else:
            log.warning("checkpoint was written by %d processes, now %d: RNG streams reseeded",
                        len(states), self.processes.world)
            torch.manual_seed(self.config.seed + self.step + self.processes.rank)

    def _val_windows(self) -> TokenWindows | None:
        if self.config.val_split not in self.manifest.splits:
            log.warning("%s has no %r split: no validation", self.tokens_dir, self.config.val_split)
            return None
        try:
            return TokenWindows(self.tokens_dir, self.config.val_split, self.block_size, self.manifest)
        except ValueError as exc:  # a tiny corpus: train anyway, say why there is no validation
            log.warning("no validation: %s", exc)
            return None

    def _tokenizer_dir(self, given) -> str | None:
        candidate = given or self.manifest.tokenizer_dir
        return str(Path(candidate).resolve()) if candidate else None

    def _byte_lengths(self) -> torch.Tensor | None:
        if not self.tokenizer_dir:
            log.warning("no tokenizer known for %s (pass --tokenizer): bits per byte not reported",
                        self.tokens_dir)
            return None
        tokenizer = load_tokenizer(self.tokenizer_dir)
        if self.manifest.tokenizer_sha256 and tokenizer.sha256() != self.manifest.tokenizer_sha256:
            raise ValueError(f"tokenizer {self.tokenizer_dir} (sha256 {tokenizer.sha256()[:12]}) is not the "
                             f"one the token shards were made with ({self.manifest.tokenizer_sha256[:12]})")
        return token_byte_lengths(tokenizer)

    # -- the loop

    def run(self, until_step: int | None = None) -> TrainResult:
        """Train up to step `until_step` (default and at most train.max_steps): one optimiser
        step at a time, then log, validate and checkpoint when due, or when a signal asks to stop.
        Raises NonFiniteLossError when the NaN policy gives up, StopWithoutSaving on a second Ctrl-C."""
        config = self.config
        end = min(config.max_steps, until_step) if until_step else config.max_steps
        if end <= self.step:
            raise ValueError(f"{self.run_dir} is already at step {self.step}: nothing to do up to step {end} "
                             f"(raise train.max_steps or --until-step to train further)")
        self._start_run_log()
        throughput = Throughput()
        loss = val = checkpoint = None
        stopped_by = "max_steps" if end == config.max_steps else "until_step"
        self.consecutive_skips = 0
        try:
            with StopRequest(self._announce_stop, lambda: self._running_step) as stop:
                while self.step < end:
                    self._running_step = self.step + 1
                    loss, grad_norm = self._train_step()
                    self.step += 1
                    throughput.add(config.batch_tokens)
                    self._check_finite(loss, grad_norm)
                    if self.step % config.log_interval == 0 or self.step == end:
                        self._log_train(loss, grad_norm, throughput)
                    self._show_progress(loss)
                    with throughput.paused():  # validation and checkpoints stay out of tok/s and MFU
                        if self._due(config.eval_interval) or self.step == config.max_steps:
                            val = self._validate_and_log()
                        stopping = self._stop_agreed(stop.requested)
                        if self._due(config.checkpoint_interval) or stopping or self.step == end:
                            checkpoint = self.save_checkpoint()
                    if stopping:
                        stopped_by = stop.signal_name or "signal"
                        break
        except BaseException:  # given up or interrupted: the log stays as far as it got
            self._progress.close()
            if self._logger is not None:
                self._logger.close()
            raise
        self._end_run_log(stopped_by, throughput)
        if self.processes.distributed:
            dist.destroy_process_group()
        return TrainResult(self.run_dir, self.step, self.step * config.batch_tokens, loss, val, checkpoint, stopped_by)

    def _announce_stop(self, signal_name: str) -> None:
        """Said at once on the first SIGINT/SIGTERM: the step can take minutes on a CPU."""
        if self.processes.main:
            log.warning("%s: finishing step %d, then saving a checkpoint%s", signal_name, self._running_step,
                        "; Ctrl-C again to stop without saving" if signal_name == "SIGINT" else "")

    def _due(self, interval: int) -> bool:
        """Whether this step ends an interval of `interval` steps (never, for 0)."""
        return bool(interval) and self.step % interval == 0

    # -- one optimiser step

    def _train_step(self) -> tuple[float, float]:
        """Forward/backward over this rank's micro-batches, then clip and step; returns
        (loss, grad norm) averaged over ranks. Non-finite values leave the weights untouched."""
        model, accumulation_steps, processes = self.train_model, self.accumulation_steps, self.processes
        lr = lr_at(self.step, self.config)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss_sum = torch.zeros((), device=self.device)
        batches = self.stream.micro_batches(self.cursor, self.config.micro_batch_size, accumulation_steps,
                                            processes.rank, processes.world)
        for micro_step, (x, y) in enumerate(batches):
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)  # (B, T) each
            last = micro_step == accumulation_steps - 1
            sync = contextlib.nullcontext() if last or not processes.distributed else model.no_sync()
            with sync:
                with autocast_for(self.device, self.dtype):
                    _, loss = model(x, y)
                (loss / accumulation_steps).backward()
            loss_sum += loss.detach().float()
        self.cursor += self.config.micro_batch_size * accumulation_steps * processes.world
        loss = loss_sum / accumulation_steps
        if processes.distributed:
            dist.all_reduce(loss)  # gloo has no AVG
            loss /= processes.world
        max_norm = self.config.grad_clip if self.config.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        loss_value, norm_value = loss.item(), grad_norm.item()
        if math.isfinite(loss_value) and math.isfinite(norm_value):
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_value, norm_value

    def _check_finite(self, loss: float, grad_norm: float) -> None:
        """Count a step whose loss or gradient was not finite (its update was skipped); raise
        NonFiniteLossError where the NaN policy says stop or too many came in a row."""
        if math.isfinite(loss) and math.isfinite(grad_norm):
            self.consecutive_skips = 0
            return
        config = self.config
        self.nan_skips += 1
        self.consecutive_skips += 1
        message = (f"step {self.step}: non-finite loss {loss} / grad norm {grad_norm} "
                   f"(learning rate {lr_at(self.step - 1, config):.3g})")
        if self.processes.main:
            self._logger.write("nonfinite", self.step, loss=str(loss), grad_norm=str(grad_norm),
                               policy=config.nan_policy)
        kept = (f" The newest checkpoint written before the first non-finite step, {self.last_good_checkpoint}, "
                "is kept." if self.last_good_checkpoint else "")
        if config.nan_policy == "stop":
            raise NonFiniteLossError(message + "; train.nan_policy=stop. Lower the learning rate "
                                     "or resume from an earlier checkpoint." + kept)
        if self.consecutive_skips >= config.max_nan_skips:
            raise NonFiniteLossError(message + f"; {self.consecutive_skips} consecutive steps skipped "
                                     f"(train.max_nan_skips={config.max_nan_skips}), giving up." + kept)
        log.warning("%s: step skipped", message)

    def _stop_agreed(self, local: bool) -> bool:
        if not self.processes.distributed:
            return local
        flag = torch.tensor([int(local)], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    # -- validation

    def validate(self) -> dict | None:
        if self.val_windows is None:
            return None
        max_windows = self.config.eval_batches * self.config.micro_batch_size
        batches = sequential_batches(self.val_windows, self.config.micro_batch_size, max_windows,
                                     self.processes.rank, self.processes.world)
        self.model.eval()
        score = score_batches(self.model, batches, self.device, self.byte_lengths,
                              autocast_for(self.device, self.dtype))
        self.model.train()
        if self.processes.distributed:
            totals = torch.tensor([score.nll, score.tokens, score.bytes], dtype=torch.float64, device=self.device)
            dist.all_reduce(totals)
            score = type(score)(*totals.tolist())
        return score.summary()

    def _validate_and_log(self) -> dict | None:
        val = self.validate()
        if self.processes.main and val:
            self._logger.write("val", self.step, **val)
            self._progress.write(f"step {self.step}: val loss {val['loss']:.4f}, ppl {val['perplexity']:.2f}"
                                 + (f", bpb {val['bits_per_byte']:.4f}" if val.get("bits_per_byte") else ""))
        return val

    # -- the run log (rank 0)

    def _start_run_log(self) -> None:
        """The run directory, log.jsonl (with its `config` record on a fresh run) and the GEMM
        peak MFU is measured against, on rank 0; the progress bar everywhere (shown by rank 0)."""
        config, main = self.config, self.processes.main
        self._logger = None
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self._logger = RunLogger(self.run_dir, self.step if self.resumed_from else None, config.tensorboard)
        self._flops_per_token = self.model.flops_per_token()
        peak = (config.peak_flops or measure_gemm_flops(self.device, self.dtype)) if main else 1.0
        self._peak_flops = peak * self.processes.world  # MFU of the whole job: one peak per process
        if main:
            log.info("model %s %s: %.2fM parameters on %s; %d x %d tokens x %d micro-steps x %d processes = %d "
                     "tokens/step; peak %.1f GFLOP/s%s", self.preset or "(the checkpoint's)", self.gpt_config,
                     self.model.num_params() / 1e6, self.device, config.micro_batch_size, self.block_size,
                     self.accumulation_steps, self.processes.world, config.batch_tokens, self._peak_flops / 1e9,
                     f"; resumed from {self.resumed_from}" if self.resumed_from else "")
            tensorboard_dir = self._logger.tensorboard_dir
            log.info("logging to %s%s", self._logger.path, f" and TensorBoard ({tensorboard_dir})" if tensorboard_dir
                     else " only" if config.tensorboard else " (TensorBoard off: train.tensorboard=false)")
            if self.step == 0:
                self._logger.write("config", 0, train=config.model_dump(mode="json"), model=vars(self.gpt_config),
                                   preset=self.preset, auto=self.auto_settings, parameters=self.model.num_params(),
                                   world_size=self.processes.world,
                                   grad_accum=self.accumulation_steps, device=str(self.device),
                                   dtype=str(self.dtype), peak_flops=self._peak_flops,
                                   host_memory=host_memory.describe(self.kept_freed_memory))
            if self.config_changes:
                self._logger.write("config_change", self.step, changes=self.config_changes)
        self._progress = tqdm(total=config.max_steps, initial=self.step, unit="step", disable=not main,
                              dynamic_ncols=True, desc="train")
        self._logged_rates: dict[str, str] = {}

    def _log_train(self, loss: float, grad_norm: float, throughput: Throughput) -> None:
        if not self.processes.main:
            return
        tokens_per_second = throughput.rate()
        mfu = tokens_per_second * self._flops_per_token / self._peak_flops
        self._logger.write("train", self.step, loss=loss, lr=lr_at(self.step - 1, self.config), grad_norm=grad_norm,
                           tokens=self.step * self.config.batch_tokens, epoch=self.stream.epoch_of(self.cursor),
                           tok_per_s=tokens_per_second, mfu=mfu)
        self._logged_rates = {"tok_s": f"{tokens_per_second:,.0f}", "mfu": f"{mfu:.1%}"}

    def _show_progress(self, loss: float) -> None:
        """Advance the bar: its loss is this step's, its tok/s and MFU the last logged ones."""
        self._progress.set_postfix(loss=f"{loss:.4f}", **self._logged_rates, refresh=False)
        self._progress.update(1)

    def _end_run_log(self, stopped_by: str, throughput: Throughput) -> None:
        self._progress.close()
        seconds = throughput.seconds()
        if self.processes.main:
            self._logger.write("end", self.step, stopped_by=stopped_by, seconds=seconds,
                               tokens_this_run=throughput.tokens, tok_per_s=throughput.tokens / max(seconds, 1e-9),
                               nan_skips=self.nan_skips)
            self._logger.close()
            plot_loss_curve(read_jsonl_log(self.run_dir / "log.jsonl"), self.run_dir / "loss.png")

    # -- checkpoints

    def save_checkpoint(self) -> Path | None:
        states = [rng_state(self.device)]
        if self.processes.distributed:
            gathered: list = [None] * self.processes.world
            dist.all_gather_object(gathered, states[0])
            states = gathered
        path = checkpoint_file(self.run_dir, self.step)
        if not self.consecutive_skips:
            self.last_good_checkpoint = path
        if self.processes.main:
            save_model_checkpoint(path, self.model, extra={
                "tokenizer_dir": self.tokenizer_dir,
                "model_preset": self.preset,
                "step": self.step,
                "cursor": self.cursor,
                "nan_skips": self.nan_skips,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": {"kind": "warmup_cosine", "step": self.step, "lr": lr_at(self.step, self.config)},
                "rng": states,
                "world_size": self.processes.world,
                "train_config": self.config.model_dump(mode="json"),
                "tokens_dir": str(self.tokens_dir.resolve()),
            })
            prune_checkpoints(self.run_dir, self.config.keep_checkpoints, self.last_good_checkpoint)
        if self.processes.distributed:
            dist.barrier()
        return path


def train(train_config: TrainConfig, model_config: ModelConfig, tokens_dir, run_dir, resume: bool = False,
          until_step: int | None = None, tokenizer_dir=None) -> TrainResult:
    """A training run into `run_dir`, refused (core.lock.FolderBusyError) while another one writes
    there; rank 0 holds the lock, as it alone writes."""
    main_process = int(os.environ.get("RANK", "0")) == 0
    with exclusive_folder(str(run_dir), "train") if main_process else contextlib.nullcontext():
        return Trainer(train_config, model_config, tokens_dir, run_dir, resume=resume,
                       tokenizer_dir=tokenizer_dir).run(until_step)
