import pytest

from extract.config import ExtractConfig
from extract.lines import LINE_RULES, byline_or_share_line, clean_lines, config_key, enabled_rules, table_markup_line

# Real lines each rule removes: from the demo's survivors, the extraction evaluation set's
# trafilatura/newspaper output, and common share bars.
REMOVED = {
    byline_or_share_line: [
        "Posted 2017-06-20 by Tom Becker | Print | E-mail this story",
        "By Nada Tawfik, BBC News, New York",
        "By Evan Symon, August 14, 2020 2:30 pm",
        "Posted by Alex Durán, AMP Project Marketing, Google",
        "Posted: Thursday, April 21, 2022. 10:11 pm CST.",
        "Updated June 13, 2019",
        "Last updated: 13 July 2020",
        "Written by: Julie Mollins",
        "Published 3 hours ago by Jane Doe and John Roe",
        "Posted on",  # the date was a script-rendered element the extractor lost
        "By Tom Becker • June 20, 2017 • 12 Comments",
        "Share on Facebook",
        "Share | Tweet | Email",
        "Print this article · E-mail this story to a friend",
        "Leave a comment",
        "Twitter",
    ],
    table_markup_line: [
        "|---|",  # the separator of a one-column table
        "| The \"assert\" statement |",  # a one-column infobox: its title ...
        "| See also the related articles below |",  # ... and its caption
        "| Quelle: Wikipedia |",
        "|  |  |  |",  # a row of empty cells
    ],
}

# Lines that must survive every rule.
KEPT = [
    # prose that mentions posting, publishing, sharing or printing
    "Posted notices on the harbour wall warned walkers that the quay would close at high tide.",
    "Posted on the door of the town hall, the notice listed every road closed for the marathon.",
    "Published in Nature in 2019, the study followed forty otters for three years.",
    "Updated rules for the harbour came into force on Monday.",
    "By the time we realised what was happening, it was already too late.",
    "By Monday, the river had risen two metres above its summer level.",
    "By 2030 the council wants every bus in the county to run on electricity.",
    "Share prices fell 3% on Tuesday after the announcement.",
    "Print the return value for the last return of the current function.",
    "Email us at news@example.com with your photographs of the flood.",
    "Twitter: @BSI_Bund",
    "June 20, 2017",  # a date alone may be the article's own dateline
    # tables that are data, and a table row that holds a sentence
    "| Night | Tide level |",
    "|---|---|",
    "| 4 February | 5.9 metres |",
    "| The bridge was closed to traffic until the water fell on Tuesday evening. |",
    "| Es war gesagt, falls du zornig bist, sollst du einen Brief schreiben, sagte sie, und lachte dabei. |",
    # markdown-like prose and code
    "|x| is the absolute value of x, so |-3| equals 3.",
    "| capture_pattern",
    "closed_pattern ::= | literal_pattern",
    "- Print the page, sign it and send it back by e-mail before Friday.",
    "print(results)",
    "...     print x",
    '"Comment": {',
    '| install.packages("ggplot2")  # Install ggplot2 |',
]

TEXT_LINES = [
    "Harbour wall repairs begin before the winter storms",
    "Posted 2017-06-20 by Tom Becker | Print | E-mail this story",
    "| Harbour wall repairs |",
    "|---|",
    "| See also the related articles below |",
    "Posted notices on the harbour wall warned walkers that the quay would close at high tide.",
    "",
    "| Night | Tide level |",
    "|---|---|",
    "| 4 February | 5.9 metres |",
    "Share on Facebook",
]


def test_rules_are_named_and_each_has_its_own_switch():
    assert [rule.__name__ for rule in LINE_RULES] == ["byline_or_share_line", "table_markup_line"]
    switches = {name for name in ExtractConfig.model_fields if name.startswith("remove_")}
    assert switches == {config_key(rule) for rule in LINE_RULES}
    assert set(REMOVED) == set(LINE_RULES)


@pytest.mark.parametrize(
    ("rule", "line"), [(rule, line) for rule, lines in REMOVED.items() for line in lines],
    ids=lambda value: getattr(value, "__name__", value),
)
def test_rule_removes_its_lines_and_no_other_rule_claims_them(rule, line):
    assert [candidate for candidate in LINE_RULES if candidate(line)] == [rule]


@pytest.mark.parametrize("line", KEPT)
def test_lines_that_must_survive(line):
    assert [rule.__name__ for rule in LINE_RULES if rule(line)] == []


def test_clean_lines_removes_counts_per_rule_and_keeps_the_rest_in_order():
    cleaned, removed = clean_lines("\n".join(TEXT_LINES), LINE_RULES)
    assert cleaned.splitlines() == [
        "Harbour wall repairs begin before the winter storms",
        "Posted notices on the harbour wall warned walkers that the quay would close at high tide.",
        "",
        "| Night | Tide level |",
        "|---|---|",
        "| 4 February | 5.9 metres |",
    ]
    assert removed == {"byline_or_share_line": 2, "table_markup_line": 3}


@pytest.mark.parametrize("switched_off", LINE_RULES, ids=lambda rule: rule.__name__)
def test_each_rule_switches_off_alone(switched_off):
    config = ExtractConfig(**{config_key(switched_off): False})
    assert enabled_rules(config) == [rule for rule in LINE_RULES if rule is not switched_off]
    cleaned, removed = clean_lines("\n".join(TEXT_LINES), enabled_rules(config))
    assert switched_off.__name__ not in removed and set(removed) == {rule.__name__ for rule in enabled_rules(config)}
    kept = cleaned.splitlines()
    assert all(line in kept for line in TEXT_LINES if switched_off(line))


def test_no_rule_enabled_leaves_the_text_as_it_is():
    text = "\n".join(TEXT_LINES)
    config = ExtractConfig(**{config_key(rule): False for rule in LINE_RULES})
    assert clean_lines(text, enabled_rules(config)) == (text.strip(), {})


def test_the_default_config_enables_every_rule():
    assert enabled_rules(ExtractConfig()) == LINE_RULES
