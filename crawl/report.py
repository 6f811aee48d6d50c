"""The link-rot report of a crawl (`crawl_report`): what became of the links Reddit posted.

Computed from the crawl log alone (crawl/crawl_log.py, one row per input URL): outcomes by the
linked URL's domain (the top N by URLs; the rest summed as `other_domains`, so the rows add up to
the total), outcomes by the year of the URL's first Reddit post (`unknown` where the log has no
post time: logs written before the `first_created_utc` column), the share recovered from a web
archive (outcome `ok` with source `archive`) and the share lost for good (every outcome but `ok`,
after the archive was tried where the crawl tried it). A log without the `source` column (written
before archive recovery) counts as live.

The crawl writes it into `DIR/crawl_stats.json` (key `crawl_report`), as Markdown tables in
`DIR/crawl_report.md` and as a chart in `DIR/crawl_report.png` (docs/contracts.md);
`webtext crawl-report DIR` (`update_crawl_stats`) writes all three anew for a finished crawl folder,
e.g. one crawled by an older version.

Memory: the log parts are streamed in record batches; each batch is reduced in Arrow to counts per
(domain, outcome, source) and (year, outcome, source), and those counts are merged as they come.
Only counters are kept, never URLs, so memory grows with the number of distinct domains (one
counts row per domain and outcome it saw: at 45M URLs over a few million domains, some hundred
MB), not with the number of URLs. Every log row counts once: a URL logged twice (only older
versions left such rows, `duplicate_rows` in the stats) counts twice.
"""

from __future__ import annotations

import io
import json
import os
from collections import Counter

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import PercentFormatter  # noqa: E402
import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from core.fsio import atomic_write_bytes, atomic_write_text  # noqa: E402
from crawl.crawl_log import log_parts  # noqa: E402

CRAWL_STATS = "crawl_stats.json"
REPORT_MARKDOWN = "crawl_report.md"
REPORT_CHART = "crawl_report.png"
UNKNOWN_YEAR = "unknown"
BATCH_ROWS = 65_536
# Merge the per-batch counts once they hold this many rows (or twice the merged table's rows).
MERGE_ROWS = 1_000_000
# scheme://[userinfo@]host: the host of a URL as crawl.urls.domain_of_normalized takes it (no port).
_HOST = r"^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(?P<host>\[[^\]/?#]*\]|[^:/?#]*)"
_LAST_SECOND = 253402300799  # 9999-12-31T23:59:59Z; harvest keeps post times up to year 9999
_CATEGORIES = (("ok_live", "fetched live", "#4C72B0"), ("recovered_from_archive", "recovered from an archive", "#55A868"),
               ("lost", "lost for good", "#DD8452"))


class _GroupedCounts:
    """Row counts per key tuple, kept as an Arrow table and merged as batches arrive."""

    def __init__(self, keys: list[str]):
        self.keys = keys
        self._tables: list[pa.Table] = []
        self._rows = 0
        self._merged_rows = 0

    def add(self, table: pa.Table) -> None:
        counts = table.group_by(self.keys).aggregate([([], "count_all")])
        self._tables.append(counts.rename_columns([*self.keys, "urls"]))
        self._rows += counts.num_rows
        if self._rows > max(MERGE_ROWS, 2 * self._merged_rows):
            self._merge()

    def _merge(self) -> None:
        tables = [table for table in self._tables if table.num_rows]
        if not tables:
            self._tables, self._rows = [], 0
            return
        merged = pa.concat_tables(tables).group_by(self.keys).aggregate([("urls", "sum")])
        merged = merged.rename_columns([*self.keys, "urls"])
        self._tables, self._rows, self._merged_rows = [merged], merged.num_rows, merged.num_rows

    def table(self) -> pa.Table:
        self._merge()
        if self._tables:
            return self._tables[0]
        return pa.table({**{key: pa.array([], pa.string()) for key in self.keys}, "urls": pa.array([], pa.int64())})


