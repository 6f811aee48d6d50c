"""pipelines.yaml is the only place defaults are written; the models hold types only."""

from pathlib import Path

import pytest
import yaml

from core import section
from core.section import DEFAULTS_FILE, DefaultsError, Section, defaults_at
from webtext.config import Config, ConfigError, load_config

REPO = Path(__file__).resolve().parents[2]


def _yaml_backed_sections(model=Config):
    yield model
    for field in model.model_fields.values():
        if isinstance(field.annotation, type) and issubclass(field.annotation, Section):
            yield from _yaml_backed_sections(field.annotation)


def test_the_defaults_file_is_the_repository_pipelines_yaml():
    assert DEFAULTS_FILE.resolve() == (REPO / "pipelines.yaml").resolve()


@pytest.mark.parametrize("model", list(_yaml_backed_sections()), ids=lambda m: m.__name__)
def test_no_model_field_has_a_python_default(model):
    assert model.defaults_key is not None
    with_defaults = [name for name, field in model.model_fields.items() if not field.is_required()]
    assert with_defaults == [], f"{model.__name__}: defaults belong in pipelines.yaml, not the model"


@pytest.mark.parametrize("model", list(_yaml_backed_sections())[1:], ids=lambda m: m.__name__)
def test_a_section_built_in_code_takes_the_yaml_defaults(model):
    from_yaml = yaml.safe_load((REPO / "pipelines.yaml").read_text())
    loaded = load_config()
    for part in model.defaults_key.split("."):  # nested sections: "crawl.archive"
        from_yaml, loaded = from_yaml[part], getattr(loaded, part)
    built = model()
    assert built.model_dump(mode="json").keys() == from_yaml.keys()
    assert built == loaded


def test_keyword_arguments_override_one_key_and_keep_the_rest():
    from crawl.config import CrawlConfig

    cfg = CrawlConfig(download_timeout=5)
    assert cfg.download_timeout == 5
    assert cfg.user_agent == defaults_at("crawl")["user_agent"]


def test_a_partial_user_file_is_layered_over_the_defaults(tmp_path):
    partial = tmp_path / "mine.yaml"
    partial.write_text("train:\n  max_steps: 7\n")
    cfg = load_config(partial)
    assert cfg.train.max_steps == 7
    assert cfg.train.learning_rate == load_config().train.learning_rate
    assert cfg.crawl == load_config().crawl


def test_a_nested_section_takes_overrides_key_by_key(tmp_path):
    partial = tmp_path / "mine.yaml"
    partial.write_text("crawl:\n  archive:\n    kind: commoncrawl\n")
    cfg = load_config(partial, ["crawl.archive.cdx_url=http://127.0.0.1:9/coll/index"])
    assert (cfg.crawl.archive.kind, cfg.crawl.archive.cdx_url) == ("commoncrawl", "http://127.0.0.1:9/coll/index")
    assert cfg.crawl.archive.before == load_config().crawl.archive.before
    with pytest.raises(ConfigError, match=r"crawl\.archive\.replay_url"):
        load_config(overrides=["crawl.archive.replay_url=http://a.test/no-placeholders"])


def test_a_missing_defaults_file_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(section, "DEFAULTS_FILE", tmp_path / "absent.yaml")
    section.default_settings.cache_clear()
    try:
        with pytest.raises(DefaultsError, match="absent.yaml"):
            section.default_settings()
        with pytest.raises(ConfigError, match="absent.yaml"):
            load_config()
    finally:
        section.default_settings.cache_clear()


def test_a_key_missing_from_the_defaults_is_named(monkeypatch):
    broken = {name: dict(values) for name, values in section.default_settings().items()}
    del broken["crawl"]["user_agent"]
    monkeypatch.setattr(section, "default_settings", lambda: broken)
    with pytest.raises(ConfigError, match=r"crawl\.user_agent: Field required"):
        load_config()
