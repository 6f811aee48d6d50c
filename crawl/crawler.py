"""The crawl: fetch the harvested URLs with Scrapy into WARC files and a crawl log.

Outputs (docs/contracts.md): DIR/warc/*.warc.gz, DIR/crawl_log/*.parquet and
DIR/crawl_stats.json (per shard: DIR/crawl_stats-I-of-N.json as well), whose link-rot report
(`crawl_report`, crawl/report.py) is also DIR/crawl_report.md and .png. Crawling into the
same directory again resumes, whatever `--shard` setting earlier runs had: URLs any of them
logged are skipped, WARC bytes no log row refers to are cut off. The command (`webtext
crawl`) is in crawl/cli.py.

Memory follows the shard, not the URL table: the shard's rows are selected in one streaming
pass (crawl/url_table.py), the resume state is a sorted array of URL digests
(crawl/crawl_log.py), and the spider pulls the pending rows lazily, one table batch at a time.
A DIR on an object store is crawled in a local work folder and published at the end
(crawl/mirror.py).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import logging
import os
import re
import secrets
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone

import numpy as np
from scrapy.crawler import AsyncCrawlerProcess

from core import fsio
from core.lock import FolderBusyError, exclusive_folder
from core.stats import counts_from_outcomes, write_stats_json
from crawl.archive import ARCHIVE_SLOT
from crawl.config import CrawlConfig
from crawl.crawl_log import PART_NAME, CrawlLogWriter, LoggedState, log_parts, read_logged_state
from crawl.mirror import default_work_dir, publish, sync_down
from crawl.replay import serve
from crawl.report import REPORT_CHART, REPORT_MARKDOWN, write_crawl_report
from crawl.spider import Recorder, UrlTableSpider
from crawl.url_table import Shard, open_url_table, select_shard
from crawl.warc import WarcWriter, truncate_after

log = logging.getLogger(__name__)


def user_agent(config: CrawlConfig) -> str:
    return f"{config.user_agent} (+{config.contact})"


def scrapy_settings(config: CrawlConfig, verbose: bool = False, loopback_hosts=frozenset()) -> dict:
    """Scrapy settings from the `crawl` config.

    Scrapy's default component lists stay; every component costs CPU on every page, so those
    the crawl does not need are switched off one by one (priority None), and ours take the
    place of the robots.txt, retry, decompression and redirect middlewares. Switched off on
    purpose: cookies, referer, HTTP auth, environment proxies (`crawl.proxy` is the only
    proxy), meta refresh, HTTP cache, the offsite/depth/URL-length filters (we follow no links,
    and nothing may drop a start request silently), HttpErrorMiddleware (every status reaches
    the callback), the start-request marker, stats, telnet, memory usage, log stats and feed
    export. tests/crawl/test_crawler_components.py pins the resulting lists, so a component a
    Scrapy upgrade adds is noticed. Scrapy runs on asyncio alone (no Twisted reactor) with our
    aiohttp download handler, about half the CPU per page of the Twisted stack here
    (bench/bench_crawl.py). `loopback_hosts` may resolve to loopback even when allow_loopback
    is off (the replay's hosts).
    """
    return {
        "BOT_NAME": "webtext",
        "TWISTED_REACTOR_ENABLED": False,
        "USER_AGENT": user_agent(config),
        "ROBOTSTXT_OBEY": config.obey_robots,
        "ROBOTSTXT_USER_AGENT": config.user_agent.split("/")[0],
        "DOWNLOAD_TIMEOUT": config.download_timeout,
        "DOWNLOAD_MAXSIZE": config.max_body_bytes,
        "DOWNLOAD_WARNSIZE": 0,
        "CONCURRENT_REQUESTS": config.concurrent_requests,
        "CONCURRENT_REQUESTS_PER_DOMAIN": config.concurrent_requests_per_domain,
        "DOWNLOAD_DELAY": config.download_delay,
        "AUTOTHROTTLE_ENABLED": config.autothrottle,
        "AUTOTHROTTLE_START_DELAY": max(config.download_delay, 1.0),
        "AUTOTHROTTLE_TARGET_CONCURRENCY": config.autothrottle_target_concurrency,
        "AUTOTHROTTLE_MAX_DELAY": config.autothrottle_max_delay,
        "RETRY_TIMES": config.retry_times,
        "RETRY_HTTP_CODES": config.retry_http_codes,
        # What our download handler raises (Scrapy's default list also names Twisted errors,
        # and importing its HTTP/1.1 handler for one of them costs ~0.5 s at start-up).
        # OSError: decompressing an empty body.
        "RETRY_EXCEPTIONS": [*(f"scrapy.exceptions.{name}" for name in (
            "CannotResolveHostError", "DownloadConnectionRefusedError", "DownloadFailedError",
            "DownloadTimeoutError", "ResponseDataLossError")), OSError],
        "RETRY_GIVE_UP_LOG_LEVEL": "DEBUG",  # giving up is an outcome in the crawl log
        # ChainRedirectMiddleware enforces max_redirects itself (WEBTEXT_MAX_REDIRECTS below);
        # Scrapy's own limit, one higher, never comes first.
        "REDIRECT_MAX_TIMES": config.max_redirects + 1,
        # Callbacks yield nothing; Scrapy 2.19 starts CONCURRENT_ITEMS tasks per callback
        # regardless, which at the default (100) dominated the crawler's CPU.
        "CONCURRENT_ITEMS": 1,
        "DUPEFILTER_CLASS": "scrapy.dupefilters.BaseDupeFilter",
        "SCHEDULER_PRIORITY_QUEUE": "scrapy.pqueues.DownloaderAwarePriorityQueue",
        # First in, first out (per host and priority): URL-table order, with redirect hops
        # first (REDIRECT_PRIORITY_ADJUST) and retries last, without a start-request queue.
        "SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue",
        # No scheme but HTTP(S) gets a handler (the spider refuses the others).
        "DOWNLOAD_HANDLERS": {"http": "crawl.middlewares.GuardedDownloadHandler",
                              "https": "crawl.middlewares.GuardedDownloadHandler",
                              "data": None, "file": None, "s3": None, "ftp": None},
        "LOG_FORMATTER": "scrapy.logformatter.LogFormatter" if verbose else "crawl.middlewares.QuietLogFormatter",
        "STATS_CLASS": "scrapy.statscollectors.DummyStatsCollector",
        "TELNETCONSOLE_ENABLED": False,
        "LOG_LEVEL": "DEBUG" if verbose else "WARNING",
        "LOG_INSTALL_ROOT_HANDLER": False,
        # No spider middleware at all: every start request and every callback would pass
        # through each one; the FIFO queue above does the start-request marker's job.
        "SPIDER_MIDDLEWARES": {f"scrapy.spidermiddlewares.{name}": None for name in (
            "start.StartSpiderMiddleware", "httperror.HttpErrorMiddleware", "referer.RefererMiddleware",
            "urllength.UrlLengthMiddleware", "depth.DepthMiddleware", "metacopy.MetaCopyDetectionMiddleware")},
        # Kept from Scrapy's list: DownloadTimeoutMiddleware, DefaultHeadersMiddleware and
        # UserAgentMiddleware. Ours replace four of Scrapy's at their priorities.
        "DOWNLOADER_MIDDLEWARES": {
            "crawl.middlewares.AddressGuardMiddleware": 60,  # first: nothing reaches a refused host
            "crawl.middlewares.RobotsMiddleware": 100,
            "crawl.middlewares.BackoffRetryMiddleware": 550,
            "crawl.middlewares.BoundedDecompressionMiddleware": 590,
            "crawl.middlewares.ChainRedirectMiddleware": 600,
            **{f"scrapy.downloadermiddlewares.{name}": None for name in (
                "offsite.OffsiteMiddleware", "robotstxt.RobotsTxtMiddleware", "httpauth.HttpAuthMiddleware",
                "retry.RetryMiddleware", "redirect.MetaRefreshMiddleware",
                "httpcompression.HttpCompressionMiddleware", "redirect.RedirectMiddleware",
                "cookies.CookiesMiddleware", "httpproxy.HttpProxyMiddleware", "stats.DownloaderStats",
                "httpcache.HttpCacheMiddleware")},
        },
        # Kept from Scrapy's list: AutoThrottle (priority 0).
        "EXTENSIONS": {
            "crawl.middlewares.CrawlDelay": 10,  # after AutoThrottle: re-applies its floor
            **{f"scrapy.extensions.{name}": None for name in (
                "corestats.CoreStats", "logcount.LogCount", "telnet.TelnetConsole", "memusage.MemoryUsage",
                "memdebug.MemoryDebugger", "closespider.CloseSpider", "feedexport.FeedExporter",
                "logstats.LogStats", "spiderstate.SpiderState", "remote_control.RemoteControl")},
        },
        # Our own settings, read by the components above.
        "WEBTEXT_ALLOW_LOOPBACK": config.allow_loopback,
        "WEBTEXT_LOOPBACK_HOSTS": sorted(loopback_hosts),
        "WEBTEXT_STATIC_HOSTS": config.static_hosts,
        "WEBTEXT_RESOLVE_DNS": config.resolve_dns,
        "WEBTEXT_DNS_THREADS": 20,  # concurrent DNS lookups (GuardedResolver's own thread pool)
        "WEBTEXT_PROXY": config.proxy,
        "WEBTEXT_MAX_CRAWL_DELAY": config.max_crawl_delay,
        "WEBTEXT_MAX_REDIRECTS": config.max_redirects,
        "WEBTEXT_MAX_REDIRECT_BODY_BYTES": config.warc_max_redirect_body_bytes,
        "WEBTEXT_RETRY_BACKOFF_BASE": config.retry_backoff_base,
        "WEBTEXT_RETRY_MAX_DELAY": config.retry_max_delay,
        # Archive requests (crawl/archive.py) share one slot: one at a time, requests_per_second.
        "DOWNLOAD_SLOTS": {ARCHIVE_SLOT: {"concurrency": 1, "delay": 1.0 / config.archive.requests_per_second,
                                          "jitter": 0.0}},
    }


def replay_config(config: CrawlConfig, server) -> CrawlConfig:
    """Route everything through the replay proxy; its hosts are the only names that resolve
    (to 127.0.0.1, which only they may: a page pointing at http://127.0.0.1/ is still refused)."""
    hosts = {**{host: "127.0.0.1" for host in server.hosts}, **config.static_hosts}
    return config.model_copy(update={"proxy": server.proxy_url, "static_hosts": hosts, "resolve_dns": False})


def shard_lock(out: str, shard: Shard):
    """Refuse to run one shard twice at once: resume recovery would cut the other's files."""
    return exclusive_folder(out, f"crawl --shard {shard.tag}", f".crawl-{shard.tag}.lock")


# A shard tag in the names of lock files, WARC files and crawl-log parts (finished or torn).
TAGGED_NAME = re.compile(r"\.?crawl-(\d+)-of-(\d+)[-.]")


def recover(out: str, shard: Shard, wanted: np.ndarray) -> LoggedState:
    """Read what earlier runs logged for the URLs in `wanted` (sorted digests), under any shard setting, and make
    their WARC files end at the last logged record (a kill leaves unlogged records behind).

    Call it holding `shard`'s lock. Runs with another shard count crawl some of the same URLs:
    one running now is refused here before anything is touched, and one starting later finds
    this run's lock and is refused in turn, so their files hold still while they are cut. Shards
    of this count never share URLs and are left alone (they may be running)."""
    crawl_log = os.path.join(out, "crawl_log")
    others = _other_shard_counts(out, shard)
    for other in others:
        _refuse_if_running(out, other)
    state = read_logged_state(crawl_log, wanted)
    actions: Counter = Counter()
    for tag in [shard.tag, *(other.tag for other in others)]:
        for path in sorted(glob.glob(os.path.join(out, "warc", f"crawl-{tag}-*.warc.gz"))):
            try:
                actions[truncate_after(path, state.last_offsets.get(os.path.basename(path)))] += 1
            except FileNotFoundError:
                pass  # another shard of this count, recovering at the same time, deleted it
        for torn_part in glob.glob(os.path.join(crawl_log, f".crawl-{tag}-*.tmp")):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(torn_part)  # a checkpoint part a kill interrupted mid-write (never renamed)
                actions["torn_log_part_removed"] += 1
    if len(state):
        log.info("resuming: %d URLs already logged; WARC files %s", len(state), dict(actions))
    return state


def _refuse_if_running(out: str, other: Shard) -> None:
    """FolderBusyError if a crawl of `other` holds its lock now (a shared lock only tests it, so
    several shards of one count may test it at once)."""
    path = os.path.join(out, f".crawl-{other.tag}.lock")
    try:
        lock_file = open(path, "rb")
    except FileNotFoundError:
        return
    with lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderBusyError(
                f"another `webtext crawl --shard {other.tag}` is writing {out} (lock {path}) and shares URLs "
                f"with this shard; wait for it to finish, or run only shards of one count at once") from None


def _other_shard_counts(out: str, shard: Shard) -> list[Shard]:
    """Shards with another count that left a lock, WARC file or log part in `out`."""
    names = [name for folder in (out, os.path.join(out, "warc"), os.path.join(out, "crawl_log"))
             if os.path.isdir(folder) for name in os.listdir(folder)]
    shards = {Shard(int(match[1]), int(match[2])) for match in map(TAGGED_NAME.match, names) if match}
    return sorted((other for other in shards if other.count != shard.count), key=lambda other: other.tag)


def run_scrapy(settings: dict, spider_kwargs: dict) -> None:
    """Run the spider to completion in this process (its asyncio event loop starts once)."""
    # Scrapy logs through the CLI's handlers (LOG_INSTALL_ROOT_HANDLER off). Creating the
    # process sets its loggers to DEBUG and logs versions at INFO, so those lines are held back
    # while it is created, and the level is set on its logger afterwards (where a filtered
    # message costs nothing, rather than a LogRecord per page).
    level = logging.getLevelName(settings["LOG_LEVEL"])
    logging.disable(level - 1)
    try:
        process = AsyncCrawlerProcess(settings)
    finally:
        logging.disable(logging.NOTSET)
    logging.getLogger("scrapy").setLevel(level)
    process.crawl(UrlTableSpider, **spider_kwargs)
    process.start()


def crawl(urls_dir: str, out: str, config: CrawlConfig, shard: Shard = Shard(0, 1),
          replay_web: str | None = None, verbose: bool = False, progress: bool = True) -> dict:
    """Crawl one shard of the URL table into `out` (a local folder, or an object store through
    a local work folder: crawl/mirror.py); returns the stats written."""
    shard_rows = select_shard(open_url_table(urls_dir), shard)
    wanted = shard_rows.wanted()
    remote = not fsio.is_local(out)
    folder = (config.local_work_dir or default_work_dir(out)) if remote else out
    if remote:
        sync_down(out, folder)
    crawl_log = os.path.join(folder, "crawl_log")
    with shard_lock(folder, shard):
        state = recover(folder, shard, wanted)
        pending = ~state.contains(shard_rows.url_digests)
        pending_count = int(pending.sum())
        run_id = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)
        prefix = f"crawl-{shard.tag}-{run_id}"
        started = time.monotonic()
        recorder_outcomes: Counter = Counter()
        if pending_count:
            recorder_outcomes = _crawl_pending(shard_rows.rows(pending), pending_count, folder, prefix, config,
                                               replay_web, verbose, progress)
        elapsed = time.monotonic() - started
        # Only this run can have logged URLs of this shard meanwhile (see `recover`).
        state.read(log_parts(crawl_log, f"{prefix}-"), wanted)
        missing = len(shard_rows) - len(state)
        # URLs an interrupted run did not finish count as `pending`, so the numbers still add up.
        counts = {"crawl": counts_from_outcomes("crawl", state.outcomes + Counter(pending=missing))}
        extra = {
            "shard": shard.tag, "urls": len(shard_rows), "logged": len(state), "missing": missing,
            "complete": missing == 0, "duplicate_rows": state.duplicates,
            "this_run": {"urls": pending_count, "seconds": round(elapsed, 3),
                         "pages_per_second": round(sum(recorder_outcomes.values()) / elapsed, 2) if elapsed else 0.0},
            "log_parts": len(log_parts(crawl_log, f"crawl-{shard.tag}-")),
        }
        stats_name = "crawl_stats.json" if shard.count == 1 else f"crawl_stats-{shard.tag}.json"
        if shard.count == 1:  # sharded crawls: the combined crawl_stats.json carries it, over every shard
            extra["crawl_report"] = write_crawl_report(folder, config.report_top_domains)
        write_stats_json(os.path.join(folder, stats_name), counts, extra)
        if shard.count > 1:
            _write_combined_stats(folder, config.report_top_domains)
        if remote:  # under the lock: no run of these shards is writing their files
            tags = [shard.tag, *(other.tag for other in _other_shard_counts(folder, shard))]
            publish(folder, out, tags, sorted({stats_name, "crawl_stats.json", REPORT_MARKDOWN, REPORT_CHART}))
    return {"counts": counts, **extra}


def _crawl_pending(pending: Iterator[dict], pending_count: int, out, prefix, config, replay_web, verbose,
                   progress) -> Counter:
    """Crawl the rows `pending` yields (lazily: the spider pulls them as it has room)."""
    loopback_hosts: frozenset[str] = frozenset()
    archive_proxy = config.proxy  # the operator's proxy, not the --replay one
    with contextlib.ExitStack() as stack:
        if replay_web:
            server = stack.enter_context(serve(replay_web))
            config, loopback_hosts = replay_config(config, server), server.hosts
        warc = WarcWriter(os.path.join(out, "warc"), prefix, config.warc_max_bytes,
                          {"operator": config.contact, "http-header-user-agent": user_agent(config),
                           "robots": "obey" if config.obey_robots else "ignore"}, config.warc_gzip_level)
        recorder = Recorder(warc, CrawlLogWriter(os.path.join(out, "crawl_log"), prefix), pending_count,
                            config.log_flush_rows, config.log_flush_seconds, progress)
        run_scrapy(scrapy_settings(config, verbose, loopback_hosts), {
            "rows": pending, "recorder": recorder, "html_types": config.html_content_types,
            "sniff_types": config.sniff_content_types, "start_backlog": 4 * config.concurrent_requests,
            "source": config.source, "archive": config.archive, "max_redirects": config.max_redirects,
            "archive_proxy": archive_proxy,
        })
        recorder.close()
        return recorder.outcomes


def _write_combined_stats(out: str, report_top_domains: int) -> None:
    """crawl_stats.json over every log part in `out`, each URL once (complete once all shards ran),
    with the link-rot report over them all (crawl/report.py).

    Under a lock, so the shard that finishes last always writes the complete picture."""
    with open(os.path.join(out, ".crawl_stats.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        crawl_log = os.path.join(out, "crawl_log")
        state = read_logged_state(crawl_log)
        shards = {name[len("crawl_stats-"):-len(".json")] for name in os.listdir(out)
                  if name.startswith("crawl_stats-") and name.endswith(".json")}
        shards.update(match["tag"] for match in (PART_NAME.fullmatch(os.path.basename(path)) for path in log_parts(crawl_log))
                      if match)
        write_stats_json(os.path.join(out, "crawl_stats.json"), {"crawl": counts_from_outcomes("crawl", state.outcomes)},
                         {"shards_seen": sorted(shards), "duplicate_rows": state.duplicates,
                          "crawl_report": write_crawl_report(out, report_top_domains)})
