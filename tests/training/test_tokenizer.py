"""The byte-level BPE tokenizer: GPT-2 semantics, vocabulary layout, file formats, round trips."""

import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import regex

from tests.training.dataset_fixtures import corrupt_text_pages, write_dataset
from training.config import TokenizerConfig
from training.tokenizer import EOT, bytes_to_unicode, load_tokenizer, train_tokenizer
from webtext.cli import main

GPT2_PATTERN = regex.compile(r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")

CORPUS = [
    "It's the 3rd time we've said it: the cat isn't here, they'll say.   Really?!\n\n",
    "Numbers 1234567 and 3.14159 or 2019-02-14; emails like a@b.example.",
    "Tabs\tand\r\nline breaks\n  indented   text   ",
    "東京は日本の首都です。 中文文本 😀🚀 naïve café Ελληνικά русский",
    "I've been there, you'd know, we're done, she'll come, I'm late, it'd be.",
] * 20

HARD_STRINGS = [
    "",
    "a",
    " leading space and trailing ",
    "😀 emoji 👩‍👩‍👧 family, flags 🇫🇷",
    "CJK 漢字かなカナ 한국어",
    "controls \x00\x01\x02\x07\x1b[0m\x7f\x85 end",
    "\r\n\t\x0b\x0c  \n\n\n",
    "combining e\u0301 and zero\u200bwidth",
    "lone \ud800 high, lone \udfff low, \udc80 escape-range, pair-as-two \ud83d\ude00",
    "<|endoftext|> inside text <|endoftext|>",
    "It's 12345 ---- !!! ???",
]


def reference_gpt2_encode(encoder: dict, merges: list[tuple[str, str]], text: str) -> list[int]:
    """OpenAI's GPT-2 encoder algorithm, written out independently of the code under test."""
    byte_char = bytes_to_unicode()
    ranks = {pair: i for i, pair in enumerate(merges)}
    ids = []
    for piece in GPT2_PATTERN.findall(text):
        word = [byte_char[b] for b in piece.encode("utf-8")]
        while len(word) > 1:
            pairs = {(a, b) for a, b in zip(word, word[1:])}
            best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
            if best not in ranks:
                break
            merged, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and (word[i], word[i + 1]) == best:
                    merged.append(word[i] + word[i + 1])
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = merged
        ids.extend(encoder[t] for t in word)
    return ids


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    tok = train_tokenizer(iter(CORPUS), TokenizerConfig(vocab_size=400, min_frequency=2))
    directory = tmp_path_factory.mktemp("tok")
    tok.save(directory)
    return tok, directory


def test_eot_has_the_last_id_and_all_256_bytes_are_tokens(trained):
    tok, _ = trained
    assert tok.vocab_size == 400 and tok.eot_id == 399
    assert tok.decode_bytes([tok.eot_id]) == EOT.encode()
    single_bytes = {tok.decode_bytes([i]) for i in range(tok.vocab_size)}
    assert {bytes([b]) for b in range(256)} <= single_bytes


def test_encoding_matches_the_gpt2_algorithm_on_the_saved_gpt2_files(trained):
    tok, directory = trained
    encoder = json.loads((directory / "encoder.json").read_text(encoding="utf-8"))
    lines = (directory / "vocab.bpe").read_text(encoding="utf-8").split("\n")
    assert lines[0] == "#version: 0.2"
    merges = [tuple(line.split(" ")) for line in lines[1:] if line]
    assert len(encoder) == len(merges) + 256 + 1  # bytes + one token per merge + EOT
    for text in CORPUS[:5] + [s for s in HARD_STRINGS if not regex.search("[\ud800-\udfff]", s)]:
        assert tok.encode(text) == reference_gpt2_encode(encoder, merges, text), text
    assert len(tok.encode(CORPUS[0])) < len(CORPUS[0].encode()) / 2  # merges were learned


def test_no_merges_across_character_categories(trained):
    tok, _ = trained
    for text in ["abc123", "word!", "it's", " 42x"]:
        pieces = [tok.decode([i]) for i in tok.encode(text)]
        assert "".join(pieces) == text
        for piece in pieces:  # every token lies inside one GPT-2 pre-token
            assert any(piece in pre for pre in GPT2_PATTERN.findall(text)), (text, pieces)


@pytest.mark.parametrize("text", HARD_STRINGS)
def test_round_trip_is_lossless(trained, text):
    tok, _ = trained
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode_bytes(ids) == text.encode("utf-8", "surrogatepass")
    assert tok.decode(ids) == text
    assert tok.encode_batch([text, "x"]) == [ids, tok.encode("x")]


def test_invalid_utf8_decodes_to_surrogate_escapes_never_raises(trained):
    tok, _ = trained
    byte_id = {tok.decode_bytes([i]): i for i in range(tok.vocab_size) if len(tok.decode_bytes([i])) == 1}
    ids = [byte_id[b"a"], byte_id[b"\xff"], byte_id[b"\xe4"], byte_id[b"\xb8"], byte_id[b"b"]]
    assert tok.decode_bytes(ids) == b"a\xff\xe4\xb8b"
    assert tok.decode(ids) == "a\udcff\udce4\udcb8b"
    assert tok.decode(ids).encode("utf-8", "surrogateescape") == b"a\xff\xe4\xb8b"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([tok.vocab_size])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([-1])


def test_eot_text_is_plain_text_unless_asked(trained):
    tok, _ = trained
    assert tok.eot_id not in tok.encode(EOT)
    assert tok.encode(EOT, allow_eot=True) == [tok.eot_id]
    assert tok.encode(f"a{EOT}b", allow_eot=True) == tok.encode("a") + [tok.eot_id] + tok.encode("b")
    with pytest.raises(TypeError):
        tok.encode(None)


def test_all_file_formats_load_to_the_same_tokenizer(trained, tmp_path):
    tok, directory = trained
    gpt2_only = tmp_path / "gpt2"
    gpt2_only.mkdir()
    shutil.copy(directory / "encoder.json", gpt2_only)
    shutil.copy(directory / "vocab.bpe", gpt2_only)
    hf_names = tmp_path / "hf"
    hf_names.mkdir()
    shutil.copy(directory / "encoder.json", hf_names / "vocab.json")
    shutil.copy(directory / "vocab.bpe", hf_names / "merges.txt")
    for source in (directory, directory / "tokenizer.json", gpt2_only, hf_names):
        loaded = load_tokenizer(source)
        assert loaded.sha256() == tok.sha256()
        assert (loaded.vocab_size, loaded.eot_id) == (tok.vocab_size, tok.eot_id)
        assert loaded.encode(CORPUS[3]) == tok.encode(CORPUS[3])


def test_training_is_deterministic_and_the_hash_tracks_the_vocabulary(trained):
    tok, _ = trained
    again = train_tokenizer(iter(CORPUS), TokenizerConfig(vocab_size=400, min_frequency=2))
    assert again.sha256() == tok.sha256()
    other = train_tokenizer(iter(CORPUS), TokenizerConfig(vocab_size=350, min_frequency=2))
    assert other.sha256() != tok.sha256() and other.eot_id == 349


def _handmade_gpt2_files(directory, extra_merges=()):
    """A tiny vocabulary in OpenAI's format: the 256 byte tokens, a few merges, EOT last."""
    byte_chars = list(bytes_to_unicode().values())
    merges = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("i", "n"), *extra_merges]
    tokens = byte_chars + ["".join(m) for m in merges] + [EOT]
    directory.mkdir(exist_ok=True)
    (directory / "encoder.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), encoding="utf-8")
    (directory / "vocab.bpe").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    return {t: i for i, t in enumerate(tokens)}, merges


def test_handmade_gpt2_encoder_and_vocab_bpe(tmp_path):
    encoder, merges = _handmade_gpt2_files(tmp_path / "gpt2")
    tok = load_tokenizer(tmp_path / "gpt2")
    assert tok.eot_id == len(encoder) - 1 == tok.vocab_size - 1
    assert tok.encode(" the") == [encoder["Ġthe"]]
    assert tok.encode("thin the") == [encoder["t"], encoder["h"], encoder["in"], encoder["Ġthe"]]
    for text in ["in the thin inn", "The other", " the\n the  the"]:
        assert tok.encode(text) == reference_gpt2_encode(encoder, merges, text)


@pytest.mark.parametrize("breakage, message", [
    ("no files", "no tokenizer.json, encoder.json"),
    ("bad json", "not valid JSON"),
    ("not a mapping", "must map token strings"),
    ("missing bytes", "byte tokens are"),
    ("no eot", "no '<|endoftext|>' token"),
    ("id gap", "without gaps"),
    ("bad merge line", "expected two space-separated tokens"),
    ("merge of unknown tokens", "inconsistent BPE merges"),
])
def test_broken_gpt2_files_give_clear_errors(tmp_path, breakage, message):
    directory = tmp_path / "tok"
    encoder, _ = _handmade_gpt2_files(directory)
    enc_path, bpe_path = directory / "encoder.json", directory / "vocab.bpe"
    if breakage == "no files":
        enc_path.unlink()
    elif breakage == "bad json":
        enc_path.write_text("{not json", encoding="utf-8")
    elif breakage == "not a mapping":
        enc_path.write_text("[1, 2]", encoding="utf-8")
    elif breakage == "missing bytes":
        enc_path.write_text(json.dumps({t: i for i, t in enumerate(t for t in encoder if t != "A")}))
    elif breakage == "no eot":
        enc_path.write_text(json.dumps({t: i for t, i in encoder.items() if t != EOT}))
    elif breakage == "id gap":
        enc_path.write_text(json.dumps({**encoder, EOT: len(encoder) + 5}))
    elif breakage == "bad merge line":
        bpe_path.write_text("#version: 0.2\nĠ t\nthree parts here\n", encoding="utf-8")
    elif breakage == "merge of unknown tokens":
        bpe_path.write_text("#version: 0.2\nĠ t\nzz qq\n", encoding="utf-8")
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        load_tokenizer(directory)


def test_foreign_tokenizer_json_is_refused(trained, tmp_path):
    _, directory = trained
    data = json.loads((directory / "tokenizer.json").read_text(encoding="utf-8"))
    for change, message in [({"normalizer": {"type": "NFC"}}, "not a GPT-2 style"),
                            ({"model": {"type": "WordPiece", "vocab": {}}}, "not a BPE"),
                            ({"pre_tokenizer": {"type": "Whitespace"}}, "not a GPT-2 style"),
                            ({"model": {**data["model"], "ignore_merges": True}}, "not a GPT-2 style")]:
        path = tmp_path / "tokenizer.json"
        path.write_text(json.dumps({**data, **change}), encoding="utf-8")
        with pytest.raises(ValueError, match=message):
            load_tokenizer(path)
    with pytest.raises(FileNotFoundError, match="tokenizer not found"):
        load_tokenizer(tmp_path / "absent")


def test_cli_trains_from_parquet_shards_and_reports_bad_input(tmp_path, capsys):
    shards = write_dataset(tmp_path / "dataset", {"train": [CORPUS + ["", None], ["a second shard"]]})
    out = tmp_path / "tok"
    assert main(["tokenizer", "train", "--shards", str(shards), "--out", str(out),
                 "--set", "tokenizer.vocab_size=350"]) == 0
    assert "350 tokens (<|endoftext|> = 349)" in capsys.readouterr().out
    assert {p.name for p in out.iterdir()} == {"tokenizer.json", "encoder.json", "vocab.bpe"}
    assert load_tokenizer(out).eot_id == 349

    def error(*settings) -> str:
        """The one line `tokenizer train` printed for bad input (exit status 1)."""
        assert main(["tokenizer", "train", "--shards", str(shards), "--out", str(out), *settings]) == 1
        return capsys.readouterr().err.rstrip("\n").split("\n")[-1]

    assert main(["tokenizer", "train", "--shards", str(tmp_path / "nope"), "--out", str(out)]) == 1
    assert "dataset shard directory not found" in capsys.readouterr().err
    assert "no Parquet shards for split 'val'" in error("--set", "tokenizer.train_split=val")
    first, second = shards / "train" / "part-00000.parquet", shards / "train" / "part-00001.parquet"
    intact = first.read_bytes()
    corrupt_text_pages(first, row_group=1)  # fault: a damaged page that only decoding finds
    damaged = error()
    assert damaged.startswith(f"webtext tokenizer: error: {first}: not a readable Parquet file (")
    assert damaged.endswith(f"the dataset shard is damaged: `webtext verify {shards}` checks the dataset, "
                            "`webtext build` rebuilds it")
    first.write_bytes(intact)
    second.write_bytes(b"this is not parquet")
    assert "not a readable Parquet file" in error()
    pq.write_table(pa.table({"body": ["x"]}), second)
    assert "no 'text' column" in error()
    (shards / "manifest.json").unlink()  # fault: an unfinished build
    assert error() == (f"webtext tokenizer: error: {shards}/manifest.json is missing: {shards} is not a finished "
                       "build (rerun `webtext build`)")
    assert main(["tokenizer", "train", "--shards", str(shards), "--out", str(out),
                 "--set", "tokenizer.vocab_size=100"]) == 2
    assert "tokenizer.vocab_size" in capsys.readouterr().err
