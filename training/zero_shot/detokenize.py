"""Invertible detokenizers: the benchmarks' tokenisation artefacts removed, as the GPT-2 paper
did before scoring (" @-@ " -> "-", "word ," -> "word,", "did n't" -> "didn't", `` '' -> ").

Each benchmark family writes tokenised text by its own conventions (`Conventions`): WikiText
(Moses-style, with @-@ @,@ @.@ infixes and "= = heading = =" lines), PTB (Mikolov's: lower case,
no punctuation, "n't" split off, `<unk>` and N kept), 1BW (Moses-style) and LAMBADA / CBT (book
text: `` and '' quotes, "n't" split off). `detokenize(text, family)` works token by token: it
writes the space between two tokens unless one of them attaches to the other, so the original
tokens stay recoverable: `retokenize(detokenize(text, family), family)` gives back every line's
token sequence for text that follows the family's conventions (tests/training/test_detokenize.py
checks this on fixtures in each format). The one ambiguity left is a token that itself ends in
the punctuation glued after it ("Yahoo! ." would come back as "Yahoo ! ."); for the period,
the commonest case, a word with a period of its own ("U.S.", "Mr.") never has one glued on.
`<unk>` and PTB's N stay as they are: they are units of the benchmark with nothing to restore.

Pure functions of their input: no files, no state.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# A token that already holds a period ("U.S.", "Mr.") or is one of these never gets a sentence
# period glued on, so that the retokenizer can tell its own period from a glued one.
ABBREVIATIONS = frozenset("""
mr mrs ms dr st jr sr vs etc inc ltd co corp no gen col lt sgt capt prof rev fig mt ft jan feb mar apr
jun jul aug sep sept oct nov dec
""".split())
_PUNCTUATION = (",", ".", ":", ";", "!", "?", ")", "]", "}", "%", "...")


@dataclass(frozen=True)
class Conventions:
    """How one benchmark family writes tokenised text.

    closers attach to the previous token, openers to the next; clitics ("'s", "n't", matched
    case-insensitively) attach to the previous word; an infix token stands for a character
    written without spaces on either side ("@-@" -> "-"). quotes: "toggle" = one `"` token that
    opens and closes in turn within a line, "directional" = `` opens and '' closes, both written
    `"`. headings: WikiText's "= = Title = =" runs of "=" are written together ("== Title ==").
    """

    name: str
    closers: tuple[str, ...] = _PUNCTUATION
    openers: tuple[str, ...] = ("(", "[", "{", "$")
    clitics: tuple[str, ...] = ("'s", "'re", "'ve", "'m", "'ll", "'d")
    infixes: dict[str, str] = field(default_factory=dict)
    quotes: str | None = None
    headings: bool = False


_MOSES_CLITICS = ("'s", "'re", "'ve", "'m", "'ll", "'d", "'t")  # Moses: "don 't", "it 's"
_PTB_CLITICS = ("'s", "'re", "'ve", "'m", "'ll", "'d", "n't")  # Penn Treebank: "do n't", "it 's"

FAMILIES: dict[str, Conventions] = {
    "wikitext": Conventions("wikitext", clitics=_MOSES_CLITICS, infixes={"@-@": "-", "@,@": ",", "@.@": "."},
                            quotes="toggle", headings=True),
    "ptb": Conventions("ptb", closers=(), openers=("$", "#"), clitics=_PTB_CLITICS),
    "1bw": Conventions("1bw", clitics=_MOSES_CLITICS, quotes="toggle"),
    "lambada": Conventions("lambada", clitics=_PTB_CLITICS, quotes="directional"),
}
FAMILIES["cbt"] = FAMILIES["lambada"]  # the same book text conventions


def _conventions(family: str) -> Conventions:
    try:
        return FAMILIES[family]
    except KeyError:
        raise ValueError(f"no detokenizer for {family!r}; known: {', '.join(sorted(FAMILIES))}") from None


def _abbreviation_like(word: str) -> bool:
    """A word whose own final period the retokenizer keeps: "U.S.", "Mr.", "F." (an initial)."""
    return ("." in word and any(char.isalpha() for char in word)) or word.lower() in ABBREVIATIONS


def _is_clitic(token: str, conventions: Conventions) -> bool:
    return token.lower() in conventions.clitics


def detokenize_tokens(tokens: list[str], conventions: Conventions) -> str:
    """One line's tokens written as plain text."""
    out: list[str] = []
    previous, previous_attaches_right, quotes_seen = None, True, 0
    for token in tokens:
        spelled, attaches_left, attaches_right = token, False, False
        if token in conventions.infixes:
            spelled, attaches_left, attaches_right = conventions.infixes[token], True, True
        elif conventions.quotes == "toggle" and token == '"':
            attaches_right = quotes_seen % 2 == 0
            attaches_left = not attaches_right
            quotes_seen += 1
        elif conventions.quotes == "directional" and token in ("``", "''"):
            spelled, attaches_right = '"', token == "``"
            attaches_left = not attaches_right
        elif token in conventions.closers:
            attaches_left = previous is not None and not (token == "." and _abbreviation_like(previous))
        elif token in conventions.openers:
            attaches_right = True
        elif _is_clitic(token, conventions):
            attaches_left = True
        elif conventions.headings and token == "=":
            attaches_left = previous == "="
        if out and not (attaches_left or previous_attaches_right):
            out.append(" ")
        out.append(spelled)
        previous, previous_attaches_right = token, attaches_right
    return "".join(out)


