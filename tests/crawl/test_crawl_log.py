"""Resume state from crawl-log parts: URL digests, first outcome per URL, duplicates, last offsets."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from crawl.crawl_log import SCHEMA, LoggedState
from crawl.url_table import digests


def _part(path, rows):
    full = [{"url": url, "outcome": outcome, "warc_file": warc, "warc_offset": offset} for url, outcome, warc, offset in rows]
    pq.write_table(pa.Table.from_pylist(full, schema=SCHEMA), path)
    return str(path)


def test_each_wanted_url_counts_once_by_its_oldest_row(tmp_path):
    older = _part(tmp_path / "a.parquet", [("http://a/", "http_5xx", None, None), ("http://b/", "ok", "w0", 10),
                                           ("http://x/", "ok", "w1", 99)])
    newer = _part(tmp_path / "b.parquet", [("http://a/", "ok", "w0", 50), ("http://c/", "dns", None, None)])
    wanted = digests(["http://a/", "http://b/", "http://c/", "http://never/"])
    wanted.sort()
    state = LoggedState().read([older], wanted)
    assert len(state) == 2 and state.outcomes == {"http_5xx": 1, "ok": 1} and state.duplicates == 0
    state.read([newer], wanted)  # as after a run: its parts on top of the earlier state
    assert len(state) == 3 and state.outcomes == {"http_5xx": 1, "ok": 1, "dns": 1} and state.duplicates == 1
    assert state.contains(digests(["http://a/", "http://x/", "http://never/"])).tolist() == [True, False, False]
    assert state.last_offsets == {"w0": 50, "w1": 99}  # every WARC file, wanted or not
    everything = LoggedState().read([older, newer])
    assert len(everything) == 4 and everything.duplicates == 1
