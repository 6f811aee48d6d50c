"""One typed configuration for every stage: pipelines.yaml's defaults, a user's file, `--set`.

Each stage package defines its own section models (types only; the defaults are pipelines.yaml,
see `core.section`); this module composes them, layers a `--config FILE` and `--set
section.key=value` overrides over the defaults and turns validation failures into one readable
error that names the offending key.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, ClassVar, Sequence

import yaml
from pydantic import ValidationError

from crawl.config import CrawlConfig, HarvestConfig
from dedup.config import DedupConfig
from extract.config import ExtractConfig
from overlap.config import OverlapConfig
from shards.config import BuildConfig
from training.config import EvalConfig, ModelConfig, SampleConfig, TokenizerConfig, TrainConfig
from core.beam_config import BeamConfig
from core.section import DEFAULTS_FILE, Section


class Config(Section):
    """Every section; `Config()` is pipelines.yaml's defaults."""

    defaults_key: ClassVar[str] = ""

    beam: BeamConfig
    harvest: HarvestConfig
    crawl: CrawlConfig
    extract: ExtractConfig
    dedup: DedupConfig
    build: BuildConfig
    tokenizer: TokenizerConfig
    model: ModelConfig
    train: TrainConfig
    sample: SampleConfig
    eval: EvalConfig
    overlap: OverlapConfig


class ConfigError(ValueError):
    """A config file or override that does not validate; the message names the key."""


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key{_did_you_mean(e['loc'])}")
        else:
            got = e.get("input")
            shown = f" (got {got!r})" if not isinstance(got, dict) else ""
            lines.append(f"  {key}: {e['msg']}{shown}")
    return "\n".join(lines)


def _did_you_mean(location: tuple) -> str:
    """", did you mean section.key?" for the closest known key at that place, if any is close."""
    model: Any = Config
    for part in location[:-1]:
        field = model.model_fields.get(str(part)) if isinstance(model, type) and issubclass(model, Section) else None
        if field is None:
            return ""
        model = field.annotation
    if not (isinstance(model, type) and issubclass(model, Section)):
        return ""
    close = difflib.get_close_matches(str(location[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return f", did you mean {'.'.join(map(str, location[:-1] + (close[0],)))}?" if close else ""


def _apply_override(data: dict[str, Any], override: str) -> None:
    if "=" not in override:
        raise ConfigError(f"--set {override!r}: expected section.key=value")
    dotted, raw = override.split("=", 1)
    parts = dotted.strip().split(".")
    if len(parts) < 2 or not all(parts):
        raise ConfigError(f"--set {override!r}: expected section.key=value")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"--set {override!r}: {part} is not a section")
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {override!r}: value is not valid YAML: {exc}") from exc


def _layer(base: dict[str, Any], layer: dict[str, Any]) -> dict[str, Any]:
    """`layer` over `base`: sections merge key by key, any other value replaces."""
    merged = dict(base)
    for key, value in layer.items():
        both_sections = isinstance(value, dict) and isinstance(merged.get(key), dict)
        merged[key] = _layer(merged[key], value) if both_sections else value
    return merged


def _read_config_file(path: str | Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from exc
    try:
        loaded = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from exc
    if loaded is not None and not isinstance(loaded, dict):
        raise ConfigError(f"config {path}: top level must be a mapping of sections")
    return loaded or {}


def load_config(paths: str | Path | Sequence[str | Path] | None = None, overrides: Sequence[str] = ()) -> Config:
    """pipelines.yaml's defaults, then each config file in `paths` (full or partial; later files
    win), then `section.key=value` overrides."""
    if paths is None:
        paths = []
    elif isinstance(paths, (str, Path)):
        paths = [paths]
    data: dict[str, Any] = {}
    for path in paths:
        data = _layer(data, _read_config_file(path))
    for override in overrides:
        _apply_override(data, override)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        where = " + ".join(str(p) for p in paths) if paths else str(DEFAULTS_FILE)
        raise ConfigError(_format_validation_error(exc, where + (" with --set overrides" if overrides else ""))) from None
