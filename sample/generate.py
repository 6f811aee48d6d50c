"""Generate the bundled offline sample: a small web (served by crawl/replay.py) and a Reddit dump.

Deterministic: the same Python (pydoc text) and zstandard versions give byte-identical output.
English article text is CPython's own `pydoc_data.topics` (real English prose, always
installed), cut into article-length pieces and wrapped in the boilerplate of six site
templates; sample/handwritten.py has the rest. The dump's ground truth (RS_sample.expected.json)
is written from how each record was built, never by running the harvest. See sample/README.md.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import hashlib
import html
import io
import json
import random
import re
import shutil
import struct
import textwrap
import zlib
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import zstandard
from pydoc_data import topics as pydoc_topics

from sample import handwritten as hw

# Where generate() writes each part, relative to its output folder.
WEB_DIR = "web"
DUMP_FILE = "reddit/RS_sample.zst"
TRUTH_FILE = "reddit/RS_sample.expected.json"  # the dump's ground truth (tests read it)
ARCHIVE_DIR = "archive"  # a small web archive of dead sample links (captures.warc.gz + captures.json)
SEED = 20171201
WINDOW_LOG = 31  # 2 GiB window, like the real Pushshift .zst dumps (needs `zstd --long=31`)
MIN_SCORE = 3
DATE_WINDOW_END = int(dt.datetime(2018, 1, 1, tzinfo=dt.timezone.utc).timestamp())  # harvest.created_before's default
BLOCKED_DOMAINS = ["facebook.com", "gfycat.com", "i.redd.it", "imgur.com", "instagram.com",
                   "reddit.com", "redd.it", "twitter.com", "v.redd.it", "x.com", "youtu.be", "youtube.com"]
TRACKING_PARAMS = ["fbclid", "gclid", "utm_*"]
HTML_UTF8 = {"Content-Type": "text/html; charset=utf-8"}


# ---------------------------------------------------------------------------------------------
# English prose from pydoc_data.topics

Block = tuple[str, str]  # ("h2" | "p" | "pre", text)


@dataclasses.dataclass
class Page:
    host: str
    path: str
    title: str
    blocks: list[Block]
    lang: str = "en"
    author: str = ""
    date: str = ""
    related: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    comments: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    @property
    def key(self) -> str:
        return self.host + self.path


def _is_underline(line: str) -> bool:
    return len(line) >= 3 and len(set(line)) == 1 and line[0] in "*=-"


def _chunk_to_block(lines: list[str]) -> Block:
    """A blank-line separated chunk: indented grammar/code stays <pre>, prose is reflowed."""
    text = "\n".join(lines)
    indented = all(line.startswith(" ") for line in lines)
    codeish = ">>>" in text or "::=" in text or text.rstrip().endswith(("::", ")", "]"))
    if indented and codeish:
        return ("pre", textwrap.dedent(text))
    return ("p", " ".join(line.strip() for line in lines))


def _topic_sections(text: str) -> list[tuple[str, list[Block]]]:
    """Split one pydoc topic into (heading, blocks) sections at underlined headings."""
    lines = text.splitlines()
    sections: list[tuple[str, list[Block]]] = []
    chunk: list[str] = []

    def flush():
        if chunk and sections:
            sections[-1][1].append(_chunk_to_block(chunk))
        chunk.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and line.strip() and _is_underline(lines[i + 1].strip()):
            flush()
            sections.append((line.strip(), []))
            i += 2
            continue
        if line.strip():
            chunk.append(line)
        else:
            flush()
        i += 1
    flush()
    return [(title, blocks) for title, blocks in sections if blocks]


def _words(blocks: list[Block]) -> int:
    return sum(len(text.split()) for _, text in blocks)


def english_articles(min_words: int = 150, max_words: int = 380) -> list[tuple[str, list[Block]]]:
    """pydoc topics cut into article-length pieces (title, blocks), in a fixed order.

    A long topic becomes several articles; each continuation is titled by its first
    sub-heading (or "<topic>, part N"), as a series of blog posts would be. Paragraphs
    that pydoc repeats across topics are used once only.
    """
    articles: list[tuple[str, list[Block]]] = []
    seen: set[str] = set()  # topics repeat each other's paragraphs; the sample's duplicates are deliberate
    for name in sorted(pydoc_topics.topics):
        sections = _topic_sections(pydoc_topics.topics[name])
        if not sections:
            continue
        topic = sections[0][0]
        title, blocks, part = topic, [], 1
        for heading, section in sections:
            if heading != topic:
                if title is None:
                    title = heading
                else:
                    blocks.append(("h2", heading))
            for block in section:
                if block[1] in seen:
                    continue
                seen.add(block[1])
                blocks.append(block)
                if _words(blocks) >= max_words:
                    articles.append((title or f"{topic}, part {part}", blocks))
                    title, blocks, part = None, [], part + 1
        if _words(blocks) >= min_words:
            articles.append((title or f"{topic}, part {part}", blocks))
        elif blocks and articles and articles[-1][0].startswith(topic):
            articles[-1][1].extend(([("h2", title)] if title else []) + blocks)
    return articles


def slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "page"


def pydoc_sha256() -> str:
    blob = json.dumps(pydoc_topics.topics, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


# ---------------------------------------------------------------------------------------------
# Site templates: the same article in six kinds of chrome (extractors must cope with each)

esc = html.escape


@dataclasses.dataclass(frozen=True)
class Site:
    host: str
    name: str
    template: str
    path_style: str
    lang: str = "en"
    robots: str | None = "User-agent: *\nAllow: /\n"
    aliases: tuple[str, ...] = ()


def _body(blocks: list[Block]) -> str:
    out = []
    for kind, text in blocks:
        tag = {"h2": "h2", "pre": "pre", "p": "p"}[kind]
        out.append(f"<{tag}>{esc(text, quote=False)}</{tag}>")
    return "\n".join(out)


def _comments_html(comments, item="li") -> str:
    return "\n".join(
        f'<{item} class="comment"><span class="comment-author">{esc(who)}</span> '
        f'<span class="comment-date">2 days ago</span><p>{esc(what)}</p>'
        f'<a class="reply" href="#reply">Reply</a></{item}>' for who, what in comments)


def _related_html(related) -> str:
    return "\n".join(f'<li><a href="{esc(url)}">{esc(title)}</a></li>' for title, url in related)


def _nice_date(iso: str) -> str:
    return dt.date.fromisoformat(iso).strftime("%B %d, %Y").replace(" 0", " ")


NAV = ["Home", "World", "Politics", "Business", "Technology", "Science", "Culture", "Opinion"]
FOOTER_LINKS = ["About us", "Contact", "Careers", "Advertise", "Privacy policy", "Terms of use"]


def t_modern(site: Site, page: Page) -> str:
    nav = "".join(f'<li><a href="/{slugify(n)}/">{n}</a></li>' for n in NAV)
    foot = " · ".join(f'<a href="/{slugify(n)}">{n}</a>' for n in FOOTER_LINKS)
    return f"""<!DOCTYPE html>
