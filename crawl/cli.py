"""Subcommands of the crawl stage: `harvest`, `crawl`, `crawl-report` and `replay`."""

import argparse
import sys


def register(subparsers, common) -> None:
    _add_harvest(subparsers, common)
    _add_crawl(subparsers, common)
    _add_crawl_report(subparsers, common)
    _add_replay(subparsers, common)


def _add_harvest(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "harvest",
        parents=[common],
        help="Reddit submission dumps -> karma-filtered, normalised URL table (Parquet)",
        description=(
            "Read Pushshift submission dumps (.zst with 2 GiB window, .xz, .bz2, .gz, NDJSON; "
            "local or any Beam filesystem), keep outbound links of posts with enough karma "
            "(harvest.min_score, default 3) created before harvest.created_before (default "
            "2018-01-01: the paper used links created up to December 2017; null for no bound), "
            "drop self/NSFW posts, media/social hosts, "
            "Wikipedia and non-page extensions, and write one row per normalised URL to "
            "DIR/urls-*.parquet plus DIR/_harvest_stats.json (the `_` keeps it out of "
            "pandas.read_parquet(DIR))."
        ),
    )
    parser.add_argument("--dumps", nargs="+", action="extend", required=True, metavar="PATH_OR_GLOB",
                        help="dump files, directories or globs (gs://, s3:// work too); repeatable, all are read")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output directory (its previous output is replaced only when the run succeeds)")
    parser.set_defaults(func=_run_harvest)


def _run_harvest(args, config) -> int:
    from core.stats import format_counts_table
    from crawl.harvest import run_harvest

    stats = run_harvest(args.dumps, args.out, config.harvest, config.beam, args.beam_args)
    print(format_counts_table(stats["counts"]))
    print(
        f"{stats['urls']} URLs written to {args.out} ({stats['duplicate_posts_merged']} posts merged "
        f"into an existing URL) in {stats['seconds']:.1f} s: {stats['records_per_second']:.0f} records/s "
        "end to end, Beam's start-up included"
    )
    return 0


def _add_crawl(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "crawl", parents=[common],
        help="fetch the harvested URLs into WARC files + a crawl log (Scrapy)",
        description="Fetch every URL of a `webtext harvest` table once with Scrapy (robots.txt, "
                    "politeness, retries, size/time limits, private addresses refused) and write "
                    "DIR/warc/*.warc.gz, DIR/crawl_log/*.parquet and DIR/crawl_stats.json. "
                    "Rerun the same command to resume an interrupted crawl: URLs that any earlier "
                    "run into DIR logged, whatever its --shard, are not fetched again. The URL table "
                    "is streamed (memory grows with the shard, not the table). Both paths may be on "
                    "an object store (s3://, gs://; pass Beam's filesystem options after `--`, e.g. "
                    "-- --s3_endpoint_url=...): a remote --out is crawled in crawl.local_work_dir "
                    "and published at the end, WARC files first, then log parts, then stats. "
                    "With --set crawl.source=live_then_archive, dead links (dns, 4xx, 5xx, timeouts, "
                    "redirect failures, soft-404 and parked pages) are fetched from a web archive instead "
                    "(crawl.archive.*: the Wayback Machine by default, or Common Crawl); "
                    "crawl.source=archive takes every page from the archive.",
    )
    parser.add_argument("--urls", required=True, metavar="DIR",
                        help="URL table directory (urls-*.parquet of a finished harvest; s3://, gs:// work too)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output directory (s3://, gs:// work too: see crawl.local_work_dir)")
    parser.add_argument("--shard", type=_shard, default="0/1", metavar="I/N",
                        help="crawl only shard I of N (by hash of url_key), e.g. 0/4; default 0/1")
    parser.add_argument("--replay", metavar="WEB_DIR",
                        help="serve this sample web on 127.0.0.1 and crawl it offline through it: "
                             "its host names are the only ones that resolve (to 127.0.0.1); "
                             "anything else is a DNS failure, no real DNS is consulted")
    parser.set_defaults(func=_run_crawl)


def _shard(text: str):
    """`--shard I/N` (argparse also converts the default "0/1" with it)."""
    from crawl.url_table import Shard

    try:
        return Shard.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _run_crawl(args, cfg) -> int:
    from core.stats import format_counts_table
    from crawl.crawler import crawl

    stats = crawl(args.urls, args.out, cfg.crawl, args.shard, args.replay, verbose=args.verbose)
    print(format_counts_table(stats["counts"]))
    print(f"shard {stats['shard']}: {stats['logged']}/{stats['urls']} URLs logged; "
          f"this run {stats['this_run']['urls']} URLs at {stats['this_run']['pages_per_second']} pages/s; "
          f"output in {args.out}")
    if stats["duplicate_rows"]:
        print(f"webtext crawl: warning: the crawl log in {args.out} holds {stats['duplicate_rows']} extra rows for "
              f"URLs logged before (left by an older run); the stats count each URL once", file=sys.stderr)
    if not stats["complete"]:
        print(f"webtext crawl: {stats['missing']} URLs not finished; rerun the same command to resume")
        return 1
    return 0


def _add_crawl_report(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "crawl-report", parents=[common],
        help="write a crawl folder's link-rot report anew (crawl_report.md/.png, crawl_stats.json)",
        description="Read every crawl log part of DIR and write the link-rot report (outcomes by "
                    "Reddit post year and by domain, crawl.report_top_domains of them; the share "
                    "recovered from a web archive and the share lost for good) as DIR/crawl_report.md, "
                    "DIR/crawl_report.png and the key crawl_report of DIR/crawl_stats.json. Every "
                    "`webtext crawl` does this itself; use it for folders crawled by older versions.",
    )
    parser.add_argument("dir", metavar="DIR", help="a `webtext crawl --out` folder (no crawl writing it now)")
    parser.set_defaults(func=_run_crawl_report)


def _run_crawl_report(args, cfg) -> int:
    import os

    from crawl.report import REPORT_CHART, REPORT_MARKDOWN, update_crawl_stats

    report = update_crawl_stats(args.dir, cfg.crawl.report_top_domains)
    print(f"{report['urls']} URLs: {report['ok_live']} fetched live, {report['recovered_from_archive']} "
          f"({report['recovered_share']:.1%}) recovered from a web archive, {report['lost']} "
          f"({report['lost_share']:.1%}) lost for good; see {os.path.join(args.dir, REPORT_MARKDOWN)} "
          f"and {REPORT_CHART}")
    return 0


def _add_replay(subparsers, common) -> None:
    parser = subparsers.add_parser(
        "replay", parents=[common],
        help="serve a sample web on 127.0.0.1 as an HTTP proxy (offline crawls)",
        description="Serve a recorded sample web (routes.json + pages/) on 127.0.0.1 as an HTTP "
                    "forward proxy, so that `webtext crawl` can crawl it without network access. "
                    "Runs until Ctrl-C.",
    )
    parser.add_argument("--web", metavar="DIR",
                        help="sample web directory with routes.json (default: the bundled sample)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    parser.set_defaults(func=_run_replay)


def _run_replay(args, cfg) -> int:
    import threading

    from crawl.replay import serve

    web = args.web
    if web is None:
        from sample.bundled import ensure_built

        web = ensure_built().web  # generated on first use
    with serve(web, port=args.port) as server:
        print(f"replaying {len(server.routes.routes)} pages on {len(server.hosts)} hosts from {web}")
        print(f"proxy: {server.proxy_url}   (Ctrl-C to stop)", flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
        print(f"served {len(server.request_log)} requests")
    return 0
