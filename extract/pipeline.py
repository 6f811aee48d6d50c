"""`ExtractPages`: the Beam transform from raw crawled pages to filtered documents.

Two stages, counted separately so that each reconciles on its own:
  extract: raw page -> decoded, main text extracted (drops: decode_error, no_text,
           extract_timeout, extract_error; a page whose body could not be read: the reason
           it carries under BODY_ERROR)
  filter:  document -> kept if its quality rules pass and its language is wanted
           (drops: each quality rule's name, `lang_<code>`, `lang_low_confidence`)
so that extract.in = extract.out + extract drops, and filter.in = extract.out.
The extract stage also counts the lines its line rules removed (extract/lines.py) as diagnostics
`lines_removed.<rule>`, outside that record accounting; `removed_lines` reads them back.
Every drop is also emitted on the stages' `DROPPED` output (`core.beam.StageCounter.drop`):
`ExtractPages(config, with_dropped=True)` returns (kept, dropped) for the build's audit table.
"""

from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.pvalue import TaggedOutput
from apache_beam.utils.windowed_value import WindowedValue

from core.beam import DROPPED, KEPT, NAMESPACE_PREFIX, StageCounter, stage_diagnostics
from extract.config import ExtractConfig
from extract.isolation import IsolatedExtractor
from extract.language import identify, language_failure
from extract.lines import enabled_rules
from extract.quality import first_failure

log = logging.getLogger(__name__)
# A page whose body could not be read names why under BODY_ERROR (its body is None); that is its
# drop reason (the build's `warc_reread_error`, shards/warc_source.py).
BODY_ERROR = "body_error"
RAW_KEYS = ("body", "body_at", "content_type", BODY_ERROR)
EXTRACT_STAGE = "extract"
LINES_REMOVED_PREFIX = "lines_removed."


class ExtractDoFn(beam.DoFn):
    """Raw page dict -> document dict (drops: the page without its body, on `DROPPED`); each
    DoFn instance owns one extraction child process.

    One page stays queued in the child while this process handles the previous result, so
    extraction overlaps with Beam, language identification and the filter stage. Documents
    come out in input order, each in its own page's window; finish_bundle flushes the last page.
    """

    def __init__(self, config: ExtractConfig):
        self.config = config
        self._extractor: IsolatedExtractor | None = None

    def setup(self):
        self.counter = StageCounter(EXTRACT_STAGE)
        self.lines_removed = {
            rule.__name__: Metrics.counter(NAMESPACE_PREFIX + EXTRACT_STAGE, LINES_REMOVED_PREFIX + rule.__name__)
            for rule in enabled_rules(self.config)
        }
        self._extractor = IsolatedExtractor(self.config)

    def start_bundle(self):
        if self._extractor.in_flight:  # left over from a failed bundle that Beam will retry
            self._extractor.close()

    def process(self, page: dict, timestamp=beam.DoFn.TimestampParam, window=beam.DoFn.WindowParam):
        self.counter.seen()
        url = page.get("final_url") or page.get("url")
        body = page.get("body")
        document = {key: value for key, value in page.items() if key not in RAW_KEYS}
        if not isinstance(body, (bytes, bytearray)):
            log.warning("extract: page %s has no bytes body (%s)", url, type(body).__name__)
            yield self.counter.drop(page.get(BODY_ERROR) or "decode_error", document)
            return
        self._extractor.submit(bytes(body), page.get("content_type"), url, tag=(document, url, timestamp, window))
        if self._extractor.in_flight > 1:
            yield from self._finish_oldest()

    def finish_bundle(self):
        while self._extractor.in_flight:
            yield from self._finish_oldest()

    def _finish_oldest(self):
        (document, url, timestamp, window), outcome = self._extractor.next_result()
        for rule, lines in outcome.lines_removed.items():
            self.lines_removed[rule].inc(lines)
        if outcome.status != "ok":
            if outcome.error:
                log.info("extract: %s for %s: %s", outcome.status, url, outcome.error)
            dropped = self.counter.drop(outcome.status, document)
            yield TaggedOutput(DROPPED, WindowedValue(dropped.value, timestamp, (window,)))
            return
        text = outcome.extraction.text
        language, confidence = identify(text, self.config)
        document.update(
            text=text,
            title=outcome.extraction.title,
            lang=language,
            lang_confidence=confidence,
            extractor=outcome.extraction.extractor,
            n_chars=len(text),
            n_words=len(text.split()),
            encoding=outcome.encoding,
        )
        self.counter.kept()
        yield WindowedValue(document, timestamp, (window,))

    def teardown(self):
        if self._extractor is not None:
            self._extractor.close()


class FilterDoFn(beam.DoFn):
    """Keeps documents that pass every quality rule and are in a wanted language."""

    def __init__(self, config: ExtractConfig):
        self.config = config

    def setup(self):
        self.counter = StageCounter("filter")

    def process(self, document: dict):
        self.counter.seen()
        reason = first_failure(document["text"], self.config) or language_failure(
            document["lang"], document["lang_confidence"], self.config
        )
        if reason:
            yield self.counter.drop(reason, document)
            return
        self.counter.kept()
        yield document


class ExtractPages(beam.PTransform):
    """Page dicts {url, final_url, body, content_type, ...} -> kept document dicts with
    text, title, lang, lang_confidence, extractor, n_chars, n_words, encoding (body dropped).

    With `with_dropped`: (kept, dropped), dropped holding every page either stage dropped
    (without its body), labelled with `stage` and `reason`."""

    def __init__(self, config: ExtractConfig, with_dropped: bool = False):
        super().__init__()
        self.config = config
        self.with_dropped = with_dropped

    def expand(self, pages):
        extracted = pages | "Extract" >> beam.ParDo(ExtractDoFn(self.config)).with_outputs(DROPPED, main=KEPT)
        filtered = extracted[KEPT] | "Filter" >> beam.ParDo(FilterDoFn(self.config)).with_outputs(DROPPED, main=KEPT)
        if not self.with_dropped:
            return filtered[KEPT]
        return filtered[KEPT], (extracted[DROPPED], filtered[DROPPED]) | "Dropped" >> beam.Flatten()


def removed_lines(result, config: ExtractConfig) -> dict[str, int]:
    """Lines removed per enabled line rule (0 if none) in a finished pipeline that ran ExtractPages:
    line counts, not records, so they stay out of the stage's in/out/drop accounting."""
    diagnostics = stage_diagnostics(result, EXTRACT_STAGE)
    return {rule.__name__: diagnostics.get(LINES_REMOVED_PREFIX + rule.__name__, 0) for rule in enabled_rules(config)}
