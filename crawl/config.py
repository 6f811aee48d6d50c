"""Config sections of the crawl stage: `harvest` (Reddit dumps -> URLs) and `crawl` (Scrapy)."""

import ipaddress
from datetime import datetime, timezone
from typing import Annotated, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from core.section import Section


class HarvestConfig(Section):
    """Reddit submission dumps -> one row per outbound URL. Defaults follow GPT-2's WebText."""

    # Which submissions count. WebText kept outbound links of posts with >= 3 karma; it used
    # links created before December 2017 (set created_before: 2017-12-01 to match).
    defaults_key: ClassVar[str] = "harvest"

    min_score: int
    score_rule: Literal["max_post", "sum_per_url"]  # sum_per_url: OpenWebText2
    drop_self_posts: bool
    drop_nsfw: bool
    created_after: datetime | None  # inclusive; naive times are UTC
    created_before: datetime | None  # exclusive
    # Link hosts that are media, social platforms or Reddit itself; subdomains match too.
    blocked_domains: list[str]
    # Path extensions of files that are not web pages (images, video, audio, archives, documents).
    blocked_extensions: list[str]
    # Wikipedia (every language, mobile m.), its sister projects and mirrors: GPT-2 removed
    # Wikipedia from WebText because eval sets are built from it. Subdomains match too.
    wikipedia_domains: list[str]
    # Query parameters removed from URLs (a trailing * matches a prefix).
    tracking_params: list[str]
    # Reading and writing.
    zstd_window_log_max: int = Field(ge=10, le=31)  # Pushshift .zst need 2 GiB (2**31)
    read_chunk_bytes: int = Field(ge=1)
    max_line_bytes: int = Field(ge=1)  # longer lines: counted drop
    merge_buckets: int = Field(ge=1)  # parallelism of the per-URL merge (hash buckets of url_key)
    spill_posts: int = Field(ge=1)  # kept posts a dump reader holds before writing them to a sorted run
    # urls-NNNNN-of-MMMMM.parquet: None = ceil(urls / rows_per_file) files (at least 1), rows
    # spread by a hash of url_key; an integer = exactly that many files.
    rows_per_file: int = Field(ge=1)
    output_files: Annotated[int, Field(ge=1)] | None

    @field_validator("created_after", "created_before")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value

    @field_validator("blocked_domains", "wikipedia_domains", "blocked_extensions", "tracking_params")
    @classmethod
    def _lower_case(cls, value: list[str]) -> list[str]:
        return [v.strip().lower().strip(".") for v in value if v.strip()]


