import math
import random
import re

import numpy as np
import pytest

from core.text import ngram_hashes
from extract.config import ExtractConfig
from extract.quality import _LETTERLESS_WORDS, _LINK_LIKE, QUALITY_RULES, MeasuredText, first_failure

CONFIG = ExtractConfig()
PROSE = (
    "The committee met on Thursday to discuss the new budget for the public library, which has "
    "seen visitor numbers rise steadily since the reading room reopened last spring. Members "
    "agreed that the extra funding should go towards longer opening hours on weekends, a larger "
    "collection of audiobooks, and a programme of evening talks given by local historians. "
    "Several residents spoke in favour of the plan, while others asked whether the car park "
    "could be resurfaced before winter. A final decision is expected at the next meeting."
)

LONG_PROSE = (
    "Harvest volunteers gathered at the orchard before sunrise, carrying ladders, crates and flasks of tea. "
    "The old trees had produced an unusually heavy crop after a wet spring, and the cider makers wanted "
    "every apple picked before the first frost. Children sorted windfalls into buckets for the pigs, while "
    "their grandparents argued cheerfully about which variety made the sweetest juice. By midday the barn "
    "smelled of crushed fruit, and a queue of neighbours had formed at the press with bottles to fill."
)

SHORT_LINES = [
    "The river rose overnight after heavy rain in the hills.",
    "Volunteers filled sandbags outside the village hall.",
    "The bridge was closed to traffic until the water fell.",
    "By evening the school had reopened its doors to families.",
]

# One text per drop reason that passes every rule before it in QUALITY_RULES.
FAILING = {
    "bot_check": "Just a moment. Checking your browser before accessing shop.example. "
                 "Please enable JavaScript and cookies to continue. Ray ID 7d1a2b3c.",
    "cookie_wall": "We value your privacy. We and our partners use cookies to store and/or access "
                   "information on a device. Click Accept all to consent, or Manage preferences. " * 2,
    "paywall": "The mayor announced a sweeping plan for the harbour on Monday, promising new jobs. "
               "Subscribe to continue reading. Already a subscriber? Log in.",
    "too_short": "A single sentence is not a document.",
    "boilerplate_only": "\n".join(["Home", "News", "Sport", "Weather", "Contact us", "Read more about us",
                                   "Share on Facebook", PROSE]),
    # 3 of 5 lines repeat, but they hold only 13% of the characters
    "duplicate_lines": "\n".join([PROSE] + ["Follow us for daily updates."] * 4),
    # 1 of 6 lines repeats, but it holds 41% of the characters
    "duplicate_line_characters": "\n".join(SHORT_LINES + [LONG_PROSE] * 2),
    # "buy now" 30 times in one line
    "top_ngram_characters": PROSE + " " + "buy now " * 30,
    # a passage copied once inside a line: no phrase is frequent, but half the words are a repeat
    "duplicate_ngram_characters": PROSE + " " + LONG_PROSE + " " + LONG_PROSE,
    "symbols_per_word": PROSE + " " + " ".join(f"#tag{i} ..." for i in range(40)),
    "non_alphabetic_words": PROSE + " " + " ".join(str(1000 + i) for i in range(40)),
}

# Per drop reason, its own threshold keys set so loosely that the rule cannot fail.
RELAXED = {
    "bot_check": {"bot_check_max_words": 0},
    "cookie_wall": {"cookie_wall_max_words": 0},
    "paywall": {"paywall_max_words": 0},
    "too_short": {"min_words": 0, "min_chars": 0},
    "boilerplate_only": {"max_short_line_fraction": 1.0},
    "duplicate_lines": {"max_duplicate_line_fraction": 1.0},
    "duplicate_line_characters": {"max_duplicate_line_char_fraction": 1.0},
    "top_ngram_characters": {"max_top_ngram_char_fraction": {2: 1.0, 3: 1.0, 4: 1.0}},
    "duplicate_ngram_characters": {"max_duplicate_ngram_char_fraction": {n: 1.0 for n in range(5, 11)}},
    "symbols_per_word": {"max_symbol_word_ratio": 100.0},
    "non_alphabetic_words": {"min_alpha_word_fraction": 0.0},
}


def _rule(reason: str):
    return next(rule for rule in QUALITY_RULES if rule.__name__ == reason)


def test_rules_are_named_after_their_drop_reasons_one_per_test():
    assert [rule.__name__ for rule in QUALITY_RULES] == [
        "bot_check", "cookie_wall", "paywall", "too_short", "boilerplate_only",
        "duplicate_lines", "duplicate_line_characters", "top_ngram_characters", "duplicate_ngram_characters",
        "symbols_per_word", "non_alphabetic_words",
    ]
    assert set(FAILING) == set(RELAXED) == {rule.__name__ for rule in QUALITY_RULES}


@pytest.mark.parametrize("reason", sorted(FAILING))
def test_each_rule_catches_its_case(reason):
    assert _rule(reason)(MeasuredText(FAILING[reason]), CONFIG)
    assert first_failure(FAILING[reason], CONFIG) == reason


