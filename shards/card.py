"""The generated dataset card `DIR/README.md` with its PNG charts.

The card is computed from the finished shards and the manifest's stage counts, so it
describes exactly the rows a reader gets: sizes per split, what every stage dropped and
why, where the text comes from, and how long documents are. Its YAML front matter makes DIR
a Hugging Face dataset folder: `datasets.load_dataset(DIR)` reads the splits (the
`configs` name their files, so nothing else in DIR is mistaken for data), and the Hub shows
language, size and license. Where the build found its crawl's `crawl_stats.json` (next to the
WARC folder, `crawl_report_beside`), the card also summarises the crawl's link rot.
"""

from __future__ import annotations

import io
import json
import logging
import posixpath
from collections import Counter
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, MaxNLocator, NullFormatter  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import yaml  # noqa: E402
from apache_beam.io.filesystems import FileSystems  # noqa: E402

from core import fsio  # noqa: E402
from shards.split import SPLITS  # noqa: E402

log = logging.getLogger(__name__)

CARD = "README.md"
LENGTH_CHART = "card_lengths.png"
DOMAIN_CHART = "card_domains.png"
FUNNEL_CHART = "card_funnel.png"
CRAWL_STATS = "crawl_stats.json"
# What the card's link-rot section reads of a crawl_report (crawl/report.py).
CRAWL_REPORT_KEYS = {"urls", "ok_live", "recovered_from_archive", "lost", "recovered_share", "lost_share", "by_year"}
# Our split folders under Hugging Face's split names (`datasets` calls validation `validation`).
HF_SPLITS = {"train": "train", "val": "validation", "test": "test"}
# The Hub's size_categories, by number of documents (upper bound, label).
SIZE_CATEGORIES = [(10 ** 3, "n<1K"), (10 ** 4, "1K<n<10K"), (10 ** 5, "10K<n<100K"), (10 ** 6, "100K<n<1M"),
                   (10 ** 7, "1M<n<10M"), (10 ** 8, "10M<n<100M"), (10 ** 9, "100M<n<1B"), (10 ** 10, "1B<n<10B"),
                   (10 ** 11, "10B<n<100B"), (10 ** 12, "100B<n<1T")]


@dataclass
class CorpusStats:
    documents: int = 0
    words: int = 0
    chars: int = 0
    words_per_doc: list = field(default_factory=list)
    domains: Counter = field(default_factory=Counter)
    langs: Counter = field(default_factory=Counter)
    # documents with Reddit provenance (a score); the others come from WARCs without it (null columns)
    with_provenance: int = 0


def most_frequent(counter: Counter, n: int) -> list[tuple[str, int]]:
    """Most frequent values, ties broken by name so the card is deterministic."""
    return sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0])))[:n]


def corpus_stats(out: str, shards: list[dict]) -> CorpusStats:
    """Read only the few columns the card needs, one row group at a time."""
    stats = CorpusStats()
    lengths = []
    for shard in shards:
        with FileSystems.open(fsio.join(out, shard["path"])) as fh:
            for batch in pq.ParquetFile(fh).iter_batches(columns=["domain", "lang", "n_words", "n_chars", "score"]):
                stats.with_provenance += batch.num_rows - batch.column("score").null_count
                cols = batch.to_pydict()
                stats.domains.update(cols["domain"])
                stats.langs.update(cols["lang"])
                lengths.append(np.asarray(cols["n_words"], dtype=np.int64))
                stats.chars += int(sum(cols["n_chars"]))
    stats.words_per_doc = np.concatenate(lengths) if lengths else np.zeros(0, dtype=np.int64)
    stats.documents = int(stats.words_per_doc.size)
    stats.words = int(stats.words_per_doc.sum())
    return stats


def _save(fig, path: str) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    fsio.atomic_write_bytes(path, buf.getvalue())


