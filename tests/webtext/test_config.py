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
