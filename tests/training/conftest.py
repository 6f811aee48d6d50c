"""Session fixtures of the trainer tests (defined in train_fixtures.py): built once per session."""

from tests.training.train_fixtures import corpus, trained_run  # noqa: F401
