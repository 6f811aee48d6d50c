"""The URL table streamed by shard: batches, owned rows in table order, validation per shard."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import crawl.url_table as url_table
from crawl.url_table import Shard, digests, open_url_table, read_url_table, select_shard
from tests.crawl.test_crawler_support import mark_harvest_complete, write_url_table

URLS = [f"http://site{i % 5}.example/p/{i}.html" for i in range(60)]


def test_a_table_is_read_in_batches_and_a_shard_keeps_only_its_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(url_table, "BATCH_ROWS", 7)  # several batches per file, a shard's rows across them
    table = open_url_table(str(write_url_table(tmp_path / "urls", URLS, files=3)))
    assert table.num_rows == len(URLS) and len(table.files) == 3
    assert max(batch.num_rows for batch in table.batches(["url"])) == 7
    everything = read_url_table(table.directory).to_pylist()
    shard = Shard(1, 3)
    mine = [row for row in everything if shard.owns(row["url_key"])]
    rows = select_shard(table, shard)
    assert 0 < len(rows) == len(mine) < len(URLS)
    assert list(rows.rows(np.ones(len(rows), bool))) == mine  # whole rows, in table order
    assert (rows.url_digests == digests([row["url"] for row in mine])).all()
    every_other = np.arange(len(rows)) % 2 == 0
    assert list(rows.rows(every_other)) == mine[::2]
    assert list(rows.rows(np.zeros(len(rows), bool))) == []


def _table_with(directory, urls, keys):
    directory.mkdir()
    pq.write_table(pa.table({"url": urls, "url_key": keys, "post_ids": [["p"]] * len(urls),
                             "subreddits": [["s"]] * len(urls), "score": [3] * len(urls),
                             "first_created_utc": [1] * len(urls)}), directory / "urls-00000.parquet")
    mark_harvest_complete(directory, len(urls))
    return open_url_table(str(directory))


def test_duplicates_are_found_by_the_shard_that_owns_them(tmp_path):
    keys = [f"k{i}" for i in range(40)] + ["k7"]
    table = _table_with(tmp_path / "keys", [f"http://u/{i}" for i in range(41)], keys)
    owner = next(Shard(i, 4) for i in range(4) if Shard(i, 4).owns("k7"))
    with pytest.raises(ValueError, match="url_key is not unique"):
        select_shard(table, owner)
    for other in (Shard(i, 4) for i in range(4) if i != owner.index):
        select_shard(table, other)  # never crawls k7: nothing to refuse
    table = _table_with(tmp_path / "urls", ["http://u/1", "http://u/2", "http://u/1"], ["a", "b", "c"])
    with pytest.raises(ValueError, match="url is not unique"):
        select_shard(table, Shard(0, 1))
