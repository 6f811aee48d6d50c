"""Quality rules for extracted text: each rule is a named function whose name is its drop reason.

A rule returns True when the document fails it. `first_failure` applies `QUALITY_RULES` in
order, so the page-type detectors (bot check, cookie wall, paywall stub) name short pages
before the generic `too_short` does. Repetition and symbol rules follow Gopher
(Rae et al., 2021, "Scaling Language Models", appendix A); thresholds live in ExtractConfig.
"""

from __future__ import annotations

import functools
import re

import numpy as np

from extract.config import ExtractConfig

# Phrases of interstitial pages served instead of the article (Cloudflare, Akamai, Imperva,
# PerimeterX, DataDome, Google's "unusual traffic"): lower-case, matched as substrings.
BOT_CHECK_PHRASES = (
    "checking your browser",
    "checking if the site connection is secure",
    "enable javascript and cookies to continue",
    "please enable javascript",
    "please enable cookies",
    "javascript is disabled in your browser",
    "verify you are human",
    "verify you are a human",
    "verifying you are human",
    "are you a robot",
    "not a robot",
    "captcha",
    "ddos protection by",
    "attention required",
    "performance & security by cloudflare",
    "why have i been blocked",
    "using a security service to protect itself",
    "unusual traffic from your computer network",
    "press and hold the button",
    "press & hold",
    "pardon our interruption",
    "incapsula incident",
    "request unsuccessful",
    "access to this page has been denied",
)
COOKIE_TERMS = (
    "cookie",
    "consent",
    "accept all",
    "reject all",
    "manage preferences",
    "privacy settings",
    "privacy policy",
    "our partners",
    "personalised",
    "personalized",
    "legitimate interest",
    "store and/or access information",
    "gdpr",
)
PAYWALL_PHRASES = (
    "subscribe to continue reading",
    "subscribe to read",
    "subscribe to unlock",
    "subscribers only",
    "for subscribers",
    "already a subscriber",
    "to continue reading",
    "continue reading with",
    "log in to continue",
    "sign in to continue",
    "sign up to continue",
    "sign in to read",
    "create a free account",
    "free articles remaining",
    "reached your limit of free",
    "this content is reserved",
    "this article is reserved",
    "unlock this article",
    "become a member to read",
    "premium content",
)
_LINK_LIKE = re.compile(
    r"^(https?://|www\.|read more|continue reading|share( on| this)?\b|tweet\b|print\b|e-?mail\b|"
    r"comments?\b|log ?in\b|sign (in|up)\b|subscribe\b|next\b|previous\b|back to\b|home\b|menu\b|skip to\b)",
    re.I,
)
_SYMBOLS = re.compile(r"#|\.\.\.|…")
_ALPHA = re.compile(r"[^\W\d_]")  # any letter, any script


class TextStats:
    """The text split once into what the rules measure."""

    def __init__(self, text: str):
        self.text = text
        self.words = text.split()
        self.lines = [line.strip() for line in text.splitlines() if line.strip()]

    @functools.cached_property
    def lower(self) -> str:
        return self.text.lower()

    @functools.cached_property
    def word_lengths(self) -> np.ndarray:
        return np.fromiter((len(w) for w in self.words), dtype=np.int64, count=len(self.words))

    @functools.cached_property
    def word_ids(self) -> np.ndarray:
        vocabulary: dict[str, int] = {}
        return np.fromiter(
            (vocabulary.setdefault(w, len(vocabulary)) for w in self.words), dtype=np.uint64, count=len(self.words)
        )


