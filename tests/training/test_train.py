"""The trainer on a tiny GPT: learning, exact resume (in-process and after SIGTERM), keep-last-k
checkpoints, NaN guard, corrupted checkpoints, config errors."""

import importlib.util
import math
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.training.train_fixtures import curve, tiny_config
from training import host_memory
from training.checkpoint import load_checkpoint, load_model, save_model_checkpoint, write_checkpoint
from training.logging_utils import measure_gemm_flops, read_jsonl_log
from training.model import GPT, GPTConfig
from training.train import NonFiniteLossError, Trainer, grad_accum_steps, list_checkpoints, lr_at, train
from webtext.cli import main
from webtext.config import load_config

REPO = Path(__file__).resolve().parents[2]


def test_tiny_model_learns_and_writes_its_run_files(straight_run):
    result, records = straight_run
    losses = [r["loss"] for r in records if r["kind"] == "train"]
    assert len(losses) == 12
    assert losses[-1] < losses[0] - 1.0  # from ~ln(320)=5.8 towards the grammar's entropy
    vals = [r for r in records if r["kind"] == "val"]
    assert [v["step"] for v in vals] == [6, 12] and vals[1]["loss"] < vals[0]["loss"]
    assert vals[1]["perplexity"] == pytest.approx(math.exp(vals[1]["loss"]))
    assert 0 < vals[1]["bits_per_byte"] < vals[1]["loss"] / math.log(2)  # tokens hold > 1 byte
    train_records = [r for r in records if r["kind"] == "train"]
    assert all(r["tok_per_s"] > 0 and r["mfu"] > 0 for r in train_records)
    flops_per_token = GPT(GPTConfig(**records[0]["model"])).flops_per_token()  # bench_train's MFU definition
    for r in train_records:
        assert r["mfu"] == pytest.approx(r["tok_per_s"] * flops_per_token / records[0]["peak_flops"])
    assert records[0]["kind"] == "config" and records[0]["grad_accum"] == 2
    assert records[-1]["kind"] == "end" and records[-1]["stopped_by"] == "max_steps"
    assert (result.run_dir / "loss.png").stat().st_size > 5000
    assert [p.name for p in list_checkpoints(result.run_dir)] == ["ckpt-00000012.pt"]
    ckpt = load_checkpoint(result.run_dir)
    assert ckpt["step"] == 12 and ckpt["cursor"] == 12 * 8 and len(ckpt["rng"]) == 1


class SlowValidationTrainer(Trainer):
    def validate(self):
        time.sleep(1.0)
        return super().validate()


def test_logged_throughput_leaves_out_validation_time(corpus, tmp_path):
    """tok/s and MFU describe training steps: a slow validation must not drag them down."""
    tokens, tokenizer = corpus
    config, _ = tiny_config(max_steps=8, eval_interval=4)
    SlowValidationTrainer(config.train, config.model, tokens, tmp_path / "run", tokenizer_dir=tokenizer).run()
    train_records = [r for r in read_jsonl_log(tmp_path / "run" / "log.jsonl") if r["kind"] == "train"]
    after_validation = next(r for r in train_records if r["step"] == 5)
    assert 256 / after_validation["tok_per_s"] < 0.5  # one 256-token step, not the 1 s validation


def test_gemm_peak_is_a_sustained_rate_of_real_matmuls():
    peak = measure_gemm_flops(torch.device("cpu"), torch.float32, n=256, seconds=0.2)
    assert 1e8 < peak < 1e13  # 0.1 GFLOP/s .. 10 TFLOP/s: a CPU, neither zero nor a division slip


def test_resume_after_until_step_is_bit_identical(corpus, straight_run, tmp_path):
    tokens, tokenizer = corpus
    config, _ = tiny_config(peak_flops=0)  # measuring the GEMM peak must not move the RNG streams
    first = train(config.train, config.model, tokens, tmp_path / "run", tokenizer_dir=tokenizer, until_step=5)
    assert first.stopped_by == "until_step" and first.step == 5
    second = train(config.train, config.model, tokens, tmp_path / "run", tokenizer_dir=tokenizer, resume=True)
    assert second.step == 12
    assert curve(read_jsonl_log(tmp_path / "run" / "log.jsonl")) == curve(straight_run[1])
    with pytest.raises(ValueError, match="already at step 12: nothing to do"):
        train(config.train, config.model, tokens, tmp_path / "run", tokenizer_dir=tokenizer, resume=True)


