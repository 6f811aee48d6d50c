import os
import time

from extract.config import ExtractConfig
from extract.isolation import IsolatedExtractor

from .conftest import slow_page


def test_slow_page_times_out_and_the_next_page_still_works(pages):
    cfg = ExtractConfig(timeout_seconds=1.0)
    with IsolatedExtractor(cfg) as isolated:
        assert isolated(pages["article_en"], None, None).status == "ok"  # child started and warm
        first_pid = isolated._proc.pid
        started = time.monotonic()
        outcome = isolated(slow_page(), "text/html", None)
        assert outcome.status == "extract_timeout"
        assert time.monotonic() - started < 5  # the parent did not wait for the extractor
        # the hung child is gone and a fresh one serves the next page
        assert not os.path.exists(f"/proc/{first_pid}") or open(f"/proc/{first_pid}/stat").read().split()[2] == "Z"
        after = isolated(pages["article_en"], None, None)
        assert after.status == "ok" and "river otters" in after.extraction.text
        assert isolated._proc.pid != first_pid


def test_child_that_dies_is_an_extract_error_and_is_replaced(pages, cfg):
    with IsolatedExtractor(cfg) as isolated:
        assert isolated(pages["article_en"], None, None).status == "ok"
        isolated._proc.kill()  # a real crash (segfault, OOM kill) looks like this to the parent
        isolated._proc.wait()
        assert isolated(pages["article_en"], None, None).status == "extract_error"
        assert isolated(pages["article_en"], None, None).status == "ok"