<html lang="{page.lang}">
<head>
<meta charset="utf-8">
<title>{esc(page.title)} | {esc(site.name)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="author" content="{esc(page.author)}">
<meta property="og:title" content="{esc(page.title)}">
<meta property="og:site_name" content="{esc(site.name)}">
<link rel="canonical" href="http://{page.key}">
<link rel="stylesheet" href="/static/site.css">
<script>window.dataLayer = window.dataLayer || []; dataLayer.push({{"page": "{esc(page.path)}"}});</script>
</head>
<body>
<div id="cookie-banner" class="cookie-consent" role="dialog">
<p>We use cookies and similar technologies to improve your experience, measure traffic and show
personalised ads. By clicking "Accept all" you agree to our use of cookies.</p>
<button class="accept">Accept all</button> <button class="manage">Manage preferences</button>
</div>
<header class="site-header">
<a class="logo" href="/">{esc(site.name)}</a>
<nav class="main-nav"><ul>{nav}</ul></nav>
<form class="search" action="/search"><input name="q" placeholder="Search"></form>
</header>
<main id="content">
<article class="story">
<h1 class="headline">{esc(page.title)}</h1>
<p class="byline">By <span class="author">{esc(page.author)}</span> ·
<time datetime="{page.date}">{_nice_date(page.date)}</time></p>
<div class="share-buttons"><a href="#share-facebook">Share on Facebook</a> <a href="#share-twitter">Tweet</a> <a href="#share-email">Email</a></div>
<div class="story-body">
{_body(page.blocks)}
</div>
</article>
<aside class="related"><h3>Related stories</h3><ul>
{_related_html(page.related)}
</ul></aside>
<section id="comments"><h3>Comments ({len(page.comments)})</h3><ul>
{_comments_html(page.comments)}
</ul></section>
</main>
<footer class="site-footer"><p>{foot}</p><p>© 2017 {esc(site.name)}. All rights reserved.</p></footer>
</body>
</html>
"""


def t_divsoup(site: Site, page: Page) -> str:
    parts = []
    for kind, text in page.blocks:
        if kind == "h2":
            parts.append(f"<b>{esc(text, quote=False)}</b><br>")
        elif kind == "pre":
            parts.append(f"<pre>{esc(text, quote=False)}</pre>")
        else:
            parts.append(f"{esc(text, quote=False)}<br><br>")
    menu = "".join(f'<tr><td class="menu"><a href="/{slugify(n)}.htm">{n}</a></td></tr>' for n in NAV)
    related = "<br>".join(f'<a href="{esc(u)}">{esc(t)}</a>' for t, u in page.related)
    return f"""<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 4.01 Transitional//EN">
<html>
<head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8">
<title>{esc(site.name)} - {esc(page.title)}</title>
</head>
<body bgcolor="#ffffff" topmargin="0" leftmargin="0">
<table width="100%" border="0" cellpadding="0" cellspacing="0">
<tr><td colspan="3" bgcolor="#003366"><font color="#ffffff" size="5"><b>{esc(site.name)}</b></font>
<font color="#cccccc" size="1">Your trusted source since 1998</font></td></tr>
<tr>
<td width="150" valign="top"><table>{menu}</table>
<div class="ad"><img src="/ads/banner_160x600.gif" width="160" height="600" alt="Advertisement"></div></td>
<td valign="top"><div class="content"><div class="txt">
<font face="Verdana, Arial" size="4"><b>{esc(page.title)}</b></font><br>
<font size="1">Posted {page.date} by {esc(page.author)} | <a href="/print.php">Print</a> | <a href="/mail.php">E-mail this story</a></font><br><br>
<font face="Verdana, Arial" size="2">
{chr(10).join(parts)}
</font>
</div></div>
<div class="talkback"><b>Talkback ({len(page.comments)})</b><br>
{"<br>".join(f"<i>{esc(w)}</i> wrote: {esc(c)}" for w, c in page.comments)}
</div></td>
<td width="180" valign="top"><b>More headlines</b><br>{related}</td>
</tr>
<tr><td colspan="3" align="center"><font size="1">Copyright 1998-2017 {esc(site.name)}.
{" | ".join(FOOTER_LINKS)}</font></td></tr>
</table>
</body>
</html>
"""


def t_blog(site: Site, page: Page) -> str:
    tags = ", ".join(f'<a href="/tag/{slugify(w)}/" rel="tag">{w}</a>' for w in page.title.split()[:3])
    archives = "".join(f'<li><a href="/2017/{m:02d}/">{dt.date(2017, m, 1):%B} 2017</a></li>' for m in range(11, 0, -1))
    return f"""<!DOCTYPE html>
<html lang="{page.lang}">
<head>
<meta charset="UTF-8">
<title>{esc(page.title)} &#8211; {esc(site.name)}</title>
<link rel="alternate" type="application/rss+xml" title="{esc(site.name)} &raquo; Feed" href="/feed/">
<meta name="generator" content="WordPress 4.9.1">
</head>
<body class="post-template-default single single-post">
<div id="page" class="hfeed site">
<a class="skip-link screen-reader-text" href="#content">Skip to content</a>
<header id="masthead" class="site-header"><p class="site-title"><a href="/" rel="home">{esc(site.name)}</a></p>
<p class="site-description">Notes on software, mostly</p>
<nav id="site-navigation" class="main-navigation"><ul id="primary-menu" class="menu">
<li><a href="/">Home</a></li><li><a href="/about/">About</a></li><li><a href="/archives/">Archives</a></li><li><a href="/contact/">Contact</a></li></ul></nav>
</header>
<div id="content" class="site-content"><div id="primary" class="content-area">
<div class="post hentry">
<h1 class="entry-title">{esc(page.title)}</h1>
<div class="entry-meta">Posted on <time class="entry-date published">{_nice_date(page.date)}</time> by <span class="author vcard">{esc(page.author)}</span></div>
<div class="entry-content">
{_body(page.blocks)}
<div class="sharedaddy"><h3 class="sd-title">Share this:</h3><ul><li><a href="#">Twitter</a></li><li><a href="#">Facebook</a></li><li><a href="#">Reddit</a></li></ul></div>
</div>
<footer class="entry-footer">Tagged {tags}</footer>
</div>
<nav class="post-navigation">{"".join(f'<div class="nav-link"><a href="{esc(u)}" rel="prev">{esc(t)}</a></div>' for t, u in page.related[:2])}</nav>
<div id="comments" class="comments-area"><h2 class="comments-title">{len(page.comments)} thoughts on &ldquo;{esc(page.title)}&rdquo;</h2>
<ol class="comment-list">
{_comments_html(page.comments)}
</ol>
<div id="respond" class="comment-respond"><h3>Leave a Reply</h3><p>Your email address will not be published. Required fields are marked *</p>
<form action="/wp-comments-post.php"><textarea name="comment"></textarea><input type="submit" value="Post Comment"></form></div>
</div>
</div>
<aside id="secondary" class="widget-area"><section class="widget"><h2 class="widget-title">Archives</h2><ul>{archives}</ul></section>
<section class="widget"><h2 class="widget-title">Recent Posts</h2><ul>{_related_html(page.related)}</ul></section></aside>
</div>
<footer id="colophon" class="site-footer"><a href="https://wordpress.example/">Proudly powered by WordPress</a></footer>
</div>
</body>
</html>
"""


def t_magazine(site: Site, page: Page) -> str:
    """Heavy chrome: mega menu, newsletter box, ads and 'read more' cards inside the body."""
    body = []
    for i, block in enumerate(page.blocks):
        body.append(_body([block]))
        if i == 2:
            body.append('<div class="ad-slot" data-ad="inline-1">ADVERTISEMENT</div>')
        if i == 5 and page.related:
            t, u = page.related[0]
            body.append(f'<p class="inline-related"><strong>Read more:</strong> <a href="{esc(u)}">{esc(t)}</a></p>')
    mega = "".join(f'<div class="mega-col"><h4>{n}</h4><a href="/{slugify(n)}/latest">Latest</a> '
                   f'<a href="/{slugify(n)}/popular">Most popular</a></div>' for n in NAV)
    cards = "".join(f'<div class="card"><a href="{esc(u)}"><img src="/img/thumb.jpg" alt=""><span>{esc(t)}</span></a></div>'
                    for t, u in page.related)
    return f"""<!doctype html>
<html lang="{page.lang}">
<head>
<meta charset="utf-8">
<title>{esc(page.title)} - {esc(site.name)}</title>
<meta name="description" content="{esc(page.title)}. The best long reads, every week.">
<script async src="/js/ads.js"></script>
</head>
<body class="magazine">
<div class="top-bar">Free shipping on all subscriptions! <a href="/subscribe">Subscribe now</a> | <a href="/login">Sign in</a></div>
<div class="mega-menu">{mega}</div>
<div class="layout">
<div class="article-wrap">
<div class="kicker">Features</div>
<h1>{esc(page.title)}</h1>
<div class="meta"><span class="by">{esc(page.author)}</span> <span class="date">{page.date}</span> <span class="reading-time">8 min read</span></div>
<div class="share-bar"><a href="#">f</a><a href="#">t</a><a href="#">in</a><a href="#">@</a></div>
<div class="article-body">
{chr(10).join(body)}
</div>
<div class="newsletter"><h3>Get the best of {esc(site.name)} in your inbox</h3><p>Sign up for our weekly newsletter. No spam, unsubscribe any time.</p><form><input type="email" placeholder="you@example.com"><button>Sign up</button></form></div>
<div class="comments"><h3>Join the conversation</h3>{_comments_html(page.comments, "div")}</div>
</div>
<div class="read-next"><h3>Read next</h3>{cards}</div>
</div>
<footer><div class="footer-links">{" ".join(f'<a href="/{slugify(n)}">{n}</a>' for n in FOOTER_LINKS)}</div>
<p>{esc(site.name)} is part of Example Media Group. © 2017</p></footer>
</body>
</html>
"""


def t_docs(site: Site, page: Page) -> str:
    toc = "".join(f'<li class="toctree-l1"><a href="{esc(u)}">{esc(t)}</a></li>' for t, u in page.related)
    return f"""<!DOCTYPE html>
<html lang="{page.lang}">
<head><meta charset="utf-8"><title>{esc(page.title)} — {esc(site.name)}</title></head>
<body>
<div class="sphinxsidebar" role="navigation"><h3>Table of contents</h3><ul>{toc}</ul>
<div id="searchbox"><form action="/search.html"><input name="q"><input type="submit" value="Go"></form></div></div>
<div class="document"><div class="body" role="main">
<h1>{esc(page.title)}</h1>
{_body(page.blocks)}
</div></div>
<div class="footer">© Copyright 2017, the {esc(site.name)} authors. Created using Sphinx 1.6.5.
<a href="/_sources/page.txt">Show source</a></div>
</body>
</html>
"""


def t_wiki(site: Site, page: Page) -> str:
    lang = page.lang
    body = []
    for kind, text in page.blocks:
        if kind == "h2":
            body.append(f'<h2><span class="mw-headline">{esc(text)}</span><span class="mw-editsection">[<a href="#edit">edit</a>]</span></h2>')
        else:
            body.append(_body([(kind, text)]))
    mirror = site.host.startswith("wikimirror")
    banner = ('<div class="mirror-notice">This page is a mirror of a Wikipedia article. Content is available '
              'under CC BY-SA 3.0. Ads help keep this mirror free.</div>') if mirror else ""
    return f"""<!DOCTYPE html>
<html class="client-nojs" lang="{lang}" dir="ltr">
<head><meta charset="UTF-8"><title>{esc(page.title)} - {"WikiMirror" if mirror else "Wikipedia"}</title></head>
<body class="mediawiki skin-vector">
{banner}
<div id="mw-page-base"></div>
<div id="content" class="mw-body" role="main">
<h1 id="firstHeading" class="firstHeading">{esc(page.title)}</h1>
<div id="siteSub">From Wikipedia, the free encyclopedia</div>
<div id="mw-content-text"><div class="mw-parser-output">
<table class="infobox"><tr><th>{esc(page.title)}</th></tr><tr><td>See also the related articles below</td></tr></table>
<div id="toc" class="toc"><h2>Contents</h2></div>
{chr(10).join(body)}
<h2><span class="mw-headline" id="References">References</span></h2>
<ol class="references"><li>Reference manual, section "{esc(page.title)}".</li></ol>
<div class="navbox">{" · ".join(f'<a href="{esc(u)}">{esc(t)}</a>' for t, u in page.related)}</div>
</div></div>
<div id="catlinks" class="catlinks">Categories: Articles with short description | All articles needing additional references</div>
</div>
<div id="mw-navigation"><div id="p-navigation"><ul><li><a href="/wiki/Main_Page">Main page</a></li><li><a href="/wiki/Special:Random">Random article</a></li></ul></div></div>
<div id="footer">This page was last edited on {_nice_date(page.date)}. Text is available under the Creative Commons Attribution-ShareAlike License.</div>
</body>
</html>
"""


TEMPLATES = {"modern": t_modern, "divsoup": t_divsoup, "blog": t_blog, "magazine": t_magazine,
             "docs": t_docs, "wiki": t_wiki}


# ---------------------------------------------------------------------------------------------
# The sample web

ARTICLE_SITES = [
    Site("news.example", "The Example Times", "modern", "/{y}/{m}/{slug}.html",
         robots="User-agent: *\nDisallow: /private/\n", aliases=("www.news.example",)),
    Site("dailyplanet.example", "Daily Planet Online", "divsoup", "/news/{slug}.htm", robots=None),
    Site("techblog.example", "Bits and Pieces", "blog", "/{y}/{m}/{slug}/", aliases=("www.techblog.example",)),
    Site("magazine.test", "The Long Read", "magazine", "/features/{slug}"),
    Site("docs.example", "Example Docs", "docs", "/guide/{slug}.html"),
    Site("worldreport.example", "World Report", "modern", "/world/{y}/{m}/{d}/{slug}.html"),
    Site("localgazette.test", "Local Gazette", "divsoup", "/index.php?section=local&story={slug}", robots=None),
    Site("devnotes.test", "Dev Notes", "blog", "/notes/{slug}.html"),
    Site("longform.example", "Longform Weekly", "magazine", "/story/{y}/{slug}"),
]
SPECIAL_SITES = [
    Site("mirror.test", "Mirror", "modern", ""),                       # exact copies
    Site("syndicate.example", "Syndicate Wire", "magazine", "/wire/{slug}.html"),  # near copies
    Site("en.wikipedia.org", "Wikipedia", "wiki", "/wiki/{slug}", aliases=("en.m.wikipedia.org",)),
    Site("de.wikipedia.org", "Wikipedia", "wiki", "/wiki/{slug}", lang="de"),
    Site("wikimirror.example", "WikiMirror", "wiki", "/wiki/{slug}"),
    Site("zeitung.example", "Die Beispielzeitung", "modern", "", lang="de"),
    Site("lejournal.example", "Le Journal d'Exemple", "blog", "", lang="fr"),
    Site("elperiodico.test", "El Periódico de Ejemplo", "divsoup", "", lang="es"),
    Site("xn--bcher-kva.example", "Bücher Blog", "blog", "", lang="de"),
    Site("shield.example", "Shielded News", "modern", ""),
    Site("premium.example", "The Premium Post", "modern", ""),
    Site("junk.test", "Junk", "modern", ""),
    Site("slowpoke.example", "Slowpoke Gazette", "docs", "/page/{slug}.html",
         robots="User-agent: *\nCrawl-delay: 1\n"),
    Site("faults.test", "Fault Catalogue", "modern", "", robots=None),
]
SITES = {s.host: s for s in ARTICLE_SITES + SPECIAL_SITES}

SYNONYMS = {
    "is": "remains", "the": "this", "used": "employed", "value": "result", "called": "invoked",
    "object": "instance", "must": "has to", "can": "may", "also": "additionally", "first": "initial",
    "new": "fresh", "only": "just", "each": "every", "returns": "gives back", "example": "instance",
    "function": "routine", "when": "whenever", "if": "when", "all": "every", "same": "identical",
}


@dataclasses.dataclass
class Web:
    pages: dict[str, Page] = dataclasses.field(default_factory=dict)
    routes: dict[str, dict] = dataclasses.field(default_factory=dict)
    files: dict[str, bytes] = dataclasses.field(default_factory=dict)  # pages/<file> -> bytes
    kinds: dict[str, str] = dataclasses.field(default_factory=dict)    # route key -> page kind


def _page_file(key: str) -> str:
    path = key
    if path.endswith("/"):
        path += "index.html"
    if "?" in path:
        path = path.replace("?", "__").replace("&", "_").replace("=", "-") + ".html"
    return path if "." in path.rsplit("/", 1)[-1] else path + ".html"


def _date(rng: random.Random, start=dt.date(2017, 1, 3), days=325) -> str:
    return (start + dt.timedelta(days=rng.randrange(days))).isoformat()


def _place(site: Site, title: str, date: str, taken: set[str]) -> str:
    y, m, d = date.split("-")
    slug = slugify(title)
    path = site.path_style.format(y=y, m=m, d=d, slug=slug)
    n = 2
    while site.host + path in taken:
        path = site.path_style.format(y=y, m=m, d=d, slug=f"{slug}-{n}")
        n += 1
    taken.add(site.host + path)
    return path


def _add_page(web: Web, page: Page, kind: str, expect: str = "ok",
              headers: dict | None = None, body: bytes | None = None) -> None:
    site = SITES[page.host]
    data = body if body is not None else TEMPLATES[site.template](site, page).encode("utf-8")
    file = _page_file(page.key)
    web.files[file] = data
    web.pages[page.key] = page
    web.kinds[page.key] = kind
    web.routes[page.key] = {"body": file, "headers": headers or HTML_UTF8, "expect": expect}


def _near_copy(blocks: list[Block], rng: random.Random, rate: float = 0.005) -> list[Block]:
    """Change `rate` of the paragraph words (at least one) to synonyms, as syndication edits do.

    The count is exact rather than drawn word by word, so that every copy is as near as the
    next: a short article must not end up with several times the intended edits.
    """
    paragraphs = [text.split(" ") if kind == "p" else None for kind, text in blocks]
    eligible = [(b, i) for b, words in enumerate(paragraphs) if words
                for i, word in enumerate(words) if word.lower() in SYNONYMS]
    total = sum(len(words) for words in paragraphs if words)
    for b, i in rng.sample(eligible, min(len(eligible), max(1, round(rate * total)))):
        paragraphs[b][i] = SYNONYMS[paragraphs[b][i].lower()]
    return [(kind, " ".join(words)) if words else (kind, text)
            for (kind, text), words in zip(blocks, paragraphs)]


def _minimal_pdf() -> bytes:
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>"]
    stream = b"BT /F1 24 Tf 72 720 Td (Quarterly report) Tj ET"
    objs.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, obj in enumerate(objs, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n%s\nendobj\n" % (n, obj))
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % o for o in offsets))
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref))
    return out.getvalue()


def _minimal_png(size: int = 16) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"".join(bytes((x * 16, y * 16, 128)) for x in range(size)) for y in range(size))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def _curly(text: str) -> str:
    """Typographic quotes, so that a wrong charset visibly garbles the text."""
    return re.sub(r'"([^"]*)"', "“\\1”", text).replace("'", "’")


def build_web(rng: random.Random) -> Web:
    web = Web()
    pool = english_articles()
    taken: set[str] = set()

    def take() -> tuple[str, list[Block]]:
        return pool.pop(0)

    def article(host: str, title=None, blocks=None, date=None, path=None) -> Page:
        if blocks is None:
            title, blocks = take()
        date = date or _date(rng)
        site = SITES[host]
        return Page(host, path or _place(site, title, date, taken), title, blocks, site.lang,
                    rng.choice(hw.AUTHORS), date, comments=rng.sample(hw.COMMENTS, rng.randrange(0, 5)))

    # Reserve prose for the special pages first, then spread the rest over the article sites.
    wiki_src = [take() for _ in range(3)]
    slow_src = [take() for _ in range(3)]
    fault_src = [take() for _ in range(4)]
    private_src = take()
    regular: list[Page] = []
    i = 0
    while pool:
        regular.append(article(ARTICLE_SITES[i % len(ARTICLE_SITES)].host))
        i += 1
    by_host: dict[str, list[Page]] = {}
    for page in regular:
        by_host.setdefault(page.host, []).append(page)
    for pages in by_host.values():
        for page in pages:
            others = [p for p in pages if p is not page]
            page.related = [(p.title, "http://" + p.key) for p in rng.sample(others, min(4, len(others)))]
    for page in regular:
        _add_page(web, page, "article")

    # Exact duplicates: byte-identical responses at a second host (the route reuses the file).
    for page in [p for p in regular if p.host == "news.example"][:3]:
        key = "mirror.test/copies/" + page.path.rsplit("/", 1)[-1]
        web.routes[key] = dict(web.routes[page.key])
        web.pages[key] = page
        web.kinds[key] = "exact_duplicate"
    # Near duplicates: syndicated copies with 0.5% of words changed, in other chrome. Their
    # extracted texts' 5-word shingle Jaccard is 0.88-0.96: far enough above the default 0.8
    # threshold that MinHash-LSH (16 bands x 8 rows) misses such a pair < 0.1% of the time,
    # whatever the hash; 1% edits drawn word by word gave ~0.8, missed ~5% of the time.
    for page in [regular[k] for k in (1, 2, 4, 7)]:
        copy = article("syndicate.example", page.title, _near_copy(page.blocks, rng), page.date)
        copy.related = page.related
        _add_page(web, copy, "near_duplicate")

    # Wikipedia (dropped by the harvest) and a Wikipedia mirror (not a wikipedia host: kept).
    for title, blocks in wiki_src:
        name = re.sub(r"[^A-Za-z0-9]+", "_", title).strip("_")
        page = article("en.wikipedia.org", title, blocks, path=f"/wiki/{name}")
        page.comments = []
        _add_page(web, page, "wikipedia")
        mirror = dataclasses.replace(page, host="wikimirror.example")
        _add_page(web, mirror, "wikipedia_mirror")
    de_title, de_blocks = hw.DE_WIKI
    page = article("de.wikipedia.org", de_title, [("p", t) for t in de_blocks], path=f"/wiki/{de_title}")
    page.comments = []
    _add_page(web, page, "wikipedia")

    # Non-English articles.
    for lang, items in hw.FOREIGN_ARTICLES.items():
        for host, path, title, paragraphs in items:
            _add_page(web, article(host, title, [("p", t) for t in paragraphs], path=path), f"lang_{lang}")
    title, paragraphs = hw.BUECHER_REVIEW
    _add_page(web, article("xn--bcher-kva.example", title, [("p", t) for t in paragraphs],
                           path="/rezension/ein-sommer-am-see.html"), "idn_host")

    # Pages an extractor/filter must reject.
    bot = article("shield.example", "Just a moment...", [("p", t) for t in hw.BOT_CHECK],
                  path="/news/2017/10/markets-rally.html")
    bot.comments = []
    _add_page(web, bot, "bot_check")
    paywall = article("premium.example", "City approves budget after months of talks",
                      [("p", hw.PAYWALL_TEASER)] + [("p", t) for t in hw.PAYWALL_STUB],
                      path="/2017/11/city-approves-budget.html")
    _add_page(web, paywall, "paywall")
    title, text = hw.SHORT_PAGE
    _add_page(web, article("junk.test", title, [("p", text)], path="/moved.html"), "very_short")
    _add_page(web, article("junk.test", "Links", [], path="/links.html"), "boilerplate_only")
    spam = [("p", hw.SPAM_LINES[k % len(hw.SPAM_LINES)]) for k in range(60)]
    _add_page(web, article("junk.test", "BEST CHEAP WATCHES", spam, path="/best-cheap-watches.html"), "spam")

    # A host with Crawl-delay: 1 (kept small so the demo stays fast).
    for title, blocks in slow_src:
        _add_page(web, article("slowpoke.example", title, blocks), "crawl_delay")
    # robots.txt Disallow: /private/ on news.example.
    title, blocks = private_src
    _add_page(web, article("news.example", title, blocks, path="/private/internal-memo.html"),
              "robots_disallowed", expect="robots")

    _add_faults(web, fault_src, article)
    return web


def _add_faults(web: Web, fault_src, article) -> None:
    """The fault catalogue on faults.test; each route's `expect` is the crawl outcome."""
    routes, kinds = web.routes, web.kinds
    news = [k for k, kind in kinds.items() if kind == "article" and k.startswith("news.example/")]
    blog = [k for k, kind in kinds.items() if kind == "article" and k.startswith("techblog.example/")]

    def redirect(key, status, target, expect="ok", kind="redirect"):
        routes[key] = {"status": status, "headers": {"Location": target}, "expect": expect}
        kinds[key] = kind

    redirect("faults.test/moved/permanent.html", 301, "http://" + news[3])
    redirect("faults.test/moved/temporary.html", 302, "http://" + blog[2])
    chain_end = article("faults.test", *fault_src[0], path="/chain/end.html")
    _add_page(web, chain_end, "redirect_target")
    redirect("faults.test/chain/1.html", 301, "http://faults.test/chain/2.html", kind="redirect_chain")
    redirect("faults.test/chain/2.html", 302, "/chain/3.html", kind="redirect_chain")   # relative Location
    redirect("faults.test/chain/3.html", 301, "http://faults.test/chain/end.html", kind="redirect_chain")
    redirect("faults.test/loop/a.html", 302, "http://faults.test/loop/b.html", "redirect_loop", "redirect_loop")
    redirect("faults.test/loop/b.html", 302, "http://faults.test/loop/a.html", "redirect_loop", "redirect_loop")
    hops = 25
    for n in range(hops):
        redirect(f"faults.test/hops/{n:02d}.html", 302, f"http://faults.test/hops/{n + 1:02d}.html",
                 "too_many_redirects" if n == 0 else None, "redirect_hops")
    _add_page(web, article("faults.test", *fault_src[1], path=f"/hops/{hops:02d}.html"), "redirect_target")
    redirect("faults.test/redirect/metadata.html", 302, "http://169.254.169.254/latest/meta-data/",
             "blocked_address", "redirect_private")
    redirect("faults.test/redirect/nowhere.html", 301, "http://no-such-host.example/story.html",
             "dns", "redirect_unknown_host")
    # A link that only reaches Wikipedia after a redirect: crawled, then dropped by the build.
    wiki = sorted(k for k, kind in kinds.items() if kind == "wikipedia" and k.startswith("en.wikipedia.org/"))
    redirect("faults.test/go/encyclopedia.html", 301, "http://" + wiki[0], kind="redirect_to_wikipedia")

    def fault(key, spec, kind):
        routes[key] = spec
        kinds[key] = kind

    fault("faults.test/gone/missing.html", {"status": 404, "expect": "http_4xx"}, "http_404")
    fault("faults.test/gone/removed.html", {"status": 410, "expect": "http_4xx"}, "http_410")
    fault("faults.test/error/500.html", {"status": 500, "expect": "http_5xx"}, "http_500")
    flaky = article("faults.test", *fault_src[2], path="/flaky/503.html")
    _add_page(web, flaky, "flaky_503")
    routes[flaky.key]["fault"] = {"kind": "fail_first", "times": 1, "status": 503}
    limited = article("faults.test", *fault_src[3], path="/flaky/429.html")
    _add_page(web, limited, "rate_limited_429")
    routes[limited.key]["fault"] = {"kind": "fail_first", "times": 1, "status": 429,
                                    "headers": {"Retry-After": "1"}}
    fault("faults.test/slow/article.html", {"body": web.routes[news[4]]["body"], "headers": HTML_UTF8,
                                            "fault": {"kind": "slow", "seconds": 5}, "expect": "timeout"}, "slow")
    fault("faults.test/big/with-length.html", {"headers": HTML_UTF8, "expect": "too_large",
          "generate": {"kind": "filler", "bytes": 3_000_000, "content_length": True}}, "too_large")
    fault("faults.test/big/chunked.html", {"headers": HTML_UTF8, "expect": "too_large",
          "generate": {"kind": "filler", "bytes": 3_000_000, "content_length": False}}, "too_large_chunked")
    fault("faults.test/big/bomb.html", {"headers": HTML_UTF8, "expect": "too_large",
          "generate": {"kind": "gzip_bomb", "inflated_bytes": 52_000_000}}, "gzip_bomb")
    fault("faults.test/reset.html", {"fault": {"kind": "reset"}, "expect": "connection"}, "connection_reset")
    web.files["faults.test/files/report.pdf"] = _minimal_pdf()
    web.files["faults.test/files/chart.png"] = _minimal_png()
    fault("faults.test/files/report.html", {"body": "faults.test/files/report.pdf",
          "headers": {"Content-Type": "text/html"}, "expect": "not_html"}, "pdf_labelled_html")
    fault("faults.test/files/chart.html", {"body": "faults.test/files/chart.png",
          "headers": {"Content-Type": "image/png"}, "expect": "not_html"}, "png")

    # Charset trouble: the header lies (says utf-8, body is windows-1252), or only <meta> tells.
    src = web.pages[blog[3]]
    for path, kind, header, meta in [
        ("/charset/wrong-header.html", "wrong_charset", "text/html; charset=utf-8", "utf-8"),
        ("/charset/meta-only.html", "meta_charset_only", "text/html", "windows-1252"),
    ]:
        blocks = [("p", "Café owners say “business is up” — and it’s not just the coffee.")]
        blocks += [(k, _curly(t)) for k, t in src.blocks]
        page = article("faults.test", _curly(src.title), blocks, path=path)
        text = TEMPLATES["modern"](SITES["faults.test"], page).replace('<meta charset="utf-8">', f'<meta charset="{meta}">')
        _add_page(web, page, kind, headers={"Content-Type": header},
                  body=text.encode("cp1252", errors="xmlcharrefreplace"))


# ---------------------------------------------------------------------------------------------
# The Reddit dump (Pushshift 2018-style submissions)

SUBREDDITS = ["technology", "programming", "Python", "worldnews", "news", "science", "TrueReddit",
              "DepthHub", "learnprogramming", "linux", "books", "europe", "de", "france", "spain"]


def base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def normalise_url(url: str) -> tuple[str, str]:
    """(url, url_key) by the rules in README: unescape, IDNA host, sorted query without tracking
    parameters, no fragment."""
    parts = urlsplit(html.unescape(url).strip())
    host = parts.hostname.encode("idna").decode("ascii")
    netloc = host + (f":{parts.port}" if parts.port and parts.port != {"http": 80, "https": 443}[parts.scheme.lower()] else "")
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                   if not (k.lower().startswith("utm_") or k.lower() in TRACKING_PARAMS))
    clean = urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", urlencode(query), ""))
    key = clean.split("://", 1)[1]
    return clean, key[4:] if key.startswith("www.") else key