@pytest.mark.parametrize("reason", sorted(RELAXED))
def test_each_rule_answers_to_its_own_thresholds(reason):
    """Loosening a rule's own config keys lets its case through that rule: each drop reason
    stands for exactly one threshold, so its count says what that threshold removed."""
    relaxed = ExtractConfig(**RELAXED[reason])
    assert not _rule(reason)(MeasuredText(FAILING[reason]), relaxed)
    assert first_failure(FAILING[reason], relaxed) != reason


def test_repetition_tests_are_told_apart():
    """Each Gopher repetition case fails its own test and none of the repetition tests before it."""
    repetition = ["duplicate_lines", "duplicate_line_characters", "top_ngram_characters", "duplicate_ngram_characters"]
    for position, reason in enumerate(repetition):
        document = MeasuredText(FAILING[reason])
        assert [other for other in repetition[: position + 1] if _rule(other)(document, CONFIG)] == [reason]
    assert not _rule("duplicate_line_characters")(MeasuredText(FAILING["duplicate_lines"]), CONFIG)
    assert not _rule("top_ngram_characters")(MeasuredText(FAILING["duplicate_ngram_characters"]), CONFIG)
    assert not _rule("symbols_per_word")(MeasuredText(FAILING["non_alphabetic_words"]), CONFIG)


@pytest.mark.parametrize("rule", QUALITY_RULES, ids=lambda rule: rule.__name__)
def test_each_rule_passes_clean_prose(rule):
    assert not rule(MeasuredText(PROSE), CONFIG)


def test_clean_prose_passes_all_rules():
    assert first_failure(PROSE, CONFIG) is None


def test_long_article_mentioning_captcha_or_subscribing_is_kept(pages, config):
    from extract.extractors import extract

    article = extract(pages["article_en"].decode(), None, config).text
    extra = (
        "Readers asked how the footage was checked. The trust explained that every clip is reviewed by "
        "two volunteers before it is logged, and that the new camera software sometimes shows a captcha "
        "when too many people try to view the live stream at once. Members who subscribe to read the "
        "monthly newsletter will receive a summary of each survey, including maps of where the animals "
        "were seen, notes on the weather, and the number of hours of video collected at every site."
    )
    text = "\n".join([article, PROSE, extra, LONG_PROSE])
    assert len(text.split()) > CONFIG.paywall_max_words
    assert first_failure(text, CONFIG) is None


def test_repeated_phrase_inside_lines_is_caught():
    spam = PROSE + " " + " ".join(["best price guaranteed order now from our online shop"] * 8)
    assert first_failure(spam, CONFIG) == "top_ngram_characters"
    assert _rule("duplicate_ngram_characters")(MeasuredText(spam), CONFIG)


def test_thresholds_come_from_config():
    assert first_failure(FAILING["too_short"], ExtractConfig(min_words=1, min_chars=1)) is None
    assert first_failure(PROSE, ExtractConfig(min_words=500)) == "too_short"


def test_empty_text_fails():
    assert first_failure("", CONFIG) is not None
    assert _rule("symbols_per_word")(MeasuredText(""), CONFIG)
    assert _rule("non_alphabetic_words")(MeasuredText(""), CONFIG)


# Reference: the rules as first written (one np.unique per n over n-gram hashes, one regex per
# word, every line split in full, a regex for symbols), which the faster rules must match on
# every text and config.
def _reference_ngram_fractions(text: str, n: int) -> tuple[float | None, float | None]:
    """(top n-gram fraction, duplicate n-gram fraction); None where the rule cannot fail at n."""
    words = text.split()
    if len(words) < n:
        return None, None
    vocabulary: dict[str, int] = {}
    word_ids = np.array([vocabulary.setdefault(word, len(vocabulary)) for word in words], dtype=np.uint64)
    word_lengths = np.array([len(word) for word in words], dtype=np.int64)
    word_characters = int(word_lengths.sum()) or 1
    word_ends = np.concatenate(([0], np.cumsum(word_lengths)))
    _, first, inverse, counts = np.unique(
        ngram_hashes(word_ids, n), return_index=True, return_inverse=True, return_counts=True
    )
    top_count = int(counts.max())
    top = None
    if top_count > 1:
        top_first = first[counts == top_count]
        top = int((word_ends[top_first + n] - word_ends[top_first]).max()) * top_count / word_characters
    starts = np.flatnonzero(first[inverse] != np.arange(len(inverse)))
    duplicate = None
    if len(starts):
        edges = np.zeros(len(words) + 1, dtype=np.int64)
        np.add.at(edges, starts, 1)
        np.add.at(edges, starts + n, -1)
        duplicate = int(word_lengths[np.cumsum(edges[:-1]) > 0].sum()) / word_characters
    return top, duplicate


def _reference_short_line_fraction(text: str, short_line_words: int) -> float | None:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    short = sum(1 for line in lines if len(line.split()) < short_line_words or _LINK_LIKE.match(line))
    return short / len(lines)


def _reference_alpha_word_fraction(text: str) -> float | None:
    words = text.split()
    if not words:
        return None
    return sum(1 for word in words if re.search(r"[^\W\d_]", word)) / len(words)


