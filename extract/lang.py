"""Language identification with py3langid, whose model ships inside the wheel (no downloads)."""

from __future__ import annotations

import functools

from extract.config import ExtractConfig


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(text: str, cfg: ExtractConfig) -> tuple[str, float]:
    """(ISO 639-1 code, probability) of the text's language, judged on its first characters."""
    lang, confidence = _identifier().classify(text[: cfg.lang_sample_chars])
    return lang, round(float(confidence), 4)


def language_failure(lang: str, confidence: float, cfg: ExtractConfig) -> str | None:
    """Drop reason for a page not in a wanted language: `lang_<code>`, or `lang_low_confidence`."""
    if lang not in cfg.languages:
        return f"lang_{lang}"
    if confidence < cfg.min_lang_confidence:
        return "lang_low_confidence"
    return None
