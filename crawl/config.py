"""Config sections of the crawl stage: `harvest` (Reddit dumps -> URLs) and `crawl` (Scrapy)."""

from webtext.section import Section


class HarvestConfig(Section):
    pass


class CrawlConfig(Section):
    pass