def test_sigterm_checkpoints_and_resume_is_bit_identical(corpus, tmp_path):
    """A CLI run killed with SIGTERM mid-run, resumed with --resume, logs exactly the losses
    of an uninterrupted run."""
    tokens, tokenizer = corpus
    config, overrides = tiny_config(max_steps=60, eval_interval=20)
    reference = tmp_path / "reference"
    train(config.train, config.model, tokens, reference, tokenizer_dir=tokenizer)

    run = tmp_path / "run"
    command = [sys.executable, "-m", "webtext.cli", "train", "--tokens", str(tokens), "--out", str(run),
               "--tokenizer", str(tokenizer)]
    for override in overrides + ["train.max_steps=60", "train.eval_interval=20"]:
        command += ["--set", override]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        steps = [r["step"] for r in read_jsonl_log(run / "log.jsonl") if r["kind"] == "train"] \
            if (run / "log.jsonl").exists() else []
        if steps and steps[-1] >= 3:
            proc.send_signal(signal.SIGTERM)
            break
        time.sleep(0.01)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, output  # checkpointed, but not finished
    assert "stopped by SIGTERM" in output and "--resume" in output
    stopped_at = load_checkpoint(run)["step"]
    assert 3 <= stopped_at < 60
    config_record = next(r for r in read_jsonl_log(run / "log.jsonl") if r["kind"] == "config")
    # The CLI restarted itself with huge pages, the CPU Trainer applied mallopt, and the run says so.
    assert config_record["host_memory"]["malloc_tuning"] is host_memory.enabled()
    if host_memory.enabled():
        assert "glibc.malloc.hugetlb=1" in config_record["host_memory"]["glibc_tunables"]
    train(config.train, config.model, tokens, run, tokenizer_dir=tokenizer, resume=True)
    assert curve(read_jsonl_log(run / "log.jsonl")) == curve(read_jsonl_log(reference / "log.jsonl"))


def test_keep_last_k_checkpoints(corpus, tmp_path):
    tokens, tokenizer = corpus
    config, _ = tiny_config(max_steps=6, checkpoint_interval=2, keep_checkpoints=2, eval_interval=0)
    train(config.train, config.model, tokens, tmp_path / "run", tokenizer_dir=tokenizer)
    assert [p.name for p in list_checkpoints(tmp_path / "run")] == ["ckpt-00000004.pt", "ckpt-00000006.pt"]
    assert not [p for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]


def test_existing_run_needs_resume_and_corrupted_checkpoint_fails_clearly(corpus, straight_run, tmp_path):
    tokens, tokenizer = corpus
    config, _ = tiny_config()
    run = tmp_path / "run"
    run.mkdir()
    source = straight_run[0].checkpoint
    (run / source.name).write_bytes(source.read_bytes())
    with pytest.raises(ValueError, match="pass --resume"):
        Trainer(config.train, config.model, tokens, run, tokenizer_dir=tokenizer)
    data = source.read_bytes()
    (run / source.name).write_bytes(data[: len(data) // 2])  # truncated mid-write by a foreign tool
    with pytest.raises(ValueError, match=r"ckpt-00000012\.pt: corrupted, truncated"):
        Trainer(config.train, config.model, tokens, run, tokenizer_dir=tokenizer, resume=True)
    # a model-only checkpoint (e.g. an import) cannot be resumed from
    save_model_checkpoint(run / source.name, load_model(source)[0])
    with pytest.raises(ValueError, match="not a training checkpoint"):
        Trainer(config.train, config.model, tokens, run, tokenizer_dir=tokenizer, resume=True)


def nan_run(corpus, straight_run, tmp_path, **overrides):
    """A run directory whose checkpoint has NaN weights, so every following step is non-finite."""
    run = tmp_path / "run"
    run.mkdir()
    ckpt = load_checkpoint(straight_run[0].checkpoint)
    ckpt["model"]["transformer.h.0.mlp.c_fc.weight"][0, 0] = float("nan")
    write_checkpoint(run / straight_run[0].checkpoint.name, ckpt)  # intact file, NaN weights
    config, _ = tiny_config(max_steps=40, **overrides)
    return Trainer(config.train, config.model, corpus[0], run, tokenizer_dir=corpus[1], resume=True)


def test_nan_policy_stop(corpus, straight_run, tmp_path):
    trainer = nan_run(corpus, straight_run, tmp_path, nan_policy="stop")
    with pytest.raises(NonFiniteLossError, match="step 13: non-finite loss nan.*nan_policy=stop"):
        trainer.run()


def test_nan_policy_skip_leaves_weights_alone_then_gives_up(corpus, straight_run, tmp_path):
    trainer = nan_run(corpus, straight_run, tmp_path, nan_policy="skip", max_nan_skips=3)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    adam_steps = {id(p): s["step"].item() for p, s in trainer.optimizer.state.items()}
    with pytest.raises(NonFiniteLossError, match="3 consecutive steps skipped"):
        trainer.run()
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k].nan_to_num(), after[k].nan_to_num()) for k in before)
    assert adam_steps == {id(p): s["step"].item() for p, s in trainer.optimizer.state.items()}
    skipped = [r for r in read_jsonl_log(tmp_path / "run" / "log.jsonl") if r["kind"] == "nonfinite"]
    assert [r["step"] for r in skipped] == [13, 14, 15]


