"""Near dedup: MinHash-LSH candidates, exact Jaccard verification, connected components.

1. Sketch: per batch of documents, 64-bit shingle hashes and MinHash signatures (vectorised).
   Each document emits one (band index, band bytes) key per LSH band, plus its shingle set.
2. Buckets: GroupByKey on the band keys; every pair of documents sharing a bucket is a
   candidate. A bucket larger than `max_bucket_size` pairs each member only with the bucket's
   `max_bucket_size` best-ranked members (counted as `oversized_buckets`, `pairs_skipped`):
   such buckets are almost always one big family of copies, which the best members still
   catch, and this keeps both the pairs and the memory of a bucket bounded.
3. Verify: candidates are distinct pairs joined (two CoGroupByKeys by id) with both shingle
   sets and kept when the EXACT shingle Jaccard is >= threshold. Exact rather than estimated:
   the estimate from 128 permutations has a standard error of ~0.035 at J=0.8, which would
   flip pairs near the threshold both ways (in bench/bench_dedup.py two 128-permutation
   sketches with different hash functions agree on only ~400 of ~450 pairs above 0.8); the
   exact check costs one set intersection per candidate and makes every reported duplicate a
   true one.
4. Cluster: connected components of the verified pairs (see `dedup.components`), ordered by
   the survivor ranking, so each component's minimum is its survivor. Connected components
   means transitive: A~B and B~C put A and C in one cluster even if J(A, C) < threshold.
5. Assign: documents joined with their component label by id, and each survivor with the
   number of documents its cluster removes (every member, plus what each member had absorbed
   before: its exact copies); the survivor of each cluster (and every document without near
   duplicates) is kept with `dup_cluster` = its own id and that number added to `dup_count`,
   the rest are dropped as `near_duplicate` with `duplicate_of` = the survivor's id.

No step holds more than `max_bucket_size` bucket members, one document's candidate partners or
one node's neighbours in memory; documents and signatures are never collected in one place.
"""

from __future__ import annotations

import heapq
import itertools

import apache_beam as beam
import numpy as np
from apache_beam.metrics import Metrics

from dedup.components import ConnectedComponents
from dedup.config import DedupConfig
from dedup.exact import KeepEveryDocument, removed_before, survivor
from dedup.minhash import band_keys, minhash_signatures
from dedup.ranking import doc_id, duplicate_id_error, rank_key
from dedup.text import jaccard, shingles
from core.beam import DROPPED, KEPT, NAMESPACE_PREFIX, StageCounter

STAGE = "dedup_near"
DROP_REASON = "near_duplicate"
SHINGLES_TAG = "shingles"
BANDS_TAG = "bands"


def _diagnostic(name: str):
    """A candidate/verification counter (not record accounting): `core.beam.stage_diagnostics(result, STAGE)`."""
    return Metrics.counter(NAMESPACE_PREFIX + STAGE, name)


class _Sketch(beam.DoFn):
    """A batch of documents -> ((band, band bytes), rank) keys and tagged (id, shingle bytes)."""

    def __init__(self, cfg: DedupConfig):
        self.cfg = cfg
        self.bands, self.rows = cfg.lsh_params()

    def process(self, batch):
        ranks = [rank_key(doc) for doc in batch]
        shingle_sets = [shingles(doc["text"], self.cfg.shingle_size) for doc in batch]
        signatures = minhash_signatures(shingle_sets, self.cfg)
        for rank, shingle_set, signature in zip(ranks, shingle_sets, signatures):
            for band, key in enumerate(band_keys(signature, self.bands, self.rows)):
                yield beam.pvalue.TaggedOutput(BANDS_TAG, ((band, key), rank))
            yield beam.pvalue.TaggedOutput(SHINGLES_TAG, (doc_id(rank), shingle_set.tobytes()))


