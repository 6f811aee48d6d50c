"""Config section `overlap`: n-gram Bloom-filter contamination analysis (GPT-2 paper §4)."""

from typing import Literal

from pydantic import Field

from webtext.section import Section


class OverlapConfig(Section):
    """GPT-2 §4: 8-gram Bloom filters of WebText's training split, false positives below 1e-8."""

    n: int = Field(8, ge=1)  # n-gram length of `overlap build` / `overlap report`
    fp_rate: float = Field(1e-8, gt=0, lt=1)  # Bloom filter false-positive rate
    split: str = "train"  # dataset split the filter is built from
    workers: int = Field(0, ge=0)  # processes filling partial filters (0 = one per CPU core)
    text_field: str = Field("text", min_length=1)  # eval files: JSONL key / Parquet column of the text
    top_docs: int = Field(10, ge=0)  # most-overlapping documents listed per eval file
    decontaminate_n: int = Field(13, ge=1)  # n-gram length for `overlap decontaminate` (GPT-3: 13)
    # A training document is contaminated when more than this fraction of its n-grams occur in
    # the eval files (0.0 = any shared n-gram, as GPT-3 did).
    decontaminate_threshold: float = Field(0.0, ge=0, lt=1)
    # drop: remove contaminated documents; cut: remove only the words covered by shared n-grams
    decontaminate_mode: Literal["drop", "cut"] = "drop"
    decontaminate_splits: list[str] = ["train"]  # splits filtered; the others are copied as is
