import pytest

from extract.config import ExtractConfig
from extract.extractors import extract
from extract.language import identify, language_failure


def test_english_kept_german_dropped(pages, config):
    english = extract(pages["article_en"].decode(), None, config)
    german = extract(pages["article_de"].decode(), None, config)
    language_english, confidence_english = identify(english.text, config)
    language_german, confidence_german = identify(german.text, config)
    assert (language_english, language_german) == ("en", "de") and confidence_english > 0.9 and confidence_german > 0.9
    assert language_failure(language_english, confidence_english, config) is None
    assert language_failure(language_german, confidence_german, config) == "lang_de"
    assert language_failure(language_german, confidence_german, ExtractConfig(languages=["en", "de"])) is None


def test_low_confidence_is_its_own_reason(config):
    assert language_failure("en", 0.2, config) == "lang_low_confidence"


@pytest.mark.parametrize("bad", [["EN"], ["english"], [], ["e1"]])
def test_bad_language_codes_are_config_errors(bad):
    with pytest.raises(ValueError):
        ExtractConfig(languages=bad)