class _BucketPairs(beam.DoFn):
    """One LSH bucket -> candidate pairs (better, worse) of its members, in O(cap) memory.

    The bucket is streamed twice: once for its `cap + 1` best-ranked members, and, only when it
    is oversized, again to pair every other member with the `cap` best.
    """

    def __init__(self, max_bucket_size: int):
        self.max_bucket_size = max_bucket_size

    def setup(self):
        self.oversized = _diagnostic("oversized_buckets")
        self.skipped = _diagnostic("pairs_skipped")
        self.emitted = _diagnostic("bucket_pairs")

    def process(self, element):
        _key, members = element
        cap = self.max_bucket_size
        best = sorted(heapq.nsmallest(cap + 1, members))
        if len(best) <= cap:
            self.emitted.inc(len(best) * (len(best) - 1) // 2)
            yield from itertools.combinations(best, 2)
            return
        best = best[:cap]
        self.oversized.inc()
        yield from itertools.combinations(best, 2)
        n = cap
        for member in members:
            if member > best[-1]:
                n += 1
                for anchor in best:
                    yield anchor, member
        emitted = cap * (cap - 1) // 2 + (n - cap) * cap
        self.emitted.inc(emitted)
        self.skipped.inc(n * (n - 1) // 2 - emitted)


class _AttachFirstShingles(beam.DoFn):
    """(id of a, {shingles: [a's], pairs: [(a, b)]}) -> (id of b, (a, b, a's shingles))."""

    def process(self, element):
        key, joined = element
        shingle_sets = list(joined[SHINGLES_TAG])
        if len(shingle_sets) > 1:
            raise duplicate_id_error(key)
        for a, b in joined["pairs"]:
            yield doc_id(b), (a, b, shingle_sets[0])


class _VerifyPairs(beam.DoFn):
    """(id of b, {shingles: [b's], halves: [(a, b, a's)]}) -> verified edges (a, b)."""

    def __init__(self, threshold: float):
        self.threshold = threshold

    def setup(self):
        self.candidates = _diagnostic("candidate_pairs")
        self.verified = _diagnostic("verified_pairs")

    def process(self, element):
        key, joined = element
        shingle_sets = list(joined[SHINGLES_TAG])
        if len(shingle_sets) > 1:
            raise duplicate_id_error(key)
        b_shingles = None
        for a, b, a_shingles in joined["halves"]:
            if b_shingles is None:
                b_shingles = np.frombuffer(shingle_sets[0], dtype=np.uint64)
            self.candidates.inc()
            if jaccard(np.frombuffer(a_shingles, dtype=np.uint64), b_shingles) >= self.threshold:
                self.verified.inc()
                yield a, b


def _removed_for_survivor(element):
    """(id, {labels: [survivor id], prior: [dup_count]}) -> (survivor id, documents removed with it)."""
    _key, joined = element
    for survivor_id in joined["labels"]:
        yield survivor_id, 1 + sum(joined["prior"])


class _Assign(beam.DoFn):
    """(id, {docs: [doc], labels: [survivor id], absorbed: [n]}) -> kept doc with dup_cluster and
    dup_count, or a counted drop on `DROPPED` with `duplicate_of`."""

    def setup(self):
        self.counter = StageCounter(STAGE)

    def process(self, element):
        key, joined = element
        docs = list(joined["docs"])
        if len(docs) != 1:
            raise duplicate_id_error(key)
        self.counter.seen()
        labels = list(joined["labels"])
        if labels:
            yield self.counter.drop(DROP_REASON, docs[0], duplicate_of=labels[0])
            return
        self.counter.kept()
        yield survivor(docs[0], sum(joined["absorbed"]))


class NearDuplicateClusters(beam.PTransform):
    """Document dicts -> (id, survivor id) for every document that has a better near duplicate."""

    def __init__(self, cfg: DedupConfig):
        super().__init__()
        self.cfg = cfg

    def expand(self, docs):
        sketched = (
            docs
            | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=self.cfg.batch_size)
            | "Sketch" >> beam.ParDo(_Sketch(self.cfg)).with_outputs(BANDS_TAG, SHINGLES_TAG)
        )
        shingle_sets = sketched[SHINGLES_TAG]
        candidates = (
            sketched[BANDS_TAG]
            | "GroupBuckets" >> beam.GroupByKey()
            | "BucketPairs" >> beam.ParDo(_BucketPairs(self.cfg.max_bucket_size))
            | "DistinctPairs" >> beam.Distinct()
        )
        edges = (
            {SHINGLES_TAG: shingle_sets, "pairs": candidates | "KeyByFirst" >> beam.Map(lambda p: (doc_id(p[0]), p))}
            | "JoinFirst" >> beam.CoGroupByKey()
            | "AttachFirstShingles" >> beam.ParDo(_AttachFirstShingles())
        )
        edges = (
            {SHINGLES_TAG: shingle_sets, "halves": edges}
            | "JoinSecond" >> beam.CoGroupByKey()
            | "VerifyJaccard" >> beam.ParDo(_VerifyPairs(self.cfg.threshold))
        )
        return (
            edges
            | "Components" >> ConnectedComponents(self.cfg.cc_rounds)
            | "ById" >> beam.Map(lambda label: (doc_id(label[0]), doc_id(label[1])))
        )


class NearDedup(beam.PTransform):
    """Document dicts -> the best-ranked document of every near-duplicate cluster.

    Kept documents get `dup_cluster` = their own id, which is the id of the cluster they
    survive (for a document without near duplicates, its own singleton cluster), and their
    `dup_count` grows by the documents removed with their cluster. With `with_dropped`:
    (kept, dropped), each dropped document labelled with `stage`, `reason` and `duplicate_of`.
    """

    def __init__(self, cfg: DedupConfig, with_dropped: bool = False):
        super().__init__()
        self.cfg = cfg
        self.with_dropped = with_dropped

    def expand(self, docs):
        if not self.cfg.near:
            kept = docs | "NearDedupDisabled" >> beam.ParDo(KeepEveryDocument(STAGE))
            return (kept, docs.pipeline | "NothingDropped" >> beam.Create([])) if self.with_dropped else kept
        labels = docs | "Clusters" >> NearDuplicateClusters(self.cfg)
        keyed = docs | "KeyById" >> beam.Map(lambda doc: (doc_id(rank_key(doc)), doc))
        # only documents that absorbed duplicates before (exact copies) add more than themselves
        prior = docs | "RemovedBefore" >> beam.FlatMap(
            lambda doc: [(doc["id"], removed_before(doc))] if removed_before(doc) else [])
        absorbed = (
            {"labels": labels, "prior": prior}
            | "JoinRemovedBefore" >> beam.CoGroupByKey()
            | "RemovedForSurvivor" >> beam.FlatMap(_removed_for_survivor)
            | "SumPerSurvivor" >> beam.CombinePerKey(sum)
        )
        outputs = (
            {"docs": keyed, "labels": labels, "absorbed": absorbed}
            | "JoinLabels" >> beam.CoGroupByKey()
            | "Assign" >> beam.ParDo(_Assign()).with_outputs(DROPPED, main=KEPT)
        )
        return (outputs[KEPT], outputs[DROPPED]) if self.with_dropped else outputs[KEPT]
