import os
import time

import pytest

from extract.config import ExtractConfig
from extract.isolation import IsolatedExtractor

from .conftest import slow_page


def test_slow_page_times_out_and_the_next_page_still_works(pages):
    config = ExtractConfig(timeout_seconds=1.0)
    with IsolatedExtractor(config) as isolated:
        assert isolated(pages["article_en"], None, None).status == "ok"  # child started and warm
        first_pid = isolated._process.pid
        started = time.monotonic()
        outcome = isolated(slow_page(), "text/html", None)
        assert outcome.status == "extract_timeout"
        assert time.monotonic() - started < 6  # the 1 s timeout, not the ~11+ s extraction
        # the hung child is gone and a fresh one serves the next page
        assert not os.path.exists(f"/proc/{first_pid}") or open(f"/proc/{first_pid}/stat").read().split()[2] == "Z"
        after = isolated(pages["article_en"], None, None)
        assert after.status == "ok" and "river otters" in after.extraction.text
        assert isolated._process.pid != first_pid


def test_child_that_dies_is_an_extract_error_and_is_replaced(pages, config):
    with IsolatedExtractor(config) as isolated:
        assert isolated(pages["article_en"], None, None).status == "ok"
        isolated._process.kill()  # a real crash (segfault, OOM kill) looks like this to the parent
        isolated._process.wait()
        assert isolated(pages["article_en"], None, None).status == "extract_error"
        assert isolated(pages["article_en"], None, None).status == "ok"


def test_queued_pages_come_back_in_order_after_timeouts(pages):
    """Pages queued behind hung ones go to a fresh child; a busy child never blocks `submit`
    even for pages larger than the pipe."""
    config = ExtractConfig(timeout_seconds=1.0)
    with IsolatedExtractor(config) as isolated:
        isolated(pages["article_en"], None, None)  # child started and warm
        started = time.monotonic()
        for tag, body in (("slow1", slow_page()), ("slow2", slow_page()), ("en", pages["article_en"]),
                          ("bot", pages["bot_check"])):
            isolated.submit(body, "text/html", None, tag=tag)
        assert time.monotonic() - started < 6  # 12 MB queued while the child is busy (~11+ s a page): no blocking
        results = [isolated.next_result() for _ in range(4)]
        assert [tag for tag, _ in results] == ["slow1", "slow2", "en", "bot"]
        assert [o.status for _, o in results] == ["extract_timeout", "extract_timeout", "ok", "ok"]
        assert "river otters" in results[2][1].extraction.text
        assert isolated.in_flight == 0


def test_child_dying_with_pages_queued_blames_only_the_page_it_was_on(pages, config):
    with IsolatedExtractor(config) as isolated:
        isolated.submit(slow_page(), None, None, tag="slow")
        isolated.submit(pages["article_en"], None, None, tag="en")
        isolated._process.kill()
        tag, outcome = isolated.next_result()
        assert (tag, outcome.status) == ("slow", "extract_error") and "died" in outcome.error
        tag, outcome = isolated.next_result()
        assert (tag, outcome.status) == ("en", "ok")


def test_synchronous_call_with_pages_in_flight_is_refused(pages, config):
    with IsolatedExtractor(config) as isolated:
        isolated.submit(pages["article_en"], None, None)
        with pytest.raises(RuntimeError, match="in flight"):
            isolated(pages["article_en"], None, None)
