"""End to end on the bundled offline sample: the real `webtext` CLI, one process per stage.

harvest -> crawl --replay -> build once per session, checked against the sample's ground truth
(`reddit/RS_sample.expected.json`, `web/routes.json` of the generated sample), then a short
tokenizer -> tokenize -> train -> sample chain on the shards that build wrote.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

import pandas as pd
import pytest

from crawl.config import HarvestConfig
from crawl.urls import is_wikipedia
from tests.sample.truth import BUNDLED, dump_truth

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
DUMP = BUNDLED.dump
WEB = BUNDLED.web
EXPECTED = dump_truth()
ROUTES = json.loads((WEB / "routes.json").read_text())["routes"]

# The crawl settings the sample's expected outcomes assume (sample/README.md).
CRAWL_SETTINGS = ["--set", "crawl.download_timeout=2", "--set", "crawl.max_body_bytes=2000000",
                  "--set", "crawl.retry_backoff_base=0.5"]
# A Wikipedia mirror host declared as such for the build: its pages must go by final URL.
MIRROR = "wikimirror.example"
WIKI_DOMAINS = HarvestConfig().wikipedia_domains + [MIRROR]
BUILD_SETTINGS = ["--set", f"harvest.wikipedia_domains={json.dumps(WIKI_DOMAINS)}", "--set", "build.min_val_docs=4"]
TRAIN_SETTINGS = [
    "--set", "tokenizer.vocab_size=512", "--set", "tokenizer.workers=1",
    "--set", "model.preset=tiny", "--set", "model.block_size=64",
    "--set", "train.batch_tokens=2048", "--set", "train.micro_batch_size=32",
    "--set", "train.max_steps=120", "--set", "train.warmup_steps=10",
    "--set", "train.learning_rate=6e-3", "--set", "train.min_lr=6e-4",
    "--set", "train.eval_interval=30", "--set", "train.eval_batches=4",
    "--set", "train.checkpoint_interval=0", "--set", "train.log_interval=30",
    "--set", "train.peak_flops=1e12", "--set", "train.tensorboard=false",
    "--set", "train.num_threads=1", "--set", "sample.max_tokens=30",
]


def webtext(*args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "webtext", *args], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, f"webtext {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def stages(path: Path) -> dict[str, dict]:
    return json.loads(path.read_text())["stages"]


def route_key(url: str) -> str:
    """`host/path?query` as routes.json keys it (www. aliases folded)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").removeprefix("www.")
    return host + parts.path + (f"?{parts.query}" if parts.query else "")


def kind_of(url: str) -> str:
    return ROUTES.get(route_key(url), {}).get("note", "")


