"""`webtext overlap build|report|decontaminate`: how much of an eval set is in the training data.

GPT-2 (§4, Table 6) built Bloom filters of WebText's training-set 8-grams and reported the
share of each eval set's 8-grams found in them. `build` makes that filter from a dataset's
training split, `report` measures eval files against it (per file, per document, the most
overlapping documents; Markdown + JSON), `decontaminate` (overlap/decontaminate.py) drops
training documents that share too many n-grams with eval files.

Eval files: see overlap/sources.py. Also usable against a split of our own dataset
(`--against DIR/val`): the paper's "overlap with WebText train" column for our val/test.
"""

from __future__ import annotations

import json
import os
import statistics

from tqdm import tqdm

from overlap.bloom import BloomFilter
from overlap.build import STAGE, build_filter
from overlap.config import OverlapConfig
from overlap.ngrams import ngram_hashes, normalize_words
from overlap.sources import TEXT_COLUMN, eval_files, read_documents, split_files, units_of
from shards.manifest import MANIFEST
from core import fsio
from core.stats import StageCounts, format_counts_table, write_stats_json

REPORT_JSON, REPORT_MD = "overlap.json", "overlap.md"
BATCH_DOCS = 1024  # documents per filter query
STATS_SUFFIX = ".stats.json"  # build counts, next to the filter file
BUCKETS = [("0%", 0.0, 0.0), ("(0, 1%]", 0.0, 0.01), ("(1, 10%]", 0.01, 0.10),
           ("(10, 50%]", 0.10, 0.50), ("(50, 100%)", 0.50, 1.0 - 1e-12), ("100%", 1.0 - 1e-12, 1.0)]


def _batches(items, size: int):
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def eval_sets(patterns: list[str], text_field: str) -> list[tuple[str, list[str], str]]:
    """(name, files, text field) per eval set: a split folder of one of our datasets (DIR/<split>
    next to DIR/manifest.json) is one set, like the paper's own-split column; any other file is
    one set."""
    sets = []
    for pattern in patterns:
        parent = os.path.dirname(os.path.normpath(pattern))
        if os.path.isdir(pattern) and os.path.isfile(os.path.join(parent, MANIFEST)):
            sets.append((pattern, split_files(parent, os.path.basename(os.path.normpath(pattern))), TEXT_COLUMN))
        else:
            sets += [(path, [path], text_field) for path in eval_files([pattern])]
    return sets


def _text_field(args, cfg: OverlapConfig) -> OverlapConfig:
    return cfg.model_copy(update={"text_field": args.text_field}) if args.text_field else cfg


def build(shards_dir: str, out_path: str, cfg: OverlapConfig) -> tuple[BloomFilter, StageCounts]:
    """The filter of split `cfg.split`'s n-grams, saved to `out_path` (stats next to it)."""
    units = units_of(split_files(shards_dir, cfg.split))
    bloom, counts = build_filter(units, cfg.n, cfg.fp_rate, TEXT_COLUMN, cfg.workers,
                                 {"split": cfg.split, "shards_dir": shards_dir})
    if bloom.items == 0:
        raise ValueError(f"split {cfg.split} of {shards_dir} has no document of {cfg.n} or more words")
    bloom.save(out_path)
    write_stats_json(out_path + STATS_SUFFIX, {STAGE: counts},
                     {"ngrams": bloom.items, "m": bloom.m, "k": bloom.k, "fp_rate": cfg.fp_rate})
    return bloom, counts


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


def _documents(files: list[str], text_field: str):
    for path in files:
        yield from read_documents(path, text_field)


