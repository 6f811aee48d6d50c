"""Decoding, main-text extraction, language identification and quality rules for crawled pages.

`extract.pipeline.ExtractPages` (a Beam PTransform) is the entry point for pipelines; the
`extract` command (`extract.cli`) runs the same extraction on local files without Beam.
"""
