"""Readers for the benchmarks' official files, as their publishers distribute them, and the
search of a folder for them (`webtext eval --suite paper --data DIR`). The user brings the
files; nothing is downloaded. docs/evaluation.md lists where each comes from.

    wiki.test.tokens                WikiText-2 / -103 test set (under a folder named wikitext-2* or
                                    wikitext-103*: both archives hold a file of this name)
    ptb.test.txt                    Penn Treebank, Mikolov's version (simple-examples/data/)
    news.en.heldout-00000-of-00050  One Billion Word benchmark test set (heldout-monolingual.tokenized.shuffled/)
    lambada_test.jsonl              LAMBADA as OpenAI released it for GPT-2 ({"text": ...} per line)
    lambada_test_plain_text.txt     LAMBADA as its authors released it (tokenised, one passage per line)
    cbtest_CN_test_2500ex.txt       Children's Book Test, common nouns / named entities (CBTest/data/)
    cbtest_NE_test_2500ex.txt
    enwik8, text8                   the raw 100 MB files (Hutter Prize / Mahoney); the test set is the
                                    last 5,000,000 bytes, a shorter file is scored whole

Errors name the file (and line) and say what is wrong.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from training.zero_shot.detokenize import count_words, detokenize, detokenize_last_word

BLANK = "XXXXX"  # the CBT question's gap
CHARACTER_TEST_BYTES = 5_000_000  # enwik8 / text8 test set: the last 5M of the 90M/5M/5M split

# dataset name -> official file name; the order is the search's (first found of a name wins)
OFFICIAL_FILES: dict[str, tuple[str, ...]] = {
    "lambada": ("lambada_test.jsonl", "lambada_test_plain_text.txt"),
    "cbt-cn": ("cbtest_CN_test_2500ex.txt",),
    "cbt-ne": ("cbtest_NE_test_2500ex.txt",),
    "wikitext-2": ("wiki.test.tokens",),
    "ptb": ("ptb.test.txt",),
    "enwik8": ("enwik8",),
    "text8": ("text8",),
    "wikitext-103": ("wiki.test.tokens",),
    "1bw": ("news.en.heldout-00000-of-00050",),
}
DETOKENIZER = {"wikitext-2": "wikitext", "wikitext-103": "wikitext", "ptb": "ptb", "1bw": "1bw"}


@dataclass(frozen=True)
class CanonicalText:
    """A language-modelling test set: the text as its file spells it, the text the model scores
    (detokenized; the same for enwik8 / text8) and the canonical units the likelihood is divided by."""

    name: str
    path: Path
    raw: str
    text: str
    unit: str  # "word" | "byte" | "character"
    units: int
    detokenizer: str | None


@dataclass(frozen=True)
class LastWordExample:
    """A LAMBADA passage: the model continues `context` and should produce `target` (which holds
    the space before the word when the text has one)."""

    context: str
    target: str
    line: int


@dataclass(frozen=True)
class ClozeExample:
    """A CBT question: `before` + one of `candidates` + `after` (the rest of the sentence)."""

    before: str
    after: str
    candidates: tuple[str, ...]
    answer: str
    line: int


def read_utf8(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def read_word_level(name: str, path: Path) -> CanonicalText:
    """WikiText, PTB or 1BW: tokenised text, one paragraph or sentence per line."""
    raw = read_utf8(path)
    if not raw.strip():
        raise ValueError(f"{path}: empty file")
    family = DETOKENIZER[name]
    return CanonicalText(name, path, raw, detokenize(raw, family), "word", count_words(raw), family)


def read_character_level(name: str, path: Path) -> CanonicalText:
    """enwik8 (bits per byte) or text8 (bits per character; its characters are bytes): the last
    CHARACTER_TEST_BYTES bytes. A character cut by that split is scored as U+FFFD; the units stay
    the bytes."""
    data = path.read_bytes()
    if not data:
        raise ValueError(f"{path}: empty file")
    test = data[-CHARACTER_TEST_BYTES:]
    text = test.decode("utf-8", errors="replace")
    unit = "byte" if name == "enwik8" else "character"
    return CanonicalText(name, path, text, text, unit, len(test), None)


def read_lambada(path: Path) -> list[LastWordExample]:
    """LAMBADA, either file: JSON Lines ({"text": passage}, already plain text: the target is
    the last space-separated word; `is_json_lines`), or the authors' tokenised text (one passage per line, the
    last token the target; detokenized with the book conventions)."""
    if is_json_lines(path):
        examples = []
        for record in read_jsonl(path, {"text": str}):
            try:
                context, target = split_last_word(record["text"])
            except ValueError as exc:
                raise ValueError(f"{path}:{record['_line']}: 'text' {exc}") from None
            examples.append(LastWordExample(context, target, record["_line"]))
        return examples
    examples = []
    for number, line in enumerate(read_utf8(path).split("\n"), 1):
        if not line.strip():
            continue
        try:
            context, target = detokenize_last_word(line.split(), "lambada")
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: passage {exc}") from None
        examples.append(LastWordExample(context, target, number))
    if not examples:
        raise ValueError(f"{path}: no passages")
    return examples


def is_json_lines(path: Path) -> bool:
    """A *.jsonl file, or one whose first non-blank line starts a JSON object."""
    if path.suffix == ".jsonl":
        return True
    with open(path, "rb") as file:
        for line in file:
            if line.strip():
                return line.lstrip().startswith(b"{")
    return False


def split_last_word(text: str) -> tuple[str, str]:
    """('context', ' target') for a LAMBADA passage; the target keeps its leading space."""
    text = text.rstrip()
    cut = text.rfind(" ")
    if cut <= 0:
        raise ValueError("needs at least two space-separated words")
    return text[:cut], text[cut:]


def read_cbt(path: Path) -> list[ClozeExample]:
    """CBT, either file: JSON Lines ({"context", "question" with XXXXX, "options", "answer"},
    plain text), or the official format: numbered lines "1 sentence" .. "20 sentence", then
    "21 question with XXXXX<TAB>answer<TAB><TAB>candidate|candidate|...", a blank line between
    questions; tokenised text, detokenized with the book conventions."""
    if is_json_lines(path):
        examples = []
        for record in read_jsonl(path, {"context": str, "question": str, "options": list, "answer": str}):
            options = record["options"]
            if len(options) < 2 or not all(isinstance(option, str) and option for option in options):
                raise ValueError(f"{path}:{record['_line']}: 'options' must be at least two non-empty strings")
            if BLANK not in record["question"]:
                raise ValueError(f"{path}:{record['_line']}: 'question' has no {BLANK} gap")
            context = record["context"]
            separator = "" if not context or context[-1].isspace() else " "
            examples.append(_cloze(path, record["_line"], context + separator + record["question"], options,
                                   record["answer"]))
        return examples
    examples, sentences = [], []
    for number, line in enumerate(read_utf8(path).split("\n"), 1):
        if not line.strip():
            continue
        label, _, rest = line.partition(" ")
        if not label.isdigit() or int(label) != len(sentences) + 1:
            raise ValueError(f"{path}:{number}: expected sentence number {len(sentences) + 1}, got {label!r}")
        if "\t" not in rest:
            sentences.append(rest)
            continue
        fields = [field for field in rest.split("\t") if field.strip()]
        if len(fields) != 3:
            raise ValueError(f"{path}:{number}: a question line holds 'question<TAB>answer<TAB><TAB>candidates'")
        question, answer, candidates = fields
        tokens = (" ".join(sentences) + " " + question).split()
        if BLANK not in tokens:
            raise ValueError(f"{path}:{number}: the question has no {BLANK} gap")
        examples.append(_cloze(path, number, detokenize(" ".join(tokens), "cbt"), candidates.split("|"),
                               answer.strip()))
        sentences = []
    if sentences:
        raise ValueError(f"{path}: ends inside a question (no line with the {BLANK} gap after the sentences)")
    if not examples:
        raise ValueError(f"{path}: no questions")
    return examples


def _cloze(path: Path, line: int, text: str, candidates: list[str], answer: str) -> ClozeExample:
    """The example of a passage whose last XXXXX is the gap."""
    if answer not in candidates:
        raise ValueError(f"{path}:{line}: 'answer' {answer!r} is not one of the options")
    cut = text.rindex(BLANK)
    return ClozeExample(text[:cut], text[cut + len(BLANK):], tuple(candidates), answer, line)


def read_jsonl(path: str | Path, required: dict[str, type]) -> list[dict]:
    """Objects of a JSON Lines file with the `required` keys and types; errors name file:line."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text: {exc}") from None
    records = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not valid JSON: {exc.msg}") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        for key, kind in required.items():
            if key not in record:
                raise ValueError(f"{path}:{number}: missing key {key!r}")
            if not isinstance(record[key], kind):
                raise ValueError(f"{path}:{number}: {key!r} must be {kind.__name__}, got {type(record[key]).__name__}")
        record["_line"] = number
        records.append(record)
    if not records:
        raise ValueError(f"{path}: no examples")
    return records