def detokenize(text: str, family: str) -> str:
    """Tokenised benchmark text (tokens separated by spaces, one line per paragraph or sentence)
    as plain text; lines stay lines, the spaces that pad them go."""
    conventions = _conventions(family)
    return "\n".join(detokenize_tokens(line.split(), conventions) for line in text.split("\n"))


# ---------------------------------------------------------------- the inverse


def _split_infixes(chunk: str, conventions: Conventions) -> list[str]:
    """A chunk cut at the characters infix tokens stand for: "-" between two non-dash characters,
    "," and "." between two digits."""
    if not conventions.infixes:
        return [chunk]
    token_of = {char: token for token, char in conventions.infixes.items()}
    pieces, start = [], 0
    for i in range(1, len(chunk) - 1):
        char, before, after = chunk[i], chunk[i - 1], chunk[i + 1]
        if char not in token_of:
            continue
        if char == "-" and "-" not in (before, after) or char != "-" and before.isdigit() and after.isdigit():
            pieces += [chunk[start:i], token_of[char]]
            start = i + 1
    return pieces + [chunk[start:]]


def _peel(piece: str, conventions: Conventions, first_in_line: bool) -> list[str]:
    """The tokens of a piece without infixes: openers off the front, closers and clitics off the end."""
    if conventions.quotes == "directional" and piece == '"':  # a quote with nothing to attach to
        return ["''" if first_in_line else "``"]
    if conventions.headings and len(piece) > 1 and set(piece) == {"="}:
        return list(piece)
    opening_quote = {"toggle": '"', "directional": "``"}.get(conventions.quotes or "")
    closing_quote = {"toggle": '"', "directional": "''"}.get(conventions.quotes or "")
    head: list[str] = []
    while len(piece) > 1:
        if opening_quote and piece.startswith('"'):
            head.append(opening_quote)
            piece = piece[1:]
        elif piece[0] in conventions.openers:
            head.append(piece[0])
            piece = piece[1:]
        else:
            break
    suffixes = sorted([*conventions.closers, *conventions.clitics], key=len, reverse=True)
    tail: list[str] = []
    while len(piece) > 1:
        if closing_quote and piece.endswith('"'):
            tail.insert(0, closing_quote)
            piece = piece[:-1]
            continue
        for suffix in suffixes:
            if len(piece) > len(suffix) and piece.lower().endswith(suffix):
                rest = piece[:-len(suffix)]
                if suffix == "." and _abbreviation_like(rest):
                    continue
                tail.insert(0, piece[-len(suffix):])
                piece = rest
                break
        else:
            break
    return head + [piece] + tail


def retokenize(text: str, family: str) -> str:
    """The inverse of `detokenize`: each line's tokens again, separated by single spaces."""
    conventions = _conventions(family)
    lines = []
    for line in text.split("\n"):
        tokens: list[str] = []
        for chunk in line.split():
            for piece in _split_infixes(chunk, conventions):
                tokens += _peel(piece, conventions, first_in_line=not tokens)
        lines.append(" ".join(tokens))
    return "\n".join(lines)


def detokenize_last_word(tokens: list[str], family: str) -> tuple[str, str]:
    """(context, continuation) of a tokenised passage whose last token is the word to predict:
    the detokenized passage cut before that word, the continuation keeping the space in front of
    it when the detokenized text has one (not after an opening quote)."""
    if len(tokens) < 2:
        raise ValueError("needs at least two words")
    text, target = detokenize_tokens(tokens, _conventions(family)), tokens[-1]
    if not text.endswith(target):
        raise ValueError(f"ends in {target!r}, which is not a word")
    context = text[:len(text) - len(target)]
    return (context[:-1], " " + target) if context.endswith(" ") else (context, target)


_WORD = re.compile(r"\S+")


def count_words(text: str) -> int:
    """Canonical units of a word-level benchmark: its tokens plus one end-of-line token per line
    (the <eos> the standard loaders add; a final newline does not open another line)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return sum(len(_WORD.findall(line)) + 1 for line in lines)
