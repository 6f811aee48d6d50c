"""The trainer under faults: corrupted checkpoints on --resume, NaN steps, changed settings on
--resume, Ctrl-C (once and twice), and a second run into the same directory."""

import logging
import math
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.training.faults import WEIGHT, flip_weight_bytes
from tests.training.train_fixtures import curve, tiny_config
from training.checkpoint import load_checkpoint, load_model, write_checkpoint
from training.logging_utils import read_jsonl_log
from training.train import NonFiniteLossError, Trainer, list_checkpoints, lr_at, train
from webtext.cli import main

REPO = Path(__file__).resolve().parents[2]


def cli_args(corpus, run, overrides, *extra):
    tokens, tokenizer = corpus
    argv = ["train", "--tokens", str(tokens), "--out", str(run), "--tokenizer", str(tokenizer), *extra]
    for override in overrides:
        argv += ["--set", override]
    return argv


def names(run):
    return [p.name for p in list_checkpoints(run)]


# -- corrupted checkpoints on --resume

def test_resume_falls_back_past_a_corrupted_checkpoint_and_stays_bit_identical(corpus, straight_run, tmp_path,
                                                                                caplog):
    tokens, tokenizer = corpus
    config, _ = tiny_config(checkpoint_interval=4)
    run = tmp_path / "run"
    train(config.train, config.model, tokens, run, tokenizer_dir=tokenizer, until_step=8)
    assert names(run) == ["ckpt-00000004.pt", "ckpt-00000008.pt"]
    flip_weight_bytes(run / "ckpt-00000008.pt")
    with caplog.at_level(logging.WARNING, logger="training.train"):
        result = train(config.train, config.model, tokens, run, tokenizer_dir=tokenizer, resume=True)
    warning = next(r.getMessage() for r in caplog.records if "moved aside" in r.getMessage())
    assert ("ckpt-00000008.pt moved aside to ckpt-00000008.pt.corrupt, resuming from ckpt-00000004.pt instead"
            in warning and "corrupted: its content" in warning)
    assert (run / "ckpt-00000008.pt.corrupt").is_file()  # kept for inspection, out of pruning's and sample's way
    assert result.step == 12 and names(run) == ["ckpt-00000004.pt", "ckpt-00000008.pt", "ckpt-00000012.pt"]
    assert curve(read_jsonl_log(run / "log.jsonl")) == curve(straight_run[1])  # from step 4, bit for bit


def test_resume_with_no_intact_checkpoint_names_every_bad_one(corpus, tmp_path):
    tokens, tokenizer = corpus
    config, _ = tiny_config(checkpoint_interval=2, max_steps=4, eval_interval=0)
    run = tmp_path / "run"
    train(config.train, config.model, tokens, run, tokenizer_dir=tokenizer)
    flip_weight_bytes(run / "ckpt-00000004.pt")
    (run / "ckpt-00000002.pt").write_bytes((run / "ckpt-00000002.pt").read_bytes()[:1000])
    with pytest.raises(ValueError, match=r"no intact checkpoint to resume from: .*ckpt-00000004\.pt: corrupted: "
                                         r".*ckpt-00000002\.pt: corrupted, truncated"):
        Trainer(config.train, config.model, tokens, run, tokenizer_dir=tokenizer, resume=True)
    assert names(run) == ["ckpt-00000002.pt", "ckpt-00000004.pt"]  # nothing moved when nothing can be used


# -- the NaN guard

def test_nan_guard_exits_3_and_keeps_the_checkpoint_it_resumed_from(corpus, straight_run, tmp_path, capsys):
    """Steps that are all non-finite (NaN in an intact checkpoint's weights): the run stops after
    train.max_nan_skips of them, with exit status 3, and keep_checkpoints=1 still keeps the good one."""
    run = tmp_path / "run"
    run.mkdir()
    saved = load_checkpoint(straight_run[0].checkpoint)
    saved["model"][WEIGHT][0, 0] = float("nan")
    write_checkpoint(run / "ckpt-00000012.pt", saved)
    _, overrides = tiny_config(max_steps=40, checkpoint_interval=1, keep_checkpoints=1, max_nan_skips=3)
    assert main(cli_args(corpus, run, overrides, "--resume")) == 3
    out = capsys.readouterr().out
    assert "webtext train: stopped: step 15: non-finite loss nan" in out
    assert "3 consecutive steps skipped (train.max_nan_skips=3), giving up" in out
    assert f"The newest checkpoint written before the first non-finite step, {run / 'ckpt-00000012.pt'}, is kept" in out
    assert names(run) == ["ckpt-00000012.pt", "ckpt-00000014.pt"]  # 13 pruned, 12 protected


