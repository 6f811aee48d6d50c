"""Quality rules for extracted text: each rule is a named function whose name is its drop reason.

A rule is a pure function of the measured text and the config that returns True when the
document fails it. `first_failure` applies `QUALITY_RULES` in order, so the page-type detectors
(bot check, cookie wall, paywall stub) name short pages before the generic `too_short` does.
The repetition and symbol rules are Gopher's tests (Rae et al., 2021, "Scaling Language
Models", appendix A), one rule per test and threshold so that the drop counts say which
threshold removed what; thresholds live in ExtractConfig.
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
# A line of characters that are not letters (a letter, any script, is [^\W\d_]) nor whitespace.
_LETTERLESS_WORDS = re.compile(r"^(?:[^\w\s]|[\d_])+$", re.MULTILINE)


class MeasuredText:
    """The text split once into what the rules measure; each measure is computed on first use."""

    def __init__(self, text: str):
        self.text = text
        self.words = text.split()
        self.lines = list(filter(None, map(str.strip, text.splitlines())))
        self._first_seen: list[np.ndarray] = []  # `first_seen` per n from 1, as far as asked

    @functools.cached_property
    def lower(self) -> str:
        return self.text.lower()

    @functools.cached_property
    def word_lengths(self) -> np.ndarray:
        return np.fromiter(map(len, self.words), dtype=np.int64, count=len(self.words))

    @functools.cached_property
    def word_ends(self) -> np.ndarray:
        """Offsets of the word ends with the words laid end to end, 0 first: the n-gram at word i
        holds word_ends[i + n] - word_ends[i] characters."""
        return np.concatenate(([0], np.cumsum(self.word_lengths)))

    @functools.cached_property
    def word_characters(self) -> int:
        """Characters in words (whitespace excluded); at least 1, as the denominator of fractions."""
        return int(self.word_lengths.sum()) or 1

    @functools.cached_property
    def word_occurrences(self) -> tuple[dict[str, int], np.ndarray]:
        """(each distinct word -> the position of its first occurrence, the 1-grams' `first_seen`),
        in one pass: setdefault returns the first position of a word seen before."""
        first_positions: dict[str, int] = {}
        positions = map(first_positions.setdefault, self.words, range(len(self.words)))
        return first_positions, np.fromiter(positions, dtype=np.int64, count=len(self.words))

    def first_seen(self, n: int) -> np.ndarray:
        """Per word position i, the position where the word n-gram starting at i first occurs (i
        itself at a first occurrence): len(words) - n + 1 of them (1 <= n <= len(words)). Exact,
        not hashed: n-grams are compared as pairs of shorter ones."""
        if not self._first_seen:
            self._first_seen.append(self.word_occurrences[1])
        while len(self._first_seen) < n:
            self._first_seen.append(_first_seen_longer(self._first_seen[-1]))
        return self._first_seen[n - 1]

    @functools.cached_property
    def repeated_lines(self) -> list[str]:
        """Lines equal to an earlier line, once per repetition."""
        seen: set[str] = set()
        repeats = []
        for line in self.lines:
            if line in seen:
                repeats.append(line)
            seen.add(line)
        return repeats


def _first_seen_longer(first_seen: np.ndarray) -> np.ndarray:
    """`MeasuredText.first_seen` of the (n+1)-grams from that of the n-grams.

    The (n+1)-gram at i is the pair of n-grams at i and i+1: two (n+1)-grams are equal exactly
    when their pairs of first_seen are, and one can occur again only where both of its n-grams
    do. Only those candidates are sorted, stably, so that the first of equal pairs is the first
    occurrence; every other (n+1)-gram occurs once."""
    size = len(first_seen)
    occurs_again = np.bincount(first_seen, minlength=size)[first_seen] > 1
    candidates = np.flatnonzero(occurs_again[:-1] & occurs_again[1:])
    longer = np.arange(size - 1)
    if len(candidates):
        pairs = first_seen[candidates] * size + first_seen[candidates + 1]
        order = np.argsort(pairs, kind="stable")
        ordered = pairs[order]
        new_pair = np.concatenate(([True], ordered[1:] != ordered[:-1]))
        longer[candidates[order]] = candidates[order[new_pair]][np.cumsum(new_pair) - 1]
    return longer


def _has_any(text: str, phrases: tuple[str, ...]) -> bool:
    return any(phrase in text for phrase in phrases)


def bot_check(document: MeasuredText, config: ExtractConfig) -> bool:
    """A short page asking to prove one is human or to enable JavaScript: an interstitial, not content."""
    return len(document.words) <= config.bot_check_max_words and _has_any(document.lower, BOT_CHECK_PHRASES)


def cookie_wall(document: MeasuredText, config: ExtractConfig) -> bool:
    """A short page about cookies and consent with at least two distinct consent terms."""
    if len(document.words) > config.cookie_wall_max_words:
        return False
    terms = sum(term in document.lower for term in COOKIE_TERMS)
    return terms >= 2 and ("cookie" in document.lower or "consent" in document.lower)


def paywall(document: MeasuredText, config: ExtractConfig) -> bool:
    """A teaser that ends in "subscribe to continue reading": the article itself is missing."""
    return len(document.words) <= config.paywall_max_words and _has_any(document.lower, PAYWALL_PHRASES)


def too_short(document: MeasuredText, config: ExtractConfig) -> bool:
    """Too little text to be a document worth training on (Gopher keeps 50+ words)."""
    return len(document.words) < config.min_words or len(document.text) < config.min_chars


def boilerplate_only(document: MeasuredText, config: ExtractConfig) -> bool:
    """Mostly menu-like lines: very short lines or link/button captions rather than prose."""
    if not document.lines:
        return True
    # a line has fewer than k words if splitting off at most k - 1 of them leaves fewer than k parts
    boilerplate = sum(
        1
        for line in document.lines
        if len(line.split(maxsplit=config.short_line_words - 1)) < config.short_line_words or _LINK_LIKE.match(line)
    )
    return boilerplate / len(document.lines) > config.max_short_line_fraction


def duplicate_lines(document: MeasuredText, config: ExtractConfig) -> bool:
    """Too many lines repeat an earlier line (`max_duplicate_line_fraction`; Gopher)."""
    if not document.lines:
        return False
    return len(document.repeated_lines) / len(document.lines) > config.max_duplicate_line_fraction


def duplicate_line_characters(document: MeasuredText, config: ExtractConfig) -> bool:
    """Too many of the lines' characters are in repeated lines (`max_duplicate_line_char_fraction`;
    Gopher): catches a few long repeated lines that the line count lets through."""
    line_characters = sum(len(line) for line in document.lines) or 1
    repeated_characters = sum(len(line) for line in document.repeated_lines)
    return repeated_characters / line_characters > config.max_duplicate_line_char_fraction


def top_ngram_characters(document: MeasuredText, config: ExtractConfig) -> bool:
    """For some n, the most frequent word n-gram's occurrences cover too much of the text
    (`max_top_ngram_char_fraction`, a limit per n; Gopher): a phrase that keeps coming back."""
    for n, limit in config.max_top_ngram_char_fraction.items():
        if len(document.words) < n:
            continue
        counts = np.bincount(document.first_seen(n))  # occurrences, at each n-gram's first position
        top_count = int(counts.max())
        if top_count > 1:
            # among equally frequent n-grams the longest, so that the choice never depends on their order
            top_first = np.flatnonzero(counts == top_count)
            top_characters = int((document.word_ends[top_first + n] - document.word_ends[top_first]).max()) * top_count
            if top_characters / document.word_characters > limit:
                return True
    return False


def _duplicate_ngram_fraction(document: MeasuredText, n: int) -> float:
    """Fraction of the word characters inside repeats of earlier word n-grams (n <= len(words))."""
    first_seen = document.first_seen(n)
    starts = np.flatnonzero(first_seen != np.arange(len(first_seen)))  # repeats, not first sightings
    if not len(starts):
        return 0.0
    # words covered by a repeat: +1 at each start, -1 n words later, running sum > 0
    edges = np.zeros(len(document.words) + 1, dtype=np.int64)
    edges[starts] += 1
    edges[starts + n] -= 1
    covered = np.cumsum(edges[:-1]) > 0
    return int(document.word_lengths[covered].sum()) / document.word_characters


def duplicate_ngram_characters(document: MeasuredText, config: ExtractConfig) -> bool:
    """For some n, the words inside repeats of earlier word n-grams cover too much of the text
    (`max_duplicate_ngram_char_fraction`, a limit per n; Gopher): copied passages inside lines.

    A repeated m-gram is made of repeated n-grams for every n < m, so the fraction never grows
    with n: going up in n, once it is within every larger n's limit, none of them can fail."""
    limits = sorted(
        (n, limit) for n, limit in config.max_duplicate_ngram_char_fraction.items() if n <= len(document.words)
    )
    for position, (n, limit) in enumerate(limits):
        fraction = _duplicate_ngram_fraction(document, n)
        if fraction > limit:
            return True
        if all(fraction <= larger for _, larger in limits[position + 1:]):
            return False
    return False