def length_chart(words: np.ndarray, path: str) -> None:
    """Words per document; log-spaced bins when lengths span more than a factor of 20."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    log_scale = False
    if words.size:
        words = np.maximum(words, 1)
        low, high = int(words.min()), int(words.max()) + 1
        log_scale = high / low > 20
        bins = np.geomspace(low, high, 40) if log_scale else np.linspace(low, high, min(40, high - low + 1))
        ax.hist(words, bins=bins, color="#4C72B0", edgecolor="white")
        median = float(np.median(words))
        ax.axvline(median, color="#C44E52", linestyle="--", label=f"median {median:,.0f} words")
        ax.set_ylim(top=ax.get_ylim()[1] * 1.15)  # room for the legend above the bars
        ax.legend(loc="upper right")
    if log_scale:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("words per document" + (" (log scale)" if log_scale else ""))
    ax.set_ylabel("documents")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"Document length ({words.size:,} documents)")
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)


def domain_chart(top: list[tuple[str, int]], total: int, path: str) -> None:
    fig, ax = plt.subplots(figsize=(7, 0.32 * max(len(top), 3) + 1.2))
    names = [d or "(none)" for d, _ in top][::-1]
    values = [n for _, n in top][::-1]
    bars = ax.barh(names, values, color="#55A868")
    for bar, n in zip(bars, values):
        ax.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, f" {n:,} ({n / max(total, 1):.1%})",
                va="center", fontsize=8)
    ax.set_xlabel("documents")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(f"Top {len(top)} domains")
    ax.set_xlim(0, max(values or [1]) * 1.3)
    ax.tick_params(axis="y", labelsize=8)
    _save(fig, path)


def funnel_chart(stages: dict, path: str) -> None:
    """Records left after each stage, with what the stage dropped."""
    names = list(stages)
    outs = [stages[name]["out"] for name in names]
    drops = [stages[name]["dropped_total"] for name in names]
    fig, ax = plt.subplots(figsize=(7, 0.45 * max(len(names), 3) + 1.2))
    y = np.arange(len(names))[::-1]
    ax.barh(y, outs, color="#4C72B0", label="kept")
    ax.barh(y, drops, left=outs, color="#DD8452", label="dropped")
    for yi, kept, dropped in zip(y, outs, drops):
        ax.text(kept + dropped, yi, f" {kept:,} kept, {dropped:,} dropped", va="center", fontsize=8)
    ax.set_yticks(y, names)
    ax.set_xlabel("records")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("What each stage kept and dropped")
    ax.set_xlim(0, max([kept + dropped for kept, dropped in zip(outs, drops)] or [1]) * 1.45)
    ax.legend(loc="lower right", fontsize=8)
    _save(fig, path)


def size_category(documents: int) -> str:
    return next((label for bound, label in SIZE_CATEGORIES if documents < bound), "n>1T")


def audit_folders(manifest: dict) -> list[str]:
    """The folders of the audit table of dropped documents (`dropped/`) the manifest lists, if it has rows."""
    files = manifest.get("dropped", {}).get("files", [])
    return sorted({posixpath.dirname(info["path"]) for info in files if info["rows"]})


def loadable_splits(manifest: dict) -> list[str]:
    """The splits `datasets` can load: those with documents (it fails on an empty one); all
    three when none has any, so the card still names the layout."""
    return [split for split in SPLITS if manifest["splits"][split]["rows"]] or list(SPLITS)


def front_matter(manifest: dict) -> str:
    """The card's YAML metadata block: the splits are the default config, an audit table a second
    one (so `load_dataset(DIR)` never mixes it in). The text of web pages comes under each page's
    own terms, which nobody checked, so the license is `other` (the card's License section says why)."""
    splits = [{"split": HF_SPLITS[split], "path": f"{split}/*.parquet"} for split in loadable_splits(manifest)]
    configs = [{"config_name": "default", "default": True, "data_files": splits}]
    configs += [{"config_name": folder, "data_files": [{"split": folder, "path": f"{folder}/*.parquet"}]}
                for folder in audit_folders(manifest)]
    metadata = {
        "pretty_name": "WebText rebuild",
        "language": manifest["config"]["extract"]["languages"],
        "license": "other",
        "license_name": "unverified-web-content",
        "license_link": CARD,
        "size_categories": [size_category(manifest["rows"])],
        "task_categories": ["text-generation"],
        "task_ids": ["language-modeling"],
        "configs": configs,
    }
    return "---\n" + yaml.safe_dump(metadata, sort_keys=False, allow_unicode=True) + "---\n\n"


def crawl_report_beside(warc_root: str) -> dict | None:
    """The link-rot report (`crawl_report`, crawl/report.py) of the crawl whose WARC folder is
    `warc_root`: from `crawl_stats.json` in that folder or, for a crawl's `warc/` folder, in its
    parent. None where there is none (WARCs from elsewhere, crawls by older versions); a stats
    file that cannot be read, or whose report lacks what the card shows, is logged and skipped."""
    root = warc_root.rstrip("/")
    candidates = [fsio.join(root, CRAWL_STATS)]
    if posixpath.basename(root) == "warc":
        candidates.append(fsio.join(posixpath.dirname(root), CRAWL_STATS))
    for path in candidates:
        if not FileSystems.exists(path):
            continue
        try:
            with FileSystems.open(path) as fh:
                report = json.loads(fh.read().decode("utf-8")).get("crawl_report")
        except (OSError, ValueError, AttributeError) as exc:
            log.warning("%s is unreadable (%s): the dataset card leaves out the crawl's link rot", path, exc)
            return None
        if report is not None and not (isinstance(report, dict) and CRAWL_REPORT_KEYS <= set(report)):
            log.warning("%s has a crawl_report without %s: the dataset card leaves out the crawl's link rot",
                        path, ", ".join(sorted(CRAWL_REPORT_KEYS - set(report if isinstance(report, dict) else ()))))
            return None
        return report
    return None


def link_rot_section(report: dict | None) -> str:
    """The card's summary of the crawl's link rot (empty without a report)."""
    if not report:
        return ""
    year_rows = [[row["year"], f"{row['urls']:,}", f"{row['ok_live']:,}", f"{row['recovered_from_archive']:,}",
                  f"{row['lost']:,}", f"{row['lost_share']:.1%}"] for row in report["by_year"]]
    live_share = report["ok_live"] / report["urls"] if report["urls"] else 0.0
    return f"""## Link rot

The crawl behind these documents tried {report['urls']:,} links posted on Reddit: {report['ok_live']:,}
({live_share:.1%}) were fetched live, {report['recovered_from_archive']:,} ({report['recovered_share']:.1%}) were
recovered from a web archive and {report['lost']:,} ({report['lost_share']:.1%}) were lost for good (no page, live
or archived). Documents come from the fetched pages only. By the year of each link's first Reddit post:

{_table(["year", "links", "fetched live", "recovered from archive", "lost", "lost share"], year_rows)}

`crawl_report.md` and `crawl_report.png` in the crawl folder break this down by domain and outcome.

"""


def provenance_note(stats: CorpusStats) -> str:
    """A line for the Sources section where some documents lack Reddit provenance, else nothing."""
    missing = stats.documents - stats.with_provenance
    if not missing:
        return ""
    return (f"{missing:,} of {stats.documents:,} documents have no Reddit provenance (`score`, `post_ids`, "
            "`subreddits`, `created_utc` are null): their WARCs did not carry it and the build was given no "
            "`--urls` for them (or kept them with `build.unknown_urls: keep`).\n\n")


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_card(manifest: dict, stats: CorpusStats, n_domains: int) -> str:
    splits = manifest["splits"]
    stages = manifest["stages"]
    version = manifest["code_version"]
    build = manifest["config"]["build"]
    top = most_frequent(stats.domains, n_domains)
    split_rows = [[name, f"{split['rows']:,}", split["shards"], f"{split['bytes'] / 1e6:,.2f}"]
                  for name, split in splits.items()]
    stage_rows = [[name, f"{stage['in']:,}", f"{stage['out']:,}", f"{stage['dropped_total']:,}"]
                  for name, stage in stages.items()]
    drop_rows = [[name, reason, f"{count:,}"] for name, stage in stages.items()
                 for reason, count in sorted(stage["dropped"].items(), key=lambda item: -item[1])]
    domain_rows = [[i + 1, d or "(none)", f"{n:,}", f"{n / max(stats.documents, 1):.1%}"] for i, (d, n) in enumerate(top)]
    lang_rows = [[lang or "(none)", f"{n:,}"] for lang, n in most_frequent(stats.langs, 10)]
    schema_rows = [[f"`{column['name']}`", f"`{column['type']}`", column["description"]]
                   for column in manifest["schema"]]
    median = int(np.median(stats.words_per_doc)) if stats.documents else 0
    commit = version.get("git_commit") or "unknown"
    hf_splits = ", ".join(HF_SPLITS[split] for split in loadable_splits(manifest))
    audit_configs = "".join(f"; the documents the build dropped, with stage and reason, are the config `{folder}` "
                            f"(`load_dataset(\"<this folder>\", \"{folder}\")`)" for folder in audit_folders(manifest))
    return front_matter(manifest) + f"""# WebText rebuild: dataset card

Generated by `webtext build` (webtext {version['webtext']}, commit `{commit}`{' + local changes' if version.get('git_dirty') else ''})
on {manifest['created']}. Config hash `{manifest['config_hash'][:16]}`, {len(manifest['inputs'])} WARC input file(s).
Check the files against `manifest.json` with `webtext verify <this folder>`.

Web pages linked from Reddit posts with at least the configured karma, crawled, reduced to
their main text, filtered, with Wikipedia and exact / near duplicates removed, as in the
WebText corpus of the GPT-2 paper (Radford et al., 2019).

## Size

{stats.documents:,} documents, {stats.words:,} words, {stats.chars:,} characters
(median {median:,} words per document).

{_table(["split", "documents", "shards", "MB (Parquet, zstd)"], split_rows)}

Splits are a salted hash of each document's normalised URL (val {build['val_fraction']:.0%},
test {build['test_fraction']:.0%}, salt `{build['split_salt']}`); the {build['min_val_docs']} / {build['min_test_docs']}
documents with the smallest hashes go to val / test even when the fractions round to nothing.

Read it with `pandas.read_parquet("<this folder>/train")`, `pyarrow.dataset.dataset("<this folder>/train")`
or DuckDB `SELECT * FROM '<this folder>/train/*.parquet'`; with Hugging Face `datasets`,
`load_dataset("<this folder>")` gives the splits {hf_splits} (validation is the `val` folder; `datasets`
cannot load an empty split, so one without documents is left out){audit_configs}.

## Pipeline

Every record that entered a stage either left it or was dropped for a named reason.

{_table(["stage", "in", "out", "dropped"], stage_rows)}

![records kept and dropped per stage]({FUNNEL_CHART})

### Drops by reason

{_table(["stage", "reason", "records"], drop_rows) if drop_rows else "Nothing was dropped."}

{link_rot_section(manifest.get("crawl_report"))}## Sources

{provenance_note(stats)}{_table(["#", "domain", "documents", "share"], domain_rows) if domain_rows else "No documents."}

![top domains]({DOMAIN_CHART})

Languages:

{_table(["lang", "documents"], lang_rows) if lang_rows else "No documents."}

## Document length

![document length histogram]({LENGTH_CHART})

## Schema

{_table(["column", "type", "meaning"], schema_rows)}

## License

Every document is the text of a web page and stays under its authors' copyright and the terms
of the site it came from, which this build did not check. No license to the text is granted
here: hence `license: other` in the metadata above. Check the terms before you redistribute it.
"""


def write_card(out: str, manifest: dict, n_domains: int) -> None:
    stats = corpus_stats(out, manifest["shards"])
    length_chart(stats.words_per_doc, fsio.join(out, LENGTH_CHART))
    domain_chart(most_frequent(stats.domains, n_domains), stats.documents, fsio.join(out, DOMAIN_CHART))
    funnel_chart(manifest["stages"], fsio.join(out, FUNNEL_CHART))
    fsio.atomic_write_text(fsio.join(out, CARD), render_card(manifest, stats, n_domains))
