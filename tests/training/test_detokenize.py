"""The invertible detokenizers: what each family's artefacts become, and that the original
tokens come back from the detokenized text (on the fixtures, in each benchmark's own format)."""

from pathlib import Path

import pytest

from training.zero_shot.detokenize import count_words, detokenize, detokenize_last_word, retokenize

BENCHMARKS = Path(__file__).parent / "benchmarks"
FIXTURES = {
    "wikitext": ["wikitext-2/wiki.test.tokens", "wikitext-103/wiki.test.tokens"],
    "ptb": ["simple-examples/data/ptb.test.txt"],
    "1bw": ["1-billion-word-language-modeling-benchmark-r13output/heldout-monolingual.tokenized.shuffled/"
            "news.en.heldout-00000-of-00050"],
    "lambada": ["lambada/lambada_test_plain_text.txt"],
}


def lines_of_tokens(text: str) -> list[list[str]]:
    return [line.split() for line in text.split("\n")]


@pytest.mark.parametrize("family, tokenized, plain", [
    ("wikitext", " = = Early life = = ", "== Early life =="),
    ("wikitext", " a guest @-@ starring role in 2000 , for 3 @,@ 000 days ( about 1 @.@ 5 % ) . ",
     "a guest-starring role in 2000, for 3,000 days (about 1.5%)."),
    ("wikitext", " \" I am not lonely , \" he says ; she doesn 't . The daughter 's letters : none ! ",
     "\"I am not lonely,\" he says; she doesn't. The daughter's letters: none!"),
    ("wikitext", " in the U.S. . Mr. Price paid $ 5 . <unk> won . ", "in the U.S. . Mr. Price paid $5. <unk> won."),
    ("ptb", " no it was n't black monday \n the fund 's shares rose $ N to $ N ca n't <unk> \n",
     "no it wasn't black monday\nthe fund's shares rose $N to $N can't <unk>\n"),
    ("1bw", "\" We don 't have it , \" said Price , adding that the vote was 7-2 .",
     "\"We don't have it,\" said Price, adding that the vote was 7-2."),
    ("lambada", "`` i do n't know , '' she said ... `` say you 'll come ( please ) ? ''",
     "\"i don't know,\" she said... \"say you'll come (please)?\""),
])
def test_each_family_removes_its_artefacts_and_inverts(family, tokenized, plain):
    assert detokenize(tokenized, family) == plain
    assert lines_of_tokens(retokenize(plain, family)) == lines_of_tokens(tokenized)


@pytest.mark.parametrize("family, path", [(family, path) for family, paths in FIXTURES.items() for path in paths])
def test_fixture_files_come_back_token_for_token(family, path):
    text = (BENCHMARKS / path).read_text(encoding="utf-8")
    plain = detokenize(text, family)
    assert plain != text and " ," not in plain and " ." not in plain.replace("U.S. .", "")
    assert lines_of_tokens(retokenize(plain, family)) == lines_of_tokens(text)


def test_cbt_sentences_use_the_book_conventions():
    text = (BENCHMARKS / "CBTest/data/cbtest_CN_test_2500ex.txt").read_text(encoding="utf-8")
    sentences = [line.split(" ", 1)[1].split("\t")[0] for line in text.split("\n") if line.strip()]
    passage = " ".join(sentences)
    assert "``" in passage and "ca n't" in passage
    plain = detokenize(passage, "cbt")
    assert "can't eat it" in plain and "`" not in plain
    assert retokenize(plain, "cbt").split() == passage.split()


def test_quotes_that_open_or_close_at_the_edges_come_back():
    tokenized = "'' no , '' he said . `` ( `` yes '' ) `` home"  # a passage may start inside a quote
    plain = detokenize(tokenized, "lambada")
    assert plain == "\" no,\" he said. \"(\"yes\") \"home"
    assert retokenize(plain, "lambada") == tokenized


def test_last_word_keeps_its_space_unless_a_quote_opens_before_it():
    assert detokenize_last_word("he said , `` home".split(), "lambada") == ("he said, \"", "home")
    assert detokenize_last_word("he did n't see the dog".split(), "lambada") == ("he didn't see the", " dog")
    with pytest.raises(ValueError, match="at least two words"):
        detokenize_last_word(["dog"], "lambada")
    with pytest.raises(ValueError, match="not a word"):
        detokenize_last_word("he said `` yes ''".split(), "lambada")


def test_canonical_words_count_an_end_of_line_per_line():
    assert count_words(" a b \n \n c \n") == 2 + 1 + 0 + 1 + 1 + 1
    assert count_words("a b") == 3  # no final newline: still one line
    assert count_words((BENCHMARKS / FIXTURES["ptb"][0]).read_text()) == 6 + 30 + 16 + 17 + 18 + 5  # 5 lines


def test_unknown_family_is_refused():
    with pytest.raises(ValueError, match="no detokenizer for 'moses'"):
        detokenize("a , b", "moses")
