import pytest

from core.section import config_hash
from webtext.config import ConfigError, load_config


def test_default_config_loads():
    cfg = load_config()
    assert cfg.beam.runner == "DirectRunner"


def test_unknown_key_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("beam:\n  runnr: DirectRunner\n")
    with pytest.raises(ConfigError, match=r"beam\.runnr: unknown key"):
        load_config(bad)


def test_unknown_section_is_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("crawler: {}\n")
    with pytest.raises(ConfigError, match=r"crawler: unknown key"):
        load_config(bad)


def test_ill_typed_override_is_named():
    with pytest.raises(ConfigError, match=r"beam\.direct_num_workers: .*got 'many'"):
        load_config(overrides=["beam.direct_num_workers=many"])


def test_override_is_typed():
    cfg = load_config(overrides=["beam.direct_num_workers=2", "beam.options=[--a=1]"])
    assert cfg.beam.direct_num_workers == 2
    assert cfg.beam.options == ["--a=1"]


@pytest.mark.parametrize("bad", ["noequals", "=1", "beam=1", ".x=1"])
def test_malformed_override(bad):
    with pytest.raises(ConfigError):
        load_config(overrides=[bad])


def test_not_a_mapping(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.yaml")


def test_hash_changes_with_config():
    assert config_hash(load_config()) != config_hash(load_config(overrides=["beam.direct_num_workers=3"]))


def test_an_unknown_key_suggests_the_closest_known_one():
    with pytest.raises(ConfigError, match=r"train\.max_step: unknown key, did you mean train\.max_steps\?"):
        load_config(overrides=["train.max_step=5"])
    with pytest.raises(ConfigError, match=r"crawler: unknown key, did you mean crawl\?"):
        load_config(overrides=["crawler.x=1"])
    with pytest.raises(ConfigError, match=r"train\.zzzz: unknown key$"):
        load_config(overrides=["train.zzzz=1"])


def test_config_files_layer_in_order_and_overrides_win(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text("train:\n  max_steps: 7\n  learning_rate: 0.1\ncrawl:\n  download_timeout: 3\n")
    second.write_text("train:\n  max_steps: 9\n")
    cfg = load_config([first, second], ["crawl.download_timeout=4"])
    assert (cfg.train.max_steps, cfg.train.learning_rate, cfg.crawl.download_timeout) == (9, 0.1, 4)
    assert cfg.train.min_lr == load_config().train.min_lr  # untouched keys keep the defaults