def _domains(urls: pa.Array) -> pa.Array:
    """Registered host of each URL (lower-case, no `www.`, no port), vectorised; '' if none."""
    hosts = pc.struct_field(pc.extract_regex(urls, _HOST), "host")
    hosts = pc.replace_substring_regex(pc.utf8_lower(hosts), r"\.$", "")
    return pc.fill_null(pc.replace_substring_regex(hosts, r"^www\.", "", max_replacements=1), "")


def _years(first_created_utc: pa.Array) -> pa.Array:
    """UTC year of each post time (epoch seconds) as text; `unknown` for null or out of range."""
    valid = pc.and_(pc.greater(first_created_utc, 0), pc.less_equal(first_created_utc, _LAST_SECOND))
    seconds = pc.if_else(valid, first_created_utc, pa.scalar(None, pa.int64()))
    years = pc.year(pc.cast(seconds, pa.timestamp("s", tz="UTC")))
    return pc.fill_null(pc.cast(years, pa.string()), UNKNOWN_YEAR)


def _column(batch: pa.RecordBatch, name: str, kind: pa.DataType) -> pa.Array:
    index = batch.schema.get_field_index(name)
    return batch.column(index) if index >= 0 else pa.nulls(batch.num_rows, kind)


def count_log(parts: list[str]) -> tuple[_GroupedCounts, _GroupedCounts]:
    """Counts per (domain, outcome, source) and per (year, outcome, source) over the log `parts`.

    ValueError naming a part that cannot be read."""
    by_domain = _GroupedCounts(["domain", "outcome", "source"])
    by_year = _GroupedCounts(["year", "outcome", "source"])
    for path in parts:
        try:
            log_file = pq.ParquetFile(path)
            columns = [name for name in ("url", "outcome", "source", "first_created_utc")
                       if name in log_file.schema_arrow.names]
            for batch in log_file.iter_batches(batch_size=BATCH_ROWS, columns=columns):
                outcome = pc.fill_null(_column(batch, "outcome", pa.string()), "unknown")
                source = pc.fill_null(_column(batch, "source", pa.string()), "live")
                by_domain.add(pa.table({"domain": _domains(_column(batch, "url", pa.string())),
                                        "outcome": outcome, "source": source}))
                by_year.add(pa.table({"year": _years(_column(batch, "first_created_utc", pa.int64())),
                                      "outcome": outcome, "source": source}))
        except (OSError, pa.ArrowException) as exc:
            raise ValueError(f"crawl log part {path} is unreadable ({exc})") from None
    return by_domain, by_year


