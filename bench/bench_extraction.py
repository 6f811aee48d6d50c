"""Extraction: quality on the 990-page evaluation set, and pipeline speed against bare trafilatura.

    .venv/bin/python -m bench.bench_extraction [--limit N] [--speed-pages N] [--rounds N] [--skip-quality] [--skip-speed]

Quality: every page of `../shared/data/extraction-eval/pages.tar.gz` (read from the archive in
memory, never unpacked into the repo) is decoded with `extract.decode.decode_html` and run
through trafilatura and newspaper4k exactly as `extract.extractors` does; `ensemble` is
`extract.extractors.combine` of those two results (what `ensemble_extract` computes, without
extracting twice). Each text then goes through `extract.extractors.clean`, the line rules of
`extract_page`, so that the scores are the pipeline's text; "trafilatura without line rules"
is the text before that step, the comparison behind the `extract.remove_*` defaults. Scoring
follows the set's README: whitespace collapsed; a "with" snippet found in the text is a true
positive (else a false negative), a "without" snippet found is a false positive;
micro-averaged P/R/F1. "raw HTML as text" checks the scorer against the
published floor row. A paired bootstrap over pages gives a 95% interval of F1(ensemble) -
F1(trafilatura), the measurement behind `extract.extractor`'s default.

Speed, in this process, on the same pages: the baseline is a bare loop doing the extraction
work the pipeline does per page (`extract_page`: `decode_html`, trafilatura with our options,
the line rules); a loop of plain `trafilatura.extract(body)` is timed too, for reference.
`ExtractPages` (decode, isolated extraction, line rules, language id, quality rules) runs in a real Beam
pipeline (FnApiRunner via `core.beam.pipeline_options`) with one worker (in_memory) and two
(multi_processing), timed from pipeline start to finish, startup included; a second run on
the first half of the pages gives the steady rate without start-up. `--rounds N` repeats the
whole comparison; every round is kept, with load average and CPU seconds, since the box may
be shared.
Skips cleanly when ../shared is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import tarfile
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from extract.config import ExtractConfig
from core.fsio import atomic_write_text

EVAL_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "extraction-eval"
RESULTS = Path(__file__).resolve().parent / "results" / "extraction.json"
MODES = ["trafilatura", "newspaper", "ensemble"]
UNCLEANED = "trafilatura without line rules"
PUBLISHED = {  # the evaluation set's README, P / R / F1 on the same 990 pages
    "trafilatura 2.2 (default)": (0.906, 0.943, 0.924),
    "trafilatura (favor precision)": (0.925, 0.915, 0.920),
    "trafilatura (fast)": (0.907, 0.930, 0.918),
    "readability-lxml": (0.898, 0.764, 0.826),
    "newspaper4k 0.9.6": (0.878, 0.736, 0.801),
    "dragnet 2.0.4 (older 500-page run)": (0.906, 0.689, 0.783),
    "raw HTML as text (floor)": (0.528, 0.906, 0.667),
}
TARGET_F1 = 0.924
TARGET_SPEED = {"in_memory x1": 0.9, "multi_processing x2": 1.8}
RUNS = ["bare decode+trafilatura", "bare trafilatura.extract(bytes)", *TARGET_SPEED]
_WHITESPACE = re.compile(r"\s+")


def load_eval_set(eval_dir: Path = EVAL_DIR, limit: int | None = None) -> list[dict]:
    """[{name, body, url, with, without}] read straight from pages.tar.gz, sorted by name."""
    with tarfile.open(eval_dir / "pages.tar.gz") as tar:
        files = {}
        for member in tar:
            if member.isfile():
                files[member.name.removeprefix("./")] = tar.extractfile(member).read()
    annotations = json.loads(files["eval.json"])
    metadata = json.loads(files["metadata.json"])
    names = sorted(annotations)[:limit]
    return [
        {"name": n, "body": files[f"html/{n}"], "url": metadata.get(n, {}).get("url"),
         "with": annotations[n]["with"], "without": annotations[n]["without"]}
        for n in names
    ]


def normalize(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip()


def score_page(output: str | None, with_snippets: list[str], without_snippets: list[str]) -> tuple[int, int, int, int]:
    """(TP, FN, FP, TN) of one page; no output counts as empty output."""
    out = normalize(output or "")
    tp = sum(normalize(s) in out for s in with_snippets)
    fp = sum(normalize(s) in out for s in without_snippets)
    return tp, len(with_snippets) - tp, fp, len(without_snippets) - fp


def precision_recall_f1(counts: np.ndarray) -> tuple[float, float, float]:
    """Micro average of per-page (TP, FN, FP, TN) rows."""
    tp, fn, fp, _ = counts.sum(axis=0)
    return tp / max(tp + fp, 1), tp / max(tp + fn, 1), 2 * tp / max(2 * tp + fp + fn, 1)


def _extract_all_modes(page: dict) -> dict:
    from extract.decode import decode_html
    from extract.extractors import clean, combine, newspaper_extract, trafilatura_extract

    cfg = ExtractConfig()
    html, _ = decode_html(page["body"], None)
    outputs: dict = {"raw HTML as text": html}
    results = {}
    for mode, fn in (("trafilatura", trafilatura_extract), ("newspaper", newspaper_extract)):
        started = time.process_time()
        try:
            results[mode] = fn(html, page["url"], cfg)
        except Exception:  # noqa: BLE001 - a crash scores as empty output (README rule)
            results[mode] = None
        outputs[f"{mode} cpu"] = time.process_time() - started
    results["ensemble"] = combine(results["trafilatura"], results["newspaper"], cfg)
    outputs[UNCLEANED] = results["trafilatura"].text if results["trafilatura"] else None
    for mode, extraction in results.items():
        cleaned, outputs[f"{mode} lines removed"] = clean(extraction, cfg) if extraction else (None, {})
        outputs[mode] = cleaned.text if cleaned else None
    return outputs


def measure_quality(pages: list[dict], workers: int = 2) -> dict:
    rows = {mode: [] for mode in ["raw HTML as text", UNCLEANED, *MODES]}
    cpu = {mode: 0.0 for mode in ("trafilatura", "newspaper")}
    lines_removed = {mode: Counter() for mode in MODES}
    light = [{k: p[k] for k in ("body", "url")} for p in pages]
    with ProcessPoolExecutor(workers) as pool:
        for page, outputs in zip(pages, pool.map(_extract_all_modes, light, chunksize=4)):
            for mode in rows:
                rows[mode].append(score_page(outputs[mode], page["with"], page["without"]))
            for mode in cpu:
                cpu[mode] += outputs[f"{mode} cpu"]
            for mode in MODES:
                lines_removed[mode].update(outputs[f"{mode} lines removed"])
    counts = {mode: np.array(r, dtype=np.int64) for mode, r in rows.items()}
    result = {
        mode: dict(zip(("precision", "recall", "f1"), map(float, precision_recall_f1(c))),
                   tp=int(c[:, 0].sum()), fn=int(c[:, 1].sum()), fp=int(c[:, 2].sum()))
        for mode, c in counts.items()
    }
    for mode in MODES:
        result[mode]["lines_removed"] = dict(sorted(lines_removed[mode].items()))
    for mode, seconds in cpu.items():
        result[mode]["cpu_ms_per_page"] = 1000 * seconds / len(pages)
    result["ensemble"]["cpu_ms_per_page"] = result["trafilatura"]["cpu_ms_per_page"] + result["newspaper"]["cpu_ms_per_page"]
    result["ensemble_minus_trafilatura_f1_ci95"] = _bootstrap_f1_difference(counts["ensemble"], counts["trafilatura"])
    return result


def _bootstrap_f1_difference(a: np.ndarray, b: np.ndarray, rounds: int = 2000, seed: int = 0) -> list[float]:
    rng = np.random.default_rng(seed)
    diffs = []
    for _ in range(rounds):
        idx = rng.integers(0, len(a), len(a))
        diffs.append(precision_recall_f1(a[idx])[2] - precision_recall_f1(b[idx])[2])
    return [float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))]


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children (extraction children, SDK workers)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _timed(run, *args) -> dict:
    cpu, started = _cpu_seconds(), time.perf_counter()
    run(*args)
    return {"seconds": time.perf_counter() - started, "cpu_seconds": _cpu_seconds() - cpu}


def _bare_trafilatura(paths: list[str]) -> None:
    import trafilatura

    for path in paths:
        with open(path, "rb") as fh:
            trafilatura.extract(fh.read(), include_comments=False)


def _bare_extraction(paths: list[str]) -> None:
    """The per-page work of the extraction child, without isolation, Beam or filters."""
    from extract.extractors import extract_page

    cfg = ExtractConfig()
    for path in paths:
        with open(path, "rb") as fh:
            extract_page(fh.read(), None, None, cfg)


def _read_page(path: str) -> dict:
    with open(path, "rb") as fh:
        return {"url": None, "final_url": None, "body": fh.read(), "content_type": None, "path": path}


def _pipeline(paths: list[str], mode: str, workers: int) -> None:
    import apache_beam as beam

    from extract.pipeline import ExtractPages
    from core.beam import pipeline_options
    from core.beam_config import BeamConfig
    from core.beam import collect_stage_counts

    options = pipeline_options(BeamConfig(direct_running_mode=mode, direct_num_workers=workers))
    with beam.Pipeline(options=options) as p:
        # Pages are read inside the pipeline, as from WARC files: beam.Create would pickle and
        # bz2-compress every body into the pipeline graph, which costs more than extraction.
        _ = (p | beam.Create(paths) | beam.Map(_read_page) | ExtractPages(ExtractConfig())
             | beam.combiners.Count.Globally())
    counts = collect_stage_counts(p.result)
    counts["extract"].check()
    counts["filter"].check()
    assert counts["extract"].records_in == len(paths)


def _speed_round(paths: list[str]) -> dict:
    """Every run's pages/s as a ratio to the bare decode+trafilatura loop's, plus CPU seconds
    (this process and its children) so that a loaded box can be told apart from a slow pipeline.

    Pipelines pay a fixed start-up (SDK worker processes, extraction children); each one also
    runs on the first half of the pages alone, and the difference of the two times gives its
    steady pages/s on the second half, compared with the bare loop's time on that same half."""
    half = len(paths) // 2
    first, second = _timed(_bare_extraction, paths[:half]), _timed(_bare_extraction, paths[half:])
    result = {"load_avg_before": os.getloadavg(),
              "bare decode+trafilatura": {k: first[k] + second[k] for k in first},
              "bare trafilatura.extract(bytes)": _timed(_bare_trafilatura, paths)}
    for label, mode, workers in (("in_memory x1", "in_memory", 1), ("multi_processing x2", "multi_processing", 2)):
        on_first_half = _timed(_pipeline, paths[:half], mode, workers)
        result[label] = _timed(_pipeline, paths, mode, workers) | {"target": TARGET_SPEED[label]}
        marginal = result[label]["seconds"] - on_first_half["seconds"]
        result[label].update(steady_pages_per_s=(len(paths) - half) / marginal,
                             steady_ratio=second["seconds"] / marginal)
    baseline = result["bare decode+trafilatura"]["seconds"]
    for label in RUNS:
        result[label].update(pages_per_s=len(paths) / result[label]["seconds"],
                             ratio=baseline / result[label]["seconds"],
                             cpu_ms_per_page=1000 * result[label]["cpu_seconds"] / len(paths))
    result["load_avg_after"] = os.getloadavg()
    return result


