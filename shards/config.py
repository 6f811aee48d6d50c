"""Config section `build`: the dataset build pipeline, splits and Parquet shards."""

from typing import ClassVar, Literal

from pydantic import Field, model_validator

from core.section import Section


class BuildConfig(Section):
    """How WARC pages become train/val/test Parquet shards.

    Splits are decided by a salted hash of each document's normalised URL, so a document
    stays in its split when the corpus grows. The GPT-2 paper gives no split sizes; the
    defaults follow the common 98/1/1 practice for web corpora.
    """

    defaults_key: ClassVar[str] = "build"

    val_fraction: float = Field(ge=0.0, lt=1.0)
    test_fraction: float = Field(ge=0.0, lt=1.0)
    # Small corpora (the bundled sample) would get an empty val/test split from the hash rule
    # alone; the documents with the smallest split hashes are moved there until these minimums
    # are met, as long as train keeps at least one document.
    min_val_docs: int = Field(ge=0)
    min_test_docs: int = Field(ge=0)
    split_salt: str
    docs_per_shard: int = Field(ge=1)  # ~100 MB of text per shard at WebText's ~5 kB/doc
    row_group_docs: int = Field(ge=1)  # Parquet row group size: what a streaming reader holds
    compression_level: int = Field(ge=1, le=22)  # zstd level
    top_domains: int = Field(ge=1)  # domains listed and charted in the dataset card
    audit_text: bool  # keep each dropped document's text in the audit table DIR/dropped/ (else null)
    # `webtext build --urls`: a page no URL of the table leads to is dropped as `not_in_url_table`
    # (drop) or kept with null provenance (keep).
    unknown_urls: Literal["keep", "drop"]

    @model_validator(mode="after")
    def _fractions_leave_train(self) -> "BuildConfig":
        if self.val_fraction + self.test_fraction >= 1.0:
            raise ValueError("val_fraction + test_fraction must be < 1 (train needs documents)")
        return self
