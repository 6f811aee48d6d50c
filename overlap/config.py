"""Config section `overlap`: n-gram Bloom-filter contamination analysis (GPT-2 paper §4)."""

from typing import ClassVar, Literal

from pydantic import Field

from core.section import Section


class OverlapConfig(Section):
    """GPT-2 §4: 8-gram Bloom filters of WebText's training split, false positives below 1e-8."""

    defaults_key: ClassVar[str] = "overlap"

    n: int = Field(ge=1)  # n-gram length of `overlap build` / `overlap report`
    fp_rate: float = Field(gt=0, lt=1)  # Bloom filter false-positive rate
    split: str  # dataset split the filter is built from
    workers: int = Field(ge=0)  # processes filling partial filters (0 = one per CPU core)
    text_field: str = Field(min_length=1)  # eval files: JSONL key / Parquet column of the text
    top_docs: int = Field(ge=0)  # most-overlapping documents listed per eval file
    decontaminate_n: int = Field(ge=1)  # n-gram length for `overlap decontaminate` (GPT-3: 13)
    # A training document is contaminated when more than this fraction of its n-grams occur in
    # the eval files (0.0 = any shared n-gram, as GPT-3 did).
    decontaminate_threshold: float = Field(ge=0, lt=1)
    # drop: remove contaminated documents; cut: remove only the words covered by shared n-grams
    decontaminate_mode: Literal["drop", "cut"]
    decontaminate_splits: list[str]  # splits filtered; the others are copied as is
