"""`webtext train`: the GPT-2 training loop.

AdamW (decay on weight matrices only), linear warmup + cosine decay, gradient accumulation
up to `train.batch_tokens` per optimiser step, global-norm clipping, bf16 autocast on CUDA and
fp32 on CPU, optional torch.compile, and DDP under torchrun. Every checkpoint holds what the
next step depends on (weights, optimiser, step, data cursor, every rank's RNG states), so a
run that is stopped and resumed logs the same losses, bit for bit, as one that never stopped.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from training import host_memory
from training.checkpoint import load_checkpoint, save_model_checkpoint
from training.data import ShuffledStream, TokenManifest, TokenWindows, sequential_batches
from training.evaluate import score_batches, token_byte_lengths
from training.logging_utils import RunLogger, measure_gemm_flops, plot_loss_curve, read_jsonl_log
from training.model import GPT, GPTConfig, model_config_from

log = logging.getLogger(__name__)
CHECKPOINT_GLOB = "ckpt-*.pt"


class NonFiniteLossError(RuntimeError):
    """Training produced a NaN/inf loss or gradient and the NaN policy says stop."""


# ---------------------------------------------------------------- devices and processes


@dataclass(frozen=True)
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def init_distributed(backend: str, device: torch.device) -> Dist:
    """Join the torchrun process group when launched by torchrun; one process otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Dist()
    if backend == "auto":
        backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend)
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def compute_dtype(setting: str, device: torch.device) -> torch.dtype:
    if setting == "auto":
        return torch.bfloat16 if device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16}[setting]


def autocast_for(device: torch.device, dtype: torch.dtype):
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


# ---------------------------------------------------------------- schedule and batch


def lr_at(step: int, cfg) -> float:
    """Linear warmup over `warmup_steps`, then cosine decay to `min_lr` at `max_steps`."""
    if step < cfg.warmup_steps:
        return cfg.learning_rate * (step + 1) / cfg.warmup_steps
    if step >= cfg.max_steps:
        return cfg.min_lr
    progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg.learning_rate - cfg.min_lr)


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
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
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


def prune_checkpoints(run_dir: Path, keep: int) -> None:
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink()


# ---------------------------------------------------------------- stop requests


