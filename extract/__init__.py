"""Decoding, main-text extraction, language id and quality rules for crawled pages.

`ExtractPages` (a Beam PTransform) is the entry point for pipelines; it is imported lazily so
that loading the config does not import Beam and the extractors.
"""

__all__ = ["ExtractPages"]


def __getattr__(name):
    if name == "ExtractPages":
        from extract.pipeline import ExtractPages

        return ExtractPages
    raise AttributeError(f"module 'extract' has no attribute {name!r}")
