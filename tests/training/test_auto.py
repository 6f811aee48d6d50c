"""`auto` settings: what they resolve to on CPU and on CUDA, that the CPU defaults fit the demo
corpus `make train` sees, that numbers win, that a resume keeps the run's values, and the
warnings for a train split too small for its batch."""

import pytest
import torch

from tests.training.train_fixtures import synthetic_documents, tiny_config, write_token_shards
from training.auto import (AUTO_TRAIN_KEYS, CPU_DEFAULTS, CUDA_DEFAULTS, MIN_STEPS_PER_EPOCH, data_size_warnings,
                           resolve_preset, resolve_train)
from training.logging_utils import read_jsonl_log
from training.model import GPT, PRESET_LEARNING_RATES, PRESETS, GPTConfig
from training.tokenizer import load_tokenizer
from training.train import Trainer, grad_accum_steps, train
from webtext.config import ConfigError, load_config

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # resolving needs only the device type, not a GPU
# `make train SHARDS=<the demo dataset>`: the default tokenizer (vocab_size 50,257) learns 4,988
# tokens from the demo's train split and the tokenize stage writes 57,607 train tokens.
DEMO_TRAIN_TOKENS, DEMO_VOCAB = 57_607, 4_988
# FLOPs a 2-core CPU does in well under 10 minutes: 24 GFLOP/s sustained (60% of a 40 GFLOP/s GEMM
# peak, below every 2-core box docs/training.md measured) for 8 minutes.
CPU_RUN_FLOPS = 24e9 * 8 * 60


def windows(tokens: int, block_size: int) -> int:
    return (tokens - 1) // block_size


def test_cpu_defaults_fit_the_demo_corpus():
    """pipelines.yaml's defaults on a CPU and the demo corpus: a small model, a batch well inside
    the split, several epochs, no accumulation, a run a 2-core machine finishes in minutes."""
    config = load_config()
    preset = resolve_preset(config.model, CPU)
    assert preset == "small-cpu"
    block = PRESETS[preset].block_size
    split_windows = windows(DEMO_TRAIN_TOKENS, block)
    resolved, chosen = resolve_train(config.train, preset, block, CPU, split_windows, world=1)
    assert set(chosen) == set(AUTO_TRAIN_KEYS)
    sequences = resolved.batch_tokens // block
    assert resolved.batch_tokens <= DEMO_TRAIN_TOKENS and split_windows / sequences >= MIN_STEPS_PER_EPOCH
    assert grad_accum_steps(resolved.batch_tokens, resolved.micro_batch_size, block, 1) == 1
    epochs = resolved.max_steps * sequences / split_windows
    assert 3 <= epochs <= CPU_DEFAULTS.max_epochs + 1 and resolved.max_steps <= CPU_DEFAULTS.max_steps
    assert 0 < resolved.warmup_steps < resolved.max_steps / 10
    assert resolved.learning_rate == PRESET_LEARNING_RATES["small-cpu"]
    assert resolved.min_lr == pytest.approx(resolved.learning_rate / 10)
    assert not data_size_warnings(resolved, block, split_windows, DEMO_TRAIN_TOKENS, "train", world=1)
    with torch.device("meta"):
        model = GPT(GPTConfig(**{**vars(PRESETS[preset]), "vocab_size": DEMO_VOCAB}))
    assert model.flops_per_token() * resolved.max_steps * resolved.batch_tokens < CPU_RUN_FLOPS


