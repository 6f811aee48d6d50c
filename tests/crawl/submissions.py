"""Reddit submission records and dump lines for the harvest tests."""

import json


def submission(post_id, url, score=10, created=1500000000, sub="news", title="A title", **extra) -> dict:
    """A link submission; a field given as `...` is left out."""
    fields = {"id": post_id, "url": url, "score": score, "created_utc": created, "subreddit": sub,
              "title": title, "is_self": False, "over_18": False}
    fields.update(extra)
    return {k: v for k, v in fields.items() if v is not ...}


def dump_line(record) -> bytes:
    """One dump line as Pushshift writes it: compact UTF-8 JSON."""
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
