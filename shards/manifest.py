"""`DIR/manifest.json`: the list of shards that make up a dataset, and how it was made.

The manifest is written last. A folder without one is an unfinished build, and Parquet
files that it does not list are not part of the dataset (`webtext verify` says so).
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timezone

from apache_beam.io.filesystems import FileSystems

import core
from dedup.config import DedupConfig
from extract.config import ExtractConfig
from shards.config import BuildConfig
from shards.split import SPLITS
from shards.warc_source import relative_name
from core import fsio
from core.section import config_hash
from webtext.config import Config
from core.section import Section
from core.stats import StageCounts

MANIFEST = "manifest.json"
FORMAT = "webtext-dataset-v1"
REQUIRED_KEYS = {"code_version", "config", "config_hash", "inputs", "rows", "schema", "shards", "splits", "stages"}
# Build stages in pipeline order; each one's `out` is the next one's `in`.
STAGE_CHAIN = ["read", "extract", "filter", "wikipedia", "dedup_exact", "dedup_near", "write"]


class DatasetConfig(Section):
    """The config sections that decide a dataset's content (not where or how fast it runs)."""

    extract: ExtractConfig
    dedup: DedupConfig
    build: BuildConfig
    wikipedia_domains: list[str]  # harvest.wikipedia_domains: the build strips these too


def dataset_config(cfg: Config) -> DatasetConfig:
    return DatasetConfig(extract=cfg.extract, dedup=cfg.dedup, build=cfg.build,
                         wikipedia_domains=cfg.harvest.wikipedia_domains)


def code_version() -> dict:
    """webtext's version plus the git commit of this checkout, when it is one."""
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    version = {"webtext": core.__version__, "git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version
    version.update(git_commit=commit, git_dirty=bool(dirty))
    return version


def input_listing(files: list[str], root: str) -> list[dict]:
    """The WARC inputs (name relative to the WARC folder, size) that the manifest records."""
    return [
        {"path": relative_name(path, root), "bytes": match.metadata_list[0].size_in_bytes}
        for path, match in zip(files, FileSystems.match(files))
    ]


def make_manifest(cfg: Config, shards: list[dict], schema: list[dict], stages: dict[str, StageCounts],
                  inputs: list[dict]) -> dict:
    dcfg = dataset_config(cfg)
    shards = sorted(shards, key=lambda s: s["path"])
    splits = {split: {"rows": 0, "shards": 0, "bytes": 0} for split in SPLITS}
    for s in shards:
        entry = splits[s["split"]]
        entry["rows"] += s["rows"]
        entry["shards"] += 1
        entry["bytes"] += s["bytes"]
    return {
        "format": FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "config": dcfg.model_dump(mode="json"),
        "config_hash": config_hash(dcfg),
        "inputs": inputs,
        "schema": schema,
        "splits": splits,
        "rows": sum(s["rows"] for s in shards),
        "shards": shards,
        "stages": {name: sc.to_json() for name, sc in stages.items()},
    }


def write_manifest(out: str, manifest: dict) -> None:
    fsio.atomic_write_text(fsio.join(out, MANIFEST), json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def read_manifest(out: str) -> dict:
    """The manifest of a finished build; FileNotFoundError names an unfinished one."""
    path = fsio.join(out, MANIFEST)
    if not FileSystems.exists(path):
        raise FileNotFoundError(f"{path} is missing: {out} is not a finished build (rerun `webtext build`)")
    with FileSystems.open(path) as fh:
        try:
            manifest = json.loads(fh.read().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} manifest")
    missing = sorted(REQUIRED_KEYS - set(manifest))
    if missing:
        raise ValueError(f"{path}: manifest lacks {', '.join(missing)}")
    # JSON is written with sorted keys; give stages and splits back their pipeline order
    stages = manifest["stages"]
    manifest["stages"] = {**{s: stages[s] for s in STAGE_CHAIN if s in stages},
                          **{s: stages[s] for s in sorted(stages) if s not in STAGE_CHAIN}}
    manifest["splits"] = {s: manifest["splits"][s] for s in SPLITS if s in manifest["splits"]}
    return manifest


def remove_manifest(out: str) -> None:
    """First step of replacing a dataset: from here on the folder reads as unfinished."""
    path = fsio.join(out, MANIFEST)
    if FileSystems.exists(path):
        FileSystems.delete([path])


def ordered_counts(counts: dict[str, StageCounts]) -> dict[str, StageCounts]:
    """Chain stages in pipeline order (zero if a stage saw nothing), then any others."""
    known = {s: counts.get(s, StageCounts(s)) for s in STAGE_CHAIN}
    return {**known, **{s: c for s, c in sorted(counts.items()) if s not in known}}


def count_problems(counts: dict[str, StageCounts], rows_written: int) -> list[str]:
    """Every way the stage counts fail to account for each record exactly once."""
    problems = [f"stage {sc.stage}: in={sc.records_in} != out={sc.records_out} + dropped={sc.total_dropped} "
                f"{sc.dropped}" for sc in counts.values() if not sc.reconciles()]
    chain = [counts.get(stage, StageCounts(stage)) for stage in STAGE_CHAIN]
    for prev, nxt in zip(chain, chain[1:]):
        if prev.records_out != nxt.records_in:
            problems.append(f"records lost between stages: {prev.stage}.out={prev.records_out} "
                            f"!= {nxt.stage}.in={nxt.records_in}")
    if chain[-1].records_out != rows_written:
        problems.append(f"write.out={chain[-1].records_out} but the shards hold {rows_written} rows")
    return problems
