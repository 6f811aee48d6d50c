"""Dataset shards (Parquet `text`) -> memory-mappable token shards (docs/contracts.md).

`TOKENS/<split>/shard-NNNNN.bin` holds raw little-endian token ids (uint16 when the vocabulary
fits, else uint32), every document followed by `<|endoftext|>`, in the order of the input rows.
A shard closes at the first document end at or past `tokenizer.shard_tokens`, so shards never
split a document and each records the input rows it came from.

Row groups are tokenized by a pool of processes; results are consumed in input order, so
the output does not depend on the number of workers. After every shard the progress is saved
to `manifest.partial.json`; a rerun continues after the last finished shard, and any shard
file that has gone missing is rebuilt from its recorded rows (and checked against its
recorded sha256). `manifest.json` appears only when every split is done.

Both folders may be object-store prefixes (s3://, gs://): paths are strings and all I/O goes
through `core.fsio`, which loads Beam's FileSystems for remote paths only. On a remote `out` the
tokenizer copy is saved to a local temporary folder (the workers load it from there) and
uploaded beside the tokens; the workers get the command's object-store options.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import multiprocessing
import os
import tempfile
from collections import Counter, deque
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from tqdm import tqdm

from core import fsio
from core.fsio import atomic_write_bytes, atomic_write_text
from core.stats import StageCounts, write_stats_json
from training.config import TokenizerConfig
from training.tokenizer import Tokenizer, load_tokenizer

log = logging.getLogger(__name__)

FORMAT = "webtext-tokens-v1"
MANIFEST = "manifest.json"
PARTIAL = "manifest.partial.json"
STATS = "tokenize_stats.json"
TOKENIZER_COPY = "tokenizer"


# -- reading dataset shards ------------------------------------------------------------------
def check_finished_dataset(shards_dir) -> None:
    """Refuse a dataset folder that `webtext build` has not finished (no manifest.json) or that
    holds Parquet files its manifest does not list: either would tokenize a dataset nobody built."""
    # Beam-backed modules: imported here, so the tokenize worker processes never load Beam
    from shards.manifest import read_manifest
    from shards.verify import unlisted_shards

    shards_dir = str(shards_dir)
    if not fsio.isdir(shards_dir):
        raise FileNotFoundError(f"{shards_dir}: dataset shard directory not found")
    unlisted = unlisted_shards(shards_dir, read_manifest(shards_dir))
    if unlisted:
        more = f" (and {len(unlisted) - 1} more: `webtext verify {shards_dir}` lists them)" if len(unlisted) > 1 else ""
        raise ValueError(unlisted[0] + more)


def _unreadable(path: str, exc: Exception) -> ValueError:
    """The one-line error for a dataset shard that pyarrow cannot read."""
    dataset = os.path.dirname(os.path.dirname(path))
    return ValueError(f"{path}: not a readable Parquet file ({' '.join(str(exc).split())}); the dataset shard is "
                      f"damaged: `webtext verify {dataset}` checks the dataset, `webtext build` rebuilds it")


def split_files(shards_dir, split: str) -> list[str]:
    """The Parquet files of one split, sorted; clear errors when there are none."""
    shards_dir = str(shards_dir)
    if not fsio.isdir(shards_dir):
        raise FileNotFoundError(f"{shards_dir}: dataset shard directory not found")
    folder = fsio.join(shards_dir, split)
    if fsio.is_local(folder):
        files = sorted(str(path) for path in Path(folder).glob("*.parquet"))
    else:
        files = [path for path, _size in fsio.match(fsio.join(folder, "*.parquet"))]
    if not files:
        raise ValueError(f"{folder}: no Parquet shards for split {split!r}")
    return files


def open_shard(path: str) -> pq.ParquetFile:
    """A dataset shard, checked to be Parquet with a string `text` column."""
    try:
        parquet_file = pq.ParquetFile(path if fsio.is_local(path) else fsio.open_read(path))
    except (pa.ArrowException, OSError) as exc:
        raise _unreadable(path, exc) from None
    schema = parquet_file.schema_arrow
    if "text" not in schema.names:
        raise ValueError(f"{path}: no 'text' column (columns: {', '.join(schema.names)})")
    if not (pa.types.is_string(schema.field("text").type) or pa.types.is_large_string(schema.field("text").type)):
        raise ValueError(f"{path}: column 'text' is {schema.field('text').type}, not string")
    return parquet_file


def iter_split_texts(files: list[str], max_documents: int = 0) -> tuple[Iterator[str], int]:
    """(non-empty texts in file order, their number as the metadata tells it) for streaming."""
    shards = [open_shard(f) for f in files]
    total = sum(parquet_file.metadata.num_rows for parquet_file in shards)
    limit = min(total, max_documents) if max_documents else total

    def texts():
        read = 0
        for path, parquet_file in zip(files, shards):
            for texts in _read_texts(path, parquet_file):
                for text in texts:
                    if read == limit:
                        return
                    read += 1
                    if text:
                        yield text

    return texts(), limit


def _read_texts(path: str, parquet_file: pq.ParquetFile) -> Iterator[list]:
    """The `text` column of one shard in batches; damage found while decoding is `_unreadable`."""
    try:
        for batch in parquet_file.iter_batches(columns=["text"], batch_size=1024):
            yield batch.column(0).to_pylist()
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        raise _unreadable(path, exc) from None


# -- units of work ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Piece:
    """Rows [start, stop) of one row group; `first_row` is `start` as a row number of the split."""

    path: str
    row_group: int
    start: int
    stop: int
    first_row: int


def plan_pieces(files: list[str], from_row: int, to_row: int) -> list[Piece]:
    """The pieces covering split rows [from_row, to_row) (rows numbered across files in order)."""
    pieces, row = [], 0
    for path in files:
        metadata = open_shard(path).metadata
        for group in range(metadata.num_row_groups):
            group_rows = metadata.row_group(group).num_rows
            start, stop = max(from_row, row), min(to_row, row + group_rows)
            if start < stop:
                pieces.append(Piece(str(path), group, start - row, stop - row, start))
            row += group_rows
    return pieces


@dataclass
class PieceTokens:
    tokens: np.ndarray  # the documents of the piece, each followed by EOT
    doc_ends: np.ndarray  # token offset after each document
    row_ends: np.ndarray  # split row number + 1 of each document
    dropped: list[tuple[int, str]]  # (split row number, reason) of rows without a document
    rows: int


_worker_tokenizer: Tokenizer | None = None
_worker_dtype = "uint16"


def _init_worker(tokenizer_dir: str, parallel_inside: bool, store_options: list[str] | None) -> None:
    global _worker_tokenizer, _worker_dtype
    if store_options is not None:  # the command's object-store options, for remote dataset shards
        fsio.use_options(store_options)
    if not parallel_inside:
        os.environ["TOKENIZERS_PARALLELISM"] = "false"  # the pool is the parallelism
    _worker_tokenizer = load_tokenizer(tokenizer_dir)
    _worker_dtype = token_dtype(_worker_tokenizer.vocab_size)


def _tokenize_piece(piece: Piece) -> PieceTokens | str:
    """The piece's documents as tokens, or the one-line error of a shard that cannot be read.

    The error is returned for `_PiecePool.map` to raise: an exception sent back by a pool worker
    stays in a reference cycle with the pool's queues, which `webtext` (leaving with os._exit)
    never collects, and multiprocessing would then warn of leaked semaphores after the error."""
    tokenizer = _worker_tokenizer
    try:
        table = open_shard(piece.path).read_row_group(piece.row_group, columns=["text"])
        texts = table.column("text").slice(piece.start, piece.stop - piece.start).to_pylist()
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        return str(_unreadable(piece.path, exc))
    except ValueError as exc:  # open_shard's own
        return str(exc)
    kept, dropped = [], []
    for i, text in enumerate(texts):
        if text is None:
            dropped.append((piece.first_row + i, "null_text"))
        elif not text:
            dropped.append((piece.first_row + i, "empty_text"))
        else:
            kept.append(i)
    encoded = tokenizer.encode_batch([texts[i] for i in kept])
    lengths = np.fromiter((len(ids) + 1 for ids in encoded), dtype=np.int64, count=len(encoded))
    doc_ends = np.cumsum(lengths)
    tokens = np.empty(int(doc_ends[-1]) if len(kept) else 0, dtype=_worker_dtype)
    for ids, end in zip(encoded, doc_ends):
        tokens[end - len(ids) - 1:end - 1] = ids
    tokens[doc_ends - 1] = tokenizer.eot_id
    row_ends = piece.first_row + np.asarray(kept, dtype=np.int64) + 1
    return PieceTokens(tokens, doc_ends, row_ends, dropped, len(texts))


class _PiecePool:
    """Tokenizes pieces in input order: in `workers` processes (started on first use, at most a
    few pieces per worker in flight, so memory stays bounded), or in-process for one worker."""

    def __init__(self, tokenizer_dir: str, workers: int):
        self.tokenizer_dir, self.workers, self.pool, self.loaded_here = tokenizer_dir, workers, None, False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()

    def map(self, pieces: list[Piece]) -> Iterator[PieceTokens]:
        for result in self._results(pieces):
            if isinstance(result, str):
                raise ValueError(result)
            yield result

    def _results(self, pieces: list[Piece]) -> Iterator[PieceTokens | str]:
        if self.workers <= 1:
            if not self.loaded_here:
                _init_worker(self.tokenizer_dir, parallel_inside=True, store_options=None)
                self.loaded_here = True
            yield from map(_tokenize_piece, pieces)
            return
        if self.pool is None:  # spawn: no fork of a process that may hold Rust/torch threads
            self.pool = multiprocessing.get_context("spawn").Pool(
                self.workers, initializer=_init_worker, initargs=(self.tokenizer_dir, False, fsio.options()))
        todo = iter(pieces)
        pending = deque(self.pool.apply_async(_tokenize_piece, (p,)) for p in islice(todo, 2 * self.workers))
        while pending:
            result = pending.popleft().get()
            following = next(todo, None)
            if following is not None:
                pending.append(self.pool.apply_async(_tokenize_piece, (following,)))
            yield result


# -- writing shards --------------------------------------------------------------------------
def token_dtype(vocab_size: int) -> str:
    return "uint16" if vocab_size <= 2**16 else "uint32"


def _write_shard(root: str, split: str, index: int, tokens: np.ndarray, dtype: str) -> dict:
    data = tokens.astype("<u2" if dtype == "uint16" else "<u4").tobytes()
    file = f"{split}/shard-{index:05d}.bin"
    atomic_write_bytes(fsio.join(root, file), data)
    return {"file": file, "tokens": len(tokens), "sha256": hashlib.sha256(data).hexdigest()}


class _SplitCutter:
    """Buffers tokenized pieces and cuts them into shards at document ends."""

    def __init__(self, shard_tokens: int, next_row: int):
        self.shard_tokens = shard_tokens
        self.start_row = next_row
        self.parts: list[PieceTokens] = []
        self.buffered = 0

    def add(self, part: PieceTokens) -> None:
        self.parts.append(part)
        self.buffered += len(part.tokens)

    def cut(self, final: bool, end_row: int):
        """Yield (tokens, documents, [row_from, row_to)) per full shard, and the rest if `final`;
        the last shard of a split also covers trailing rows without a document."""
        while self.buffered and (self.buffered >= self.shard_tokens or final):
            offsets = np.cumsum([0] + [len(p.tokens) for p in self.parts[:-1]])
            tokens = np.concatenate([p.tokens for p in self.parts])
            doc_ends = np.concatenate([p.doc_ends + off for p, off in zip(self.parts, offsets)])
            row_ends = np.concatenate([p.row_ends for p in self.parts])
            k = min(int(np.searchsorted(doc_ends, self.shard_tokens)), len(doc_ends) - 1)
            cut, row_to = int(doc_ends[k]), int(row_ends[k])
            if cut == self.buffered and not final:
                return  # keep it until more arrives: rows after its last document may end the split
            self.buffered -= cut
            self.parts = [PieceTokens(tokens[cut:], doc_ends[k + 1:] - cut, row_ends[k + 1:], [], 0)]
            if final and not self.buffered:
                row_to = end_row
            yield tokens[:cut], k + 1, [self.start_row, row_to]
            self.start_row = row_to
        if not self.buffered:
            self.parts = []


# -- the stage -------------------------------------------------------------------------------
def _fingerprint(files: list[str]) -> list[dict]:
    return [{"file": os.path.basename(path), "bytes": fsio.size(path), "rows": open_shard(path).metadata.num_rows}
            for path in files]


def _load_state(out: str, expected: dict) -> dict | None:
    """The saved progress (final or partial manifest), if it was made from the same inputs."""
    for name in (MANIFEST, PARTIAL):
        path = fsio.join(out, name)
        if not fsio.exists(path):
            continue
        try:
            state = json.loads(fsio.read_bytes(path).decode("utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc}); delete {out} to start over") from None
        for key, value in expected.items():
            if state.get(key) != value:
                raise ValueError(f"{out} holds token shards made with a different {key.replace('_', ' ')}; "
                                 f"use another --out directory or delete it")
        return state
    return None


def tokenize_shards(shards_dir, tokenizer_dir, out, config: TokenizerConfig, progress: bool = True) -> dict:
    """Tokenize every configured split present in `shards_dir`; returns the manifest."""
    shards_dir, out = str(shards_dir), str(out)
    if not fsio.isdir(shards_dir):
        raise FileNotFoundError(f"{shards_dir}: dataset shard directory not found")
    present = [split for split in config.splits if fsio.isdir(fsio.join(shards_dir, split))]
    if not present:
        raise ValueError(f"{shards_dir}: none of the splits {config.splits} is there")
    files = {split: split_files(shards_dir, split) for split in present}
    tokenizer = load_tokenizer(tokenizer_dir)
    dtype = token_dtype(tokenizer.vocab_size)
    expected = {
        "format": FORMAT, "tokenizer_sha256": tokenizer.sha256(), "shard_tokens": config.shard_tokens,
        "source": {split: _fingerprint(split_paths) for split, split_paths in files.items()},
    }
    state = _load_state(out, expected) or {
        **expected, "dtype": dtype, "vocab_size": tokenizer.vocab_size, "eot_id": tokenizer.eot_id,
        "tokenizer_dir": _tokenizer_dir(out), "splits": {},
    }
    if fsio.is_local(out):
        for stale in [*Path(out).glob(".*.tmp"), *Path(out).glob("*/.*.tmp")]:  # a killed run's atomic writes
            stale.unlink()

    def save_progress():
        atomic_write_text(fsio.join(out, PARTIAL), json.dumps(state, indent=1) + "\n")

    with _saved_tokenizer(tokenizer, out) as tokenizer_copy, _PiecePool(tokenizer_copy, config.workers) as pool:
        for split in present:
            _repair_missing(out, split, files[split], state["splits"].get(split, {}), pool, dtype)
        _tokenize_splits(out, state, files, pool, config.shard_tokens, dtype, progress, save_progress)
    atomic_write_text(fsio.join(out, MANIFEST), json.dumps(state, indent=1) + "\n")
    fsio.remove(fsio.join(out, PARTIAL))
    counts = {"tokenize": stage_counts(state)}
    counts["tokenize"].check()
    summaries = {split: {key: value for key, value in split_state.items() if key != "shards"}
                 for split, split_state in state["splits"].items()}
    write_stats_json(fsio.join(out, STATS), counts, {"splits": summaries})
    return state


def _tokenizer_dir(out: str) -> str:
    """Where the manifest says the tokenizer copy is: absolute for a local `out`."""
    return str(Path(out, TOKENIZER_COPY).resolve()) if fsio.is_local(out) else fsio.join(out, TOKENIZER_COPY)


@contextlib.contextmanager
def _saved_tokenizer(tokenizer: Tokenizer, out: str) -> Iterator[str]:
    """Save the tokenizer beside the tokens (they are only readable with it); yields a local
    folder holding it, which the workers load."""
    if fsio.is_local(out):
        tokenizer.save(Path(out, TOKENIZER_COPY))
        yield str(Path(out, TOKENIZER_COPY))
        return
    with tempfile.TemporaryDirectory(prefix="webtext-tokenizer-") as local:
        tokenizer.save(local)
        for name in sorted(os.listdir(local)):
            atomic_write_bytes(fsio.join(out, TOKENIZER_COPY, name), Path(local, name).read_bytes())
        yield local


def _tokenize_splits(out: str, state: dict, files: dict[str, list[str]], pool: "_PiecePool", shard_tokens: int,
                     dtype: str, progress: bool, save_progress) -> None:
    """Continue every unfinished split from its `next_row`, saving progress after each shard."""
    total_rows = {split: sum(fingerprint["rows"] for fingerprint in state["source"][split]) for split in files}
    todo = sum(total_rows[split] - state["splits"].get(split, {}).get("next_row", 0) for split in files)
    # `with`: the bar ends its line before an error is printed
    with tqdm(total=todo, unit="doc", desc="tokenizing", disable=not progress) as bar:
        for split in files:
            split_state = state["splits"].setdefault(
                split, {"shards": [], "next_row": 0, "dropped": {}, "complete": False})
            if split_state["complete"]:
                continue
            cutter = _SplitCutter(shard_tokens, split_state["next_row"])
            dropped = Counter(split_state["dropped"])
            pending_drops: list[tuple[int, str]] = []

            def emit(final: bool):
                for tokens, documents, rows in cutter.cut(final, total_rows[split]):
                    record = _write_shard(out, split, len(split_state["shards"]), tokens, dtype)
                    split_state["shards"].append({**record, "documents": documents, "rows": rows})
                    for row, reason in [d for d in pending_drops if d[0] < rows[1]]:
                        dropped[reason] += 1
                    pending_drops[:] = [d for d in pending_drops if d[0] >= rows[1]]
                    split_state.update(next_row=rows[1], dropped=dict(dropped))
                    save_progress()

            pieces = plan_pieces(files[split], split_state["next_row"], total_rows[split])
            for part in pool.map(pieces):
                cutter.add(part)
                pending_drops.extend(part.dropped)
                emit(final=False)
                bar.update(part.rows)
            emit(final=True)
            dropped.update(reason for _, reason in pending_drops)
            documents = sum(shard["documents"] for shard in split_state["shards"])
            if not documents:
                raise ValueError(f"{os.path.dirname(files[split][0])}: split {split!r} has no non-empty documents")
            split_state.update(next_row=total_rows[split], dropped=dict(dropped), complete=True, rows=total_rows[split],
                               documents=documents, tokens=sum(shard["tokens"] for shard in split_state["shards"]))
            save_progress()


def stage_counts(manifest: dict) -> StageCounts:
    """Rows in, documents out, rows dropped by reason, over all splits."""
    dropped: Counter = Counter()
    for split_state in manifest["splits"].values():
        dropped.update(split_state["dropped"])
    return StageCounts("tokenize", sum(split_state["rows"] for split_state in manifest["splits"].values()),
                       sum(split_state["documents"] for split_state in manifest["splits"].values()), dict(dropped))


def _repair_missing(out: str, split: str, files: list[str], split_state: dict, pool: _PiecePool, dtype: str):
    """Rebuild recorded shards whose file is missing or has the wrong size, from their rows."""
    itemsize = np.dtype(dtype).itemsize
    for index, shard in enumerate(split_state.get("shards", [])):
        path = fsio.join(out, shard["file"])
        if fsio.exists(path) and fsio.size(path) == shard["tokens"] * itemsize:
            continue
        log.warning("%s: missing or truncated, rebuilding it from rows %s", path, shard["rows"])
        parts = list(pool.map(plan_pieces(files, *shard["rows"])))
        tokens = np.concatenate([p.tokens for p in parts]) if parts else np.zeros(0, dtype)
        record = _write_shard(out, split, index, tokens, dtype)
        if record["sha256"] != shard["sha256"]:
            fsio.remove(path)
            raise ValueError(f"{path}: rebuilt shard differs from the recorded one (input changed?); "
                             f"delete {out} to start over")