def measure_speed(pages: list[dict], rounds: int = 1) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-extraction-") as tmp:
        paths = []
        for i, page in enumerate(pages):
            paths.append(os.path.join(tmp, f"{i:05d}.html"))
            with open(paths[-1], "wb") as fh:
                fh.write(page["body"])
        _bare_extraction(paths[:5])  # imports and first-call set-up stay out of the baseline
        runs = []
        for _ in range(rounds):
            runs.append(_speed_round(paths))
            print_speed_round(runs[-1], len(paths))
    return {"pages": len(pages), "rounds": runs,
            "median_ratio": {label: float(np.median([r[label]["ratio"] for r in runs])) for label in TARGET_SPEED},
            "median_steady_ratio": {label: float(np.median([r[label]["steady_ratio"] for r in runs]))
                                    for label in TARGET_SPEED}}


def print_quality(quality: dict, n_pages: int) -> None:
    print(f"\nExtraction quality on {n_pages} pages (P / R / F1), ours vs published:")
    print(f"{'extractor':<48}{'P':>7}{'R':>7}{'F1':>7}  {'cpu ms/page':>11}  lines removed")
    for mode in ["raw HTML as text", UNCLEANED, *MODES]:
        q = quality[mode]
        cpu = f"{q['cpu_ms_per_page']:11.0f}" if "cpu_ms_per_page" in q else " " * 11
        removed = ", ".join(f"{rule}={lines}" for rule, lines in q.get("lines_removed", {}).items())
        default = " (default)" if mode == ExtractConfig().extractor else ""
        print(f"{'ours: ' + mode + default:<48}{q['precision']:7.3f}{q['recall']:7.3f}{q['f1']:7.3f}  {cpu}  {removed}")
    for name, (p, r, f) in PUBLISHED.items():
        print(f"{'published: ' + name:<48}{p:7.3f}{r:7.3f}{f:7.3f}")
    lo, hi = quality["ensemble_minus_trafilatura_f1_ci95"]
    print(f"F1(ensemble) - F1(trafilatura): 95% bootstrap interval [{lo:+.4f}, {hi:+.4f}]")