def set_overlap(name: str, files: list[str], text_field: str, bloom: BloomFilter, cfg: OverlapConfig) -> dict:
    """Share of one eval set's n-grams found in the filter, overall and per document."""
    ngrams = found = docs = 0
    per_doc = []  # (fraction, found, ngrams, index, preview)
    for batch in _batches(enumerate(_documents(files, text_field)), BATCH_DOCS):
        docs += len(batch)
        hashes = [ngram_hashes(normalize_words(text), bloom.n) for _, text in batch]
        for (index, text), hits in zip(batch, bloom.contains_each(hashes)):
            if len(hits):
                ngrams += len(hits)
                found += int(hits.sum())
                per_doc.append((float(hits.mean()), int(hits.sum()), len(hits), index, " ".join(text.split())[:160]))
    if docs == 0:
        raise ValueError(f"{name}: no documents (empty eval file)")
    if ngrams == 0:
        raise ValueError(f"{name}: no document has {bloom.n} or more words, so no {bloom.n}-gram to look up")
    top = sorted((d for d in per_doc if d[1]), key=lambda d: (-d[0], -d[1], d[3]))[: cfg.top_docs]
    return {
        "file": name,
        "files": files,
        "documents": docs,
        "documents_without_ngrams": docs - len(per_doc),
        "ngrams": ngrams,
        "found": found,
        "percent": 100.0 * found / ngrams,
        "per_document": _distribution([d[0] for d in per_doc]),
        "top_documents": [
            {"index": i, "fraction": f, "found": h, "ngrams": n, "preview": t}
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
        "| eval set | documents | n-grams | found | % found |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in report["files"]:
        lines.append(f"| {r['file']} | {r['documents']:,} | {r['ngrams']:,} | {r['found']:,} | {r['percent']:.2f} |")
    lines += ["", f"Mean over eval sets: {report['mean_percent']:.2f}% of n-grams found."]
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
    if bloom.n != cfg.n:
        raise ValueError(f"{filter_path} holds {bloom.n}-grams but overlap.n is {cfg.n}: "
                         f"rebuild the filter or pass --set overlap.n={bloom.n}")
    sets = eval_sets(eval_patterns, cfg.text_field)
    files = [set_overlap(*s, bloom, cfg) for s in tqdm(sets, desc="eval sets", disable=None)]
    result = {
        "filter": bloom.header(),
        "files": files,
        "mean_percent": statistics.fmean(r["percent"] for r in files),  # GPT-2 Table 6's "average"
    }
    fsio.makedirs(out_dir)
    fsio.atomic_write_text(fsio.join(out_dir, REPORT_JSON), json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    fsio.atomic_write_text(fsio.join(out_dir, REPORT_MD), _markdown(result))
    return result


def _build_cli(args, cfg) -> int:
    bloom, counts = build(args.shards, args.out, cfg.overlap)
    print(format_counts_table({STAGE: counts}))
    print(f"{bloom.items:,} {bloom.n}-grams from split {cfg.overlap.split} -> {args.out} "
          f"(m={bloom.m:,} bits, k={bloom.k}, {bloom.m / 8 / 2**20:.1f} MiB, "
          f"false-positive rate <= {cfg.overlap.fp_rate:g})")
    return 0


def _report_cli(args, cfg) -> int:
    out = args.out or args.filter + ".report"
    result = report(args.filter, args.against, out, _text_field(args, cfg.overlap))
    for r in result["files"]:
        print(f"{r['percent']:6.2f}%  {r['found']:>10,} / {r['ngrams']:<10,} {r['file']}")
    print(f"{result['mean_percent']:6.2f}%  mean over {len(result['files'])} eval set(s)")
    print(f"report: {fsio.join(out, REPORT_MD)}")
    return 0


def _decontaminate_cli(args, cfg) -> int:
    from overlap.decontaminate import decontaminate

    manifest = decontaminate(args.shards, args.against, args.out, cfg, _text_field(args, cfg.overlap))
    counts = {name: StageCounts.from_json(name, s) for name, s in manifest["stages"].items()}
    print(format_counts_table(counts))
    splits = ", ".join(f"{name}={s['rows']:,}" for name, s in manifest["splits"].items())
    print(f"decontaminated dataset: {args.out} ({splits} documents); check it with `webtext verify {args.out}`")
    return 0


def text_field_arg(parser) -> None:
    parser.add_argument("--text-field", metavar="NAME",
                        help="JSONL key / Parquet column holding the eval files' text (default: overlap.text_field)")


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
    p.add_argument("--against", required=True, nargs="+", metavar="FILE",
                   help="eval files (.txt one doc per line, .jsonl, .parquet), directories or globs; "
                        "a dataset split folder (DIR/val) measures our own val/test against train")
    p.add_argument("--out", metavar="DIR", help="report directory (default: FILTER.report)")
    text_field_arg(p)
    p.set_defaults(func=_report_cli)
    p = sub.add_parser("decontaminate", parents=[common], help="copy a dataset without (or with cut) training docs that overlap eval files",
                       description="Copy a dataset (shards + manifest, as `webtext build` writes), dropping "
                                   "(overlap.decontaminate_mode=drop) or cutting the shared words out of "
                                   "(=cut) documents of overlap.decontaminate_splits with more than "
                                   "overlap.decontaminate_threshold of their overlap.decontaminate_n-grams "
                                   "in the eval files. A killed run resumes with the unfinished shards.")
    p.add_argument("--shards", required=True, metavar="DIR", help="dataset directory to filter")
    p.add_argument("--against", required=True, nargs="+", metavar="FILE",
                   help="eval files (.txt, .jsonl, .parquet), directories or globs")
    p.add_argument("--out", required=True, metavar="DIR", help="new dataset directory")
    text_field_arg(p)
    p.set_defaults(func=_decontaminate_cli)