class NaNWeightsTrainer(Trainer):
    """A fault in the middle of a run: a weight turns NaN before step 5."""

    def _train_step(self):
        if self.step == 4:
            with torch.no_grad():
                self.model.get_parameter(WEIGHT)[0, 0] = float("nan")
        return super()._train_step()


def test_nan_guard_never_prunes_the_last_checkpoint_before_the_first_nonfinite_step(corpus, tmp_path):
    tokens, tokenizer = corpus
    config, _ = tiny_config(max_steps=20, checkpoint_interval=2, keep_checkpoints=1, max_nan_skips=4, eval_interval=0)
    trainer = NaNWeightsTrainer(config.train, config.model, tokens, tmp_path / "run", tokenizer_dir=tokenizer)
    with pytest.raises(NonFiniteLossError, match=r"step 8: .*4 consecutive steps skipped.*ckpt-00000004\.pt, is kept"):
        trainer.run()
    assert names(tmp_path / "run") == ["ckpt-00000004.pt", "ckpt-00000006.pt"]  # 2 pruned; 4 kept though not newest
    good, _ = load_model(tmp_path / "run" / "ckpt-00000004.pt")
    assert all(torch.isfinite(p).all() for p in good.parameters())


# -- changed settings on --resume

def test_resume_refuses_a_changed_model_shape_naming_the_keys(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    _, overrides = tiny_config(max_steps=4, eval_interval=0)
    assert main(cli_args(corpus, run, overrides)) == 0
    capsys.readouterr()
    assert main(cli_args(corpus, run, overrides + ["model.n_layer=3", "model.block_size=16"], "--resume")) == 1
    err = capsys.readouterr().err
    assert "--resume cannot change the model's shape: model.n_layer=3 (checkpoint: 2), model.block_size=16 " \
           "(checkpoint: 32)" in err
    assert "ckpt-00000004.pt" in err and len(err.strip().splitlines()) == 1


def test_resume_applies_and_records_changed_training_settings(corpus, tmp_path, caplog):
    tokens, tokenizer = corpus
    config, _ = tiny_config(eval_interval=0)
    run = tmp_path / "run"
    train(config.train, config.model, tokens, run, tokenizer_dir=tokenizer, until_step=4)
    changed, _ = tiny_config(eval_interval=0, learning_rate=0.001, beta2=0.9)
    with caplog.at_level(logging.WARNING, logger="training.train"):
        trainer = Trainer(changed.train, changed.model, tokens, run, tokenizer_dir=tokenizer, resume=True)
    assert "with changed settings" in caplog.text and "train.learning_rate 0.003 -> 0.001" in caplog.text
    assert "train.beta2 0.95 -> 0.9" in caplog.text
    assert all(group["betas"] == (0.9, 0.9) for group in trainer.optimizer.param_groups)  # applied, not the saved ones
    trainer.run()
    records = read_jsonl_log(run / "log.jsonl")
    change = next(r for r in records if r["kind"] == "config_change")
    assert change["step"] == 4 and change["changes"] == {"train.learning_rate": {"from": 0.003, "to": 0.001},
                                                         "train.beta2": {"from": 0.95, "to": 0.9}}
    for record in (r for r in records if r["kind"] == "train"):
        used = config if record["step"] <= 4 else changed
        assert record["lr"] == lr_at(record["step"] - 1, used.train)
    assert load_checkpoint(run)["train_config"]["learning_rate"] == 0.001


def test_resume_with_the_same_settings_records_no_change(corpus, tmp_path):
    tokens, tokenizer = corpus
    config, _ = tiny_config(max_steps=4, eval_interval=0)
    train(config.train, config.model, tokens, tmp_path / "run", tokenizer_dir=tokenizer, until_step=2)
    train(config.train, config.model, tokens, tmp_path / "run", tokenizer_dir=tokenizer, resume=True)
    assert not [r for r in read_jsonl_log(tmp_path / "run" / "log.jsonl") if r["kind"] == "config_change"]


# -- Ctrl-C

class CtrlCTrainer(Trainer):
    """Presses Ctrl-C (a real SIGINT to this process) `presses` times at the start of step 3,
    noting what the user had been told before the step's work began."""

    presses = 1
    log_so_far = staticmethod(list)  # what the user has been told (a test sets its caplog's)

    def _train_step(self):
        if self.step == 2:
            for _ in range(self.presses):
                os.kill(os.getpid(), signal.SIGINT)
            self.told_before_the_step = self.log_so_far()
        return super()._train_step()


def test_first_ctrl_c_says_so_at_once_then_saves_the_step(corpus, tmp_path, caplog):
    tokens, tokenizer = corpus
    config, _ = tiny_config(eval_interval=0)
    trainer = CtrlCTrainer(config.train, config.model, tokens, tmp_path / "run", tokenizer_dir=tokenizer)
    trainer.log_so_far = lambda: caplog.messages
    with caplog.at_level(logging.WARNING, logger="training.train"):
        result = trainer.run()
    assert trainer.told_before_the_step == [
        "SIGINT: finishing step 3, then saving a checkpoint; Ctrl-C again to stop without saving"]
    assert result.stopped_by == "SIGINT" and result.step == 3 and names(tmp_path / "run") == ["ckpt-00000003.pt"]


def test_second_ctrl_c_exits_130_at_once_without_saving(corpus, tmp_path, capsys, monkeypatch):
    class PressTwice(CtrlCTrainer):
        presses = 2

    monkeypatch.setattr("training.train.Trainer", PressTwice)  # the CLI's run, with the key presses
    handler = signal.getsignal(signal.SIGINT)
    _, overrides = tiny_config(eval_interval=0, checkpoint_interval=2)
    assert main(cli_args(corpus, tmp_path / "run", overrides)) == 130
    err = capsys.readouterr().err
    assert "SIGINT: finishing step 3, then saving a checkpoint; Ctrl-C again to stop without saving" in err
    assert "webtext train: interrupted during step 3, which was not saved; resume from the newest checkpoint " \
           "with: webtext train" in err
    assert names(tmp_path / "run") == ["ckpt-00000002.pt"]  # step 3 neither finished nor saved
    assert [r["step"] for r in read_jsonl_log(tmp_path / "run" / "log.jsonl") if r["kind"] == "train"] == [1, 2]
    assert signal.getsignal(signal.SIGINT) is handler
    assert not (tmp_path / "run" / ".train.lock").exists()
    resume = shlex.split(err.split("resume from the newest checkpoint with: ")[1].splitlines()[0])
    assert resume[:2] == ["webtext", "train"] and resume[-1] == "--resume" and "model.n_layer=2" in resume
    monkeypatch.undo()
    assert main(resume[1:]) == 0  # the hint repeats the run's model settings, so following it resumes
    assert names(tmp_path / "run")[-1] == "ckpt-00000012.pt"
    assert not [r for r in read_jsonl_log(tmp_path / "run" / "log.jsonl") if r["kind"] == "config_change"]


def test_train_help_describes_ctrl_c(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "a second Ctrl-C stops at once without saving (status 130)" in help_text
    assert "finishes the current step, saves a checkpoint" in help_text


# -- one run per directory

def test_a_second_run_into_the_same_directory_is_refused(corpus, tmp_path, capsys):
    run = tmp_path / "run"
    _, overrides = tiny_config(max_steps=100000, eval_interval=0)
    first = subprocess.Popen([sys.executable, "-m", "webtext.cli", *cli_args(corpus, run, overrides)], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while first.poll() is None and time.monotonic() < deadline and not any(
                r["kind"] == "train" for r in read_jsonl_log(run / "log.jsonl")):
            time.sleep(0.05)
        assert first.poll() is None, first.communicate()[0]
        for extra in ((), ("--resume",)):  # --until-step 1: were it let in, it would be over at once
            assert main(cli_args(corpus, run, overrides, "--until-step", "1", *extra)) == 1
            err = capsys.readouterr().err
            assert f"webtext train: error: another `webtext train` is writing {run}" in err
    finally:
        first.send_signal(signal.SIGTERM)
        output, _ = first.communicate(timeout=120)
    assert first.returncode == 128 + signal.SIGTERM, output  # the first run was not disturbed
    assert len(names(run)) == 1 and not (run / ".train.lock").exists()
    assert math.isfinite(read_jsonl_log(run / "log.jsonl")[-1]["seconds"])

