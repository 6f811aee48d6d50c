import pytest
from pydantic import ValidationError

from extract.config import ExtractConfig
from webtext.config import ConfigError, load_config


@pytest.mark.parametrize(
    "override",
    [
        {"extractor": "dragnet"},
        {"timeout_seconds": 0},
        {"favor": "speed"},
        {"min_lang_confidence": 1.5},
        {"max_top_ngram_char_fraction": {0: 0.2}},
        {"max_duplicate_ngram_char_fraction": {5: 2.0}},
        {"no_such_key": 1},
    ],
)
def test_broken_values_are_rejected(override):
    with pytest.raises(ValidationError):
        ExtractConfig(**override)


def test_yaml_section_and_set_override(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("extract:\n  extractor: ensemble\n  languages: [en, fr]\n")
    config = load_config(path, ["extract.min_words=10"])
    assert config.extract.extractor == "ensemble" and config.extract.languages == ["en", "fr"]
    assert config.extract.min_words == 10
    with pytest.raises(ConfigError, match="extract.extractor"):
        load_config(path, ["extract.extractor=magic"])
