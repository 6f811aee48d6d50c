"""What importing the training stage loads, in a fresh interpreter: never Apache Beam or Scrapy
(the trainer and its tokenize workers start without them), and for `webtext train --help` not
even torch (training/cli.py imports what a command runs only when it runs)."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# argv[1]: "all" imports every training module first; then `webtext train --help` runs.
SCRIPT = """
import contextlib, importlib, io, json, pkgutil, sys
import training
if sys.argv[1] == "all":
    for module in pkgutil.iter_modules(training.__path__):
        importlib.import_module(f"training.{module.name}")
from webtext.cli import main
with contextlib.redirect_stdout(io.StringIO()) as help_text, contextlib.suppress(SystemExit):
    main(["train", "--help"])
assert "usage: webtext train" in help_text.getvalue()
loaded = {name.split(".")[0] for name in sys.modules}
print(json.dumps({"training": sorted(name for name in sys.modules if name.startswith("training.")),
                  "heavy": sorted(loaded & {"apache_beam", "scrapy", "torch"})}))
"""


def loaded_after(what: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, what], cwd=REPO, capture_output=True, text=True,
                          check=True)
    return json.loads(proc.stdout)


def test_no_training_module_imports_beam_or_scrapy():
    loaded = loaded_after("all")
    assert {"training.train", "training.tokenize", "training.hf", "training.cli"} <= set(loaded["training"])
    assert loaded["heavy"] == ["torch"]  # and neither apache_beam nor scrapy


def test_train_help_loads_no_torch():
    assert loaded_after("help-only")["heavy"] == []
