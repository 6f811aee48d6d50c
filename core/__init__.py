"""The Beam-free floor under every stage: config sections, stage counts, atomic I/O, text hashing.

Nothing here imports a stage package or the `webtext` application layer. Only `core.beam`
imports Apache Beam, and only Beam stages import `core.beam`.
"""

__version__ = "0.1.0"


import logging


class _QuietBeamImport(logging.Filter):
    """Beam warns on import about optional GCP client libraries we never use; drop that line."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "apitools not found" not in record.getMessage()


logging.getLogger().addFilter(_QuietBeamImport())