@dataclasses.dataclass
class Post:
    category: str
    url: str | None
    score: int
    subreddit: str
    title: str
    tags: list[str] = dataclasses.field(default_factory=list)
    created: int = 0
    fields: dict = dataclasses.field(default_factory=dict)  # overrides of the record


def _record(post: Post, post_id: str, rng: random.Random) -> dict:
    """A 2018-style Pushshift submission with sorted keys."""
    sub = post.subreddit
    slug = slugify(post.title)[:40].replace("-", "_")
    url = post.url
    is_self = post.category == "self_post"
    if is_self:
        url = f"https://www.reddit.com/r/{sub}/comments/{post_id}/{slug}/"
    domain = f"self.{sub}" if is_self else (urlsplit(html.unescape(url)).hostname or "" if url else "")
    domain = domain[4:] if domain.startswith("www.") else domain
    rec = {
        "archived": False, "author": rng.choice(["alice_w", "bob1987", "chris_p", "dee_dee", "eve42", "frank_n"]),
        "author_flair_css_class": None, "author_flair_text": None, "brand_safe": True, "can_gild": True,
        "contest_mode": False, "created_utc": post.created, "distinguished": None, "domain": domain,
        "edited": False, "gilded": 0, "hidden": False, "hide_score": False, "id": post_id,
        "is_crosspostable": True, "is_reddit_media_domain": domain in ("i.redd.it", "v.redd.it"),
        "is_self": is_self, "is_video": domain == "v.redd.it", "link_flair_css_class": None,
        "link_flair_text": None, "locked": False, "media": None, "media_embed": {}, "no_follow": post.score < 3,
        "num_comments": max(0, post.score // 3 + rng.randrange(5)), "num_crossposts": 0,
        "over_18": False, "parent_whitelist_status": "all_ads", "permalink": f"/r/{sub}/comments/{post_id}/{slug}/",
        "pinned": False, "retrieved_on": post.created + 86400 * rng.randrange(30, 90), "score": post.score,
        "secure_media": None, "secure_media_embed": {}, "selftext": "", "send_replies": True,
        "spoiler": False, "stickied": False, "subreddit": sub, "subreddit_id": "t5_" + base36(zlib.crc32(sub.encode())),
        "subreddit_name_prefixed": f"r/{sub}", "subreddit_subscribers": 10000 + zlib.crc32(sub.encode()) % 900000,
        "subreddit_type": "public", "suggested_sort": None, "thumbnail": "self" if is_self else "default",
        "thumbnail_height": None, "thumbnail_width": None, "title": post.title, "url": url,
        "whitelist_status": "all_ads",
    }
    if is_self:
        rec["selftext"] = "I have been wondering about this for a while. What do you all think?"
    rec.update(post.fields)
    return rec


def _encode_record(rec: dict) -> bytes:
    # Pushshift style: compact, keys sorted, ASCII with \u escapes, "/" escaped as "\/".
    return json.dumps(rec, sort_keys=True, separators=(",", ":")).replace("/", "\\/").encode()


def _as_posted(route_key: str) -> str:
    """A route as Reddit stores the link: `&` escaped as `&amp;` (raw `&sect...` would unescape to §)."""
    return "http://" + route_key.replace("&", "&amp;")


def build_posts(web: Web, rng: random.Random) -> list[Post]:
    """Every post of the dump, each built for exactly one category (see README)."""
    posts: list[Post] = []

    def add(category, url, score, sub=None, title=None, tags=(), **fields):
        page = web.pages.get(_route_key(url, web)) if url else None
        title = title or (page.title if page else "Interesting link")
        posts.append(Post(category, url, score, sub or rng.choice(SUBREDDITS[:9]), title, list(tags), fields=fields))
        return posts[-1]

    def karma() -> int:
        return min(25000, int(MIN_SCORE + rng.paretovariate(1.1) * 4 - 4))

    crawlable = [k for k, r in web.routes.items()
                 if r.get("expect") and web.kinds[k] not in ("wikipedia",)
                 and not k.startswith(("faults.test/chain/2", "faults.test/chain/3", "faults.test/loop/b"))]
    articles = [k for k in crawlable if web.kinds[k] == "article"]
    # Pages only posted after the default date window (in 2018): only the window decides.
    late = articles[20:24]
    for n, key in enumerate(late):
        created = int(dt.datetime(2018, 1 + 3 * n, 10, tzinfo=dt.timezone.utc).timestamp())
        add("outside_date_window", _as_posted(key), 20 + 15 * n, "technology", tags=["late"]).created = created
    lang_subs = {"de": "de", "fr": "france", "es": "spain"}
    first_post: dict[str, Post] = {}
    for key in crawlable:
        if key in late:
            continue
        page = web.pages.get(key)
        url, tags = _as_posted(key), ["amp_entity"] if "&" in key else []
        if web.kinds[key] == "idn_host":
            url, tags = url.replace("xn--bcher-kva.example", "bücher.example"), ["idn_host"]
        first_post[key] = add("kept", url, karma(), lang_subs.get(page.lang) if page else None, tags=tags)

    articles = [k for k in articles if k not in late]
    # One article, many spellings: they all normalise to one url_key (the plain URL scores highest).
    k0 = articles[0]
    host, path = k0.split("/", 1)
    first_post[k0].score = 2400
    add("kept", f"https://{k0}", 40, tags=["https"])
    add("kept", f"http://www.{host}/{path}?utm_source=twitter&amp;utm_medium=social", 17,
        tags=["www", "tracking_params", "amp_entity"])
    add("kept", f"http://{host.upper()}/{path}#comments", 9, tags=["fragment", "uppercase_host"])
    add("low_score", f"https://www.{host}/{path}?fbclid=IwAR0abc123", 2, tags=["https", "www", "tracking_params"])
    # The same article posted to several subreddits with different scores.
    k1 = articles[1]
    for sub, score in [("programming", 310), ("Python", 12), ("learnprogramming", 1)]:
        add("kept" if score >= MIN_SCORE else "low_score", _as_posted(k1), score, sub, tags=["crosspost"])
    # A query-string URL with &amp; and tracking parameters mixed into real ones.
    k2 = next(k for k in articles if k.startswith("techblog.example/"))
    add("kept", f"http://{k2}?fbclid=XyZ987&amp;utm_campaign=feed", 55, tags=["tracking_params", "amp_entity"])
    # created_utc quirks, deleted/removed authors: still valid link posts.
    add("kept", _as_posted(articles[3]), 88, tags=["created_utc_string", "crosspost"])
    add("kept", _as_posted(articles[4]), 23, tags=["created_utc_float", "crosspost"])
    add("kept", _as_posted(articles[5]), 7, tags=["deleted_author", "crosspost"], author="[deleted]")
    add("kept", _as_posted(articles[6]), 14, tags=["removed_selftext", "crosspost"],
        author="[deleted]", selftext="[removed]")
    # NSFW posts (dropped by default: harvest.drop_nsfw).
    for k in articles[7:9]:
        add("nsfw", _as_posted(k), 30 + rng.randrange(100), "TrueReddit", tags=["crosspost"], over_18=True)
    only_nsfw = first_post[articles[-5]]
    only_nsfw.category, only_nsfw.fields["over_18"] = "nsfw", True
    only_nsfw.tags.append("only_nsfw")
    # Low scores, including the boundary (2) and negatives; some pages are only ever posted this way.
    for k in articles[10:16]:
        add("low_score", _as_posted(k), rng.choice([-7, -1, 0, 1, 2, 2]), tags=["crosspost"])
    for k in articles[-4:]:
        first_post[k].category, first_post[k].score = "low_score", rng.choice([0, 1, 2])
        first_post[k].tags.append("only_low_score")
    first_post[articles[16]].score = MIN_SCORE  # exactly at the threshold: kept
    first_post[articles[16]].tags.append("score_at_threshold")
    # A URL on a host nobody serves: harvested, then the crawl records a DNS failure.
    add("kept", "http://vanished-site.example/2017/04/story.html", 64, title="Local startup raises funding",
        tags=["unknown_host"])
    # Self posts (text posts; their url is the reddit permalink).
    for n in range(8):
        fields = {"author": "[deleted]", "selftext": "[removed]"} if n < 2 else {}
        add("self_post", None, 5 + n * 37, rng.choice(["AskReddit", "learnprogramming", "Python"]),
            title=["What is your favourite book?", "ELI5: how do compilers work?", "Weekly discussion thread",
                   "Show r/Python: my first project", "Is it worth learning Rust?", "Ask me anything",
                   "Tips for a first job interview?", "Monthly meta thread"][n], **fields)
    # Blocked domains: images, video, social media and reddit itself.
    for url, score in [("https://imgur.com/a/aBcD123", 4200), ("http://imgur.com/gallery/xYz98", 150),
                       ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", 980), ("https://youtu.be/oHg5SJYRHA0", 45),
                       ("https://m.youtube.com/watch?v=abc123XYZ", 8), ("https://i.redd.it/k2j3h4g5f6", 3100),
                       ("https://v.redd.it/q1w2e3r4t5", 760),
                       ("https://www.reddit.com/r/programming/comments/7abcde/some_thread/", 33),
                       ("https://twitter.com/someone/status/912345678901234567", 210),
                       ("https://x.com/someone/status/1712345678901234567", 12),
                       ("https://gfycat.com/HappyFuzzyKitten", 61), ("https://www.instagram.com/p/BabcDEF123/", 5),
                       ("https://www.facebook.com/somepage/posts/101010", 19)]:
        add("blocked_domain", url, score, title="Look at this")
    # Wikipedia (removed by GPT-2 to avoid overlap with evaluation sets), several languages.
    wiki = sorted(k for k, kind in web.kinds.items() if kind == "wikipedia")
    for key, tags in [(wiki[0], []), (wiki[1], ["https"]), (wiki[2], ["mobile"])]:
        url = ("https://" if "https" in tags else "http://") + key
        add("wikipedia", url.replace("en.wikipedia", "en.m.wikipedia") if "mobile" in tags else url, 120, tags=tags)
    de_wiki = [k for k in wiki if k.startswith("de.")][0]
    add("wikipedia", "https://" + de_wiki, 44, "de")
    add("wikipedia", "https://fr.wikipedia.org/wiki/Biblioth%C3%A8que", 15, "france")
    # Non-http schemes.
    for url in ["ftp://ftp.example/pub/report.txt", "mailto:editor@news.example",
                "javascript:alert(document.cookie)"]:
        add("bad_scheme", url, 12, title="Check this out")
    # Private / internal addresses (SSRF bait).
    for url in ["http://127.0.0.1:8080/admin", "http://10.0.0.1/", "http://169.254.169.254/latest/meta-data/",
                "http://[::1]/", "http://192.168.1.1/login.html"]:
        add("private_address", url, 25, title="Found this")
    # Promoted ads: missing score/subreddit and other normal fields.
    for n in range(3):
        posts.append(Post("promoted", f"http://ads.example/landing?campaign={n}", 0, "", f"Sponsored offer {n}",
                          fields={"promoted": True}))
    # No url at all.
    add("missing_url", None, 40, title="Link removed", tags=["url_null"])
    add("missing_url", "", 11, title="Empty link", tags=["url_empty"])
    # Links to files that are not web pages (by path extension).
    add("blocked_extension", "http://news.example/files/annual-report-2016.pdf", 75, title="Annual report (PDF)")
    add("blocked_extension", "http://photos.example/2017/07/eclipse.jpg", 310, title="My eclipse photo")
    return posts


def _route_key(url: str, web: Web) -> str | None:
    """The sample-web route a posted (still `&amp;`-escaped) url leads to, if any."""
    try:
        _, key = normalise_url(url)
    except (ValueError, AttributeError, KeyError):
        return None
    host, _, rest = key.partition("/")
    for site in SITES.values():
        if host in site.aliases:
            host = site.host
    return host + "/" + rest if host + "/" + rest in web.routes else None


def build_dump(web: Web, rng: random.Random) -> tuple[bytes, dict]:
    """The NDJSON dump (uncompressed) and its ground truth."""
    posts = build_posts(web, rng)
    late = [p for p in posts if p.created]
    posts = [p for p in posts if not p.created]
    rng.shuffle(posts)
    start = int(dt.datetime(2017, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    span = DATE_WINDOW_END - start - 86400
    for post, when in zip(posts, sorted(start + rng.randrange(span) for _ in posts)):
        post.created = when
    posts += late

    lines: list[bytes] = []
    records: list[dict] = []
    next_id = int("6mz000", 36)
    for n, post in enumerate(posts):
        post_id = base36(next_id + n * 7)
        rec = _record(post, post_id, rng)
        if post.category == "promoted":
            rec = {k: rec[k] for k in ("created_utc", "domain", "id", "title", "url")} | {
                "promoted": True, "promoted_by": None, "promoted_display_name": "Example Brand",
                "promoted_url": None, "href_url": post.url, "is_self": False}
        if "created_utc_string" in post.tags:
            rec["created_utc"] = str(post.created)
        if "created_utc_float" in post.tags:
            rec["created_utc"] = float(post.created)
        lines.append(_encode_record(rec))
        records.append({"line": 0, "id": post_id, "category": post.category, "tags": sorted(set(post.tags)),
                        "score": post.score, "url": post.url, "subreddit": post.subreddit,
                        "created_utc": post.created})
        if n == 40:  # a truncated record (a crawl that was cut off mid-line)
            broken = _encode_record(_record(Post("kept", "http://news.example/", 99, "news", "Truncated"),
                                            "6mzzzz", rng))[:180]
            lines.append(broken)
            records.append({"line": 0, "id": None, "category": "malformed_json", "tags": ["truncated"]})
        if n == 90:  # NUL padding before a record, as in one of the real dumps
            lines.append(b"\x00" * 64 + _encode_record(_record(Post("kept", "http://news.example/", 9, "news",
                                                                    "Padded"), "6mzzzy", rng)))
            records.append({"line": 0, "id": "6mzzzy", "category": "malformed_json", "tags": ["nul_bytes"]})
        if n == 150:
            lines.append(b"")
            records.append({"line": 0, "id": None, "category": "empty_line", "tags": []})
    for i, rec in enumerate(records, 1):
        rec["line"] = i
    data = b"\n".join(lines) + b"\n"
    return data, _ground_truth(posts, records, web)


CATEGORIES = {  # category -> (kept under the default harvest config, meaning)
    "kept": (True, "link post, score >= 3, allowed scheme/host/extension: harvested"),
    "outside_date_window": (False, "created in 2018: outside the default date window (harvest.created_before: "
                             "2018-01-01, the paper's links of up to December 2017): outside_date_window; "
                             "kept with harvest.created_before: null"),
    "nsfw": (False, "over_18 link post (harvest.drop_nsfw, on by default)"),
    "low_score": (False, "score < 3 (includes 2, 0 and negative scores)"),
    "self_post": (False, "is_self text post; its url is the reddit permalink"),
    "blocked_domain": (False, "image/video/social hosts and reddit itself"),
    "blocked_extension": (False, "URL path ends in a non-page file extension (.pdf, .jpg)"),
    "wikipedia": (False, "any *.wikipedia.org link (GPT-2 removed Wikipedia)"),
    "bad_scheme": (False, "not http/https (ftp:, mailto:, javascript:)"),
    "private_address": (False, "IP literal in a loopback/private/link-local range"),
    "promoted": (False, "promoted ad record ('promoted': true, no score/subreddit)"),
    "missing_url": (False, "url is null or empty"),
    "malformed_json": (False, "line that is not valid JSON as-is (truncated; NUL bytes before the record)"),
    "empty_line": (False, "blank line (not a record)"),
}


def _url_table(posts: list[tuple[Post, str]], web: Web) -> dict[str, dict]:
    """What the harvest writes for these kept (post, id) pairs, keyed by url_key."""
    grouped: dict[str, list[tuple[Post, str, str]]] = {}
    for post, post_id in posts:
        url, key = normalise_url(post.url)
        grouped.setdefault(key, []).append((post, post_id, url))
    table = {}
    for key, group in sorted(grouped.items()):
        best_post, _, best_url = max(group, key=lambda g: (g[0].score, -g[0].created))
        route = _route_key(best_post.url, web)  # from the posted url: unescaping twice would be wrong
        table[key] = {
            "url": best_url, "score": best_post.score, "num_posts": len(group),
            "post_ids": sorted((g[1] for g in group), key=lambda i: int(i, 36)),
            "subreddits": sorted({g[0].subreddit for g in group}),
            "first_created_utc": min(g[0].created for g in group),
            "expected_outcome": web.routes[route]["expect"] if route else "dns",
            "page_kind": web.kinds[route] if route else "unknown_host",
        }
    return table


def _ground_truth(posts: list[Post], records: list[dict], web: Web) -> dict:
    by_category: dict[str, int] = {c: 0 for c in CATEGORIES}
    for rec in records:
        by_category[rec["category"]] += 1
    ids = [r["id"] for r in records if r["category"] not in ("malformed_json", "empty_line")]
    pairs = list(zip(posts, ids))
    kept = [(p, i) for p, i in pairs if CATEGORIES[p.category][0]]
    table = _url_table(kept, web)
    without_window = _url_table(kept + [(p, i) for p, i in pairs if p.category == "outside_date_window"], web)
    with_nsfw = _url_table(kept + [(p, i) for p, i in pairs if p.category == "nsfw"], web)
    return {
        "about": "Ground truth of RS_sample.zst, written by sample/generate.py from how each "
                 "record was built. See sample/README.md.",
        "rules": {"min_score": MIN_SCORE, "blocked_domains": BLOCKED_DOMAINS, "tracking_params": TRACKING_PARAMS,
                  "wikipedia": "*.wikipedia.org", "date_window_end_utc": DATE_WINDOW_END,
                  "normalised_url": "&amp; unescaped, scheme and host lower-case, IDNA host, default port "
                                    "dropped, tracking parameters removed, query parameters sorted, no fragment",
                  "url_key": "normalised url without scheme and a leading 'www.'",
                  "url_choice": "the normalised url of the highest-scoring post (ties: earliest)",
                  "score": "max score over the kept posts of the url"},
        "categories": {c: {"kept": keep, "meaning": meaning} for c, (keep, meaning) in CATEGORIES.items()},
        "totals": {"lines": len(records), "records": sum(1 for r in records if r["category"] != "empty_line"),
                   "by_category": by_category,
                   "kept_posts": sum(n for c, n in by_category.items() if CATEGORIES[c][0]),
                   "dropped": {c: n for c, n in by_category.items() if not CATEGORIES[c][0] and n},
                   "urls": len(table)},
        "urls": table,
        "url_keys_without_date_window": sorted(without_window),
        "url_keys_keeping_nsfw": sorted(with_nsfw),
        "records": records,
    }


def compress_dump(data: bytes) -> bytes:
    """zstd level 19 with a 2 GiB window declared in the frame header, like the real dumps."""
    params = zstandard.ZstdCompressionParameters.from_level(19, window_log=WINDOW_LOG, enable_ldm=True)
    cctx = zstandard.ZstdCompressor(compression_params=params)
    out = io.BytesIO()
    with cctx.stream_writer(out, closefd=False) as writer:  # size unknown: keeps the 2 GiB window
        writer.write(data)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# A web archive of some dead links (crawl.source: live_then_archive in the demo)

ARCHIVE_WINDOW_END = "2018-01-01"  # crawl.archive.before's default: captures from then on do not count
VANISHED = Site("vanished-site.example", "The Vanished Daily", "modern", "")  # not served live


def _mixed_article(web: Web, picks: list[int], title: str, date: str) -> Page:
    """An article of paragraphs from three different sample articles: new text (its 5-word
    shingles overlap no single page enough to be a near duplicate), real English."""
    articles = [web.pages[key] for key in sorted(web.pages) if web.kinds[key] == "article"]
    blocks = [block for pick in picks for block in articles[pick].blocks[:3]]
    return Page(VANISHED.host, "/", title, blocks, "en", "Staff reporter", date)


def _warc_response(url: str, date: str, status: str, headers: list[tuple[str, str]], body: bytes) -> bytes:
    """One gzip member holding a WARC/1.0 response record (deterministic: id from url and date)."""
    http = (f"HTTP/1.1 {status}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
            + f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1") + body
    record_id = hashlib.sha1(f"{url} {date}".encode()).hexdigest()
    digest = base64.b32encode(hashlib.sha1(body).digest()).decode()
    warc = (f"WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:sha1:{record_id}>\r\n"
            f"WARC-Date: {date}\r\nWARC-Target-URI: {url}\r\nWARC-Payload-Digest: sha1:{digest}\r\n"
            f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(http)}\r\n\r\n"
            ).encode("utf-8") + http + b"\r\n\r\n"
    member = zlib.compressobj(6, zlib.DEFLATED, 31)
    return member.compress(warc) + member.flush()  # no file name or time in the gzip header


def build_archive(web: Web) -> tuple[bytes, dict]:
    """captures.warc.gz (what pywb's `wb-manager add` indexes) and captures.json: which dead
    links of the dump the archive recovers and what becomes of the others."""
    html_type = [("Content-Type", "text/html; charset=utf-8")]
    story, moved, error_page, old_story = (
        _mixed_article(web, [1, 9, 17], "City council approves the new harbour plan", "2017-04-12"),
        _mixed_article(web, [3, 11, 19], "Ten years of the community garden", "2017-05-20"),
        _mixed_article(web, [5, 13, 21], "Storm closes the coastal road", "2017-07-02"),
        _mixed_article(web, [7, 15, 23], "Harbour plan: first draft", "2016-11-20"))
    page = lambda article: TEMPLATES["modern"](VANISHED, article).encode("utf-8")  # noqa: E731
    captures = [  # (url, WARC-Date, status, headers, body)
        ("http://vanished-site.example/2017/04/story.html", "2016-11-20T08:00:00Z", "200 OK", html_type, page(old_story)),
        ("http://vanished-site.example/2017/04/story.html", "2017-05-02T10:30:00Z", "200 OK", html_type, page(story)),
        ("http://vanished-site.example/2017/04/story.html", "2019-02-01T00:00:00Z", "404 Not Found", html_type, b"gone"),
        ("http://faults.test/gone/removed.html", "2017-06-01T09:00:00Z", "301 Moved Permanently",
         [("Location", "http://faults.test/gone/new-home.html")], b""),
        ("http://faults.test/gone/new-home.html", "2017-06-01T09:00:01Z", "200 OK", html_type, page(moved)),
        ("http://faults.test/error/500.html", "2017-08-15T12:00:00Z", "200 OK", html_type, page(error_page)),
        ("http://faults.test/gone/missing.html", "2019-03-01T00:00:00Z", "200 OK", html_type, page(story)),
    ]
    warc = b"".join(_warc_response(*capture) for capture in captures)
    manifest = {
        "about": "Captures of dead sample links, for `crawl.source: live_then_archive` (the demo serves "
                 "captures.warc.gz with pywb). `recovered`: URL -> final URL of the page the archive gives "
                 "(the latest 200 capture before window_end, a redirect capture followed); every other URL "
                 "whose live outcome is recoverable ends in archive_missing.",
        "window_end": ARCHIVE_WINDOW_END,
        "recovered": {"http://vanished-site.example/2017/04/story.html": "http://vanished-site.example/2017/04/story.html",
                      "http://faults.test/gone/removed.html": "http://faults.test/gone/new-home.html",
                      "http://faults.test/error/500.html": "http://faults.test/error/500.html"},
        "captured_after_window_only": ["http://faults.test/gone/missing.html"],
        "captures": [{"url": url, "date": date, "status": int(status.split()[0])} for url, date, status, _, _ in captures],
    }
    return warc, manifest


# ---------------------------------------------------------------------------------------------

def _json_text(doc) -> str:
    return json.dumps(doc, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def generate(out: Path) -> dict[str, int]:
    """Write the web, the dump and its ground truth under `out` (replacing what was there);
    return a size summary."""
    rng = random.Random(SEED)
    web = build_web(rng)
    dump, truth = build_dump(web, rng)
    web_dir, dump_path, truth_path = out / WEB_DIR, out / DUMP_FILE, out / TRUTH_FILE
    for d in {web_dir, dump_path.parent, truth_path.parent}:
        if d.exists():
            shutil.rmtree(d)
    for rel, data in sorted(web.files.items()):
        path = web_dir / "pages" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    hosts = {}
    for site in sorted(SITES.values(), key=lambda s: s.host):
        hosts[site.host] = {"robots": site.robots} | ({"aliases": list(site.aliases)} if site.aliases else {})
    routes = {}
    for key in sorted(web.routes):
        route = dict(web.routes[key])
        if route.get("expect") is None:
            route.pop("expect", None)
        route["note"] = web.kinds[key]
        routes[key] = route
    offsite = {"http://vanished-site.example/2017/04/story.html": "dns",
               "http://no-such-host.example/story.html": "dns",
               "http://169.254.169.254/latest/meta-data/": "blocked_address"}
    doc = {"version": 1,
           "about": "Sample web for the replay server (crawl/replay.py); generated by sample/generate.py.",
           "source": {"pydoc_topics_sha256": pydoc_sha256()},  # the English prose this sample was cut from
           "hosts": hosts, "routes": routes, "offsite": offsite}
    (web_dir / "routes.json").write_text(_json_text(doc), encoding="utf-8")
    for path in (dump_path, truth_path):
        path.parent.mkdir(parents=True, exist_ok=True)
    dump_path.write_bytes(compress_dump(dump))
    truth_path.write_text(_json_text(truth), encoding="utf-8")
    archive_dir = out / ARCHIVE_DIR
    shutil.rmtree(archive_dir, ignore_errors=True)
    archive_dir.mkdir(parents=True)
    warc, manifest = build_archive(web)
    (archive_dir / "captures.warc.gz").write_bytes(warc)
    (archive_dir / "captures.json").write_text(_json_text(manifest), encoding="utf-8")
    html_pages = sum(1 for k in routes if routes[k].get("body", "").endswith((".html", ".htm"))
                     and routes[k]["headers"]["Content-Type"].startswith("text/html"))
    return {"routes": len(routes), "html_pages": html_pages, "hosts": len(hosts),
            "dump_lines": truth["totals"]["lines"], "harvest_urls": truth["totals"]["urls"]}

