"""Where overlap text comes from: dataset splits and eval files, cut into units of work.

Eval files: `.txt` (one document per non-empty line), `.jsonl`/`.json` (one JSON object per
line, text under the configured field), `.parquet` (a text column). A malformed file is an
error naming the file and line: silently skipping eval text would under-report overlap.
A Parquet file is split into one unit per row group, so workers share large shards; other
files are one unit each.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import NamedTuple

import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from core import fsio


TEXT_COLUMN = "text"  # dataset shards' text column (docs/contracts.md)


class Unit(NamedTuple):
    path: str
    row_group: int | None  # None: the whole file


def _suffix(path: str) -> str:
    name = path.rsplit("/", 1)[-1].lower()
    return "." + name.rsplit(".", 1)[-1] if "." in name else ""


@contextlib.contextmanager
def _parquet(path: str) -> Iterator[pq.ParquetFile]:
    with FileSystems.open(path) as fh:
        try:
            parquet = pq.ParquetFile(fh)
        except Exception as exc:  # pyarrow raises several types for a broken file
            raise ValueError(f"{path}: not a readable Parquet file ({exc})") from None
        yield parquet


def _parquet_texts(path: str, row_group: int | None, text_field: str) -> Iterator[str]:
    with _parquet(path) as parquet:
        if text_field not in parquet.schema_arrow.names:
            raise ValueError(f"{path}: no column {text_field!r} (has {', '.join(parquet.schema_arrow.names)})")
        groups = range(parquet.num_row_groups) if row_group is None else [row_group]
        for group in groups:
            try:
                column = parquet.read_row_group(group, columns=[text_field]).column(0)
            except Exception as exc:  # damaged pages
                raise ValueError(f"{path}: row group {group} is not readable ({exc})") from None
            for text in column.to_pylist():
                yield text if isinstance(text, str) else ""


def _line_texts(path: str, text_field: str) -> Iterator[str]:
    suffix = _suffix(path)
    with FileSystems.open(path) as fh:
        data = fh.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 ({exc})") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        if suffix == ".txt":
            yield line
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise ValueError(f"{path}:{lineno}: not a JSON object") from None
        if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
            raise ValueError(f"{path}:{lineno}: no string field {text_field!r}")
        yield record[text_field]


def check_type(path: str) -> None:
    if _suffix(path) not in (".txt", ".jsonl", ".json", ".parquet"):
        raise ValueError(f"{path}: unknown eval file type (expected .txt, .jsonl, .json or .parquet)")


def read_documents(path: str, text_field: str = "text") -> Iterator[str]:
    """The documents of one file (.txt, .jsonl/.json, .parquet); errors name file and line."""
    yield from read_unit(Unit(path, None), text_field)


def read_unit(unit: Unit, text_field: str) -> Iterator[str]:
    check_type(unit.path)
    if _suffix(unit.path) == ".parquet":
        yield from _parquet_texts(unit.path, unit.row_group, text_field)
    else:
        yield from _line_texts(unit.path, text_field)


def units_of(files: list[str]) -> list[Unit]:
    """Units of work: one per Parquet row group, one per other file."""
    units = []
    for path in files:
        check_type(path)
        if _suffix(path) == ".parquet":
            with _parquet(path) as parquet:
                units += [Unit(path, g) for g in range(parquet.num_row_groups)]
        else:
            units.append(Unit(path, None))
    return units


def eval_files(patterns: list[str]) -> list[str]:
    """Eval files named by paths, directories or globs (hidden files skipped)."""
    files = fsio.expand(patterns)
    for path in files:
        check_type(path)
    return files


def split_files(shards_dir: str, split: str) -> list[str]:
    """The Parquet shards of one split of a dataset (docs/contracts.md: DIR/<split>/*.parquet)."""
    try:
        files = [f for f in fsio.expand([fsio.join(shards_dir, split)]) if f.endswith(".parquet")]
    except FileNotFoundError:
        files = []
    if not files:
        raise FileNotFoundError(f"{fsio.join(shards_dir, split)} holds no .parquet shards")
    return files
