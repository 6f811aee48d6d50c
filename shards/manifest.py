"""`DIR/manifest.json`: the list of shards that make up a dataset, and how it was made.

The manifest is written last. A folder without one is an unfinished build, and Parquet
files that it does not list are not part of the dataset (`webtext verify` says so). A build's
manifest also lists the audit table `dropped/` (`dropped`: files, rows, schema and the rows'
counts by stage and reason, which must equal the stages' drop counts).
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime, timezone

from apache_beam.io.filesystems import FileSystems

import core
from core import fsio
from core.section import Section
from core.stats import StageCounts
from dedup.config import DedupConfig
from extract.config import ExtractConfig
from shards.config import BuildConfig
from shards.split import SPLITS
from shards.warc_source import relative_name

MANIFEST = "manifest.json"
FORMAT = "webtext-dataset-v1"
SHARD_KEYS = ("path", "split", "rows", "bytes", "sha256")  # what the manifest lists per shard
REQUIRED_KEYS = {"code_version", "config", "config_hash", "inputs", "rows", "schema", "shards", "splits", "stages"}
DROPPED_KEYS = {"files", "rows", "schema", "counts"}  # the `dropped` entry, where a build wrote one
# Build stages in pipeline order; each one's `out` is the next one's `in`.
STAGE_CHAIN = ["read", "captures", "extract", "filter", "wikipedia", "dedup_exact", "dedup_near", "write"]
# Chain stages that manifests written before them lack: they chain only where recorded.
LATER_STAGES = ("captures",)


class DatasetConfig(Section):
    """The config sections that decide a dataset's content (not where or how fast it runs)."""

    extract: ExtractConfig
    dedup: DedupConfig
    build: BuildConfig
    wikipedia_domains: list[str]  # harvest.wikipedia_domains: the build strips these too
    max_redirects: int  # crawl.max_redirects: hops `--urls` follows back from a page to a harvested URL


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
    """The inputs (name relative to `root`, size) that the manifest records."""
    return named_input_listing([(path, relative_name(path, root)) for path in files])


def named_input_listing(files: list[tuple[str, str]]) -> list[dict]:
    """The inputs (recorded name, size) that the manifest records, in the order given: `files`
    are (path, name) pairs, e.g. shards.warc_source.list_warc_inputs."""
    paths = [path for path, _name in files]
    return [
        {"path": name, "bytes": match.metadata_list[0].size_in_bytes}
        for (_path, name), match in zip(files, FileSystems.match(paths) if paths else [])
    ]


def dropped_section(files: list[dict], schema: list[dict], stages: list[str]) -> dict:
    """The manifest's `dropped` entry for the audit shards `files` (sidecars with `drops`), which
    hold the drops of `stages`."""
    counts: dict[str, dict[str, int]] = {stage: {} for stage in stages}
    for info in files:
        for stage, reasons in info["drops"].items():
            stage_counts = counts.setdefault(stage, {})
            for reason, n in reasons.items():
                stage_counts[reason] = stage_counts.get(reason, 0) + n
    return {
        "files": sorted(({key: info[key] for key in SHARD_KEYS} for info in files), key=lambda info: info["path"]),
        "rows": sum(info["rows"] for info in files),
        "schema": schema,
        "counts": {stage: dict(sorted(reasons.items())) for stage, reasons in counts.items()},
    }


def audit_problems(counts: dict[str, StageCounts], dropped: dict) -> list[str]:
    """Every stage whose drops the audit table (`dropped` section) does not hold exactly."""
    problems = []
    for stage, reasons in dropped["counts"].items():
        counted = counts.get(stage, StageCounts(stage)).dropped
        if reasons != {reason: n for reason, n in counted.items() if n}:
            problems.append(f"stage {stage}: dropped/ holds {reasons} but the stage counted {counted}")
    total = sum(n for reasons in dropped["counts"].values() for n in reasons.values())
    if dropped["rows"] != total:
        problems.append(f"dropped/ rows={dropped['rows']} but its counts by stage and reason add up to {total}")
    return problems


def make_manifest(config: dict, config_hash: str, shards: list[dict], schema: list[dict],
                  stages: dict[str, StageCounts], inputs: list[dict], dropped: dict | None = None) -> dict:
    """The manifest of a dataset made of `shards` (sidecars: only SHARD_KEYS are listed).

    `config` and `config_hash` record what decided the content: the build's `DatasetConfig` (a
    decontaminated copy keeps its source's). `dropped` (from `dropped_section`) lists the audit table.
    """
    shards = sorted(({key: shard[key] for key in SHARD_KEYS} for shard in shards), key=lambda shard: shard["path"])
    splits = {split: {"rows": 0, "shards": 0, "bytes": 0} for split in SPLITS}
    for shard in shards:
        entry = splits[shard["split"]]
        entry["rows"] += shard["rows"]
        entry["shards"] += 1
        entry["bytes"] += shard["bytes"]
    manifest = {
        "format": FORMAT,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "code_version": code_version(),
        "config": config,
        "config_hash": config_hash,
        "inputs": inputs,
        "schema": schema,
        "splits": splits,
        "rows": sum(shard["rows"] for shard in shards),
        "shards": shards,
        "stages": {name: stage.to_json() for name, stage in stages.items()},
    }
    if dropped is not None:
        manifest["dropped"] = dropped
    return manifest


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
    if "dropped" in manifest and not (isinstance(manifest["dropped"], dict) and DROPPED_KEYS <= set(manifest["dropped"])):
        raise ValueError(f"{path}: manifest entry `dropped` lacks one of {', '.join(sorted(DROPPED_KEYS))}")
    # JSON is written with sorted keys; give stages and splits back their pipeline order
    stages = manifest["stages"]
    manifest["stages"] = {**{stage: stages[stage] for stage in STAGE_CHAIN if stage in stages},
                          **{stage: stages[stage] for stage in sorted(stages) if stage not in STAGE_CHAIN}}
    manifest["splits"] = {split: manifest["splits"][split] for split in SPLITS if split in manifest["splits"]}
    return manifest


def remove_manifest(out: str) -> None:
    """First step of replacing a dataset: from here on the folder reads as unfinished."""
    path = fsio.join(out, MANIFEST)
    if FileSystems.exists(path):
        FileSystems.delete([path])


def ordered_counts(counts: dict[str, StageCounts]) -> dict[str, StageCounts]:
    """Chain stages in pipeline order (zero if a stage saw nothing; a LATER_STAGES one only if
    present: a build passes it, counts copied from an older manifest lack it), then any others."""
    known = {stage: counts.get(stage, StageCounts(stage)) for stage in STAGE_CHAIN
             if stage in counts or stage not in LATER_STAGES}
    return {**known, **{stage: count for stage, count in sorted(counts.items()) if stage not in known}}


def count_problems(counts: dict[str, StageCounts], rows_written: int) -> list[str]:
    """Every way the stage counts fail to account for each record exactly once."""
    problems = [f"stage {stage.stage}: in={stage.records_in} != out={stage.records_out} + "
                f"dropped={stage.total_dropped} {stage.dropped}" for stage in counts.values() if not stage.reconciles()]
    chain = [counts.get(stage, StageCounts(stage)) for stage in STAGE_CHAIN
             if stage in counts or stage not in LATER_STAGES]
    for previous, following in zip(chain, chain[1:]):
        if previous.records_out != following.records_in:
            problems.append(f"records lost between stages: {previous.stage}.out={previous.records_out} "
                            f"!= {following.stage}.in={following.records_in}")
    if chain[-1].records_out != rows_written:
        problems.append(f"write.out={chain[-1].records_out} but the shards hold {rows_written} rows")
    return problems
