"""webtext: a data-pipeline-first rebuild of GPT-2's WebText corpus and its trainer.

The stages live in top-level packages (crawl, extract, dedup, shards, training, overlap);
this package holds what they share: the typed config, the CLI, stage counters and atomic I/O.
"""

__version__ = "0.1.0"
