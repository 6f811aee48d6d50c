"""Base class of config sections, whose only defaults are the values in `pipelines.yaml`.

Models declare types and constraints; `pipelines.yaml` (next to the stage packages, shipped in
the wheel as `core/pipelines.yaml`) holds every default, once, with its comment. A section
built without some keys (`CrawlConfig()`, `CrawlConfig(download_timeout=5)`, or a user's
partial config file) takes the missing ones from there. Unknown keys are errors, assignments
are validated.
"""

from __future__ import annotations

import functools
import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, model_validator

DEFAULTS_FILE = Path(__file__).resolve().parent / "pipelines.yaml"


class DefaultsError(ValueError):
    """pipelines.yaml (the defaults) is missing or malformed: an installation problem."""


@functools.cache
def default_settings() -> dict[str, Any]:
    """The parsed defaults file: section name -> key -> default value."""
    try:
        data = yaml.safe_load(DEFAULTS_FILE.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise DefaultsError(f"cannot read the defaults {DEFAULTS_FILE}: {exc}") from exc
    if not isinstance(data, dict):
        raise DefaultsError(f"{DEFAULTS_FILE}: top level must be a mapping of sections")
    return data


def defaults_at(dotted_key: str) -> dict[str, Any]:
    """The defaults of one section: "" is the whole file, "crawl" a section, "a.b" a nested one."""
    node: Any = default_settings()
    for part in filter(None, dotted_key.split(".")):
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        raise DefaultsError(f"{DEFAULTS_FILE} has no section {dotted_key!r}")
    return node


class Section(BaseModel):
    """A config section. Set `defaults_key` to its place in pipelines.yaml to get its defaults."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)
    defaults_key: ClassVar[str | None] = None

    @model_validator(mode="before")
    @classmethod
    def _take_missing_keys_from_the_defaults(cls, data: Any) -> Any:
        if cls.defaults_key is None or not isinstance(data, dict):
            return data
        return {**defaults_at(cls.defaults_key), **data}


def config_hash(cfg: Section) -> str:
    """Stable hash of a config (or one section), recorded in manifests."""
    canonical = json.dumps(cfg.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
