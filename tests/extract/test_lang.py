import pytest

from extract.config import ExtractConfig
from extract.extractors import extract
from extract.lang import identify, language_failure


def test_english_kept_german_dropped(pages, cfg):
    en = extract(pages["article_en"].decode(), None, cfg)
    de = extract(pages["article_de"].decode(), None, cfg)
    lang_en, conf_en = identify(en.text, cfg)
    lang_de, conf_de = identify(de.text, cfg)
    assert (lang_en, lang_de) == ("en", "de") and conf_en > 0.9 and conf_de > 0.9
    assert language_failure(lang_en, conf_en, cfg) is None
    assert language_failure(lang_de, conf_de, cfg) == "lang_de"
    assert language_failure(lang_de, conf_de, ExtractConfig(languages=["en", "de"])) is None


def test_low_confidence_is_its_own_reason(cfg):
    assert language_failure("en", 0.2, cfg) == "lang_low_confidence"


@pytest.mark.parametrize("bad", [["EN"], ["english"], [], ["e1"]])
def test_bad_language_codes_are_config_errors(bad):
    with pytest.raises(ValueError):
        ExtractConfig(languages=bad)
