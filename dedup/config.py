"""Config section `dedup`: exact and MinHash near-duplicate removal."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from core.section import Section


class DedupConfig(Section):
    """Exact dedup on normalised text, then MinHash-LSH near dedup verified by exact Jaccard.

    Defaults (from the issue; the GPT-2 paper gives no dedup parameters): 5-word shingles,
    128 permutations, a 0.8 Jaccard threshold. When `bands` and `rows` are not given they
    are derived from the threshold (`dedup.lsh.optimal_bands_rows`), weighting false negatives heavily
    (`false_negative_weight`), because every candidate pair is verified exactly afterwards: a false
    positive only costs one comparison, a false negative keeps a duplicate.
    """

    defaults_key: ClassVar[str] = "dedup"

    exact: bool  # drop documents whose normalised text is identical
    near: bool  # drop near-duplicates (shingle Jaccard >= threshold)
    shingle_size: int = Field(ge=1)  # words per shingle
    num_perm: int = Field(ge=2, le=4096)  # MinHash permutations
    seed: int = Field(ge=0, lt=2**32)  # permutation seed (datasketch's default is 1)
    threshold: float = Field(gt=0.0, le=1.0)  # Jaccard similarity that makes a duplicate
    bands: int | None = Field(ge=1)  # LSH bands; None = derived from threshold
    rows: int | None = Field(ge=1)  # rows per band; None = derived from threshold
    false_negative_weight: float = Field(gt=0.0, lt=1.0)  # for deriving bands x rows
    max_bucket_size: int = Field(ge=2)  # larger LSH buckets pair members only with their best
    cc_rounds: int = Field(ge=1)  # max large-star/small-star rounds for clustering
    batch_size: int = Field(ge=1)  # documents per vectorised MinHash batch

    @model_validator(mode="after")
    def _bands_times_rows(self) -> "DedupConfig":
        if self.bands is not None and self.rows is not None and self.bands * self.rows != self.num_perm:
            raise ValueError(
                f"dedup.bands * dedup.rows must equal dedup.num_perm "
                f"(got {self.bands} * {self.rows} = {self.bands * self.rows}, num_perm={self.num_perm})"
            )
        for key, value in (("bands", self.bands), ("rows", self.rows)):
            if value is not None and self.num_perm % value:
                raise ValueError(f"dedup.{key}={value} does not divide dedup.num_perm={self.num_perm}")
        return self

    def lsh_params(self) -> tuple[int, int]:
        """(bands, rows): as configured, or optimal for `threshold` (may use < num_perm rows)."""
        if self.bands is not None:
            return self.bands, self.num_perm // self.bands
        if self.rows is not None:
            return self.num_perm // self.rows, self.rows
        from dedup.lsh import optimal_bands_rows  # numpy: only when the split is derived

        return optimal_bands_rows(self.threshold, self.num_perm, self.false_negative_weight)