def symbols_per_word(document: MeasuredText, config: ExtractConfig) -> bool:
    """Too many hash and ellipsis symbols per word (`max_symbol_word_ratio`; Gopher): tag lists,
    truncated teasers. A text without words fails."""
    if not document.words:
        return True
    # "#", "..." and "…" share no character, so counting each apart counts them all (in "...." one "...")
    symbols = document.text.count("#") + document.text.count("...") + document.text.count("…")
    return symbols / len(document.words) > config.max_symbol_word_ratio


def non_alphabetic_words(document: MeasuredText, config: ExtractConfig) -> bool:
    """Too few words contain a letter (`min_alpha_word_fraction`; Gopher): tables of numbers,
    code, symbol soup. A text without words fails."""
    if not document.words:
        return True
    first_positions, word_first_seen = document.word_occurrences
    letterless = _LETTERLESS_WORDS.findall("\n".join(first_positions))  # distinct words, one a line
    occurrences = np.bincount(word_first_seen)  # of each word, at its first position
    letterless_words = int(occurrences[[first_positions[word] for word in letterless]].sum())
    letter_words = len(document.words) - letterless_words
    return letter_words / len(document.words) < config.min_alpha_word_fraction


QUALITY_RULES = [
    bot_check,
    cookie_wall,
    paywall,
    too_short,
    boilerplate_only,
    duplicate_lines,
    duplicate_line_characters,
    top_ngram_characters,
    duplicate_ngram_characters,
    symbols_per_word,
    non_alphabetic_words,
]


def first_failure(text: str, config: ExtractConfig) -> str | None:
    """Name of the first quality rule the text fails (its drop reason), or None if it passes."""
    document = MeasuredText(text)
    for rule in QUALITY_RULES:
        if rule(document, config):
            return rule.__name__
    return None
