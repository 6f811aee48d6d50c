"""Every command that loads a checkpoint verifies it first: a checkpoint with flipped weight
bytes is a one-line error naming the file, never samples, scores or an export of garbage."""

import shutil

import pytest

from tests.training.faults import flip_weight_bytes
from training.checkpoint import resolve_checkpoint
from webtext.cli import main


@pytest.fixture(scope="module")
def flipped(trained_run, tmp_path_factory):
    """A copy of the trained run's checkpoint with 64 inverted bytes in one weight matrix."""
    file = tmp_path_factory.mktemp("flipped") / "ckpt-00000080.pt"
    shutil.copyfile(resolve_checkpoint(trained_run), file)
    flip_weight_bytes(file)
    return file


@pytest.mark.parametrize("command", ["sample", "eval", "export-hf"])
def test_commands_refuse_a_checkpoint_with_flipped_weight_bytes(command, flipped, tmp_path, capsys):
    (tmp_path / "text.txt").write_text("The old man walked to the river. " * 20)
    argv = {
        "sample": ["sample", "--checkpoint", str(flipped), "--max-tokens", "5"],
        "eval": ["eval", "--checkpoint", str(flipped), "--text", str(tmp_path / "text.txt"),
                 "--set", "eval.device=cpu"],
        "export-hf": ["export-hf", str(flipped), str(tmp_path / "hf")],
    }[command]
    assert main(argv) == 1
    captured = capsys.readouterr()
    error = [line for line in captured.err.splitlines() if line.startswith(f"webtext {command}: error:")]
    assert len(error) == 1 and f"{flipped}: corrupted: its content" in error[0], captured.err
    assert "======== sample" not in captured.out and not (tmp_path / "hf").exists()


def test_commands_accept_the_intact_checkpoint(trained_run, tmp_path, capsys):
    """The same commands on the checkpoint the flipped one was copied from (the fault is the bytes)."""
    assert main(["sample", "--checkpoint", str(trained_run), "--max-tokens", "5", "--set", "sample.device=cpu"]) == 0
    assert main(["export-hf", str(trained_run), str(tmp_path / "hf")]) == 0
    assert (tmp_path / "hf" / "model.safetensors").is_file()
    assert "corrupted" not in capsys.readouterr().err
