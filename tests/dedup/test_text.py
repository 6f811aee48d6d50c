import subprocess
import sys

import numpy as np
import pytest

from core.text import normalize_for_exact
from dedup.text import EMPTY_TEXT_SHINGLE, exact_key, jaccard, shingles


def test_exact_key_equal_iff_normalized_equal():
    assert exact_key("Hello, World!") == exact_key("hello world")
    assert exact_key("hello world") != exact_key("hello  worlds")
    assert len(exact_key("x")) == 32


def _word_shingles(text, k):
    words = normalize_for_exact(text).split()
    return {tuple(words[i:i + k]) for i in range(len(words) - k + 1)}


def test_shingles_are_the_k_word_windows():
    text = "one two three four five six seven one two three four five"
    hashes = shingles(text, 5)
    assert hashes.dtype == np.uint64
    assert np.all(np.diff(hashes.astype(object)) > 0), "sorted and unique"
    assert len(hashes) == len(_word_shingles(text, 5)) == 7
    # order matters, punctuation and case do not
    assert not np.array_equal(shingles("b a c d e", 5), shingles("a b c d e", 5))
    assert np.array_equal(shingles("A, b. C d e!", 5), shingles("a b c d e", 5))


def test_short_documents_have_one_whole_text_shingle():
    assert np.array_equal(shingles("", 5), EMPTY_TEXT_SHINGLE)
    assert np.array_equal(shingles("", 5), shingles("?!", 5))
    short = shingles("only four words here", 5)
    assert len(short) == 1
    assert np.array_equal(short, shingles("Only, four words here.", 5))
    assert not np.array_equal(short, shingles("only four words there", 5))
    assert not np.array_equal(short, EMPTY_TEXT_SHINGLE)
    assert not np.array_equal(shingles("only four words", 5), short)  # a prefix is another text
    # a document of exactly k words has one ordinary shingle
    assert len(shingles("exactly five words right here", 5)) == 1


def test_shingle_size_must_be_positive():
    with pytest.raises(ValueError, match="shingle size"):
        shingles("a b c", 0)


def test_jaccard_matches_python_sets():
    a_text = "the quick brown fox jumps over the lazy dog and runs far away"
    b_text = "the quick brown fox jumps over the lazy cat and runs far away"
    expected = len(_word_shingles(a_text, 3) & _word_shingles(b_text, 3)) / len(
        _word_shingles(a_text, 3) | _word_shingles(b_text, 3)
    )
    assert jaccard(shingles(a_text, 3), shingles(b_text, 3)) == pytest.approx(expected)
    assert jaccard(shingles(a_text, 3), shingles(a_text, 3)) == 1.0


def test_hashes_do_not_depend_on_the_process():
    """Workers of a distributed run must agree: nothing may depend on Python's salted hash()."""
    code = "from dedup.text import shingles; print(shingles('Déjà vu, all over again and again!', 2).tolist())"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(runs) == 1
    assert runs.pop().strip() == str(shingles("Déjà vu, all over again and again!", 2).tolist())
