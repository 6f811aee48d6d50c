"""Config section `extract`: main-text extraction, language identification and quality rules."""

from typing import ClassVar, Literal

from pydantic import Field, field_validator

from core.section import Section


class ExtractConfig(Section):
    # Extraction. Default chosen on the 990-page evaluation set (bench/bench_extraction.py), line
    # cleaning included: trafilatura without comments scores F1 0.927 (P 0.908, R 0.946); the
    # ensemble gains only +0.002 F1 (95% bootstrap interval +0.000..+0.004) for 5x the CPU;
    # newspaper alone 0.836.
    defaults_key: ClassVar[str] = "extract"

    extractor: Literal["trafilatura", "newspaper", "ensemble"]
    favor: Literal["balanced", "precision", "recall"]  # trafilatura's trade-off
    include_tables: bool
    ensemble_min_paragraph_words: int = Field(ge=1)
    timeout_seconds: float = Field(gt=0)
    worker_start_seconds: float = Field(gt=0)

    # Language identification (py3langid, model inside the wheel).
    languages: list[str] = Field(min_length=1)
    min_lang_confidence: float = Field(ge=0.0, le=1.0)
    # The default sample agrees with whole-text identification on 983 of 985 evaluation pages.
    lang_sample_chars: int = Field(ge=100)

    # Quality rules (extract/quality.py); word/line thresholds follow Gopher (Rae et al., 2021).
    min_words: int = Field(ge=0)
    min_chars: int = Field(ge=0)
    bot_check_max_words: int = Field(ge=0)
    cookie_wall_max_words: int = Field(ge=0)
    paywall_max_words: int = Field(ge=0)
    short_line_words: int = Field(ge=1)
    max_short_line_fraction: float = Field(ge=0.0, le=1.0)
    max_duplicate_line_fraction: float = Field(ge=0.0, le=1.0)
    max_duplicate_line_char_fraction: float = Field(ge=0.0, le=1.0)
    max_top_ngram_char_fraction: dict[int, float]
    max_duplicate_ngram_char_fraction: dict[int, float]
    max_symbol_word_ratio: float = Field(ge=0.0)
    min_alpha_word_fraction: float = Field(ge=0.0, le=1.0)

    # Line cleaning (extract/lines.py), before the quality rules: one switch per line rule,
    # `remove_<rule name>`. Eval-set F1 of the default extractor: 0.926 without, 0.927 with both.
    remove_byline_or_share_line: bool
    remove_table_markup_line: bool

    @field_validator("languages")
    @classmethod
    def _iso_codes(cls, codes: list[str]) -> list[str]:
        bad = [
            code for code in codes
            if not (code.isascii() and code.isalpha() and code.islower() and 2 <= len(code) <= 3)
        ]
        if bad:
            raise ValueError(f"expected ISO 639-1 codes like 'en', got {bad}")
        return codes

    @field_validator("max_top_ngram_char_fraction", "max_duplicate_ngram_char_fraction")
    @classmethod
    def _ngram_fractions(cls, limits: dict[int, float]) -> dict[int, float]:
        for n, fraction in limits.items():
            if n < 1 or not 0.0 <= fraction <= 1.0:
                raise ValueError(f"n-gram size must be >= 1 and fraction in [0, 1], got {n}: {fraction}")
        return limits
