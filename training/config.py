"""Config sections of the training stage: tokenizer, model, train, sample, eval."""

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationError, WrapValidator
from pydantic_core import PydanticCustomError

from core.section import Section

AUTO = "auto"


def _number_or_auto(value: Any, handler) -> Any:
    """One error for a bad value of an `auto`-or-number key (not one per member of the union)."""
    try:
        return handler(value)
    except ValidationError as exc:
        number_errors = [error["msg"] for error in exc.errors() if error["type"] != "literal_error"]
        raise PydanticCustomError("number_or_auto", "{message}, or 'auto'",
                                  {"message": number_errors[0] if number_errors else "Input should be a number"})


def number_or_auto(kind: type, **bounds: float) -> Any:
    """The type of a key that takes a number within `bounds` or `auto` (resolved when training
    starts: training/auto.py)."""
    return Annotated[Annotated[kind, Field(**bounds)] | Literal["auto"], WrapValidator(_number_or_auto)]


class TokenizerConfig(Section):
    """Byte-level BPE training (`webtext tokenizer train`) and token shards (`webtext tokenize`)."""

    defaults_key: ClassVar[str] = "tokenizer"

    vocab_size: int = Field(ge=258, le=2**32)  # incl. 256 bytes and <|endoftext|> (last id)
    min_frequency: int = Field(ge=0)  # a pair seen fewer times is never merged
    train_split: str  # split of the dataset shards the vocabulary is learned from
    train_max_documents: int = Field(ge=0)  # learn from the first N documents only; 0 = all
    splits: list[str]  # splits tokenized (those present; at least one)
    shard_tokens: int = Field(gt=0)  # a token shard closes at the first document end past this
    workers: int = Field(ge=1)  # tokenizer processes (1 = in-process)


class ModelConfig(Section):
    """GPT-2 architecture: a named preset (training/model.py PRESETS) plus optional overrides."""

    defaults_key: ClassVar[str] = "model"

    # auto: gpt2-117m on CUDA, small-cpu on CPU (training/auto.py)
    preset: Literal["auto", "gpt2-117m", "gpt2-345m", "gpt2-762m", "gpt2-1542m", "tiny", "small-cpu"]
    n_layer: int | None = Field(gt=0)
    n_head: int | None = Field(gt=0)
    n_embd: int | None = Field(gt=0)  # must be divisible by n_head
    block_size: int | None = Field(gt=0)  # context length (paper: 1024)
    dropout: float | None = Field(ge=0, lt=1)  # presets: 0.0 (OpenAI's GPT-2 code has none)
    bias: bool | None  # biases in Linear/LayerNorm (GPT-2: true)


class TrainConfig(Section):
    """GPT-2 training run: optimiser, schedule, batch, logging, checkpoints, precision. The keys
    that may be `auto` are resolved when the run starts (training/auto.py)."""

    defaults_key: ClassVar[str] = "train"

    batch_tokens: number_or_auto(int, gt=0)  # global batch in tokens (paper: 512 x 1024)
    micro_batch_size: int = Field(gt=0)  # sequences per forward pass per process
    max_steps: number_or_auto(int, gt=0)  # optimiser steps; also the cosine schedule length
    learning_rate: number_or_auto(float, gt=0)  # peak; auto: the preset's
    min_lr: number_or_auto(float, ge=0)  # cosine decays to this; auto: learning_rate / 10
    warmup_steps: number_or_auto(int, ge=0)  # linear warmup from 0
    weight_decay: float = Field(ge=0)  # AdamW, on weight matrices only
    beta1: float = Field(ge=0, lt=1)
    beta2: float = Field(ge=0, lt=1)
    eps: float = Field(gt=0)
    grad_clip: float = Field(ge=0)  # max global grad norm; 0 = off
    seed: int
    device: str  # auto | cpu | cuda | cuda:N
    dtype: Literal["auto", "float32", "bfloat16"]  # auto: bf16 autocast on CUDA, fp32 on CPU
    compile: bool  # torch.compile the model
    num_threads: int = Field(ge=0)  # CPU threads for torch; 0 = torch's default
    ddp_backend: Literal["auto", "nccl", "gloo"]  # under torchrun; auto: nccl on CUDA, gloo on CPU
    train_split: str
    val_split: str
    log_interval: int = Field(gt=0)  # steps between progress/JSONL train records
    eval_interval: int = Field(ge=0)  # steps between validations; 0 = only at the end
    eval_batches: int = Field(ge=0)  # micro-batches per validation; 0 = whole val split
    checkpoint_interval: int = Field(ge=0)  # steps between checkpoints; 0 = only at the end
    keep_checkpoints: int = Field(gt=0)  # keep the newest k checkpoints
    nan_policy: Literal["skip", "stop"]  # non-finite loss/grad: skip the step, or stop
    max_nan_skips: int = Field(gt=0)  # consecutive skipped steps before giving up
    peak_flops: float = Field(ge=0)  # FLOP/s for MFU; 0 = measure sustained GEMMs at start (as bench_train)
    tensorboard: bool  # also log to RUNDIR/tb (needs the tensorboard package, not installed by default)


class SampleConfig(Section):
    """Text generation from a trained checkpoint (defaults as in the GPT-2 paper's samples)."""

    defaults_key: ClassVar[str] = "sample"

    max_tokens: int = Field(gt=0)  # new tokens per sample
    num_samples: int = Field(gt=0)
    temperature: float = Field(ge=0)  # 0 = greedy
    top_k: int = Field(ge=0)  # paper: top-k 40; 0 = off
    top_p: float = Field(gt=0, le=1)  # nucleus sampling; 1.0 = off
    seed: int
    device: str


class EvalConfig(Section):
    """Evaluation: perplexity / bits per byte, LAMBADA and CBT accuracy, the paper's Table 3 suite."""

    defaults_key: ClassVar[str] = "eval"

    batch_size: int = Field(gt=0)  # windows per forward pass
    context: int = Field(ge=0)  # sliding-window length in tokens for text perplexity; 0 = block_size
    stride: int = Field(ge=0)  # sliding-window step for text perplexity; 0 = half the window
    max_tokens: int = Field(ge=0)  # cap on tokens scored from shards/text; 0 = all
    split: str  # token-shard split scored by --shards
    lambada_candidates: int = Field(gt=0)  # LAMBADA stop-word filter: first tokens tried, likeliest first
    without_detokenizer: bool  # --suite: also score word-level files as spelled (the detokenizers' gain)
    device: str