def print_speed_round(run: dict, n_pages: int) -> None:
    print(f"\nSpeed on {n_pages} pages, load average before/after "
          f"{run['load_avg_before'][0]:.1f}/{run['load_avg_after'][0]:.1f} (ratio = pages/s over the bare "
          f"decode+trafilatura loop's; steady = second half only, start-up excluded):")
    print(f"{'run':<40}{'seconds':>9}{'pages/s':>9}{'ratio':>8}{'steady':>8}{'target':>8}{'cpu ms/page':>13}")
    for label in RUNS:
        r = run[label]
        steady = f"{r['steady_ratio']:8.2f}{r['target']:8.1f}" if label in TARGET_SPEED else " " * 16
        name = f"ExtractPages {label}" if label in TARGET_SPEED else f"{label} loop"
        print(f"{name:<40}{r['seconds']:9.1f}{r['pages_per_s']:9.1f}{r['ratio']:8.2f}{steady}{r['cpu_ms_per_page']:13.0f}")


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="quality on the first N pages only (by name)")
    parser.add_argument("--speed-pages", type=int, default=300, help="pages for the speed runs")
    parser.add_argument("--workers", type=int, default=2, help="processes for the quality run")
    parser.add_argument("--rounds", type=int, default=1, help="repeat the speed comparison N times")
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-speed", action="store_true")
    args = parser.parse_args(argv or [])
    if not (EVAL_DIR / "pages.tar.gz").is_file():
        print(f"bench extraction: skipped, {EVAL_DIR} is absent")
        return None
    pages = load_eval_set(limit=None)
    result: dict = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_avg": os.getloadavg()},
        "config": ExtractConfig().model_dump(mode="json"),
        "published": {k: dict(zip(("precision", "recall", "f1"), v)) for k, v in PUBLISHED.items()},
    }
    if RESULTS.exists():  # keep the part of an earlier run that this run skips
        previous = json.loads(RESULTS.read_text())
        result.update({k: previous[k] for k in ("quality", "speed") if k in previous})
    if not args.skip_quality:
        subset = pages[: args.limit]
        quality = measure_quality(subset, args.workers)
        quality["pages"] = len(subset)
        result["quality"] = quality
        print_quality(quality, len(subset))
    if not args.skip_speed:
        result["speed"] = measure_speed(pages[: args.speed_pages], args.rounds)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(str(RESULTS), json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")
    return result


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
