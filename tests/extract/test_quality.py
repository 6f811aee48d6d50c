import pytest

from extract.config import ExtractConfig
from extract.quality import QUALITY_RULES, TextStats, first_failure

CFG = ExtractConfig()
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

POSITIVE = {
    "bot_check": "Just a moment. Checking your browser before accessing shop.example. "
                 "Please enable JavaScript and cookies to continue. Ray ID 7d1a2b3c.",
    "cookie_wall": "We value your privacy. We and our partners use cookies to store and/or access "
                   "information on a device. Click Accept all to consent, or Manage preferences. " * 2,
    "paywall": "The mayor announced a sweeping plan for the harbour on Monday, promising new jobs. "
               "Subscribe to continue reading. Already a subscriber? Log in.",
    "too_short": "A single sentence is not a document.",
    "boilerplate_only": "\n".join(["Home", "News", "Sport", "Weather", "Contact us", "Read more about us",
                                   "Share on Facebook", PROSE]),
    "repetitive": "\n".join([PROSE] + ["Buy cheap watches online today with free delivery."] * 6),
    "symbol_ratio": PROSE + " " + " ".join(f"#tag{i} ..." for i in range(40)),
}


def test_rules_are_named_after_their_drop_reasons():
    assert [r.__name__ for r in QUALITY_RULES] == [
        "bot_check", "cookie_wall", "paywall", "too_short", "boilerplate_only", "repetitive", "symbol_ratio"
    ]


@pytest.mark.parametrize("reason", sorted(POSITIVE))
def test_each_rule_catches_its_case(reason):
    rule = next(r for r in QUALITY_RULES if r.__name__ == reason)
    assert rule(TextStats(POSITIVE[reason]), CFG)
    assert first_failure(POSITIVE[reason], CFG) == reason


@pytest.mark.parametrize("rule", QUALITY_RULES, ids=lambda r: r.__name__)
def test_each_rule_passes_clean_prose(rule):
    assert not rule(TextStats(PROSE), CFG)


def test_clean_prose_passes_all_rules():
    assert first_failure(PROSE, CFG) is None


def test_long_article_mentioning_captcha_or_subscribing_is_kept(pages, cfg):
    from extract.extractors import extract

    article = extract(pages["article_en"].decode(), None, cfg).text
    extra = (
        "Readers asked how the footage was checked. The trust explained that every clip is reviewed by "
        "two volunteers before it is logged, and that the new camera software sometimes shows a captcha "
        "when too many people try to view the live stream at once. Members who subscribe to read the "
        "monthly newsletter will receive a summary of each survey, including maps of where the animals "
        "were seen, notes on the weather, and the number of hours of video collected at every site."
    )
    text = "\n".join([article, PROSE, extra, LONG_PROSE])
    assert len(text.split()) > CFG.paywall_max_words
    assert first_failure(text, CFG) is None


def test_repeated_ngrams_inside_lines_are_caught():
    spam = PROSE + " " + " ".join(["best price guaranteed order now from our online shop"] * 8)
    doc = TextStats(spam)
    assert next(r for r in QUALITY_RULES if r.__name__ == "repetitive")(doc, CFG)


def test_thresholds_come_from_config():
    assert first_failure(POSITIVE["too_short"], ExtractConfig(min_words=1, min_chars=1)) is None
    assert first_failure(PROSE, ExtractConfig(min_words=500)) == "too_short"


def test_empty_text_fails():
    assert first_failure("", CFG) is not None
