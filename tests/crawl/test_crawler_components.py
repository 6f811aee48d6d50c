"""What the crawler takes from Scrapy, pinned so that a Scrapy upgrade fails here, loudly,
instead of changing the crawl quietly.

Scrapy's default component lists stay in force and single components are switched off, so a
component an upgrade adds would start running on every page: the lists below name exactly what
runs. And only Scrapy's public API is used: no private module or name is imported, and no
private method of a Scrapy class is overridden (private methods change without notice).
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from scrapy.settings import Settings
from scrapy.utils.conf import build_component_list
from scrapy.utils.python import without_none_values

from crawl import middlewares, spider
from crawl.config import CrawlConfig
from crawl.crawler import scrapy_settings

CRAWL = Path(__file__).resolve().parents[2] / "crawl"


def _running(settings: Settings, name: str) -> list[str]:
    """The components Scrapy builds from a component priority dictionary and its *_BASE."""
    return [c if isinstance(c, str) else f"{c.__module__}.{c.__qualname__}"
            for c in build_component_list(settings.getwithbase(name))]


def test_exactly_the_chosen_scrapy_components_run():
    settings = Settings(scrapy_settings(CrawlConfig()))
    assert _running(settings, "DOWNLOADER_MIDDLEWARES") == [
        "crawl.middlewares.AddressGuardMiddleware",
        "crawl.middlewares.RobotsMiddleware",
        "scrapy.downloadermiddlewares.downloadtimeout.DownloadTimeoutMiddleware",
        "scrapy.downloadermiddlewares.defaultheaders.DefaultHeadersMiddleware",
        "scrapy.downloadermiddlewares.useragent.UserAgentMiddleware",
        "crawl.middlewares.BackoffRetryMiddleware",
        "crawl.middlewares.BoundedDecompressionMiddleware",
        "crawl.middlewares.ChainRedirectMiddleware",
    ]
    assert _running(settings, "SPIDER_MIDDLEWARES") == []
    assert _running(settings, "EXTENSIONS") == ["scrapy.extensions.throttle.AutoThrottle", "crawl.middlewares.CrawlDelay"]
    assert without_none_values(settings.getwithbase("DOWNLOAD_HANDLERS")) == {
        "http": "crawl.middlewares.GuardedDownloadHandler", "https": "crawl.middlewares.GuardedDownloadHandler"}


def _scrapy_imports(path: Path) -> list[str]:
    """Every `scrapy...` module and name imported by a source file, as dotted paths."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if alias.name.split(".")[0] == "scrapy"]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "scrapy":
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def test_no_private_scrapy_module_or_name_is_imported():
    imported = {str(path.relative_to(CRAWL)): _scrapy_imports(path) for path in sorted(CRAWL.rglob("*.py"))}
    assert imported["middlewares.py"] and imported["crawler.py"]  # the scan sees them
    private = {name: [i for i in imports if any(part.startswith("_") for part in i.split("."))]
               for name, imports in imported.items()}
    assert {name: found for name, found in private.items() if found} == {}


def test_no_private_scrapy_method_is_overridden():
    """A method of ours whose name starts with `_` must not exist in any Scrapy class above it
    (`_abc_impl`: Python's bookkeeping for abstract base classes, in every subclass of one)."""
    ours = [cls for module in (middlewares, spider) for _, cls in inspect.getmembers(module, inspect.isclass)
            if cls.__module__ == module.__name__]
    scrapy_based = [cls for cls in ours if any(base.__module__.startswith("scrapy.") for base in cls.__mro__[1:])]
    assert {c.__name__ for c in scrapy_based} >= {
        "GuardedDownloadHandler", "BackoffRetryMiddleware", "ChainRedirectMiddleware",
        "BoundedDecompressionMiddleware", "QuietLogFormatter", "UrlTableSpider"}
    overridden = {
        f"{cls.__name__}.{name}"
        for cls in scrapy_based for name in vars(cls)
        if name.startswith("_") and not (name.startswith("__") and name.endswith("__")) and name != "_abc_impl"
        and any(name in vars(base) for base in cls.__mro__[1:] if base.__module__.startswith("scrapy."))
    }
    assert overridden == set()
