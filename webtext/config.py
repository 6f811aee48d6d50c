"""One typed configuration for every stage, loaded from pipelines.yaml.

Each stage package defines its own section models; this module composes them, applies
`--set section.key=value` overrides and turns validation failures into one readable error
that names the offending key.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from crawl.config import CrawlConfig, HarvestConfig
from dedup.config import DedupConfig
from extract.config import ExtractConfig
from overlap.config import OverlapConfig
from shards.config import BuildConfig
from training.config import EvalConfig, ModelConfig, SampleConfig, TokenizerConfig, TrainConfig
from webtext.section import Section

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "pipelines.yaml"


class BeamConfig(Section):
    """Where Beam pipelines run. Anything after `--` on the command line is passed to Beam too."""

    runner: str = "DirectRunner"
    direct_num_workers: int = 1
    direct_running_mode: str = "in_memory"  # in_memory | multi_threading | multi_processing
    options: list[str] = []  # extra Beam pipeline options, e.g. ["--project=my-gcp-project"]


class Config(Section):
    beam: BeamConfig = BeamConfig()
    harvest: HarvestConfig = HarvestConfig()
    crawl: CrawlConfig = CrawlConfig()
    extract: ExtractConfig = ExtractConfig()
    dedup: DedupConfig = DedupConfig()
    build: BuildConfig = BuildConfig()
    tokenizer: TokenizerConfig = TokenizerConfig()
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    sample: SampleConfig = SampleConfig()
    eval: EvalConfig = EvalConfig()
    overlap: OverlapConfig = OverlapConfig()


class ConfigError(ValueError):
    """A config file or override that does not validate; the message names the key."""


def _format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid configuration in {source}:"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"])
        if e["type"] == "extra_forbidden":
            lines.append(f"  {key}: unknown key")
        else:
            got = e.get("input")
            shown = f" (got {got!r})" if not isinstance(got, dict) else ""
            lines.append(f"  {key}: {e['msg']}{shown}")
    return "\n".join(lines)


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


def load_config(path: str | Path | None = None, overrides: list[str] = ()) -> Config:
    """Load pipelines.yaml (or `path`), apply `section.key=value` overrides, validate."""
    source = Path(path) if path else DEFAULT_CONFIG
    data: dict[str, Any] = {}
    if path or source.exists():
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read config {source}: {exc}") from exc
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigError(f"config {source} is not valid YAML: {exc}") from exc
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config {source}: top level must be a mapping of sections")
        data = loaded or {}
    for override in overrides:
        _apply_override(data, override)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        where = str(source) + (" with --set overrides" if overrides else "")
        raise ConfigError(_format_validation_error(exc, where)) from None


def config_hash(cfg: Section) -> str:
    """Stable hash of a config (or one section), recorded in manifests."""
    canonical = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