def test_cuda_defaults_are_the_papers_setup():
    config = load_config()
    preset = resolve_preset(config.model, CUDA)
    assert preset == "gpt2-117m"
    webtext_windows = windows(9_000_000_000, 1024)  # WebText: ~40 GB of text
    resolved, _ = resolve_train(config.train, preset, 1024, CUDA, webtext_windows, world=1)
    assert (resolved.batch_tokens, resolved.max_steps, resolved.warmup_steps) == (512 * 1024, 100_000, 2000)
    assert (resolved.learning_rate, resolved.min_lr) == (6e-4, pytest.approx(6e-5))
    # Eight GPUs split the same 512 sequences; the demo corpus shrinks the batch to one micro-batch
    # per process and the run to CUDA's epoch bound, and still gets the short-epoch warning.
    eight, _ = resolve_train(config.train, preset, 1024, CUDA, webtext_windows, world=8)
    assert grad_accum_steps(eight.batch_tokens, eight.micro_batch_size, 1024, 8) == 8
    demo_windows = windows(DEMO_TRAIN_TOKENS, 1024)
    small, _ = resolve_train(config.train, preset, 1024, CUDA, demo_windows, world=1)
    assert small.batch_tokens == config.train.micro_batch_size * 1024
    assert small.max_steps == -(-CUDA_DEFAULTS.max_epochs * demo_windows // config.train.micro_batch_size)
    [warning] = data_size_warnings(small, 1024, demo_windows, DEMO_TRAIN_TOKENS, "train", world=1)
    assert "an epoch is only 7.0 steps" in warning and "lower train.micro_batch_size" in warning


def test_numbers_win_and_a_resume_keeps_the_runs_values():
    config, _ = tiny_config(learning_rate=0.01, min_lr=0.0)
    resolved, chosen = resolve_train(config.train, "tiny", 32, CPU, 1000, world=1)
    assert chosen == {} and resolved == config.train
    auto = load_config().train
    recorded = {"batch_tokens": 4096, "max_steps": 77, "warmup_steps": 5, "learning_rate": 0.5, "min_lr": 0.25}
    resumed, chosen = resolve_train(auto, "small-cpu", 256, CUDA, 10, world=1, recorded=recorded)
    assert chosen == recorded and resumed.model_dump(include=set(recorded)) == recorded
    explicit = auto.model_copy(update={"max_steps": 1000})
    resumed, chosen = resolve_train(explicit, "small-cpu", 256, CPU, 10, world=1, recorded=recorded)
    assert resumed.max_steps == 1000 and "max_steps" not in chosen and resumed.warmup_steps == 5


def test_each_preset_has_its_own_documented_learning_rate():
    assert set(PRESET_LEARNING_RATES) == set(PRESETS)
    paper = [PRESET_LEARNING_RATES[name] for name in ("gpt2-117m", "gpt2-345m", "gpt2-762m", "gpt2-1542m")]
    assert paper == [6e-4, 3e-4, 2.5e-4, 2e-4]  # GPT-3 Table 2.1: Small, Medium, Large, XL
    for name, rate in PRESET_LEARNING_RATES.items():
        resolved, _ = resolve_train(load_config().train, name, 1024, CUDA, 10**7, world=1)
        assert resolved.learning_rate == rate and resolved.min_lr == pytest.approx(rate / 10)


@pytest.mark.parametrize("split_windows, batch_sequences, max_steps, expected", [
    (66, 512, 100_000, [("larger than the whole split, so every step sees each window 7.8 times",
                         "Fix: --set train.batch_tokens=8192 (8 steps per epoch) or train.batch_tokens=auto"),
                        ("train.max_steps=100,000 passes over the split 775,758 times", "Fix: lower train.max_steps")]),
    (200, 64, 30, [("an epoch is only 3.1 steps", "Fix: --set train.batch_tokens=16384 (12 steps per epoch)")]),
    (50, 8, 30, [("an epoch is only 6.2 steps", "Fix: lower train.micro_batch_size or model.block_size")]),
    (5000, 64, 30, []),
])
def test_a_split_too_small_for_its_batch_is_named_with_the_numbers_and_the_fix(split_windows, batch_sequences,
                                                                                max_steps, expected):
    config = load_config(None, [f"train.batch_tokens={batch_sequences * 1024}", f"train.max_steps={max_steps}"]).train
    messages = data_size_warnings(config, 1024, split_windows, split_windows * 1024 + 1, "train", world=1)
    assert len(messages) == len(expected)
    for message, parts in zip(messages, expected):
        assert message.startswith(f"the 'train' split ({split_windows * 1024 + 1:,} tokens = {split_windows} windows "
                                  f"of 1025) with train.batch_tokens={batch_sequences * 1024:,}")
        assert all(part in message for part in parts), message


def test_the_trainer_resolves_auto_says_so_records_it_and_keeps_it_on_resume(corpus, tmp_path, caplog):
    """Defaults on a CPU through the real trainer: the concrete preset and batch in the log and
    the config record; a resume on a corpus that would resolve otherwise keeps the run's values."""
    tokens, tokenizer = corpus
    config = load_config(None, ["train.device=cpu", "train.num_threads=1", "train.peak_flops=1e9"])
    assert config.model.preset == "auto" and config.train.batch_tokens == "auto"
    with caplog.at_level("INFO", logger="training.train"):
        first = train(config.train, config.model, tokens, tmp_path / "run", tokenizer_dir=tokenizer, until_step=2)
    record = read_jsonl_log(tmp_path / "run" / "log.jsonl")[0]
    assert record["preset"] == "small-cpu" and record["model"]["n_layer"] == PRESETS["small-cpu"].n_layer
    assert record["train"]["batch_tokens"] == 8 * 256 and isinstance(record["train"]["max_steps"], int)
    assert record["auto"]["model.preset"] == "small-cpu" and record["auto"]["train.batch_tokens"] == 2048
    assert "auto settings for CPU" in caplog.text and "model.preset=small-cpu" in caplog.text
    assert "train.batch_tokens=2048 (8 sequences of 256)" in caplog.text
    assert first.step == 2

    other = tmp_path / "bigger"  # the same tokenizer, three times the text: auto would pick more steps
    docs = synthetic_documents(1100, seed=7)
    write_token_shards(other, load_tokenizer(tokenizer), {"train": [docs[:1000]], "val": [docs[1000:]]})
    trainer = Trainer(config.train, config.model, other, tmp_path / "run", tokenizer_dir=tokenizer, resume=True)
    assert trainer.preset == "small-cpu" and set(trainer.config_changes) == {"--tokens"}
    assert trainer.config.model_dump() == Trainer(config.train, config.model, tokens, tmp_path / "fresh",
                                                  tokenizer_dir=tokenizer).config.model_dump()


def test_a_small_split_warns_with_the_numbers_through_the_trainer(corpus, tmp_path, caplog):
    tokens, tokenizer = corpus
    config, _ = tiny_config(batch_tokens=128 * 32, micro_batch_size=32, max_steps=1)
    train(config.train, config.model, tokens, tmp_path / "run", tokenizer_dir=tokenizer)
    assert "with train.batch_tokens=4,096 (128 sequences of 32): an epoch is only 6." in caplog.text
    assert "Fix: --set train.batch_tokens=2048 (13 steps per epoch)" in caplog.text


@pytest.mark.parametrize("override, message", [
    ("train.learning_rate=fast", "train.learning_rate: Input should be a valid number, unable to parse string as a "
                                 "number, or 'auto' (got 'fast')"),
    ("train.batch_tokens=-3", "train.batch_tokens: Input should be greater than 0, or 'auto' (got -3)"),
    ("train.max_steps=2.5", "train.max_steps: Input should be a valid integer, got a number with a fractional part, "
                            "or 'auto' (got 2.5)"),
])
def test_a_bad_value_of_an_auto_key_is_one_line_naming_it(override, message):
    with pytest.raises(ConfigError) as error:
        load_config(None, [override])
    assert str(error.value).splitlines()[1:] == [f"  {message}"]
    assert load_config(None, ["train.learning_rate=6e-4"]).train.learning_rate == 6e-4  # YAML reads 6e-4 as text
