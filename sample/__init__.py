"""The offline sample that the demo, `make crawl` and the tests run on: a small web for the replay
server and a Reddit dump, generated on demand (sample/bundled.py) by sample/generate.py."""
