"""Evaluation: perplexity / bits per byte checked against a direct forward pass, the sliding
window, LAMBADA and CBT scoring on hand-made files, malformed JSONL."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from training.checkpoint import load_model
from training.config import EvalConfig
from training.evaluate import IGNORE, evaluate_shards, evaluate_text, sliding_windows
from training.logging_utils import read_jsonl_log
from training.tokenizer import load_tokenizer
from training.zero_shot.cbt import evaluate_cbt
from training.zero_shot.lambada import evaluate_lambada
from webtext.cli import main

CFG = EvalConfig(batch_size=3)


@pytest.fixture(scope="module")
def loaded(trained_run):
    model, saved = load_model(trained_run)
    return model, load_tokenizer(saved["tokenizer_dir"])


def direct_nll(model, ids: list[int]) -> float:
    """Summed NLL of ids[1:] given the preceding ids, in one forward pass (must fit the block)."""
    x = torch.tensor([ids[:-1]])
    with torch.no_grad():
        logits, _ = model(x)
    return F.cross_entropy(logits[0], torch.tensor(ids[1:]), reduction="sum").item()


def test_text_perplexity_and_bits_per_byte_match_a_direct_forward_pass(loaded):
    model, tokenizer = loaded
    text = "The cat sat on the mat. Our teacher found a tree."  # fits in one 32-token block
    ids = [tokenizer.eot_id] + tokenizer.encode(text)
    assert len(ids) <= model.config.block_size
    nll = direct_nll(model, ids)
    result = evaluate_text(model, tokenizer, text, "cpu", CFG)
    assert result["tokens"] == len(ids) - 1
    assert result["loss"] == pytest.approx(nll / (len(ids) - 1), rel=1e-5)
    assert result["perplexity"] == pytest.approx(math.exp(nll / (len(ids) - 1)), rel=1e-5)
    assert result["bits_per_byte"] == pytest.approx(nll / (math.log(2) * len(text.encode())), rel=1e-5)


def test_sliding_window_scores_every_token_once_with_bounded_context():
    ids = list(range(100, 171))  # 71 ids, 70 targets
    for stride in (1, 7, 16, 32):
        targets = []
        for x, y in sliding_windows(ids, 16, stride):
            assert len(x) == len(y) == 16
            for position, target in enumerate(y.tolist()):
                if target != IGNORE:
                    assert x[position].item() == target - 1  # context is the preceding id
                    targets.append(target)
        assert targets == ids[1:]


def test_long_text_uses_the_window_and_counts_every_byte(loaded):
    model, tokenizer = loaded
    text = " ".join(["The red fox ran past the river. A small bird found the moon."] * 12) + " é ü"
    result = evaluate_text(model, tokenizer, text, "cpu", CFG)
    assert result["tokens"] == len(tokenizer.encode(text))
    assert result["loss"] < 2.0  # the trained model knows these sentences
    nll = result["loss"] * result["tokens"]
    assert result["bits_per_byte"] == pytest.approx(nll / (math.log(2) * len(text.encode())), rel=1e-6)


def test_shard_evaluation_matches_the_trainers_validation(loaded, trained_run, corpus):
    model, tokenizer = loaded
    val = [r for r in read_jsonl_log(trained_run / "log.jsonl") if r["kind"] == "val"][-1]
    from training.evaluate import token_byte_lengths

    config = EvalConfig(batch_size=4, max_tokens=val["tokens"])
    result = evaluate_shards(model, corpus[0], "val", "cpu", config, token_byte_lengths(tokenizer))
    assert result["tokens"] == val["tokens"]
    assert result["loss"] == pytest.approx(val["loss"], abs=1e-5)
    assert result["bits_per_byte"] == pytest.approx(val["bits_per_byte"], abs=1e-5)


def write_jsonl(path, records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def test_lambada_counts_exact_greedy_words(loaded, tmp_path):
    model, tokenizer = loaded
    context = "The cat sat on the mat. A dog walked to"
    ids = [tokenizer.eot_id] + tokenizer.encode(context)
    greedy = model.generate(torch.tensor([ids]), 6, temperature=0)[0, len(ids):].tolist()
    word = tokenizer.decode(greedy).split()[0]  # the model's own next word, e.g. "the"
    wrong = "banana" if word != "banana" else "apple"
    path = write_jsonl(tmp_path / "lambada.jsonl", [{"text": f"{context} {word}"}, {"text": f"{context} {wrong}"}])
    result = evaluate_lambada(model, tokenizer, path, "cpu", CFG)
    assert result["accuracy"] == 0.5 and result["examples"] == 2
    nll = [direct_nll(model, ids + tokenizer.encode(f" {w}")) - direct_nll(model, ids) for w in (word, wrong)]
    assert result["perplexity"] == pytest.approx(math.exp(sum(nll) / 2), rel=1e-4)


def test_cbt_picks_the_most_probable_filled_in_question(loaded, tmp_path):
    model, tokenizer = loaded
    examples = [
        {"context": "A dog looked at the tree.", "question": "My sister painted XXXXX.",
         "options": ["jumped over", "the house", "sat on"], "answer": "the house"},
        {"context": "Our teacher found a green box.", "question": "XXXXX ran past the river.",
         "options": ["Painted", "Found", "The old man"], "answer": "The old man"},
        {"context": "A small bird ran past the garden.", "question": "The red fox XXXXX the moon.",
         "options": ["looked at", "the house", "a tree"], "answer": "the house"},  # wrong on purpose
    ]
    path = write_jsonl(tmp_path / "cbt.jsonl", examples)
    result = evaluate_cbt(model, tokenizer, path, "cpu", CFG)
    reference = 0
    for ex in examples:  # independent scoring: full-sequence NLL minus the context's NLL
        ctx = [tokenizer.eot_id] + tokenizer.encode(ex["context"])
        scores = [direct_nll(model, ctx + tokenizer.encode(" " + ex["question"].replace("XXXXX", o))) - direct_nll(model, ctx)
                  for o in ex["options"]]
        reference += ex["options"][scores.index(min(scores))] == ex["answer"]
    assert result == {"accuracy": pytest.approx(reference / 3), "examples": 3}
    assert result["accuracy"] == pytest.approx(2 / 3)  # the grammar decides the first two


@pytest.mark.parametrize("kind, lines, message", [
    ("lambada", [{"text": "fine words here"}, "{not json"], r"lambada.jsonl:2: not valid JSON"),
    ("lambada", [{"txt": "a b"}], r"lambada.jsonl:1: missing key 'text'"),
    ("lambada", [{"text": 5}], r"lambada.jsonl:1: 'text' must be str"),
    ("lambada", [{"text": "single"}], r"lambada.jsonl:1: 'text' needs at least two"),
    ("lambada", ["[1, 2]"], r"lambada.jsonl:1: expected a JSON object"),
    ("lambada", [], r"lambada.jsonl: no examples"),
    ("cbt", [{"context": "c", "question": "no gap", "options": ["a", "b"], "answer": "a"}], r"cbt.jsonl:1: 'question' has no XXXXX"),
    ("cbt", ["", {"context": "c", "question": "XXXXX", "options": ["a", "b"], "answer": "z"}], r"cbt.jsonl:2: 'answer' 'z' is not one"),
    ("cbt", [{"context": "c", "question": "XXXXX", "options": ["a"], "answer": "a"}], r"cbt.jsonl:1: 'options' must be at least two"),
    ("cbt", [{"context": "c", "question": "XXXXX", "options": "ab", "answer": "a"}], r"cbt.jsonl:1: 'options' must be list"),
])
def test_malformed_jsonl_names_file_and_line(loaded, tmp_path, kind, lines, message):
    model, tokenizer = loaded
    path = write_jsonl(tmp_path / f"{kind}.jsonl", lines)
    evaluate = evaluate_lambada if kind == "lambada" else evaluate_cbt
    with pytest.raises(ValueError, match=message):
        evaluate(model, tokenizer, path, "cpu", CFG)


def test_cli_runs_every_evaluation_and_reports_bad_files(trained_run, corpus, tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("The cat sat on the mat. A dog found the river.\n")
    lambada = write_jsonl(tmp_path / "l.jsonl", [{"text": "The cat sat on the mat"}])
    cbt = write_jsonl(tmp_path / "c.jsonl", [{"context": "A dog sat on the mat.", "question": "XXXXX found a tree.",
                                             "options": ["The cat", "sat on"], "answer": "The cat"}])
    assert main(["eval", "--checkpoint", str(trained_run), "--text", str(text), "--shards", str(corpus[0]),
                 "--lambada", str(lambada), "--cbt", str(cbt), "--json", str(tmp_path / "r.json")]) == 0
    results = json.loads((tmp_path / "r.json").read_text())
    assert set(results) == {"text", "shards", "lambada", "cbt"}
    assert results["shards"]["bits_per_byte"] > 0 and "perplexity" in capsys.readouterr().out
    write_jsonl(cbt, ['{"context": "x",'])
    assert main(["eval", "--checkpoint", str(trained_run), "--cbt", str(cbt)]) == 1
    assert f"{cbt}:1: not valid JSON" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(trained_run)]) == 1
    assert "nothing to evaluate" in capsys.readouterr().err


def test_empty_text_and_non_utf8_jsonl_fail_clearly(loaded, tmp_path):
    model, tokenizer = loaded
    with pytest.raises(ValueError, match="the text is empty"):
        evaluate_text(model, tokenizer, "", "cpu", CFG)
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('{"text": "caf\xe9 au lait"}\n'.encode("latin-1"))
    with pytest.raises(ValueError, match="latin1.jsonl: not UTF-8 text"):
        evaluate_lambada(model, tokenizer, path, "cpu", CFG)