def test_schedule_and_batch_arithmetic():
    config, _ = tiny_config(max_steps=100, warmup_steps=10, learning_rate=1.0, min_lr=0.1)
    lrs = [lr_at(s, config.train) for s in range(101)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
    assert lrs[55] == pytest.approx(0.55) and lrs[100] == pytest.approx(0.1)
    assert grad_accum_steps(524288, 8, 1024, 4) == 16
    with pytest.raises(ValueError, match="not a multiple of micro_batch_size"):
        grad_accum_steps(1000, 8, 1024, 1)


def test_bad_batch_and_tokenizer_mismatch_fail_before_training(corpus, tmp_path):
    tokens, tokenizer = corpus
    config, _ = tiny_config(batch_tokens=300)
    with pytest.raises(ValueError, match="batch_tokens=300 is not a multiple"):
        Trainer(config.train, config.model, tokens, tmp_path / "a", tokenizer_dir=tokenizer)
    other = tmp_path / "other-tokenizer"
    from training.config import TokenizerConfig
    from training.tokenizer import train_tokenizer

    train_tokenizer(["completely different text " * 50], TokenizerConfig(vocab_size=270, min_frequency=1)).save(other)
    config, _ = tiny_config()
    with pytest.raises(ValueError, match="is not the one the token shards were made with"):
        Trainer(config.train, config.model, tokens, tmp_path / "b", tokenizer_dir=other)


def test_cli_reports_config_errors_and_missing_tokens(tmp_path, capsys):
    assert main(["train", "--tokens", str(tmp_path), "--out", str(tmp_path / "run"),
                 "--set", "train.nan_policy=ignore"]) == 2
    assert "train.nan_policy" in capsys.readouterr().err
    assert main(["train", "--tokens", str(tmp_path), "--out", str(tmp_path / "run"), "--set", "train.device=cpu"]) == 1
    assert "no token-shard manifest (run `webtext tokenize` first)" in capsys.readouterr().err


def test_trains_on_the_tokenize_stage_output(corpus, tmp_path):
    """The contract with `webtext tokenize`: its real output trains, and the tokenizer copy it
    records is found without --tokenizer (bits per byte reported)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from tests.training.train_fixtures import synthetic_documents
    from training.tokenize import tokenize_shards

    for split, seed in (("train", 3), ("val", 4)):
        (tmp_path / "dataset" / split).mkdir(parents=True)
        pq.write_table(pa.table({"text": synthetic_documents(60, seed)}), tmp_path / "dataset" / split / "part-0.parquet")
    config, _ = tiny_config(max_steps=2, eval_interval=2)
    config.tokenizer.workers = 1
    tokenize_shards(tmp_path / "dataset", corpus[1], tmp_path / "tokens", config.tokenizer, progress=False)
    result = train(config.train, config.model, tmp_path / "tokens", tmp_path / "run")
    assert result.step == 2 and result.val["bits_per_byte"] > 0
    assert load_checkpoint(result.checkpoint)["tokenizer_dir"] == str((tmp_path / "tokens" / "tokenizer").resolve())


def test_val_split_shorter_than_a_window_trains_without_validation(corpus, tmp_path, caplog):
    from tests.training.train_fixtures import synthetic_documents, write_token_shards
    from training.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(corpus[1])
    docs = synthetic_documents(40, seed=5)
    write_token_shards(tmp_path / "tokens", tokenizer, {"train": [docs], "val": [["A cat."]]})
    config, _ = tiny_config(max_steps=2, eval_interval=1)
    result = train(config.train, config.model, tmp_path / "tokens", tmp_path / "run", tokenizer_dir=corpus[1])
    assert result.step == 2 and result.val is None
    assert "no validation: " in caplog.text and "fewer than one window" in caplog.text
    assert not [r for r in read_jsonl_log(tmp_path / "run" / "log.jsonl") if r["kind"] == "val"]


class BarWatchingTrainer(Trainer):
    """Records what the progress bar shows after each step."""

    def _show_progress(self, loss):
        super()._show_progress(loss)
        self.shown = getattr(self, "shown", []) + [(self.step, loss, self._progress.postfix)]


def test_the_bar_shows_every_steps_loss_between_log_records(corpus, tmp_path):
    tokens, tokenizer = corpus
    config, _ = tiny_config(max_steps=7, log_interval=5, eval_interval=0)
    trainer = BarWatchingTrainer(config.train, config.model, tokens, tmp_path / "run", tokenizer_dir=tokenizer)
    trainer.run()
    assert [step for step, _, _ in trainer.shown] == list(range(1, 8))
    for step, loss, postfix in trainer.shown:
        assert f"loss={loss:.4f}" in postfix, (step, postfix)
        assert ("tok_s=" in postfix) == (step >= 5)  # rates from the first log record on
    assert len({loss for _, loss, _ in trainer.shown}) == 7


def test_tensorboard_is_off_by_default_and_the_start_says_where_the_log_goes(corpus, tmp_path, caplog):
    tokens, tokenizer = corpus
    assert load_config().train.tensorboard is False
    config, _ = tiny_config(max_steps=1, eval_interval=0)
    with caplog.at_level("INFO", logger="training.train"):
        train(config.train, config.model, tokens, tmp_path / "run", tokenizer_dir=tokenizer)
    assert f"logging to {tmp_path / 'run' / 'log.jsonl'} (TensorBoard off: train.tensorboard=false)" in caplog.text
    assert not (tmp_path / "run" / "tb").exists()


def test_tensorboard_asked_for_but_not_installed_is_a_warning_with_the_install_command(corpus, tmp_path, caplog):
    if importlib.util.find_spec("tensorboard") is not None:
        pytest.skip("tensorboard is installed: nothing is missing")
    tokens, tokenizer = corpus
    config, _ = tiny_config(max_steps=1, eval_interval=0, tensorboard=True)
    with caplog.at_level("INFO", logger="training"):
        train(config.train, config.model, tokens, tmp_path / "run", tokenizer_dir=tokenizer)
    assert "train.tensorboard is true but the tensorboard package is not installed (pip install " \
           "tensorboard==2.21.0): logging to log.jsonl only" in caplog.text
    assert f"logging to {tmp_path / 'run' / 'log.jsonl'} only" in caplog.text


def test_a_dataset_folder_given_as_tokens_says_to_tokenize_it(tmp_path, capsys):
    """`train --tokens DATASET_DIR`: the error names the folder for what it is and the commands."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    dataset = tmp_path / "dataset"
    (dataset / "train").mkdir(parents=True)
    pq.write_table(pa.table({"text": ["a document"]}), dataset / "train" / "shard-00000-of-00001.parquet")
    for manifest in (None, {"format": "webtext-dataset-v1", "shards": []}):  # unfinished, finished build
        if manifest is not None:
            (dataset / "manifest.json").write_text(json.dumps(manifest))
        assert main(["train", "--tokens", str(dataset), "--out", str(tmp_path / "run"),
                     "--set", "train.device=cpu"]) == 1
        error = capsys.readouterr().err
        assert f"{dataset} is a dataset folder (Parquet shards of `webtext build`), not token shards" in error
        assert f"webtext tokenize --shards {dataset} --tokenizer TOKDIR --out TOKENS" in error
        assert error.count("\n") == 1 and "Traceback" not in error
