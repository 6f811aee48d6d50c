"""GPT-2's byte-level BPE tokenizer: training, GPT-2/HF file formats, lossless encode/decode.

Text is split with GPT-2's pre-tokenisation regex (contractions, letter runs, number runs,
other-symbol runs, each optionally led by one space; whitespace kept apart), every piece is
turned into UTF-8 bytes and merged with BPE. All 256 bytes are base tokens, so any string
encodes without an unknown token, and `<|endoftext|>` has the LAST id (50256 for 50257) as in
GPT-2. The Hugging Face `tokenizers` library does the work; this module fixes the vocabulary
layout and adds what GPT-2's own encoder guarantees (bytes in, bytes out).

Round trip contract:
* `decode_bytes(encode(s)) == s.encode("utf-8", "surrogatepass")` for every str `s`;
  lone surrogates (which are not valid Unicode) are encoded as their 3 surrogate bytes.
* `decode(ids)` decodes those bytes as UTF-8; a byte sequence that is not valid UTF-8 comes
  back as surrogates rather than being lost: an encoded lone surrogate as that surrogate,
  any other invalid byte b as U+DC00+b (Python's "surrogateescape"). So
  `decode(encode(s)) == s` for every str, and `decode` never raises.
* The text `<|endoftext|>` inside a document is ordinary text (several tokens) unless
  `encode(..., allow_eot=True)` is asked for; only the tokenize stage appends the EOT id.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import re
from pathlib import Path
from typing import Iterable

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from core.fsio import atomic_write_text
from training.config import TokenizerConfig

log = logging.getLogger(__name__)

EOT = "<|endoftext|>"
TOKENIZER_JSON = "tokenizer.json"
GPT2_FILES = ("encoder.json", "vocab.bpe")  # OpenAI's names
HF_GPT2_FILES = ("vocab.json", "merges.txt")  # the same two files under transformers' names
_LONE_SURROGATES = re.compile("([\ud800-\udfff]+)")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's printable stand-in character for every byte (what BPE tokens are spelled in)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    mapping, extra = {}, 0
    for byte in range(256):
        if byte in printable:
            mapping[byte] = chr(byte)
        else:
            mapping[byte] = chr(256 + extra)
            extra += 1
    return mapping


_BYTE_CHAR = bytes_to_unicode()
_CHAR_BYTE = {char: byte for byte, char in _BYTE_CHAR.items()}


def _surrogate_or_escape(err: UnicodeDecodeError) -> tuple[str, int]:
    """Decode error handler: an encoded lone surrogate comes back as itself, any other bad byte
    as U+DC00+byte, so that decode(encode(s)) == s holds for every Python str."""
    chunk = err.object[err.start:err.start + 3]
    try:
        char = chunk.decode("utf-8", "surrogatepass")
        if len(char) == 1 and 0xD800 <= ord(char) <= 0xDFFF:
            return char, err.start + 3
    except UnicodeDecodeError:
        pass
    return chr(0xDC00 + err.object[err.start]), err.start + 1


codecs.register_error("webtext.surrogates", _surrogate_or_escape)


class Tokenizer:
    """A GPT-2 style byte-level BPE tokenizer: `vocab` (token -> id, ids 0..n-1), ranked
    `merges`, and the `<|endoftext|>` token, which must be in the vocabulary."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], eot_token: str = EOT):
        ids = sorted(vocab.values())
        if ids != list(range(len(vocab))):
            raise ValueError("vocabulary ids must be exactly 0..n-1 without gaps or repeats")
        missing = [byte for byte, char in _BYTE_CHAR.items() if char not in vocab]
        if missing:
            raise ValueError(f"not a byte-level vocabulary: {len(missing)} of the 256 byte tokens are "
                             f"missing (e.g. byte {missing[0]})")
        if eot_token not in vocab:
            raise ValueError(f"vocabulary has no {eot_token!r} token")
        self.vocab = dict(vocab)
        self.merges = [tuple(m) for m in merges]
        self.eot_token = eot_token
        self.eot_id = vocab[eot_token]
        self.vocab_size = len(vocab)
        try:
            model = models.BPE(vocab=self.vocab, merges=self.merges, ignore_merges=False)
        except Exception as exc:  # tokenizers reports a merge whose parts are not in the vocab
            raise ValueError(f"inconsistent BPE merges: {exc}") from None
        hf = HFTokenizer(model)
        hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
        hf.decoder = decoders.ByteLevel()
        hf.add_special_tokens([eot_token])
        self._hf_json = hf.to_str()  # what transformers loads; EOT special as in GPT-2
        hf.encode_special_tokens = True  # the EOT *text* inside a document is plain text
        self._hf = hf
        self._byte_ids = [vocab[_BYTE_CHAR[byte]] for byte in range(256)]
        self._id_bytes = [_token_bytes(token) for token in sorted(vocab, key=vocab.__getitem__)]

    # -- encoding ---------------------------------------------------------------------------
    def encode(self, text: str, allow_eot: bool = False) -> list[int]:
        if not isinstance(text, str):
            raise TypeError(f"encode() needs str, got {type(text).__name__}")
        if allow_eot and self.eot_token in text:
            out: list[int] = []
            for i, part in enumerate(text.split(self.eot_token)):
                if i:
                    out.append(self.eot_id)
                out.extend(self.encode(part))
            return out
        try:
            return self._hf.encode(text, add_special_tokens=False).ids
        except TypeError:  # lone surrogates cannot cross into Rust: encode them as bytes
            return self._encode_with_surrogates(text)

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        texts = list(texts)
        try:
            return [e.ids for e in self._hf.encode_batch_fast(texts, add_special_tokens=False)]
        except TypeError:
            return [self.encode(t) for t in texts]

    def _encode_with_surrogates(self, text: str) -> list[int]:
        out: list[int] = []
        for i, part in enumerate(_LONE_SURROGATES.split(text)):
            if i % 2:
                out.extend(self._byte_ids[byte] for byte in part.encode("utf-8", "surrogatepass"))
            elif part:
                out.extend(self._hf.encode(part, add_special_tokens=False).ids)
        return out

    # -- decoding ---------------------------------------------------------------------------
    def decode_bytes(self, ids) -> bytes:
        ids = ids.tolist() if hasattr(ids, "tolist") else [int(i) for i in ids]  # tensors, arrays
        bad = [i for i in ids if not 0 <= i < self.vocab_size]
        if bad:
            raise ValueError(f"token id {bad[0]} is outside the vocabulary (size {self.vocab_size})")
        return b"".join([self._id_bytes[i] for i in ids])

    def decode(self, ids) -> str:
        return self.decode_bytes(ids).decode("utf-8", "webtext.surrogates")

    # -- identity and files -----------------------------------------------------------------
    def sha256(self) -> str:
        """Hash of what decides the text -> ids mapping (vocab, merges, EOT), whatever file
        format the tokenizer was loaded from."""
        canonical = json.dumps(
            {"vocab": sorted(self.vocab, key=self.vocab.__getitem__),
             "merges": [" ".join(m) for m in self.merges], "eot": self.eot_token},
            ensure_ascii=False, separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def hf_json(self) -> str:
        """tokenizer.json as transformers/tokenizers load it (EOT special, as in GPT-2)."""
        return self._hf_json

    def save(self, directory) -> None:
        """Write tokenizer.json plus GPT-2's encoder.json and vocab.bpe (same content)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        atomic_write_text(str(directory / TOKENIZER_JSON), self._hf_json)
        atomic_write_text(str(directory / GPT2_FILES[0]), json.dumps(self.vocab, ensure_ascii=False))
        atomic_write_text(str(directory / GPT2_FILES[1]),
                          "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in self.merges))


def _token_bytes(token: str) -> bytes:
    """The bytes a vocabulary entry stands for (entries outside GPT-2's byte alphabet, like
    extra special tokens in a user's file, stand for their own UTF-8 text)."""
    if all(char in _CHAR_BYTE for char in token):
        return bytes(_CHAR_BYTE[char] for char in token)
    return token.encode("utf-8")


# -- loading ---------------------------------------------------------------------------------
def load_tokenizer(path) -> Tokenizer:
    """Load a tokenizer from a directory holding tokenizer.json, or GPT-2's encoder.json +
    vocab.bpe (also under transformers' names vocab.json + merges.txt), or a tokenizer.json file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: tokenizer not found")
    if path.is_file():
        return _from_tokenizer_json(path)
    if (path / TOKENIZER_JSON).is_file():
        return _from_tokenizer_json(path / TOKENIZER_JSON)
    for vocab_name, merges_name in (GPT2_FILES, HF_GPT2_FILES):
        if (path / vocab_name).is_file() and (path / merges_name).is_file():
            return _from_gpt2_files(path / vocab_name, path / merges_name)
    raise FileNotFoundError(
        f"{path}: no tokenizer.json, encoder.json + vocab.bpe or vocab.json + merges.txt in this directory")


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from None


def _check_vocab(vocab, source: Path) -> dict[str, int]:
    if not isinstance(vocab, dict) or not all(isinstance(k, str) and type(v) is int for k, v in vocab.items()):
        raise ValueError(f"{source}: vocabulary must map token strings to integer ids")
    return vocab


def _from_gpt2_files(vocab_path: Path, merges_path: Path) -> Tokenizer:
    vocab = _check_vocab(_read_json(vocab_path), vocab_path)
    try:
        lines = merges_path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{merges_path}: not UTF-8 text: {exc}") from None
    merges = []
    for n, line in enumerate(lines, 1):
        if not line or (n == 1 and line.startswith("#version")):
            continue
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"{merges_path}:{n}: expected two space-separated tokens, got {line!r}")
        merges.append((parts[0], parts[1]))
    try:
        return Tokenizer(vocab, merges)
    except ValueError as exc:
        raise ValueError(f"{vocab_path.parent}: {exc}") from None


def _from_tokenizer_json(path: Path) -> Tokenizer:
    data = _read_json(path)
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, dict) or model.get("type") != "BPE":
        raise ValueError(f"{path}: not a BPE tokenizer.json")
    pre = data.get("pre_tokenizer") or {}
    if data.get("normalizer") or pre.get("type") != "ByteLevel" or pre.get("add_prefix_space") \
            or not pre.get("use_regex", True) or model.get("dropout") or model.get("continuing_subword_prefix") \
            or model.get("end_of_word_suffix") or model.get("byte_fallback") or model.get("ignore_merges"):
        raise ValueError(f"{path}: not a GPT-2 style tokenizer (needs plain BPE, no normaliser and a "
                         f"ByteLevel pre-tokenizer with GPT-2's regex and add_prefix_space=false)")
    vocab = _check_vocab(dict(model.get("vocab") or {}), path)
    for added in data.get("added_tokens") or []:
        if added.get("content") == EOT and EOT not in vocab:
            vocab[EOT] = added["id"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model.get("merges") or []]
    if any(len(m) != 2 for m in merges):
        raise ValueError(f"{path}: malformed merges")
    try:
        return Tokenizer(vocab, merges)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


# -- training --------------------------------------------------------------------------------
def train_tokenizer(texts: Iterable[str], config: TokenizerConfig, show_progress: bool = False) -> Tokenizer:
    """Learn `config.vocab_size - 1` byte-level BPE tokens from `texts` (streamed), then put
    `<|endoftext|>` after them so it gets the last id as in GPT-2."""
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size - 1,
        min_frequency=config.min_frequency,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # all 256 bytes, seen or not
        special_tokens=[],  # added last, below, instead of first
        show_progress=show_progress,
    )
    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.train_from_iterator(_trainable(texts), trainer)
    model = json.loads(hf.to_str())["model"]
    vocab = dict(model["vocab"])
    if len(vocab) < config.vocab_size - 1:
        log.warning("corpus too small for vocab_size=%d: learned %d tokens", config.vocab_size, len(vocab) + 1)
    vocab[EOT] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return Tokenizer(vocab, merges)


def _trainable(texts: Iterable[str]):
    """Texts in batches for the Rust trainer; lone surrogates (not encodable) become U+FFFD."""
    batch: list[str] = []
    for text in texts:
        if _LONE_SURROGATES.search(text):
            text = _LONE_SURROGATES.sub(lambda m: "\ufffd" * len(m.group()), text)
        batch.append(text)
        if len(batch) == 1000:
            yield batch
            batch = []
    if batch:
        yield batch