def _share(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 0.0


def summarise(counts: list[tuple[str, str, int]]) -> dict:
    """URLs, fetched live, recovered from an archive and lost (with shares) from (outcome, source, n)."""
    outcomes: Counter = Counter()
    recovered = 0
    for outcome, source, n in counts:
        outcomes[outcome] += n
        if outcome == "ok" and source == "archive":
            recovered += n
    urls = sum(outcomes.values())
    lost = urls - outcomes["ok"]
    return {"urls": urls, "ok_live": outcomes["ok"] - recovered, "recovered_from_archive": recovered, "lost": lost,
            "recovered_share": _share(recovered, urls), "lost_share": _share(lost, urls),
            "outcomes": dict(sorted(outcomes.items(), key=lambda item: (-item[1], item[0])))}


def _by_group(table: pa.Table, key: str) -> dict[str, list[tuple[str, str, int]]]:
    groups: dict[str, list[tuple[str, str, int]]] = {}
    for value, outcome, source, n in zip(*(table.column(name).to_pylist() for name in (key, "outcome", "source", "urls"))):
        groups.setdefault(value, []).append((outcome, source, n))
    return groups


def build_report(by_domain: pa.Table, by_year: pa.Table, top_domains: int) -> dict:
    """The report from the grouped counts of `count_log` (tables of key, outcome, source, urls)."""
    years = _by_group(by_year, "year")
    total = summarise([row for rows in years.values() for row in rows])
    year_order = sorted(years, key=lambda year: (year == UNKNOWN_YEAR, year))
    totals = by_domain.group_by("domain").aggregate([("urls", "sum")])
    ranked = totals.sort_by([("urls_sum", "descending"), ("domain", "ascending")])
    top = ranked.column("domain").to_pylist()[:top_domains]
    domains = _by_group(by_domain.filter(pc.is_in(by_domain.column("domain"), pa.array(top, pa.string()))), "domain")
    by_domain_rows = [{"domain": domain, **summarise(domains[domain])} for domain in top]
    other = _remainder(total, by_domain_rows)
    return {
        **total,
        "by_year": [{"year": year, **summarise(years[year])} for year in year_order],
        "top_domains": top_domains,
        "domains": totals.num_rows,
        "by_domain": by_domain_rows,
        "other_domains": {"domains": max(totals.num_rows - len(top), 0), **other},
    }


def _remainder(total: dict, rows: list[dict]) -> dict:
    """The summary of what `total` holds beyond `rows` (the domains outside the top N)."""
    outcomes = Counter(total["outcomes"])
    recovered = total["recovered_from_archive"]
    for row in rows:
        outcomes.subtract(row["outcomes"])
        recovered -= row["recovered_from_archive"]
    counts = [(outcome, "live", n) for outcome, n in outcomes.items() if n and outcome != "ok"]
    counts += [("ok", "archive", recovered), ("ok", "live", outcomes["ok"] - recovered)]
    return summarise([row for row in counts if row[2]])


def crawl_report(parts: list[str], top_domains: int) -> dict:
    """The link-rot report over the crawl log `parts` (see the module docstring)."""
    by_domain, by_year = count_log(parts)
    return {**build_report(by_domain.table(), by_year.table(), top_domains), "log_parts": len(parts)}


def _percent(share: float) -> str:
    return f"{share:.1%}"


def main_losses(outcomes: dict[str, int], n: int = 3) -> str:
    """The `n` most frequent outcomes other than `ok`, e.g. `dns 5, http_4xx 3`."""
    lost = [(outcome, count) for outcome, count in outcomes.items() if outcome != "ok" and count]
    return ", ".join(f"{outcome} {count:,}" for outcome, count in lost[:n]) or "-"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])


def _counts(group: dict) -> list[str]:
    return [f"{group['urls']:,}", f"{group['ok_live']:,}", f"{group['recovered_from_archive']:,}", f"{group['lost']:,}",
            _percent(group["lost_share"]), main_losses(group["outcomes"])]


COUNT_COLUMNS = ["URLs", "fetched live", "recovered from archive", "lost", "lost share", "main losses"]


def report_markdown(report: dict) -> str:
    """The report as Markdown: a summary line, then tables of outcomes, post years and domains."""
    other = report["other_domains"]
    domain_rows = [[i + 1, f"`{row['domain']}`" if row["domain"] else "(no host)", *_counts(row)]
                   for i, row in enumerate(report["by_domain"])]
    if other["urls"]:
        domain_rows.append(["", f"{other['domains']:,} other domains", *_counts(other)])
    outcome_rows = [[f"`{outcome}`", f"{n:,}", _percent(n / report["urls"])] for outcome, n in report["outcomes"].items()]
    year_rows = [[row["year"], *_counts(row)] for row in report["by_year"]]
    return f"""# Link rot: what became of the crawled links

{report['urls']:,} URLs in the crawl log ({report['log_parts']} part(s)):
{report['ok_live']:,} ({_percent(_share(report['ok_live'], report['urls']))}) fetched live,
{report['recovered_from_archive']:,} ({_percent(report['recovered_share'])}) recovered from a web archive,
{report['lost']:,} ({_percent(report['lost_share'])}) lost for good (no page, live or archived).

![link rot by Reddit post year and domain]({REPORT_CHART})

## Outcomes

{_table(["outcome", "URLs", "share"], outcome_rows) if outcome_rows else "No URLs."}

## By year of the first Reddit post

{_table(["year", *COUNT_COLUMNS], year_rows) if year_rows else "No URLs."}

## Top {len(report['by_domain'])} of {report['domains']:,} domains

{_table(["#", "domain", *COUNT_COLUMNS], domain_rows) if domain_rows else "No URLs."}
"""


