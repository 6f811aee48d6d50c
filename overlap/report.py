"""`webtext overlap build|report|decontaminate`: how much of an eval set is in the training data.

GPT-2 (§4, Table 6) built Bloom filters of WebText's training-set 8-grams and reported the
share of each eval set's 8-grams found in them. `build` makes that filter from a dataset's
training split, `report` measures eval files against it (per file, per document, the most
overlapping documents; Markdown + JSON), `decontaminate` (overlap/decontaminate.py) drops
training documents that share too many n-grams with eval files.

Eval files: `.txt` (one document per non-empty line), `.jsonl`/`.json` (one JSON object per
line, text under `overlap.text_field`), `.parquet` (column `overlap.text_field`). A malformed
eval file is an error naming the file and line: silently skipping eval text would under-report.
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Iterator

import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from tqdm import tqdm

from overlap.bloom import BloomFilter
from overlap.config import OverlapConfig
from overlap.ngrams import ngram_count, ngram_hashes, normalize_words
from webtext import fsio

log = logging.getLogger(__name__)

REPORT_JSON, REPORT_MD = "overlap.json", "overlap.md"
BUCKETS = [("0%", 0.0, 0.0), ("(0, 1%]", 0.0, 0.01), ("(1, 10%]", 0.01, 0.10),
           ("(10, 50%]", 0.10, 0.50), ("(50, 100%)", 0.50, 1.0 - 1e-12), ("100%", 1.0 - 1e-12, 1.0)]


def _suffix(path: str) -> str:
    name = path.rsplit("/", 1)[-1].lower()
    return "." + name.rsplit(".", 1)[-1] if "." in name else ""


def read_documents(path: str, text_field: str = "text") -> Iterator[str]:
    """The documents of one text file (.txt, .jsonl/.json, .parquet); errors name file and line."""
    suffix = _suffix(path)
    if suffix == ".parquet":
        with FileSystems.open(path) as fh:
            try:
                table = pq.read_table(fh)
            except Exception as exc:  # pyarrow raises several types for a broken file
                raise ValueError(f"{path}: not a readable Parquet file ({exc})") from None
        if text_field not in table.column_names:
            raise ValueError(f"{path}: no column {text_field!r} (has {', '.join(table.column_names)})")
        for text in table.column(text_field).to_pylist():
            yield text if isinstance(text, str) else ""
        return
    if suffix not in (".txt", ".jsonl", ".json"):
        raise ValueError(f"{path}: unknown eval file type (expected .txt, .jsonl, .json or .parquet)")
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


def split_files(shards_dir: str, split: str) -> list[str]:
    """The Parquet shards of one split of a dataset (docs/contracts.md: DIR/<split>/*.parquet)."""
    try:
        files = [f for f in fsio.expand([fsio.join(shards_dir, split)]) if f.endswith(".parquet")]
    except FileNotFoundError:
        files = []
    if not files:
        raise FileNotFoundError(f"{fsio.join(shards_dir, split)} holds no .parquet shards")
    return files


def filter_of(files: list[str], n: int, fp_rate: float, text_field: str, meta: dict | None = None) -> BloomFilter:
    """A Bloom filter of all n-grams of `files`, sized from their actual n-gram count (an upper
    bound on the distinct ones; counting distinct n-grams would need them all in memory)."""
    total = docs = 0
    for path in files:
        for text in read_documents(path, text_field):
            total += ngram_count(normalize_words(text), n)
            docs += 1
    bloom = BloomFilter.for_items(total, fp_rate, n, {**(meta or {}), "documents": docs, "source_files": files})
    for path in tqdm(files, desc=f"{n}-gram filter", unit="file", disable=None):
        for text in read_documents(path, text_field):
            bloom.add(ngram_hashes(normalize_words(text), n))
    return bloom


def build(shards_dir: str, out_path: str, cfg: OverlapConfig) -> BloomFilter:
    bloom = filter_of(split_files(shards_dir, cfg.split), cfg.n, cfg.fp_rate, cfg.text_field,
                      {"split": cfg.split, "shards_dir": shards_dir})
    bloom.save(out_path)
    return bloom


def _distribution(fractions: list[float]) -> dict:
    counts = {name: 0 for name, _, _ in BUCKETS}
    for f in fractions:
        for name, low, high in BUCKETS:
            if (f == 0.0 and high == 0.0) or (low < f <= high and high > 0.0):
                counts[name] += 1
                break
    if not fractions:
        return {"buckets": counts, "mean": None, "median": None, "p90": None, "max": None}
    ordered = sorted(fractions)
    return {
        "buckets": counts,
        "mean": statistics.fmean(ordered),
        "median": statistics.median(ordered),
        "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "max": ordered[-1],
    }


def file_overlap(path: str, bloom: BloomFilter, cfg: OverlapConfig) -> dict:
    """Share of one eval file's n-grams found in the filter, overall and per document."""
    ngrams = found = docs = 0
    per_doc = []  # (fraction, found, ngrams, index, text)
    for index, text in enumerate(read_documents(path, cfg.text_field)):
        docs += 1
        hashes = ngram_hashes(normalize_words(text), bloom.n)
        if len(hashes) == 0:
            continue
        hits = int(bloom.contains(hashes).sum())
        ngrams += len(hashes)
        found += hits
        per_doc.append((hits / len(hashes), hits, len(hashes), index, text))
    top = sorted(per_doc, key=lambda d: (-d[0], -d[1], d[3]))[: cfg.top_docs]
    return {
        "file": path,
        "documents": docs,
        "documents_without_ngrams": docs - len(per_doc),
        "ngrams": ngrams,
        "found": found,
        "percent": 100.0 * found / ngrams if ngrams else 0.0,
        "per_document": _distribution([d[0] for d in per_doc]),
        "top_documents": [
            {"index": i, "fraction": f, "found": h, "ngrams": n, "preview": " ".join(t.split())[:160]}
            for f, h, n, i, t in top
        ],
    }


def _markdown(report: dict) -> str:
    f = report["filter"]
    lines = [
        "# N-gram overlap with the training data",
        "",
        f"Filter: {f['n']}-grams of split `{f.get('split', '?')}` ({f['items']:,} n-grams, m={f['m']:,} bits, "
        f"k={f['k']}, false-positive rate {f.get('fp_rate')}); normalisation: {f['normalisation']}.",
        "",
        "| eval file | documents | n-grams | found | % found |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in report["files"]:
        lines.append(f"| {r['file']} | {r['documents']:,} | {r['ngrams']:,} | {r['found']:,} | {r['percent']:.2f} |")
    for r in report["files"]:
        d = r["per_document"]
        lines += ["", f"## {r['file']}", "", "Documents by share of their n-grams found:", "",
                  "| share | documents |", "|---|---:|"]
        lines += [f"| {name} | {n:,} |" for name, n in d["buckets"].items()]
        if d["mean"] is not None:
            lines += ["", f"mean {d['mean']:.4f}, median {d['median']:.4f}, p90 {d['p90']:.4f}, max {d['max']:.4f}"]
        if r["top_documents"]:
            lines += ["", "Most overlapping documents:", "", "| # | share | found / n-grams | start |", "|---:|---:|---:|---|"]
            for t in r["top_documents"]:
                preview = t["preview"].replace("|", "\\|")
                lines.append(f"| {t['index']} | {t['fraction']:.3f} | {t['found']:,} / {t['ngrams']:,} | {preview} |")
    return "\n".join(lines) + "\n"


def report(filter_path: str, eval_patterns: list[str], out_dir: str, cfg: OverlapConfig) -> dict:
    bloom = BloomFilter.load(filter_path)
    files = fsio.expand(eval_patterns)
    result = {
        "filter": {k: v for k, v in bloom.header().items() if k != "source_files"},
        "files": [file_overlap(path, bloom, cfg) for path in tqdm(files, desc="eval files", disable=None)],
    }
    fsio.makedirs(out_dir)
    fsio.atomic_write_text(fsio.join(out_dir, REPORT_JSON), json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    fsio.atomic_write_text(fsio.join(out_dir, REPORT_MD), _markdown(result))
    return result


def _build_cli(args, cfg) -> int:
    bloom = build(args.shards, args.out, cfg.overlap)
    print(f"{bloom.items:,} {bloom.n}-grams from split {cfg.overlap.split} -> {args.out} "
          f"(m={bloom.m:,} bits, k={bloom.k}, {bloom.m / 8 / 2**20:.1f} MiB)")
    return 0


def _report_cli(args, cfg) -> int:
    result = report(args.filter, args.eval, args.out, cfg.overlap)
    for r in result["files"]:
        print(f"{r['percent']:6.2f}%  {r['found']:>10,} / {r['ngrams']:<10,} {r['file']}")
    print(f"report: {fsio.join(args.out, REPORT_MD)}")
    return 0


def _decontaminate_cli(args, cfg) -> int:
    from overlap.decontaminate import decontaminate
    from webtext.stats import format_counts_table

    counts = decontaminate(args.shards, args.eval, args.out, cfg.overlap)
    print(format_counts_table(counts))
    return 0


def add_cli(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "overlap", help="n-gram overlap between eval sets and the training data (GPT-2 §4)",
        description="Bloom-filter n-gram overlap: build a filter of the training split, report "
                    "how much of each eval file it contains, or drop contaminated training documents.",
    )
    sub = parser.add_subparsers(dest="overlap_command", metavar="ACTION", required=True)
    p = sub.add_parser("build", parents=[common], help="Bloom filter of a dataset split's n-grams",
                       description="Bloom filter of the overlap.n-grams of split overlap.split of a "
                                   "dataset (DIR/<split>/*.parquet), at overlap.fp_rate.")
    p.add_argument("--shards", required=True, metavar="DIR", help="dataset directory (webtext build --out)")
    p.add_argument("--out", required=True, metavar="FILE", help="filter file to write")
    p.set_defaults(func=_build_cli)
    p = sub.add_parser("report", parents=[common], help="share of eval files' n-grams in a filter",
                       description="Per eval file: share of n-grams found in the filter, per-document "
                                   "distribution and most-overlapping documents (overlap.md + overlap.json).")
    p.add_argument("--filter", required=True, metavar="FILE", help="filter from `webtext overlap build`")
    p.add_argument("--eval", required=True, nargs="+", metavar="PATH",
                   help="eval files (.txt one doc per line, .jsonl, .parquet), directories or globs")
    p.add_argument("--out", required=True, metavar="DIR", help="report directory")
    p.set_defaults(func=_report_cli)
    p = sub.add_parser("decontaminate", parents=[common], help="drop training docs that overlap eval files",
                       description="Copy a dataset, dropping documents of overlap.decontaminate_splits "
                                   "with more than overlap.decontaminate_threshold of their "
                                   "overlap.decontaminate_n-grams in the eval files.")
    p.add_argument("--shards", required=True, metavar="DIR", help="dataset directory to filter")
    p.add_argument("--eval", required=True, nargs="+", metavar="PATH", help="eval files, directories or globs")
    p.add_argument("--out", required=True, metavar="DIR", help="new dataset directory")
    p.set_defaults(func=_decontaminate_cli)
