import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that

from extract import ExtractPages
from extract.config import ExtractConfig
from core.beam import collect_stage_counts

from .conftest import slow_page

DOC_KEYS = {"text", "title", "lang", "lang_confidence", "extractor", "n_chars", "n_words", "encoding"}


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
        page("blank", b"<html><body></body></html>"),
        page("slow", slow_page()),
    ]


def _check(docs):
    urls = sorted(d["url"] for d in docs)
    assert urls == ["http://site.example/en", "http://site.example/en_1252"], urls
    for d in docs:
        assert DOC_KEYS <= set(d) and "body" not in d and "content_type" not in d
        assert d["score"] == 5 and d["post_ids"] == ["abc"] and d["lang"] == "en"
        assert "river otters" in d["text"] and d["n_words"] == len(d["text"].split())
    assert sorted(d["encoding"] for d in docs) == ["cp1252", "utf-8"]


@pytest.mark.parametrize("mode", ["in_memory", "multi_threading", "multi_processing"])
def test_extract_pages_counts_reconcile(mode, pages):
    options = PipelineOptions([f"--direct_running_mode={mode}", "--direct_num_workers=2" if mode != "in_memory" else "--direct_num_workers=1"])
    cfg = ExtractConfig(timeout_seconds=1.0)
    with beam.Pipeline(options=options) as p:
        docs = p | beam.Create(_pages(pages)) | ExtractPages(cfg)
        assert_that(docs | beam.combiners.ToList(), lambda lists: _check(lists[0]))
    counts = collect_stage_counts(p.result)
    extract, filt = counts["extract"], counts["filter"]
    extract.check()
    filt.check()
    assert (extract.records_in, extract.records_out) == (8, 4)
    assert extract.dropped == {"decode_error": 2, "no_text": 1, "extract_timeout": 1}
    assert filt.records_in == extract.records_out
    assert filt.dropped == {"lang_de": 1, "bot_check": 1} and filt.records_out == 2


def test_documents_keep_their_pages_window_and_order(pages):
    """Documents emitted for an earlier page (or in finish_bundle) stay in that page's window."""
    from apache_beam.transforms import window

    def page(i):
        return {"url": f"http://site.example/{i}", "final_url": None, "body": pages["article_en"],
                "content_type": None}

    with beam.Pipeline(options=PipelineOptions(["--direct_running_mode=in_memory"])) as p:
        found = (
            p
            | beam.Create([window.TimestampedValue(page(i), 100 * i) for i in range(3)])
            | beam.WindowInto(window.FixedWindows(10))
            | ExtractPages(ExtractConfig())
            | beam.Map(lambda d, w=beam.DoFn.WindowParam: (d["url"], int(w.start)))
        )
        assert_that(found, _in_own_windows)


def _in_own_windows(got):
    assert sorted(got) == [(f"http://site.example/{i}", 100 * i) for i in range(3)], sorted(got)
