"""Language identification with py3langid, whose model ships inside the wheel (no downloads)."""

from __future__ import annotations

import functools

from extract.config import ExtractConfig


@functools.cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(text: str, config: ExtractConfig) -> tuple[str, float]:
    """(ISO 639-1 code, probability) of the text's language, judged on its first characters."""
    language, confidence = _identifier().classify(text[: config.lang_sample_chars])
    return language, round(float(confidence), 4)


def language_failure(language: str, confidence: float, config: ExtractConfig) -> str | None:
    """Drop reason for a page not in a wanted language: `lang_<code>`, or `lang_low_confidence`."""
    if language not in config.languages:
        return f"lang_{language}"
    if confidence < config.min_lang_confidence:
        return "lang_low_confidence"
    return None