def _ngram_hashes(ids: np.ndarray, n: int) -> np.ndarray:
    """One 64-bit hash per word n-gram (position i covers words i..i+n-1)."""
    hashes = np.zeros(len(ids) - n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for offset in range(n):
            hashes = hashes * np.uint64(1_000_003) + ids[offset: len(ids) - n + 1 + offset] + np.uint64(1)
    return hashes


def _has_any(text: str, phrases: tuple[str, ...]) -> bool:
    return any(p in text for p in phrases)


def bot_check(doc: TextStats, cfg: ExtractConfig) -> bool:
    """A short page asking to prove one is human or to enable JavaScript: an interstitial, not content."""
    return len(doc.words) <= cfg.bot_check_max_words and _has_any(doc.lower, BOT_CHECK_PHRASES)


def cookie_wall(doc: TextStats, cfg: ExtractConfig) -> bool:
    """A short page about cookies and consent with at least two distinct consent terms."""
    if len(doc.words) > cfg.cookie_wall_max_words:
        return False
    terms = sum(term in doc.lower for term in COOKIE_TERMS)
    return terms >= 2 and ("cookie" in doc.lower or "consent" in doc.lower)


def paywall(doc: TextStats, cfg: ExtractConfig) -> bool:
    """A teaser that ends in "subscribe to continue reading": the article itself is missing."""
    return len(doc.words) <= cfg.paywall_max_words and _has_any(doc.lower, PAYWALL_PHRASES)


def too_short(doc: TextStats, cfg: ExtractConfig) -> bool:
    """Too little text to be a document worth training on (Gopher keeps 50+ words)."""
    return len(doc.words) < cfg.min_words or len(doc.text) < cfg.min_chars


def boilerplate_only(doc: TextStats, cfg: ExtractConfig) -> bool:
    """Mostly menu-like lines: very short lines or link/button captions rather than prose."""
    if not doc.lines:
        return True
    boilerplate = sum(
        1 for line in doc.lines if len(line.split()) < cfg.short_line_words or _LINK_LIKE.match(line)
    )
    return boilerplate / len(doc.lines) > cfg.max_short_line_fraction


def repetitive(doc: TextStats, cfg: ExtractConfig) -> bool:
    """Repeated lines or word n-grams beyond Gopher's limits (spam, tag clouds, broken templates)."""
    seen: set[str] = set()
    duplicate_lines = duplicate_line_chars = 0
    for line in doc.lines:
        if line in seen:
            duplicate_lines += 1
            duplicate_line_chars += len(line)
        seen.add(line)
    total_line_chars = sum(len(line) for line in doc.lines) or 1
    if doc.lines and duplicate_lines / len(doc.lines) > cfg.max_duplicate_line_fraction:
        return True
    if duplicate_line_chars / total_line_chars > cfg.max_duplicate_line_char_fraction:
        return True
    word_chars = int(doc.word_lengths.sum()) or 1
    for n, limit in cfg.max_top_ngram_char_fraction.items():
        if len(doc.words) < n:
            continue
        _, first, counts = np.unique(_ngram_hashes(doc.word_ids, n), return_index=True, return_counts=True)
        top = int(np.argmax(counts))
        if counts[top] > 1:
            start = first[top]
            if int(doc.word_lengths[start: start + n].sum()) * int(counts[top]) / word_chars > limit:
                return True
    for n, limit in cfg.max_duplicate_ngram_char_fraction.items():
        if len(doc.words) < n:
            continue
        _, first, inverse = np.unique(_ngram_hashes(doc.word_ids, n), return_index=True, return_inverse=True)
        starts = np.flatnonzero(first[inverse] != np.arange(len(inverse)))  # repeats, not first sightings
        if not len(starts):
            continue
        # words covered by a repeat: +1 at each start, -1 n words later, running sum > 0
        edges = np.zeros(len(doc.words) + 1, dtype=np.int64)
        np.add.at(edges, starts, 1)
        np.add.at(edges, starts + n, -1)
        covered = np.cumsum(edges[:-1]) > 0
        if int(doc.word_lengths[covered].sum()) / word_chars > limit:
            return True
    return False


def symbol_ratio(doc: TextStats, cfg: ExtractConfig) -> bool:
    """Too many hash/ellipsis symbols per word, or too few words containing a letter (Gopher)."""
    if not doc.words:
        return True
    if len(_SYMBOLS.findall(doc.text)) / len(doc.words) > cfg.max_symbol_word_ratio:
        return True
    alpha_words = sum(1 for w in doc.words if _ALPHA.search(w))
    return alpha_words / len(doc.words) < cfg.min_alpha_word_fraction


QUALITY_RULES = [bot_check, cookie_wall, paywall, too_short, boilerplate_only, repetitive, symbol_ratio]


def first_failure(text: str, cfg: ExtractConfig) -> str | None:
    """Name of the first quality rule the text fails (its drop reason), or None if it passes."""
    doc = TextStats(text)
    for rule in QUALITY_RULES:
        if rule(doc, cfg):
            return rule.__name__
    return None