def _reference_symbol_word_ratio(text: str) -> float | None:
    words = text.split()
    return len(re.findall(r"#|\.\.\.|…", text)) / len(words) if words else None


def _reference_rules(text: str, config: ExtractConfig) -> dict[str, bool]:
    symbols = _reference_symbol_word_ratio(text)
    short = _reference_short_line_fraction(text, config.short_line_words)
    alpha = _reference_alpha_word_fraction(text)
    tops = {n: _reference_ngram_fractions(text, n)[0] for n in config.max_top_ngram_char_fraction}
    duplicates = {n: _reference_ngram_fractions(text, n)[1] for n in config.max_duplicate_ngram_char_fraction}
    return {
        "boilerplate_only": short is None or short > config.max_short_line_fraction,
        "top_ngram_characters": any(
            tops[n] is not None and tops[n] > limit for n, limit in config.max_top_ngram_char_fraction.items()
        ),
        "duplicate_ngram_characters": any(
            duplicates[n] is not None and duplicates[n] > limit
            for n, limit in config.max_duplicate_ngram_char_fraction.items()
        ),
        "symbols_per_word": symbols is None or symbols > config.max_symbol_word_ratio,
        "non_alphabetic_words": alpha is None or alpha < config.min_alpha_word_fraction,
    }


# Words that repeat often (n-grams repeat, counts tie), letterless words (digits of several
# scripts, "_", symbols), letters that are not ASCII (combining marks, CJK, "²" counts as one).
_VOCABULARY = ["the", "cat", "sat", "on", "mat", "Home", "read", "more", "123", "4.5", "--", "_", "#", "...",
               "٣٤", "e\u0301", "東京", "²", "ǅ", "a_1", "__", "x", "Ⅻ", "‐", "share", "https://a.b",
               "#tag", "....", "…", "a...b", "##"]
_SEPARATORS = [" ", " ", " ", "\n", "\t", "\xa0", "\u2028", "\x1c", "\x1f", "\x85", "\u3000", "  \n ", "\r\n"]


def _random_text(rng: random.Random) -> str:
    vocabulary = rng.sample(_VOCABULARY, rng.randint(2, len(_VOCABULARY)))
    words = [rng.choice(vocabulary) for _ in range(rng.choice([0, 1, 3, 8, 30, 120, 400]))]
    for _ in range(rng.randint(0, 3)):  # copied passages
        if words:
            start = rng.randrange(len(words))
            words[rng.randrange(len(words) + 1):0] = words[start: start + rng.randint(1, 40)]
    text = "".join(word + rng.choice(_SEPARATORS) for word in words)
    return rng.choice(["", " ", "\n"]) + text


def _limits_around(rng: random.Random, fractions: list[float]) -> float:
    """A limit at, just below or just above a fraction the text has, or anywhere in [0, 1]."""
    candidates = [value for value in fractions if value is not None and 0.0 <= value <= 1.0]
    if not candidates or rng.random() < 0.3:
        return rng.choice([0.0, 1.0, rng.random()])
    value = rng.choice(candidates)
    return min(1.0, max(0.0, rng.choice([value, math.nextafter(value, 0.0), math.nextafter(value, 1.0)])))


def test_rules_match_the_reference_on_generated_texts_and_configs():
    rng = random.Random(20261206)
    for _ in range(300):
        text = _random_text(rng)
        ns = range(1, 13)
        fractions = [_reference_ngram_fractions(text, n) for n in ns]
        tops, duplicates = [top for top, _ in fractions], [duplicate for _, duplicate in fractions]
        for _ in range(4):
            short_line_words = rng.randint(1, 6)
            # non-monotone limits per n, in any key order
            config = ExtractConfig(
                short_line_words=short_line_words,
                max_short_line_fraction=_limits_around(rng, [_reference_short_line_fraction(text, short_line_words)]),
                min_alpha_word_fraction=_limits_around(rng, [_reference_alpha_word_fraction(text)]),
                max_symbol_word_ratio=_limits_around(rng, [_reference_symbol_word_ratio(text)]),
                max_top_ngram_char_fraction={
                    n: _limits_around(rng, tops) for n in rng.sample(list(ns), rng.randint(0, 5))
                },
                max_duplicate_ngram_char_fraction={
                    n: _limits_around(rng, duplicates) for n in rng.sample(list(ns), rng.randint(0, 7))
                },
            )
            document = MeasuredText(text)
            assert document.lines == [line.strip() for line in text.splitlines() if line.strip()]
            expected = _reference_rules(text, config)
            assert {reason: _rule(reason)(document, config) for reason in expected} == expected, (text, config)


def test_letterless_words_are_found_for_every_character():
    """A word is letterless when no character matches [^\\W\\d_], any script: checked for every
    code point that is not whitespace (so can be inside a word)."""
    characters = [chr(code) for code in range(0x110000) if not chr(code).isspace()]
    letter = re.compile(r"[^\W\d_]")
    assert _LETTERLESS_WORDS.findall("\n".join(characters)) == [c for c in characters if not letter.search(c)]