def _stacked_shares(ax, labels: list[str], groups: list[dict], horizontal: bool) -> None:
    """One bar per group, split into the shares fetched live / recovered / lost, labelled with its URLs."""
    positions = np.arange(len(groups))
    bottom = np.zeros(len(groups))
    for key, name, colour in _CATEGORIES:
        shares = np.array([group[key] / group["urls"] if group["urls"] else 0.0 for group in groups])
        if horizontal:
            ax.barh(positions, shares, left=bottom, color=colour, label=name)
        else:
            ax.bar(positions, shares, bottom=bottom, color=colour, label=name)
        bottom += shares
    for position, group in zip(positions, groups):
        if horizontal:
            ax.text(1.01, position, f"{group['urls']:,}", va="center", fontsize=8)
        else:
            ax.text(position, 1.01, f"{group['urls']:,}", ha="center", va="bottom", fontsize=7)
    if horizontal:
        ax.set_yticks(positions, labels)
        ax.invert_yaxis()
        ax.set_xlim(0, 1.12)
        ax.xaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_xlabel("share of URLs (number of URLs at the right)")
        ax.tick_params(axis="y", labelsize=8)
    else:
        ax.set_xticks(positions, labels, rotation=45 if len(groups) > 8 else 0, fontsize=8)
        ax.set_ylim(0, 1.12)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.set_ylabel("share of URLs")


def report_chart(report: dict, path: str) -> None:
    """Shares fetched live / recovered / lost by post year (top) and for the top domains (bottom)."""
    domains = report["by_domain"]
    fig, (by_year, by_domain) = plt.subplots(
        2, 1, figsize=(8, 4.2 + 0.28 * max(len(domains), 3)), height_ratios=[3.2, 0.28 * max(len(domains), 3) + 0.6])
    _stacked_shares(by_year, [row["year"] for row in report["by_year"]], report["by_year"], horizontal=False)
    by_year.set_title(f"Link rot of {report['urls']:,} URLs by year of the first Reddit post: "
                      f"{report['lost_share']:.1%} lost, {report['recovered_share']:.1%} from an archive", fontsize=10)
    by_year.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12 if len(report["by_year"]) <= 8 else -0.2),
                   ncol=3, fontsize=8, frameon=False)
    _stacked_shares(by_domain, [row["domain"] or "(no host)" for row in domains], domains, horizontal=True)
    by_domain.set_title(f"Top {len(domains)} of {report['domains']:,} domains", fontsize=10)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def write_crawl_report(out: str, top_domains: int) -> dict:
    """The report over every log part in `out/crawl_log`; writes `out/crawl_report.md` and
    `out/crawl_report.png` and returns the report (for crawl_stats.json's `crawl_report`)."""
    report = crawl_report(log_parts(os.path.join(out, "crawl_log")), top_domains)
    atomic_write_text(os.path.join(out, REPORT_MARKDOWN), report_markdown(report))
    report_chart(report, os.path.join(out, REPORT_CHART))
    return report


def update_crawl_stats(out: str, top_domains: int) -> dict:
    """Write the report of the crawl folder `out` anew: crawl_report.md, crawl_report.png and the
    `crawl_report` of `out/crawl_stats.json` (the rest of that file is kept). For a folder no
    crawl is writing. FileNotFoundError / ValueError (one line) without a readable stats file."""
    path = os.path.join(out, CRAWL_STATS)
    try:
        with open(path, encoding="utf-8") as fh:
            stats = json.load(fh)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} not found: {out} is not the --out folder of a finished `webtext crawl`") from None
    except ValueError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); rerun `webtext crawl` into {out} to rewrite it") from None
    if not isinstance(stats, dict):
        raise ValueError(f"{path} holds no JSON object; rerun `webtext crawl` into {out} to rewrite it")
    stats["crawl_report"] = write_crawl_report(out, top_domains)
    atomic_write_text(path, json.dumps(stats, indent=2, sort_keys=True) + "\n")
    return stats["crawl_report"]
