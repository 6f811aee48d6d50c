"""Subcommand `overlap`: build / report / decontaminate."""

from __future__ import annotations


def _overlap_config(args, cfg):
    """The overlap section, with --text-field applied."""
    overlap_config = cfg.overlap
    return overlap_config.model_copy(update={"text_field": args.text_field}) if args.text_field else overlap_config


def _build(args, cfg) -> int:
    from core.stats import format_counts_table
    from overlap.build import STAGE
    from overlap.report import build

    bloom, counts = build(args.shards, args.out, cfg.overlap)
    print(format_counts_table({STAGE: counts}))
    print(f"{bloom.items:,} {bloom.n}-grams from split {cfg.overlap.split} -> {args.out} "
          f"(m={bloom.m:,} bits, k={bloom.k}, {bloom.m / 8 / 2**20:.1f} MiB, "
          f"false-positive rate <= {cfg.overlap.fp_rate:g})")
    return 0


def _report(args, cfg) -> int:
    from core import fsio
    from overlap.report import REPORT_MD, report

    out = args.out or args.filter + ".report"
    result = report(args.filter, args.against, out, _overlap_config(args, cfg))
    for file_result in result["files"]:
        print(f"{file_result['percent']:6.2f}%  {file_result['found']:>10,} / {file_result['ngrams']:<10,} "
              f"{file_result['file']}")
    print(f"{result['mean_percent']:6.2f}%  mean over {len(result['files'])} eval set(s)")
    print(f"report: {fsio.join(out, REPORT_MD)}")
    return 0


def _decontaminate(args, cfg) -> int:
    from core.stats import StageCounts, format_counts_table
    from overlap.decontaminate import decontaminate

    manifest = decontaminate(args.shards, args.against, args.out, _overlap_config(args, cfg), cfg.build)
    counts = {name: StageCounts.from_json(name, stage) for name, stage in manifest["stages"].items()}
    print(format_counts_table(counts))
    splits = ", ".join(f"{name}={split['rows']:,}" for name, split in manifest["splits"].items())
    print(f"decontaminated dataset: {args.out} ({splits} documents); check it with `webtext verify {args.out}`")
    return 0


def _text_field_argument(parser) -> None:
    parser.add_argument("--text-field", metavar="NAME",
                        help="JSONL key / Parquet column holding the eval files' text (default: overlap.text_field)")


def register(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "overlap", help="n-gram overlap between eval sets and the training data (GPT-2 §4)",
        description="Bloom-filter n-gram overlap: build a filter of the training split, report "
                    "how much of each eval file it contains, or drop contaminated training documents.",
    )
    actions = parser.add_subparsers(dest="overlap_command", metavar="ACTION", required=True)
    action = actions.add_parser("build", parents=[common], help="Bloom filter of a dataset split's n-grams",
                                description="Bloom filter of the overlap.n-grams of split overlap.split of a "
                                            "dataset (DIR/<split>/*.parquet), at overlap.fp_rate.")
    action.add_argument("--shards", required=True, metavar="DIR", help="dataset directory (webtext build --out)")
    action.add_argument("--out", required=True, metavar="FILE", help="filter file to write")
    action.set_defaults(func=_build)
    action = actions.add_parser("report", parents=[common], help="share of eval files' n-grams in a filter",
                                description="Per eval file: share of n-grams found in the filter, per-document "
                                            "distribution and most-overlapping documents (overlap.md + overlap.json).")
    action.add_argument("--filter", required=True, metavar="FILE", help="filter from `webtext overlap build`")
    action.add_argument("--against", required=True, nargs="+", metavar="FILE",
                        help="eval files (.txt one doc per line, .jsonl, .parquet), directories or globs; "
                             "a dataset split folder (DIR/val) measures our own val/test against train")
    action.add_argument("--out", metavar="DIR", help="report directory (default: FILTER.report)")
    _text_field_argument(action)
    action.set_defaults(func=_report)
    action = actions.add_parser(
        "decontaminate", parents=[common],
        help="copy a dataset without (or with cut) training docs that overlap eval files",
        description="Copy a dataset (shards + manifest, as `webtext build` writes), dropping "
                    "(overlap.decontaminate_mode=drop) or cutting the shared words out of "
                    "(=cut) documents of overlap.decontaminate_splits with more than "
                    "overlap.decontaminate_threshold of their overlap.decontaminate_n-grams "
                    "in the eval files. A killed run resumes with the unfinished shards.")
    action.add_argument("--shards", required=True, metavar="DIR", help="dataset directory to filter")
    action.add_argument("--against", required=True, nargs="+", metavar="FILE",
                        help="eval files (.txt, .jsonl, .parquet), directories or globs")
    action.add_argument("--out", required=True, metavar="DIR", help="new dataset directory")
    _text_field_argument(action)
    action.set_defaults(func=_decontaminate)
