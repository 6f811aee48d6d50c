import pytest

from dedup.config import DedupConfig
from webtext.config import ConfigError, load_config


def test_defaults():
    cfg = load_config().dedup
    assert (cfg.shingle_size, cfg.num_perm, cfg.threshold) == (5, 128, 0.8)
    assert cfg.exact and cfg.near
    assert cfg.lsh_params() == (16, 8)  # derived: recall-weighted optimum for J=0.8


def test_explicit_and_half_given_lsh_params():
    assert DedupConfig(bands=32, rows=4).lsh_params() == (32, 4)
    assert DedupConfig(bands=16).lsh_params() == (16, 8)
    assert DedupConfig(rows=16).lsh_params() == (8, 16)


def test_derived_params_fit_in_num_perm():
    bands, rows = DedupConfig(threshold=0.5, num_perm=100).lsh_params()
    assert bands * rows <= 100


@pytest.mark.parametrize(
    "override, message",
    [
        ("dedup.threshold=0", r"dedup\.threshold: Input should be greater than 0"),
        ("dedup.threshold=1.5", r"dedup\.threshold: Input should be less than or equal to 1"),
        ("dedup.threshold=high", r"dedup\.threshold: .*got 'high'"),
        ("dedup.shingle_size=0", r"dedup\.shingle_size"),
        ("dedup.num_perm=1", r"dedup\.num_perm"),
        ("dedup.max_bucket_size=1", r"dedup\.max_bucket_size"),
        ("dedup.cc_rounds=0", r"dedup\.cc_rounds"),
        ("dedup.false_negative_weight=1", r"dedup\.false_negative_weight"),
        ("dedup.bandz=4", r"dedup\.bandz: unknown key"),
    ],
)
def test_invalid_values_are_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


def test_bands_times_rows_must_equal_num_perm():
    with pytest.raises(ConfigError, match=r"dedup\.bands \* dedup\.rows must equal dedup\.num_perm .*16 \* 4 = 64"):
        load_config(overrides=["dedup.bands=16", "dedup.rows=4"])
    assert load_config(overrides=["dedup.bands=16", "dedup.rows=4", "dedup.num_perm=64"]).dedup.lsh_params() == (16, 4)


def test_half_given_params_must_divide_num_perm():
    with pytest.raises(ConfigError, match=r"dedup\.bands=7 does not divide dedup\.num_perm=128"):
        load_config(overrides=["dedup.bands=7"])
    with pytest.raises(ConfigError, match=r"dedup\.rows=3 does not divide"):
        load_config(overrides=["dedup.rows=3"])


def test_section_from_yaml(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("dedup:\n  threshold: 0.9\n  bands: 8\n  rows: 16\n")
    cfg = load_config(path).dedup
    assert cfg.threshold == 0.9 and cfg.lsh_params() == (8, 16)
    path.write_text("dedup: [1, 2]\n")
    with pytest.raises(ConfigError, match=r"dedup: "):
        load_config(path)
