"""Dedup: MinHash speed against datasketch, and near-dedup quality on a labelled set.

    .venv/bin/python -m bench.bench_dedup [--pairs N] [--singles N] [--repeat N]

Documents are ~600 words of real English prose (CPython's `pydoc_data.topics`), each stitched
from random 20-word spans. Half of them come in labelled pairs: a base document and a copy
edited at one of several rates (each word independently substituted, deleted or followed by
an inserted word), which puts pairs on both sides of J = 0.8.

Speed, in this process, on the same documents and parameters (128 permutations, seed 1):
- `datasketch update_batch`: one `MinHash(hashfunc=int)` per document (built outside the
  timer), `update_batch` with our shingle hashes' 32-bit inputs: the baseline;
- `ours minhash_signatures`: the same inputs, all documents in one call; the signatures must
  be bit-identical, so the duplicate decisions are the same by construction (checked too);
- `datasketch from text` / `ours from text`: normalised text to signature, i.e. datasketch as
  usually used (5-word shingle strings, its default SHA-1 hashing) vs `shingles` + ours;
  different hash functions, so the pairs above the threshold are compared, not the bits.

Quality: precision and recall of duplicate pairs (true Jaccard of the 5-word shingle sets
>= 0.8, computed in Python from word tuples) through the Beam `NearDedup` on the local runner (one process);
a pair is predicted when both documents end in the same near-duplicate cluster.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import random
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable

import numpy as np

from core.fsio import atomic_write_text
from core.text import normalize_for_exact
from dedup.config import DedupConfig
from dedup.minhash import minhash_input, minhash_signatures
from dedup.text import shingles

RESULTS = Path(__file__).resolve().parent / "results" / "dedup.json"
EDIT_RATES = [0.005, 0.01, 0.015, 0.02, 0.025, 0.03, 0.04, 0.06]
TARGET_SPEEDUP = 5.0
TARGET_QUALITY = 0.97


def prose_words() -> list[str]:
    from pydoc_data.topics import topics

    return normalize_for_exact(" ".join(topics[k] for k in sorted(topics))).split()


def make_document(words: list[str], rng: random.Random, length: int = 600, span: int = 20) -> list[str]:
    out: list[str] = []
    while len(out) < length:
        start = rng.randrange(len(words) - span)
        out += words[start:start + span]
    return out


def edit(words: list[str], rate: float, vocabulary: list[str], rng: random.Random) -> list[str]:
    """Each word, with probability `rate`: substituted, deleted, or followed by an inserted word."""
    out: list[str] = []
    for word in words:
        if rng.random() >= rate:
            out.append(word)
            continue
        kind = rng.randrange(3)
        if kind == 0:
            out.append(rng.choice(vocabulary))
        elif kind == 2:
            out += [word, rng.choice(vocabulary)]
    return out


def make_corpus(n_pairs: int, n_singles: int, seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    words = prose_words()
    vocabulary = sorted(set(words))
    docs = []
    for i in range(n_pairs):
        base = make_document(words, rng)
        variant = edit(base, EDIT_RATES[i % len(EDIT_RATES)], vocabulary, rng)
        docs.append(_doc(f"p{i:05d}a", base, rng))
        docs.append(_doc(f"p{i:05d}b", variant, rng))
    docs += [_doc(f"s{i:05d}", make_document(words, rng), rng) for i in range(n_singles)]
    return docs


def _doc(doc_id: str, words: list[str], rng: random.Random) -> dict:
    return {"id": doc_id, "text": " ".join(words), "score": rng.randrange(3, 500),
            "created_utc": 1_500_000_000 + rng.randrange(10**7), "url": f"https://news.example/{doc_id}"}


def word_shingles(text: str, k: int) -> set[tuple[str, ...]]:
    words = text.split()  # the corpus is already normalised
    if len(words) < k:
        return {tuple(words)}
    return {tuple(words[i:i + k]) for i in range(len(words) - k + 1)}


def true_duplicate_pairs(docs: list[dict], k: int, threshold: float) -> tuple[set, dict]:
    """All pairs with true shingle Jaccard >= threshold, and the Jaccard of every pair examined.

    Exact prefix filtering: order shingles by global frequency; if J(A, B) >= t, the rarest
    |A| - ceil(t|A|) + 1 shingles of A and the rarest |B| - ceil(t|B|) + 1 of B share one.
    The labelled pairs are always examined.
    """
    sets = {d["id"]: word_shingles(d["text"], k) for d in docs}
    frequency = Counter(s for shingle_set in sets.values() for s in shingle_set)
    index: dict[tuple, list[str]] = defaultdict(list)
    for doc_id, shingle_set in sets.items():
        rarest = sorted(shingle_set, key=lambda s: (frequency[s], s))
        for s in rarest[: len(rarest) - math.ceil(threshold * len(rarest)) + 1]:
            index[s].append(doc_id)
    examined = {(a, b) for ids in index.values() for a in ids for b in ids if a < b}
    examined |= {(d["id"], d["id"][:-1] + "b") for d in docs if d["id"].endswith("a")}
    jaccards = {p: len(sets[p[0]] & sets[p[1]]) / len(sets[p[0]] | sets[p[1]]) for p in examined}
    return {p for p, j in jaccards.items() if j >= threshold}, jaccards


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - started)
    return best, result


def datasketch_update_batch_run(inputs: list[np.ndarray], cfg: DedupConfig) -> Callable[[], np.ndarray]:
    """Sketches built outside the timer; the returned function times `update_batch` only."""
    from datasketch import MinHash

    template = MinHash(num_perm=cfg.num_perm, seed=cfg.seed)
    sketches = [MinHash(num_perm=cfg.num_perm, seed=cfg.seed, hashfunc=int, scheme="affine32",
                        permutations=template.permutations) for _ in inputs]

    def run():
        for sketch, values in zip(sketches, inputs):
            sketch.update_batch(values)
        return np.array([s.hashvalues for s in sketches])

    return run


def datasketch_from_text_run(texts: list[str], cfg: DedupConfig) -> Callable[[], np.ndarray]:
    """datasketch as usually used: 5-word shingle strings, default SHA-1 hashing."""
    from datasketch import MinHash

    template = MinHash(num_perm=cfg.num_perm, seed=cfg.seed)
    k = cfg.shingle_size

    def run():
        out = []
        for text in texts:
            words = normalize_for_exact(text).split()
            grams = [" ".join(words[i:i + k]) for i in range(max(1, len(words) - k + 1))]
            sketch = MinHash(num_perm=cfg.num_perm, seed=cfg.seed, scheme="affine32",
                             permutations=template.permutations)
            sketch.update_batch([g.encode("utf-8") for g in grams])
            out.append(sketch.hashvalues)
        return np.array(out)

    return run


def pairs_above(signatures: np.ndarray, ids: list[str], pairs, threshold: float) -> set:
    index = {doc_id: i for i, doc_id in enumerate(ids)}
    return {p for p in pairs if np.mean(signatures[index[p[0]]] == signatures[index[p[1]]]) >= threshold}


def bench_speed(docs: list[dict], cfg: DedupConfig, candidate_pairs, repeat: int) -> tuple[list[dict], dict]:
    ids = [d["id"] for d in docs]
    texts = [d["text"] for d in docs]
    shingle_sets = [shingles(t, cfg.shingle_size) for t in texts]
    inputs = [minhash_input(s) for s in shingle_sets]
    n = len(docs)
    t_ds, sig_ds = best_time(datasketch_update_batch_run(inputs, cfg), repeat)
    t_ours, sig_ours = best_time(lambda: minhash_signatures(shingle_sets, cfg), repeat)
    t_ds_text, sig_ds_text = best_time(datasketch_from_text_run(texts, cfg), repeat)
    t_ours_text, _ = best_time(lambda: minhash_signatures([shingles(t, cfg.shingle_size) for t in texts], cfg), repeat)
    identical = bool(np.array_equal(sig_ds, sig_ours))
    ours_pairs = pairs_above(sig_ours, ids, candidate_pairs, cfg.threshold)
    ds_text_pairs = pairs_above(sig_ds_text, ids, candidate_pairs, cfg.threshold)
    rows = [
        {"variant": "datasketch update_batch", "seconds": t_ds, "docs_per_s": n / t_ds, "speedup": 1.0},
        {"variant": "ours minhash_signatures", "seconds": t_ours, "docs_per_s": n / t_ours, "speedup": t_ds / t_ours},
        {"variant": "datasketch from text", "seconds": t_ds_text, "docs_per_s": n / t_ds_text,
         "speedup": t_ds / t_ds_text},
        {"variant": "ours from text", "seconds": t_ours_text, "docs_per_s": n / t_ours_text,
         "speedup": t_ds / t_ours_text},
    ]
    decisions = {
        "signatures_bit_identical": identical,
        "pairs_above_threshold_ours": len(ours_pairs),
        "pairs_above_threshold_datasketch": len(pairs_above(sig_ds, ids, candidate_pairs, cfg.threshold)),
        "same_pairs_as_datasketch_update_batch": ours_pairs == pairs_above(sig_ds, ids, candidate_pairs, cfg.threshold),
        "pairs_above_threshold_datasketch_from_text": len(ds_text_pairs),
        "pairs_in_both_ours_and_datasketch_from_text": len(ours_pairs & ds_text_pairs),
        "speedup_vs_update_batch": t_ds / t_ours,
        "speedup_from_text": t_ds_text / t_ours_text,
    }
    return rows, decisions


def bench_quality(docs: list[dict], cfg: DedupConfig, truth: set) -> tuple[dict, set]:
    import apache_beam as beam

    from core.beam import collect_stage_counts, pipeline_options, stage_diagnostics
    from core.beam_config import BeamConfig
    from dedup.near import STAGE, NearDedup, NearDuplicateClusters

    with tempfile.TemporaryDirectory(prefix="bench_dedup_") as tmp:
        labels_path, kept_path = Path(tmp) / "labels.jsonl", Path(tmp) / "kept.txt"
        started = time.perf_counter()
        pipeline = beam.Pipeline(options=pipeline_options(BeamConfig()))
        pcoll = pipeline | beam.Create(docs)
        _ = (pcoll | NearDuplicateClusters(cfg) | beam.Map(json.dumps)
             | "WriteLabels" >> beam.io.WriteToText(str(labels_path), shard_name_template=""))
        _ = (pcoll | NearDedup(cfg) | beam.Map(lambda d: d["id"])
             | "WriteKept" >> beam.io.WriteToText(str(kept_path), shard_name_template=""))
        result = pipeline.run()
        result.wait_until_finish()
        seconds = time.perf_counter() - started
        labels = dict(json.loads(line) for line in labels_path.read_text().splitlines())
        kept = set(kept_path.read_text().split())
    clusters: dict[str, list[str]] = defaultdict(list)
    for doc in docs:
        clusters[labels.get(doc["id"], doc["id"])].append(doc["id"])
    predicted = {(a, b) for members in clusters.values() for a in members for b in members if a < b}
    true_positive = len(predicted & truth)
    counts = collect_stage_counts(result)[STAGE]
    return {
        "documents": len(docs),
        "true_pairs": len(truth),
        "predicted_pairs": len(predicted),
        "precision": true_positive / len(predicted) if predicted else 1.0,
        "recall": true_positive / len(truth) if truth else 1.0,
        "survivors_are_cluster_minima": kept == set(clusters),
        "counts": counts.to_json(),
        "lsh_counters_both_passes": stage_diagnostics(result, STAGE),  # NearDuplicateClusters + NearDedup's own
        "lsh_bands_rows": list(cfg.lsh_params()),
        "pipeline_seconds": seconds,
    }, predicted


def recall_by_jaccard(jaccards: dict, truth: set, predicted_pairs: set, threshold: float) -> list[dict]:
    edges = [threshold, 0.85, 0.9, 0.95, 1.01]
    rows = []
    for low, high in zip(edges, edges[1:]):
        band = {p for p in truth if low <= jaccards[p] < high}
        rows.append({"jaccard": f"[{low:.2f}, {min(high, 1.0):.2f}{']' if high > 1 else ')'}", "pairs": len(band),
                     "recall": len(band & predicted_pairs) / len(band) if band else None})
    return rows


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=800, help="labelled base/edited pairs")
    parser.add_argument("--singles", type=int, default=400, help="unrelated documents")
    parser.add_argument("--repeat", type=int, default=3, help="timing repetitions (best is kept)")
    args = parser.parse_args(argv or [])
    cfg = DedupConfig()
    docs = make_corpus(args.pairs, args.singles)
    truth, jaccards = true_duplicate_pairs(docs, cfg.shingle_size, cfg.threshold)
    rows, decisions = bench_speed(docs, cfg, list(jaccards), args.repeat)
    quality, predicted = bench_quality(docs, cfg, truth)

    print(f"MinHash signatures, {len(docs)} documents of ~600 words, {cfg.num_perm} permutations")
    print(f"{'variant':<28}{'seconds':>10}{'docs/s':>12}{'vs update_batch':>18}")
    for r in rows:
        print(f"{r['variant']:<28}{r['seconds']:>10.3f}{r['docs_per_s']:>12.0f}{r['speedup']:>17.2f}x")
    print(f"bit-identical signatures: {decisions['signatures_bit_identical']}; same pairs above "
          f"{cfg.threshold}: {decisions['same_pairs_as_datasketch_update_batch']} "
          f"({decisions['pairs_above_threshold_ours']} pairs)")
    print(f"from text: ours {decisions['speedup_from_text']:.2f}x datasketch; pairs above threshold "
          f"{decisions['pairs_above_threshold_ours']} (ours) vs "
          f"{decisions['pairs_above_threshold_datasketch_from_text']} "
          f"(datasketch SHA-1), {decisions['pairs_in_both_ours_and_datasketch_from_text']} in both")
    print(f"\nNear dedup quality (Beam NearDedup, bands x rows = {quality['lsh_bands_rows']}):")
    print(f"precision {quality['precision']:.4f}  recall {quality['recall']:.4f}  "
          f"({quality['true_pairs']} true pairs, {quality['predicted_pairs']} predicted, "
          f"{quality['pipeline_seconds']:.1f} s)")
    by_band = recall_by_jaccard(jaccards, truth, predicted, cfg.threshold)
    for r in by_band:
        recall = "-" if r["recall"] is None else f"{r['recall']:.3f}"
        print(f"  recall for J in {r['jaccard']:<14} {recall:>6}  ({r['pairs']} pairs)")

    payload = {
        "benchmark": "dedup",
        "machine": {"python": platform.python_version(), "processor": platform.processor() or platform.machine()},
        "config": {"num_perm": cfg.num_perm, "seed": cfg.seed, "shingle_size": cfg.shingle_size,
                   "threshold": cfg.threshold},
        "speed": rows,
        "decisions": decisions,
        "quality": {**quality, "recall_by_jaccard": by_band},
        "targets": {"speedup_vs_update_batch": TARGET_SPEEDUP, "precision": TARGET_QUALITY, "recall": TARGET_QUALITY},
        "meets_targets": {
            "speedup": decisions["speedup_vs_update_batch"] >= TARGET_SPEEDUP,
            "same_decisions": decisions["same_pairs_as_datasketch_update_batch"],
            "precision": quality["precision"] >= TARGET_QUALITY,
            "recall": quality["recall"] >= TARGET_QUALITY,
        },
    }
    atomic_write_text(str(RESULTS), json.dumps(payload, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")
    return payload


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
