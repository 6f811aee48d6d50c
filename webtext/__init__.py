"""webtext: a data-pipeline-first rebuild of GPT-2's WebText corpus and its trainer.

The stages live in top-level packages (crawl, extract, dedup, shards, training, overlap);
this package holds what they share: the typed config, the CLI, stage counters and atomic I/O.
"""

import logging

__version__ = "0.1.0"


class _QuietBeamImport(logging.Filter):
    """Beam warns on import about optional GCP client libraries we never use; drop that line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


logging.getLogger().addFilter(_QuietBeamImport())