class StopRequest:
    """SIGINT/SIGTERM ask for a checkpoint at the end of the current step, then a clean exit.
    A second SIGINT interrupts at once."""

    def __init__(self):
        self.requested = False
        self.signal_name = ""
        self._previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = signal.Signals(signum).name


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

    def __init__(self, cfg, tokens_dir: str | Path, run_dir: str | Path, resume: bool = False,
                 tokenizer_dir: str | Path | None = None):
        self.cfg = cfg
        self.tcfg = cfg.train
        self.tokens_dir = Path(tokens_dir)
        self.run_dir = Path(run_dir)
        if self.tcfg.num_threads:
            torch.set_num_threads(self.tcfg.num_threads)
        self.device = resolve_device(self.tcfg.device, int(os.environ.get("LOCAL_RANK", "0")))
        self.dist = init_distributed(self.tcfg.ddp_backend, self.device)
        self.dtype = compute_dtype(self.tcfg.dtype, self.device)
        # No fresh, zeroed pages for each step's large buffers on CPU; CUDA has its own caching allocator.
        self.kept_freed_memory = self.device.type == "cpu" and host_memory.keep_freed_memory()
        self.manifest = TokenManifest.load(self.tokens_dir)

        checkpoint = self._resume_checkpoint() if resume else None
        if checkpoint is None and list_checkpoints(self.run_dir):
            raise ValueError(f"{self.run_dir} already holds checkpoints: pass --resume to continue "
                             "that run, or choose another --out")

        seed_everything(self.tcfg.seed)  # the same initial weights on every rank
        if checkpoint is not None:
            self.model_config = GPTConfig(**checkpoint["model_config"])
        else:
            self.model_config = model_config_from(cfg.model, vocab_size=self.manifest.vocab_size)
        if self.model_config.vocab_size < self.manifest.vocab_size:
            raise ValueError(f"model vocab_size {self.model_config.vocab_size} < the token shards' "
                             f"vocab_size {self.manifest.vocab_size}")
        self.model = GPT(self.model_config).to(self.device)
        self.block_size = self.model_config.block_size
        self.accum = grad_accum_steps(self.tcfg.batch_tokens, self.tcfg.micro_batch_size, self.block_size,
                                      self.dist.world)
        self.optimizer = torch.optim.AdamW(
            self.model.param_groups(self.tcfg.weight_decay), lr=self.tcfg.learning_rate,
            betas=(self.tcfg.beta1, self.tcfg.beta2), eps=self.tcfg.eps,
            fused=True,  # one pass per tensor instead of ~8 elementwise ops, on CUDA and CPU alike
        )
        self.train_windows = TokenWindows(self.tokens_dir, self.tcfg.train_split, self.block_size, self.manifest)
        self.stream = ShuffledStream(self.train_windows, self.tcfg.seed)
        self.val_windows = self._val_windows()
        self.tokenizer_dir = self._tokenizer_dir(tokenizer_dir or (checkpoint or {}).get("tokenizer_dir"))
        self.byte_lengths = self._byte_lengths()

        self.step = 0
        self.cursor = 0  # global window position in the shuffled stream
        self.nan_skips = 0
        if checkpoint is not None:
            self._restore(checkpoint)
        else:
            torch.manual_seed(self.tcfg.seed + self.dist.rank)  # per-rank dropout streams

        self.train_model = self.model
        if self.tcfg.compile:
            self.train_model = torch.compile(self.model)
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            self.train_model = DistributedDataParallel(
                self.train_model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.resumed_from = checkpoint["_path"] if checkpoint is not None else None

    # -- setup helpers

    def _resume_checkpoint(self) -> dict | None:
        found = list_checkpoints(self.run_dir)
        if not found:
            log.warning("--resume: no checkpoint in %s, starting a fresh run", self.run_dir)
            return None
        checkpoint = load_checkpoint(found[-1])
        for key in ("step", "cursor", "optimizer", "rng"):
            if key not in checkpoint:
                raise ValueError(f"{found[-1]}: not a training checkpoint (no {key!r}); cannot resume from it")
        checkpoint["_path"] = found[-1]
        return checkpoint

    def _restore(self, checkpoint: dict) -> None:
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        self.step = int(checkpoint["step"])
        self.cursor = int(checkpoint["cursor"])
        self.nan_skips = int(checkpoint.get("nan_skips", 0))
        saved = checkpoint.get("train_config", {})
        for key in ("batch_tokens", "seed", "micro_batch_size"):
            if key in saved and saved[key] != getattr(self.tcfg, key):
                log.warning("resuming with train.%s=%r (checkpoint: %r): the run will not match an "
                            "uninterrupted one", key, getattr(self.tcfg, key), saved[key])
        states = checkpoint["rng"]
        if len(states) == self.dist.world:
            set_rng_state(states[self.dist.rank], self.device)
        else:
            log.warning("checkpoint was written by %d processes, now %d: RNG streams reseeded",
                        len(states), self.dist.world)
            torch.manual_seed(self.tcfg.seed + self.step + self.dist.rank)

    def _val_windows(self) -> TokenWindows | None:
        if self.tcfg.val_split not in self.manifest.splits:
            log.warning("%s has no %r split: no validation", self.tokens_dir, self.tcfg.val_split)
            return None
        try:
            return TokenWindows(self.tokens_dir, self.tcfg.val_split, self.block_size, self.manifest)
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
        from training.tokenizer import load_tokenizer

        tokenizer = load_tokenizer(self.tokenizer_dir)
        if self.manifest.tokenizer_sha256 and tokenizer.sha256() != self.manifest.tokenizer_sha256:
            raise ValueError(f"tokenizer {self.tokenizer_dir} (sha256 {tokenizer.sha256()[:12]}) is not the "
                             f"one the token shards were made with ({self.manifest.tokenizer_sha256[:12]})")
        return token_byte_lengths(tokenizer)

    # -- one optimiser step

    def _train_step(self) -> tuple[float, float]:
        """Forward/backward over this rank's micro-batches, then clip and step; returns
        (loss, grad norm) averaged over ranks. Non-finite values leave the weights untouched."""
        model, accum = self.train_model, self.accum
        lr = lr_at(self.step, self.tcfg)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        loss_sum = torch.zeros((), device=self.device)
        batches = self.stream.micro_batches(self.cursor, self.tcfg.micro_batch_size, accum,
                                            self.dist.rank, self.dist.world)
        for micro, (x, y) in enumerate(batches):
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            last = micro == accum - 1
            sync = contextlib.nullcontext() if last or not self.dist.enabled else model.no_sync()
            with sync:
                with autocast_for(self.device, self.dtype):
                    _, loss = model(x, y)
                (loss / accum).backward()
            loss_sum += loss.detach().float()
        self.cursor += self.tcfg.micro_batch_size * accum * self.dist.world
        loss = loss_sum / accum
        if self.dist.enabled:
            dist.all_reduce(loss)  # gloo has no AVG
            loss /= self.dist.world
        max_norm = self.tcfg.grad_clip if self.tcfg.grad_clip > 0 else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), max_norm)
        loss_value, norm_value = loss.item(), grad_norm.item()
        if math.isfinite(loss_value) and math.isfinite(norm_value):
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss_value, norm_value

    def _stop_agreed(self, local: bool) -> bool:
        if not self.dist.enabled:
            return local
        flag = torch.tensor([int(local)], device=self.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    # -- validation

    def validate(self) -> dict | None:
        if self.val_windows is None:
            return None
        max_windows = self.tcfg.eval_batches * self.tcfg.micro_batch_size
        batches = sequential_batches(self.val_windows, self.tcfg.micro_batch_size, max_windows,
                                     self.dist.rank, self.dist.world)
        self.model.eval()
        score = score_batches(self.model, batches, self.device, self.byte_lengths, autocast_for(self.device, self.dtype))
        self.model.train()
        if self.dist.enabled:
            totals = torch.tensor([score.nll, score.tokens, score.bytes], dtype=torch.float64, device=self.device)
            dist.all_reduce(totals)
            score = type(score)(*totals.tolist())
        return score.summary()

    # -- checkpoints

    def save_checkpoint(self) -> Path | None:
        states = [rng_state(self.device)]
        if self.dist.enabled:
            gathered: list = [None] * self.dist.world
            dist.all_gather_object(gathered, states[0])
            states = gathered
        path = checkpoint_file(self.run_dir, self.step)
        if self.dist.main:
            save_model_checkpoint(path, self.model, extra={
                "tokenizer_dir": self.tokenizer_dir,
                "step": self.step,
                "cursor": self.cursor,
                "nan_skips": self.nan_skips,
                "optimizer": self.optimizer.state_dict(),
                "scheduler": {"kind": "warmup_cosine", "step": self.step, "lr": lr_at(self.step, self.tcfg)},
                "rng": states,
                "world_size": self.dist.world,
                "train_config": self.tcfg.model_dump(mode="json"),
                "tokens_dir": str(self.tokens_dir.resolve()),
            })
            prune_checkpoints(self.run_dir, self.tcfg.keep_checkpoints)
        if self.dist.enabled:
            dist.barrier()
        return path

    # -- the loop

    def run(self, until_step: int | None = None) -> TrainResult:
        tcfg = self.tcfg
        end = min(tcfg.max_steps, until_step) if until_step else tcfg.max_steps
        if end <= self.step:
            raise ValueError(f"{self.run_dir} is already at step {self.step}: nothing to do up to step {end} "
                             f"(raise train.max_steps or --until-step to train further)")
        main = self.dist.main
        if main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        logger = RunLogger(self.run_dir, self.step if self.resumed_from else None, tcfg.tensorboard) if main else None
        tokens_per_step = tcfg.batch_tokens
        flops_per_token = self.model.flops_per_token()
        peak = (tcfg.peak_flops or measure_gemm_flops(self.device, self.dtype)) if main else 1.0
        peak *= self.dist.world  # MFU of the whole job: one peak per process
        if main:
            log.info("model %s: %.2fM parameters; %d x %d tokens x %d micro-steps x %d processes = %d tokens/step; "
                     "peak %.1f GFLOP/s%s", self.model_config, self.model.num_params() / 1e6,
                     tcfg.micro_batch_size, self.block_size, self.accum, self.dist.world, tokens_per_step,
                     peak / 1e9, f"; resumed from {self.resumed_from}" if self.resumed_from else "")
            if self.step == 0:
                logger.write("config", 0, train=tcfg.model_dump(mode="json"), model=vars(self.model_config),
                             parameters=self.model.num_params(), world_size=self.dist.world,
                             grad_accum=self.accum, device=str(self.device), dtype=str(self.dtype),
                             peak_flops=peak, host_memory=host_memory.describe(self.kept_freed_memory))
        bar = tqdm(total=tcfg.max_steps, initial=self.step, unit="step", disable=not main, dynamic_ncols=True,
                   desc="train")
        loss = None
        val = None
        stopped_by = "max_steps" if end == tcfg.max_steps else "until_step"
        consecutive_skips = 0
        t_last, tokens_last = time.perf_counter(), 0
        tokens_done = 0
        start_time = time.perf_counter()
        checkpoint = None
        with StopRequest() as stop:
            while self.step < end:
                loss, grad_norm = self._train_step()
                self.step += 1
                tokens_done += tokens_per_step
                bar.update(1)
                if not (math.isfinite(loss) and math.isfinite(grad_norm)):
                    self.nan_skips += 1
                    consecutive_skips += 1
                    message = (f"step {self.step}: non-finite loss {loss} / grad norm {grad_norm} "
                               f"(learning rate {lr_at(self.step - 1, tcfg):.3g})")
                    if main:
                        logger.write("nonfinite", self.step, loss=str(loss), grad_norm=str(grad_norm),
                                     policy=tcfg.nan_policy)
                    if tcfg.nan_policy == "stop":
                        raise NonFiniteLossError(message + "; train.nan_policy=stop. Lower the learning rate "
                                                 "or resume from an earlier checkpoint.")
                    if consecutive_skips >= tcfg.max_nan_skips:
                        raise NonFiniteLossError(message + f"; {consecutive_skips} consecutive steps skipped "
                                                 f"(train.max_nan_skips={tcfg.max_nan_skips}), giving up.")
                    log.warning("%s: step skipped", message)
                else:
                    consecutive_skips = 0
                if main and (self.step % tcfg.log_interval == 0 or self.step == end):
                    now = time.perf_counter()
                    tok_s = (tokens_done - tokens_last) / max(now - t_last, 1e-9)
                    t_last, tokens_last = now, tokens_done
                    mfu = tok_s * flops_per_token / peak
                    logger.write("train", self.step, loss=loss, lr=lr_at(self.step - 1, tcfg), grad_norm=grad_norm,
                                 tokens=self.step * tokens_per_step, epoch=self.stream.epoch_of(self.cursor),
                                 tok_per_s=tok_s, mfu=mfu)
                    bar.set_postfix(loss=f"{loss:.4f}", tok_s=f"{tok_s:,.0f}", mfu=f"{mfu:.1%}", refresh=False)
                paused_at = time.perf_counter()  # validation and checkpoints stay out of tok/s and MFU
                if (tcfg.eval_interval and self.step % tcfg.eval_interval == 0) or self.step == tcfg.max_steps:
                    val = self.validate()
                    if main and val:
                        logger.write("val", self.step, **val)
                        bar.write(f"step {self.step}: val loss {val['loss']:.4f}, ppl {val['perplexity']:.2f}"
                                  + (f", bpb {val['bits_per_byte']:.4f}" if val.get("bits_per_byte") else ""))
                stopping = self._stop_agreed(stop.requested)
                due = tcfg.checkpoint_interval and self.step % tcfg.checkpoint_interval == 0
                if due or stopping or self.step == end:
                    checkpoint = self.save_checkpoint()
                t_last += time.perf_counter() - paused_at
                if stopping:
                    stopped_by = stop.signal_name or "signal"
                    break
        bar.close()
        elapsed = time.perf_counter() - start_time
        if main:
            logger.write("end", self.step, stopped_by=stopped_by, seconds=elapsed, tokens_this_run=tokens_done,
                         tok_per_s=tokens_done / max(elapsed, 1e-9), nan_skips=self.nan_skips)
            logger.close()
            plot_loss_curve(read_jsonl_log(self.run_dir / "log.jsonl"), self.run_dir / "loss.png")
        if self.dist.enabled:
            dist.destroy_process_group()
        return TrainResult(self.run_dir, self.step, self.step * tokens_per_step, loss, val, checkpoint, stopped_by)


def train(cfg, tokens_dir, run_dir, resume: bool = False, until_step: int | None = None,
          tokenizer_dir=None) -> TrainResult:
    return Trainer(cfg, tokens_dir, run_dir, resume=resume, tokenizer_dir=tokenizer_dir).run(until_step)


# ---------------------------------------------------------------- CLI


def add_cli(subparsers, common) -> None:
    p = subparsers.add_parser(
        "train", parents=[common], help="train GPT-2 on token shards",
        description="Train GPT-2 on token shards written by `webtext tokenize`. Settings: the train: and "
                    "model: sections of pipelines.yaml (--set train.max_steps=1000 ...). Multi-GPU/CPU: "
                    "launch with `torchrun --nproc_per_node=N -m webtext.cli train ...` (NCCL on CUDA, gloo "
                    "on CPU); only rank 0 writes logs and checkpoints. SIGINT/SIGTERM save a checkpoint "
                    "and exit with status 130/143; --resume continues bit-exactly. On CPU under glibc it keeps "
                    "freed memory mapped and restarts itself once with malloc on huge pages "
                    "(GLIBC_TUNABLES=glibc.malloc.hugetlb=1); WEBTEXT_MALLOC_TUNING=0 turns that off.",
    )
    p.add_argument("--tokens", required=True, metavar="DIR", help="token-shard directory (with manifest.json)")
    p.add_argument("--out", required=True, metavar="RUNDIR",
                   help="run directory: checkpoints ckpt-*.pt, log.jsonl, loss.png")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in RUNDIR")
    p.add_argument("--until-step", type=int, metavar="N",
                   help="checkpoint and stop after step N (the schedule still runs to train.max_steps)")
    p.add_argument("--tokenizer", metavar="DIR",
                   help="tokenizer directory for bits per byte (default: the one named in the token manifest)")
    p.set_defaults(func=run_cli)


def run_cli(args, cfg) -> int:
    try:
        result = train(cfg, args.tokens, args.out, resume=args.resume, until_step=args.until_step,
                       tokenizer_dir=args.tokenizer)
    except NonFiniteLossError as exc:
        print(f"webtext train: stopped: {exc}")
        return 3
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"\nstopped by {result.stopped_by} at step {result.step} ({result.tokens:,} tokens)")
        if result.final_loss is not None:
            print(f"last train loss {result.final_loss:.4f}")
        if result.val:
            print("validation: " + ", ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                                             for k, v in result.val.items() if v is not None))
        print(f"checkpoint {result.checkpoint}\nlog {result.run_dir / 'log.jsonl'}\nloss curve {result.run_dir / 'loss.png'}")
        if result.stopped_by not in ("max_steps", "until_step"):
            print(f"resume with: webtext train --tokens {args.tokens} --out {args.out} --resume")
    if result.stopped_by in ("SIGINT", "SIGTERM"):  # checkpointed, but not finished: say so to scripts
        return 128 + signal.Signals[result.stopped_by].value
    return 0
