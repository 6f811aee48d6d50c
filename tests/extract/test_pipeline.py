import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to

from core.beam import collect_stage_counts
from extract.pipeline import ExtractPages
from extract.config import ExtractConfig
from extract.pipeline import FilterDoFn, removed_lines

from .conftest import slow_page
from .test_extractors import BYLINE, FURNITURE_ONLY
from .test_quality import FAILING, PROSE

DOCUMENT_KEYS = {"text", "title", "lang", "lang_confidence", "extractor", "n_chars", "n_words", "encoding"}


def _as_cp1252(page: bytes) -> bytes:
    html = page.decode().replace("utf-8", "windows-1252").replace("mill weir", "mill weir by the café")
    return html.encode("cp1252")


def _pages(pages):
    def page(name, body, content_type="text/html; charset=utf-8"):
        return {"url": f"http://site.example/{name}", "final_url": f"https://site.example/{name}",
                "body": body, "content_type": content_type, "score": 5, "post_ids": ["abc"]}

    return [
        page("en", pages["article_en"]),
        page("en_1252", _as_cp1252(pages["article_en"]), None),
        page("de", pages["article_de"]),
        page("bot", pages["bot_check"]),
        page("empty", b""),
        page("nobody", None),
        {**page("unreadable", None), "body_error": "warc_reread_error"},  # shards.warc_source.ReadBodies
        page("blank", b"<html><body></body></html>"),
        page("slow", slow_page()),
    ]


def _check(documents):
    urls = sorted(document["url"] for document in documents)
    assert urls == ["http://site.example/en", "http://site.example/en_1252"], urls
    for document in documents:
        assert DOCUMENT_KEYS <= set(document) and "body" not in document and "content_type" not in document
        assert document["score"] == 5 and document["post_ids"] == ["abc"] and document["lang"] == "en"
        assert "river otters" in document["text"] and document["n_words"] == len(document["text"].split())
    assert sorted(document["encoding"] for document in documents) == ["cp1252", "utf-8"]


@pytest.mark.parametrize("mode", ["in_memory", "multi_threading", "multi_processing"])
def test_extract_pages_counts_reconcile(mode, pages):
    workers = 1 if mode == "in_memory" else 2
    options = PipelineOptions([f"--direct_running_mode={mode}", f"--direct_num_workers={workers}"])
    config = ExtractConfig(timeout_seconds=1.0)
    with beam.Pipeline(options=options) as pipeline:
        documents = pipeline | beam.Create(_pages(pages)) | ExtractPages(config)
        assert_that(documents | beam.combiners.ToList(), lambda lists: _check(lists[0]))
    counts = collect_stage_counts(pipeline.result)
    extract, quality_filter = counts["extract"], counts["filter"]
    extract.check()
    quality_filter.check()
    assert (extract.records_in, extract.records_out) == (9, 4)
    assert extract.dropped == {"decode_error": 2, "warc_reread_error": 1, "no_text": 1, "extract_timeout": 1}
    assert quality_filter.records_in == extract.records_out
    assert quality_filter.dropped == {"lang_de": 1, "bot_check": 1} and quality_filter.records_out == 2


def test_documents_keep_their_pages_window_and_order(pages):
    """Documents emitted for an earlier page (or in finish_bundle) stay in that page's window."""
    from apache_beam.transforms import window

    def page(i):
        return {"url": f"http://site.example/{i}", "final_url": None, "body": pages["article_en"],
                "content_type": None}

    with beam.Pipeline(options=PipelineOptions(["--direct_running_mode=in_memory"])) as pipeline:
        found = (
            pipeline
            | beam.Create([window.TimestampedValue(page(i), 100 * i) for i in range(3)])
            | beam.WindowInto(window.FixedWindows(10))
            | ExtractPages(ExtractConfig())
            | beam.Map(lambda document, page_window=beam.DoFn.WindowParam: (document["url"], int(page_window.start)))
        )
        assert_that(found, _in_own_windows)


def _in_own_windows(got):
    assert sorted(got) == [(f"http://site.example/{i}", 100 * i) for i in range(3)], sorted(got)


def test_filter_counts_each_quality_rule_under_its_own_reason():
    """Every rule's drops are counted under its own name in the stage counts."""
    english = {"lang": "en", "lang_confidence": 0.99}
    documents = [{"text": text, **english} for text in FAILING.values()]
    documents += [{"text": PROSE, **english}, {"text": PROSE, "lang": "en", "lang_confidence": 0.2}]
    with beam.Pipeline(options=PipelineOptions(["--direct_running_mode=in_memory"])) as pipeline:
        kept = pipeline | beam.Create(documents) | beam.ParDo(FilterDoFn(ExtractConfig()))
        assert_that(kept | beam.Map(lambda document: document["text"]), equal_to([PROSE]))
    quality_filter = collect_stage_counts(pipeline.result)["filter"]
    quality_filter.check()
    assert quality_filter.dropped == {**{reason: 1 for reason in FAILING}, "lang_low_confidence": 1}


def test_removed_lines_are_counted_per_rule_outside_the_record_accounting(pages):
    """Line counts are diagnostics of the extract stage: a page left without lines is one
    `no_text` record, its lines are counted with the others' by rule."""
    config = ExtractConfig(remove_table_markup_line=False)
    harbour = {"url": "http://site.example/harbour", "final_url": None, "body": pages["article_furniture"],
               "content_type": None}
    furniture = {"url": "http://site.example/share", "final_url": None, "body": FURNITURE_ONLY, "content_type": None}
    with beam.Pipeline(options=PipelineOptions(["--direct_running_mode=in_memory"])) as pipeline:
        documents = pipeline | beam.Create([harbour, furniture]) | ExtractPages(config)
        kept = documents | beam.Map(lambda document: (document["url"], BYLINE in document["text"],
                                                      "| See also the related articles below |" in document["text"]))
        assert_that(kept, equal_to([("http://site.example/harbour", False, True)]))
    extract = collect_stage_counts(pipeline.result)["extract"]
    extract.check()
    assert (extract.records_in, extract.records_out, extract.dropped) == (2, 1, {"no_text": 1})
    assert removed_lines(pipeline.result, config) == {"byline_or_share_line": 3}
    assert removed_lines(pipeline.result, ExtractConfig()) == {"byline_or_share_line": 3, "table_markup_line": 0}