def shared_dir(tmp_path_factory, name: str, make) -> Path:
    """`make(folder)` once per test run: pytest-xdist workers each run session fixtures, so they
    share the folder under a file lock instead of building the chain twice."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the run's folder, common to all workers
    out = root / name
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (out / ".done").exists():
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            make(out)
            (out / ".done").touch()
    return out


def _build(out: Path) -> None:
    webtext("harvest", "--dumps", str(DUMP), "--out", str(out / "urls"))
    webtext("crawl", "--urls", str(out / "urls"), "--out", str(out / "crawl"), "--replay", str(WEB), *CRAWL_SETTINGS)
    webtext("build", "--warc", str(out / "crawl"), "--out", str(out / "dataset"), *BUILD_SETTINGS)


@pytest.fixture(scope="session")
def built(tmp_path_factory) -> dict:
    out = shared_dir(tmp_path_factory, "e2e-build", _build)
    rows = pd.concat([pd.read_parquet(out / "dataset" / split) for split in ("train", "val", "test")],
                     ignore_index=True)
    dropped = pd.read_parquet(out / "dataset" / "dropped")
    return {"out": out, "rows": rows, "dropped": dropped, "kinds": {url: kind_of(url) for url in rows["final_url"]}}


@pytest.fixture(scope="session")
def trained(tmp_path_factory, built) -> dict:
    dataset = built["out"] / "dataset"

    def train(out: Path) -> None:
        webtext("tokenizer", "train", "--shards", str(dataset), "--out", str(out / "tokenizer"), *TRAIN_SETTINGS)
        webtext("tokenize", "--shards", str(dataset), "--tokenizer", str(out / "tokenizer"),
                "--out", str(out / "tokens"), *TRAIN_SETTINGS)
        webtext("train", "--tokens", str(out / "tokens"), "--out", str(out / "run"), *TRAIN_SETTINGS)
        sampled = webtext("sample", "--checkpoint", str(out / "run"), "--prompt", "The history of the",
                          "--seed", "7", *TRAIN_SETTINGS)
        (out / "sample.txt").write_text(sampled.stdout)

    out = shared_dir(tmp_path_factory, "e2e-train", train)
    log = [json.loads(line) for line in (out / "run" / "log.jsonl").read_text().splitlines()]
    return {"log": log, "sample": (out / "sample.txt").read_text()}


def _truth_by_route() -> dict[str, dict]:
    return {route_key(u["url"]): u for u in EXPECTED["urls"].values()}


def _body(route: str) -> str:
    return (WEB / "pages" / ROUTES[route]["body"]).read_text(encoding="utf-8", errors="replace")


def _duplicate_groups() -> list[list[str]]:
    """Harvested routes serving the same article: exact copies share a body file, a syndicated
    near copy shares its headline with its original (the page title, site name before or after)."""
    harvested = _truth_by_route()
    pages = [r for r, spec in ROUTES.items()
             if r in harvested and spec.get("note") in ("article", "exact_duplicate", "near_duplicate")]
    by_body = defaultdict(list)
    for route in pages:
        by_body[ROUTES[route]["body"]].append(route)
    groups = [g for g in by_body.values() if len(g) > 1]
    for copy in [r for r in pages if ROUTES[r]["note"] == "near_duplicate"]:
        headline = re.search(r"<h1[^>]*>([^<]*)</h1>", _body(copy)).group(1)
        title = re.compile(r"<title>(?:[^<]* - )?" + re.escape(headline) + r"\s*(?:[-|:\u2013\u2014]|&#\d+;|</title>)")
        groups.append([r for r in pages if ROUTES[r]["note"] == "article" and title.search(_body(r))] + [copy])
    assert len(groups) == 7 and all(len(g) == 2 for g in groups), groups
    return groups


def _assert_best_survivor_kept(built, groups, stage):
    dropped = stages(built["out"] / "dataset" / "build_stats.json")[stage]["dropped_total"]
    assert dropped >= len(groups), f"{stage} dropped {dropped}"
    truth = _truth_by_route()
    kept = {route_key(u) for u in built["rows"]["url"]}
    kept_ids = {route_key(u): doc_id for u, doc_id in zip(built["rows"]["url"], built["rows"]["id"])}
    dropped = {route_key(u): (s, d) for u, s, d in zip(built["dropped"]["url"], built["dropped"]["stage"],
                                                        built["dropped"]["duplicate_of"])}
    for group in groups:
        best = min(group, key=lambda r: (-truth[r]["score"], truth[r]["first_created_utc"], truth[r]["url"]))
        assert [r for r in group if r in kept] == [best], f"duplicate group {group}: kept {kept & set(group)}"
        for removed in set(group) - {best}:  # the audit table says why, and which document was kept instead
            assert dropped[removed] == (stage, kept_ids[best]), (removed, dropped.get(removed))


def test_exact_duplicates_removed_and_best_survivor_kept(built):
    _assert_best_survivor_kept(built, [g for g in _duplicate_groups() if "mirror.test" in g[0]], "dedup_exact")


def test_near_duplicates_removed_and_best_survivor_kept(built):
    _assert_best_survivor_kept(built, [g for g in _duplicate_groups() if g[-1].startswith("syndicate.example")],
                               "dedup_near")


def test_survivors_record_their_cluster(built):
    """dup_cluster is the survivor's id; every removed duplicate names it in dropped/ (duplicate_of),
    and dup_count counts them."""
    rows = built["rows"]
    assert rows["id"].is_unique
    assert (rows["dup_cluster"] == rows["id"]).all()
    named = built["dropped"]["duplicate_of"].dropna().value_counts()
    assert set(named.index) <= set(rows["id"])
    assert rows.set_index("id")["dup_count"].to_dict() == {doc_id: named.get(doc_id, 0) for doc_id in rows["id"]}
    assert (rows["dup_count"] > 0).sum() >= len(_duplicate_groups())


def test_every_drop_is_in_the_audit_table(built):
    build = stages(built["out"] / "dataset" / "manifest.json")
    audit = built["dropped"].groupby(["stage", "reason"]).size()
    assert {key: int(n) for key, n in audit.items()} == {
        (stage, reason): n for stage, counts in build.items() for reason, n in counts["dropped"].items()}


def test_no_wikipedia_left_by_final_url(built):
    rows = built["rows"]
    assert not any(is_wikipedia(u, WIKI_DOMAINS) for u in rows["final_url"])
    assert not any(is_wikipedia(u) for u in rows["url"])
    build = stages(built["out"] / "dataset" / "build_stats.json")
    mirrored = [u for u in EXPECTED["urls"].values() if u["page_kind"] == "wikipedia_mirror"]
    redirected = [u for u in EXPECTED["urls"].values() if u["page_kind"] == "redirect_to_wikipedia"]
    assert mirrored and redirected
    assert build["wikipedia"]["dropped"] == {"wikipedia": len(mirrored) + len(redirected)}


@pytest.mark.parametrize("kind", ["lang_de", "lang_fr", "lang_es", "idn_host", "bot_check", "paywall",
                                  "very_short", "boilerplate_only", "spam"])
def test_rejected_pages_are_gone(built, kind):
    assert any(s.get("note") == kind for s in ROUTES.values())
    assert kind not in built["kinds"].values()


def test_ordinary_articles_survive(built):
    kinds = list(built["kinds"].values())
    articles = sum(1 for u in EXPECTED["urls"].values() if u["page_kind"] == "article")
    assert kinds.count("article") >= 0.8 * articles
    assert set(built["rows"]["lang"]) == {"en"}
    assert (built["rows"]["n_words"] > 0).all()


def test_every_harvested_url_gets_its_expected_crawl_outcome(built):
    log = pd.read_parquet(built["out"] / "crawl" / "crawl_log")
    expected = {u["url"]: u["expected_outcome"] for u in EXPECTED["urls"].values()}
    assert dict(zip(log["url"], log["outcome"])) == expected


def test_counts_reconcile_along_the_chain(built):
    out = built["out"]
    harvest = json.loads((out / "urls" / "_harvest_stats.json").read_text())
    crawl = stages(out / "crawl" / "crawl_stats.json")["crawl"]
    build = stages(out / "dataset" / "build_stats.json")
    totals = EXPECTED["totals"]
    assert harvest["stages"]["harvest"]["in"] == totals["lines"]
    assert harvest["stages"]["harvest"]["out"] == totals["kept_posts"]
    assert harvest["urls"] == totals["urls"] == crawl["in"]
    expected_ok = sum(1 for u in EXPECTED["urls"].values() if u["expected_outcome"] == "ok")
    # the build reads each fetched page, plus one 3xx record per redirect hop (dropped as `redirect`)
    assert crawl["out"] == expected_ok == build["read"]["in"] - build["read"]["dropped"].get("redirect", 0)
    chain = ["read", "captures", "extract", "filter", "wikipedia", "dedup_exact", "dedup_near", "write"]
    for stage in [harvest["stages"]["harvest"], crawl, *(build[s] for s in chain)]:
        assert stage["in"] == stage["out"] + sum(stage["dropped"].values())
    for before, after in zip(chain, chain[1:]):
        assert build[before]["out"] == build[after]["in"], (before, after)
    assert len(built["rows"]) == build["write"]["out"]
    manifest = json.loads((out / "dataset" / "manifest.json").read_text())
    assert sum(s["rows"] for s in manifest["splits"].values()) == len(built["rows"])


def test_verify_passes_and_pandas_reads_train(built):
    dataset = built["out"] / "dataset"
    webtext("verify", str(dataset))
    train = pd.read_parquet(dataset / "train")
    assert len(train) > 0 and {"text", "url", "dup_cluster"} <= set(train.columns)


def test_training_lowers_val_loss_and_samples(trained):
    vals = [r["loss"] for r in trained["log"] if r["kind"] == "val"]
    assert len(vals) >= 3
    assert vals[-1] < vals[0] - 0.3, vals
    assert trained["log"][-1]["kind"] == "end" and trained["log"][-1]["step"] == 120
    assert "The history of the" in trained["sample"]
    assert len(trained["sample"].split("The history of the", 1)[1].split()) >= 5