class ArchiveConfig(Section):
    """Where `crawl.source: archive | live_then_archive` looks pages up (crawl/archive.py)."""

    defaults_key: ClassVar[str] = "crawl.archive"

    kind: Literal["wayback", "commoncrawl"]
    cdx_url: str  # CDX server endpoint (Wayback CDX API, a pywb /<coll>/cdx or /<coll>/index, a CC index)
    replay_url: str  # wayback: raw capture at "{timestamp}" of "{url}" (Wayback's id_ form)
    data_url: str  # commoncrawl: prefix of the CDX row's WARC `filename` (fetched by byte range)
    # The capture window: the latest HTTP 200 capture with after <= time < before wins.
    before: datetime | None  # exclusive; naive times are UTC
    after: datetime | None  # inclusive
    requests_per_second: float = Field(gt=0)  # all archive requests together (one download slot)

    @field_validator("before", "after")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value

    @field_validator("cdx_url", "data_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value

    @field_validator("replay_url")
    @classmethod
    def _replay_template(cls, value: str) -> str:
        if "{timestamp}" not in value or "{url}" not in value:
            raise ValueError(f"must contain {{timestamp}} and {{url}}, got {value!r}")
        parts = urlsplit(value.replace("{timestamp}", "0").replace("{url}", "u"))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http(s) URL template, got {value!r}")
        return value


class CrawlConfig(Section):
    """Scrapy crawl of the harvested URLs into WARC. Sized for bulk news/blog crawling."""

    # Identity: sent as "<user_agent> (+<contact>)" and matched against robots.txt groups.
    defaults_key: ClassVar[str] = "crawl"

    user_agent: str
    contact: str
    obey_robots: bool
    max_crawl_delay: float = Field(ge=0)  # cap on a robots.txt Crawl-delay we honour
    # Limits per page.
    download_timeout: float = Field(gt=0)
    max_body_bytes: int = Field(gt=0)  # also after decompression
    max_redirects: int = Field(ge=0)
    # Politeness and throughput.
    concurrent_requests: int = Field(ge=1)
    concurrent_requests_per_domain: int = Field(ge=1)
    download_delay: float = Field(ge=0)  # minimum seconds between requests to one host
    autothrottle: bool
    autothrottle_target_concurrency: float = Field(gt=0)
    autothrottle_max_delay: float = Field(gt=0)
    # Retries on timeouts, connection errors and these statuses, with exponential backoff.
    retry_times: int = Field(ge=0)
    retry_http_codes: list[int]
    retry_backoff_base: float = Field(ge=0)  # delay = base * 2**(attempt-1) seconds
    retry_max_delay: float = Field(ge=0)  # a longer Retry-After means: give up
    # What counts as HTML.
    html_content_types: list[str]
    sniff_content_types: list[str]
    # Address policy and name resolution.
    allow_loopback: bool  # private/link-local/reserved ranges stay refused regardless
    static_hosts: dict[str, str]  # host -> IP, consulted before DNS (like /etc/hosts)
    resolve_dns: bool  # false: only static_hosts resolve, any other name is `dns`
    proxy: str | None  # HTTP proxy for every request, e.g. "http://127.0.0.1:8080"; env proxies are ignored
    # Output.
    warc_max_bytes: int = Field(gt=0)  # rotate WARC files at this size
    # Deflate level (zlib-ng) of each record's gzip member. Measured on 300 real HTML pages of
    # 132 KB: level 1 costs 0.59 ms per page for output 0.28 of the input; 2: 1.04 ms, 0.23;
    # 6: 1.9 ms, 0.20 (stdlib zlib: level 1 1.42 ms, 0.24; 6 3.7 ms, 0.20).
    warc_gzip_level: int = Field(ge=0, le=9)
    # A redirect hop's body is kept (in memory until its page is written) and stored up to this
    # many bytes; the rest is cut and its record marked `WARC-Truncated: length`.
    warc_max_redirect_body_bytes: int = Field(ge=0)
    log_flush_rows: int = Field(ge=1)  # checkpoint the crawl log every N rows ...
    log_flush_seconds: float = Field(gt=0)  # ... or every N seconds
    report_top_domains: int = Field(ge=1)  # domains listed in the link-rot report (crawl/report.py)
    # Where a crawl whose --out is an object store works before publishing (crawl/mirror.py);
    # None: a folder under the system temp dir named after a hash of --out.
    local_work_dir: str | None
    # Where pages come from: live fetches, an archive (`archive` section), or live first and the
    # archive for URLs that failed live (crawl/archive.py RECOVERABLE_OUTCOMES; never robots).
    source: Literal["live", "archive", "live_then_archive"]
    archive: ArchiveConfig

    @field_validator("static_hosts")
    @classmethod
    def _static_hosts_are_ips(cls, value: dict[str, str]) -> dict[str, str]:
        for host, ip in value.items():
            ipaddress.ip_address(ip)  # ValueError names the bad address
        return {host.lower().rstrip("."): ip for host, ip in value.items()}

    @field_validator("proxy")
    @classmethod
    def _proxy_is_a_plain_http_url(cls, value: str | None) -> str | None:
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
            raise ValueError(f"proxy must look like http://host:port, got {value!r}")
        if parts.username or parts.password:
            raise ValueError("credentials in the URL are not supported (use an unauthenticated proxy)")
        parts.port  # noqa: B018 - raises ValueError on a bad port
        return value

    @field_validator("html_content_types", "sniff_content_types")
    @classmethod
    def _lower_case(cls, value: list[str]) -> list[str]:
        return [v.strip().lower() for v in value]
