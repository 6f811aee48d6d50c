"""Session fixtures of the trainer tests (defined in train_fixtures.py): built once per session."""

import os

# MKL may pick kernels by memory alignment, which can change the last bit of a GEMM between two
# runs of the same computation; its conditional-reproducibility mode rules that out for the
# bit-identical resume tests (read at MKL's first call; inherited by subprocesses).
os.environ.setdefault("MKL_CBWR", "AUTO")

from tests.training.train_fixtures import corpus, straight_run, trained_run  # noqa: E402,F401
