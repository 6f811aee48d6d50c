"""webtext: a data-pipeline-first rebuild of GPT-2's WebText corpus and its trainer.

The application layer on top of the stage packages (crawl, extract, dedup, shards, training,
overlap): the aggregated config, the `webtext` command and the demo. The Beam-free floor the
stages share lives in `core`.
"""

from core import __version__

__all__ = ["__version__"]