def find_benchmarks(directory: str | Path) -> dict[str, Path]:
    """{dataset name: file} for every official test file under `directory` (searched
    recursively); LAMBADA's JSON Lines release is preferred to the tokenised one."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: no such directory (give the folder holding the benchmark files)")
    found: dict[str, Path] = {}
    for name, file_names in OFFICIAL_FILES.items():
        for file_name in file_names:
            matches = sorted(path for path in directory.rglob(file_name) if path.is_file())
            if file_name == "wiki.test.tokens":
                matches = [path for path in matches if _wikitext_name(path, directory) == name]
            if len(matches) > 1:
                raise ValueError(f"{directory}: several {file_name} files for {name} "
                                 f"({', '.join(str(m) for m in matches)}); keep one")
            if matches:
                found[name] = matches[0]
                break
    if not found:
        expected = sorted({file_name for names in OFFICIAL_FILES.values() for file_name in names})
        raise FileNotFoundError(f"{directory}: none of the benchmark files found; "
                                f"expected any of {', '.join(expected)}")
    return found


def _wikitext_name(path: Path, directory: Path) -> str:
    """wikitext-103 or wikitext-2, from the folders the file sits in (both archives name it alike)."""
    folders = [part.lower() for part in path.relative_to(directory).parts[:-1]] + [directory.name.lower()]
    if any("wikitext-103" in folder for folder in folders):
        return "wikitext-103"
    if any("wikitext-2" in folder for folder in folders):
        return "wikitext-2"
    raise ValueError(f"{path}: cannot tell WikiText-2 from WikiText-103; put it in a folder named "
                     "wikitext-2 or wikitext-103 (as the official archives unpack)")
