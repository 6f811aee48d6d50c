import pytest

from extract.config import ExtractConfig
from extract.quality import QUALITY_RULES, MeasuredText, first_failure

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
