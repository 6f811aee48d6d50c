"""The paper's zero-shot protocols on a small trained GPT-2 (block 128): readers of the official
formats and their faults, perplexity in canonical units checked against direct forward passes,
LAMBADA with and without the stop-word filter, CBT, the Table 3 suite command, and agreement
with lm-evaluation-harness on an exported model (where lm_eval is installed)."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tests.training.train_fixtures import tiny_config
from training.checkpoint import load_model
from training.config import EvalConfig
from training.evaluate import evaluate_text
from training.model import GPTConfig
from training.tokenizer import load_tokenizer
from training.zero_shot.cbt import evaluate_cbt
from training.zero_shot.detokenize import detokenize
from training.zero_shot.formats import (CHARACTER_TEST_BYTES, find_benchmarks, read_cbt, read_character_level,
                                        read_lambada, read_word_level)
from training.zero_shot.lambada import MAX_WORD_TOKENS, STOP_WORDS, evaluate_lambada, score_lambada
from training.zero_shot.paper import COLUMNS, PUBLISHED, paper_size, table3, table3_markdown
from training.zero_shot.perplexity import evaluate_canonical
from webtext.cli import main
from webtext.config import load_config

BENCHMARKS = Path(__file__).parent / "benchmarks"
PTB = BENCHMARKS / "simple-examples/data/ptb.test.txt"
WIKITEXT_2 = BENCHMARKS / "wikitext-2/wiki.test.tokens"
CFG = EvalConfig(batch_size=3)
NAMES = {"lambada", "cbt-cn", "cbt-ne", "wikitext-2", "ptb", "enwik8", "text8", "wikitext-103", "1bw"}


@pytest.fixture(scope="module")
def wide_run(corpus, tmp_path_factory):
    """The trained tiny GPT of the other tests, with a 128-token block: room for a LAMBADA passage."""
    from training.train import train

    tokens, tokenizer = corpus
    _, overrides = tiny_config(dropout=0.0, max_steps=80, eval_interval=0, learning_rate=0.01, min_lr=0.001,
                               warmup_steps=5)
    config = load_config(None, overrides + ["model.block_size=128", "train.batch_tokens=512"])
    run = tmp_path_factory.mktemp("wide") / "run"
    train(config.train, config.model, tokens, run, tokenizer_dir=tokenizer)
    return run


@pytest.fixture(scope="module")
def loaded(wide_run):
    model, saved = load_model(wide_run)
    return model, load_tokenizer(saved["tokenizer_dir"])


def direct_nll(model, ids: list[int]) -> float:
    """Summed NLL of ids[1:] given the preceding ids, in one forward pass (must fit the block)."""
    with torch.no_grad():
        logits, _ = model(torch.tensor([ids[:-1]]))
    return F.cross_entropy(logits[0], torch.tensor(ids[1:]), reduction="sum").item()


# ---------------------------------------------------------------- finding and reading the files


def test_every_benchmark_of_the_fixture_folder_is_found(tmp_path):
    found = find_benchmarks(BENCHMARKS)
    assert set(found) == NAMES
    assert found["wikitext-103"].parent.name == "wikitext-103" and found["lambada"].suffix == ".txt"
    shutil.copytree(BENCHMARKS, tmp_path / "data")
    (tmp_path / "data" / "lambada" / "lambada_test.jsonl").write_text('{"text": "a dog found the moon"}\n')
    assert find_benchmarks(tmp_path / "data")["lambada"].name == "lambada_test.jsonl"  # OpenAI's file first


def test_benchmark_folder_faults_name_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        find_benchmarks(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="none of the benchmark files found; expected any of .*ptb.test.txt"):
        find_benchmarks(tmp_path)
    (tmp_path / "a").mkdir()
    shutil.copy(PTB, tmp_path / "a")
    (tmp_path / "b").mkdir()
    shutil.copy(PTB, tmp_path / "b")
    with pytest.raises(ValueError, match=r"several ptb.test.txt files for ptb .*; keep one"):
        find_benchmarks(tmp_path)
    shutil.rmtree(tmp_path / "b")
    shutil.copy(WIKITEXT_2, tmp_path / "a")
    with pytest.raises(ValueError, match="wiki.test.tokens: cannot tell WikiText-2 from WikiText-103; put it in a "
                                         "folder named wikitext-2 or wikitext-103"):
        find_benchmarks(tmp_path)


def test_word_level_reader_scores_detokenized_text_per_original_word(tmp_path):
    dataset = read_word_level("wikitext-2", WIKITEXT_2)
    raw = WIKITEXT_2.read_text()
    assert dataset.text == detokenize(raw, "wikitext") and "guest @-@ starring" not in dataset.text
    assert dataset.units == len(raw.split()) + raw.count("\n") and dataset.unit == "word"
    (tmp_path / "ptb.test.txt").write_bytes(b"caf\xe9\n")
    with pytest.raises(ValueError, match=r"ptb.test.txt: not UTF-8 text \(invalid continuation byte at byte 3\)"):
        read_word_level("ptb", tmp_path / "ptb.test.txt")
    (tmp_path / "ptb.test.txt").write_text(" \n \n")
    with pytest.raises(ValueError, match="ptb.test.txt: empty file"):
        read_word_level("ptb", tmp_path / "ptb.test.txt")


def test_character_level_reader_takes_the_last_five_million_bytes(tmp_path):
    path = tmp_path / "enwik8"
    path.write_bytes(b"x" * 99 + "é".encode() + b"y" * (CHARACTER_TEST_BYTES - 1))  # the split cuts "é" in two
    dataset = read_character_level("enwik8", path)
    assert dataset.units == CHARACTER_TEST_BYTES and dataset.unit == "byte"
    assert dataset.text == "\ufffd" + "y" * (CHARACTER_TEST_BYTES - 1)
    assert read_character_level("text8", BENCHMARKS / "text8").units == (BENCHMARKS / "text8").stat().st_size


def test_official_cbt_file_is_read_and_detokenized():
    examples = read_cbt(BENCHMARKS / "CBTest/data/cbtest_CN_test_2500ex.txt")
    assert len(examples) == 2 and all(len(example.candidates) == 10 for example in examples)
    first = examples[0]
    assert first.answer == "river" and first.answer in first.candidates
    assert first.before.startswith("Once upon a time") and "\"I can't eat it, and I can't sell it.\"" in first.before
    assert first.before.endswith("\"Help! Help! My master is drowning in the ") and first.after == "!\""


def cbt_file(path: Path, questions: list[str]) -> Path:
    story = ["The cat sat on the mat .", "`` A dog walked to the river , '' said my sister ."]
    blocks = ["\n".join([f"{n} {s}" for n, s in enumerate(story, 1)] + [f"3 {question}"]) for question in questions]
    path.write_text("\n\n".join(blocks) + "\n")
    return path


@pytest.mark.parametrize("question, message", [
    ("The red fox XXXXX the moon .\tfound\t\tfound|mat", None),
    ("The red fox XXXXX the moon .\tfound", "a question line holds 'question<TAB>answer<TAB><TAB>"),
    ("The red fox XXXXX the moon .\tsat\t\tfound|mat", "'answer' 'sat' is not one of the options"),
    ("The red fox ran past the moon .\tfound\t\tfound|mat", "the question has no XXXXX gap"),
])
def test_malformed_cbt_names_file_and_line(tmp_path, question, message):
    path = cbt_file(tmp_path / "cbtest_CN_test_2500ex.txt",
                    ["The red fox XXXXX the moon .\tfound\t\tfound|mat", question])
    if message is None:
        assert len(read_cbt(path)) == 2
    else:
        with pytest.raises(ValueError, match=re.escape(f"{path}:7: {message}")):
            read_cbt(path)


def test_cbt_numbering_and_truncation_faults(tmp_path):
    path = tmp_path / "cbt.txt"
    path.write_text("1 The cat sat .\n3 A dog ran .\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}:2: expected sentence number 2, got '3'")):
        read_cbt(path)
    path.write_text("1 The cat sat .\n2 A dog ran .\n")
    with pytest.raises(ValueError, match="ends inside a question"):
        read_cbt(path)


def test_lambada_plain_text_faults(tmp_path):
    path = tmp_path / "lambada_test_plain_text.txt"
    path.write_text("a dog found the moon\nmoon\n")
    with pytest.raises(ValueError, match=re.escape(f"{path}:2: passage needs at least two words")):
        read_lambada(path)
    path.write_text("\n\n")
    with pytest.raises(ValueError, match="no passages"):
        read_lambada(path)


# ---------------------------------------------------------------- perplexity in canonical units


def test_word_perplexity_divides_the_detokenized_likelihood_by_original_words(loaded, tmp_path):
    model, tokenizer = loaded
    path = tmp_path / "ptb.test.txt"
    path.write_text(" the cat did n't sit on the mat \n a dog 's tree \n")  # fits one window
    result = evaluate_canonical(model, tokenizer, read_word_level("ptb", path), "cpu", CFG)
    ids = [tokenizer.eot_id] + tokenizer.encode("the cat didn't sit on the mat\na dog's tree\n")
    nll = direct_nll(model, ids)
    assert result["units"] == 8 + 4 + 2 and result["tokens"] == len(ids) - 1
    assert result["perplexity"] == pytest.approx(torch.tensor(nll / 14).exp().item(), rel=1e-5)
    assert result["nll"] == pytest.approx(nll, rel=1e-5)


def test_long_files_use_the_window_and_report_the_detokenizers_gain(loaded):
    model, tokenizer = loaded
    config = EvalConfig(batch_size=4, context=64, stride=16, without_detokenizer=True)
    dataset = read_word_level("wikitext-2", WIKITEXT_2)
    result = evaluate_canonical(model, tokenizer, dataset, "cpu", config)
    for text, key in ((dataset.text, "perplexity"), (dataset.raw, "perplexity_without_detokenizer")):
        reference = evaluate_text(model, tokenizer, text, "cpu", config)  # windows checked in test_evaluate.py
        expected = torch.tensor(reference["loss"] * reference["tokens"] / dataset.units, dtype=torch.float64).exp()
        assert result[key] == pytest.approx(expected.item(), rel=1e-5)
    assert result["context"] == 64 and result["stride"] == 16 and result["tokens"] > 64


def test_enwik8_is_scored_in_bits_per_byte(loaded):
    model, tokenizer = loaded
    dataset = read_character_level("enwik8", BENCHMARKS / "enwik8")
    result = evaluate_canonical(model, tokenizer, dataset, "cpu", CFG)
    reference = evaluate_text(model, tokenizer, dataset.text, "cpu", CFG)
    assert result["bits_per_byte"] == pytest.approx(reference["bits_per_byte"], rel=1e-5)  # all bytes valid UTF-8
    assert result["units"] == (BENCHMARKS / "enwik8").stat().st_size


# ---------------------------------------------------------------- LAMBADA


def first_word(tokenizer, ids: list[int]) -> str | None:
    """The word generated text starts with; None when it starts with punctuation."""
    match = re.match(r"\s*([\w'-]+)", tokenizer.decode(ids))
    return match.group(1) if match else None


def test_stop_word_filter_passes_over_stop_words(loaded, tmp_path):
    model, tokenizer = loaded
    context = "The cat sat on the mat. A dog walked to"
    ids = [tokenizer.eot_id] + tokenizer.encode(context)
    greedy = first_word(tokenizer, model.generate(torch.tensor([ids]), 6, temperature=0)[0, len(ids):].tolist())
    assert greedy in STOP_WORDS  # "the" or "a": what the grammar puts after "walked to"
    with torch.no_grad():  # the filter's pick, found another way: likeliest first tokens, completed by generate()
        order = model(torch.tensor([ids]))[0][0, -1].argsort(descending=True).tolist()
    picks = [first_word(tokenizer, model.generate(torch.tensor([ids + [first]]), MAX_WORD_TOKENS - 1,
                                                  temperature=0)[0, len(ids):].tolist()) for first in order[:10]]
    picked = next(word for word in picks if word and word.lower() not in STOP_WORDS)
    assert None in picks[:picks.index(picked)]  # the model also tried to end the sentence: "to."
    path = tmp_path / "lambada_test.jsonl"
    path.write_text("".join(json.dumps({"text": f"{context} {word}"}) + "\n" for word in (greedy, picked)))
    outcomes = score_lambada(model, tokenizer, read_lambada(path), "cpu", CFG)
    assert [(o.correct, o.correct_with_stop_word_filter) for o in outcomes] == [(True, False), (False, True)]
    result = evaluate_lambada(model, tokenizer, path, "cpu", CFG)
    assert result["accuracy"] == result["accuracy_with_stop_word_filter"] == 0.5 and result["examples"] == 2


def test_plain_text_lambada_scores_the_detokenized_last_word(loaded, tmp_path):
    model, tokenizer = loaded
    path = tmp_path / "lambada_test_plain_text.txt"
    path.write_text("the cat sat on the mat . my sister said `` river\na dog did n't find the moon\n")
    result = evaluate_lambada(model, tokenizer, path, "cpu", CFG)
    nlls = []
    for context, target in (('the cat sat on the mat. my sister said "', "river"), ("a dog didn't find the", " moon")):
        context_ids = [tokenizer.eot_id] + tokenizer.encode(context)
        nlls.append(direct_nll(model, context_ids + tokenizer.encode(target)) - direct_nll(model, context_ids))
    assert result["perplexity"] == pytest.approx(torch.tensor(sum(nlls) / 2).exp().item(), rel=1e-4)
    assert result["examples"] == 2


# ---------------------------------------------------------------- CBT


def test_cbt_picks_the_candidate_that_makes_the_passage_likeliest(loaded, tmp_path):
    model, tokenizer = loaded
    candidates = "found|house|mat|river|tree|painted|cat|dog|box|garden"
    path = cbt_file(tmp_path / "cbtest_NE_test_2500ex.txt", [
        f"The red fox XXXXX the moon .\tfound\t\t{candidates}",
        f"A small bird looked at the XXXXX .\tcat\t\t{candidates}"])
    expected = 0
    for example in read_cbt(path):  # whole passages through a direct forward pass
        passages = [[tokenizer.eot_id] + tokenizer.encode(example.before + candidate + example.after)
                    for candidate in example.candidates]
        assert max(len(ids) for ids in passages) <= model.config.block_size
        scores = [direct_nll(model, ids) for ids in passages]
        expected += example.candidates[scores.index(min(scores))] == example.answer
    result = evaluate_cbt(model, tokenizer, path, "cpu", CFG)
    assert result == {"accuracy": pytest.approx(expected / 2), "examples": 2}
    assert expected == 1  # a verb wins the first gap; "cat" is not the likeliest thing to look at


# ---------------------------------------------------------------- Table 3


def test_suite_command_writes_table_3_for_the_fixtures(wide_run, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["eval", "--checkpoint", str(wide_run), "--suite", "paper", "--data", str(BENCHMARKS),
                 "--out", str(out), "--json", str(tmp_path / "all.json")]) == 0
    table = json.loads((out / "table3.json").read_text())
    assert set(table["results"]) == NAMES and table["paper_size"] is None
    assert table["columns"][0] == "LAMBADA (PPL)" and len(table["columns"]) == 10
    assert [row["model"] for row in table["rows"]][:2] == ["SOTA (paper)", "GPT-2 117M (paper)"]
    ours = table["rows"][-1]["values"]
    assert len(table["rows"]) == 6 and all(value is not None and value >= 0 for value in ours)
    assert ours[1] == 100 * table["results"]["lambada"]["accuracy_with_stop_word_filter"]
    assert table["results"]["wikitext-2"]["detokenizer"] == "wikitext"
    markdown = (out / "table3.md").read_text()
    assert "| Model | LAMBADA (PPL) | LAMBADA (ACC) | CBT-CN (ACC) |" in markdown
    assert ("| GPT-2 1542M (paper) | 8.63 | 63.24 | 93.30 | 89.05 | 18.34 | 35.76 | 0.93 | 0.98 | 17.48 | 42.16 |"
            in markdown)
    assert "without the stop-word filter" in capsys.readouterr().out
    assert json.loads((tmp_path / "all.json").read_text())["paper"]["results"].keys() == table["results"].keys()


def test_suite_command_faults(wide_run, tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(wide_run), "--suite", "paper"]) == 1
    assert "--suite paper and --data DIR go together" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(wide_run), "--suite", "paper", "--data", str(tmp_path)]) == 1
    assert "none of the benchmark files found" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(wide_run), "--text", str(PTB), "--out", str(tmp_path)]) == 1
    assert "--out is where --suite paper writes its table" in capsys.readouterr().err
    long_question = "XXXXX " + " ".join(["sat on the mat"] * 40) + " .\tfound\t\tfound|mat"  # > 127 tokens after the gap
    path = cbt_file(tmp_path / "cbtest_CN_test_2500ex.txt", [long_question])
    assert main(["eval", "--checkpoint", str(wide_run), "--cbt", str(path)]) == 1
    assert f"{path}: a continuation of" in capsys.readouterr().err


def test_table_sets_the_same_size_beside_ours():
    results = {"wikitext-2": {"perplexity": 30.0, "file": "wiki.test.tokens"},
               "lambada": {"perplexity": 40.0, "accuracy": 0.4, "accuracy_with_stop_word_filter": 0.5,
                           "examples": 5153, "file": "lambada_test.jsonl"}}
    table = table3(results, GPTConfig(n_layer=12, n_head=12, n_embd=768), 124_439_808, "gpt2.pt", CFG)
    assert [row["model"] for row in table["rows"]] == ["SOTA (paper)", "GPT-2 117M (paper)", "ours: gpt2.pt"]
    assert table["rows"][-1]["values"][:5] == [40.0, 50.0, None, None, 30.0]
    assert table["protocol"] == {"context": 1024, "stride": 512, "lambada_candidates": CFG.lambada_candidates}
    markdown = table3_markdown(table)
    assert "| ours: gpt2.pt | 40.00 | 50.00 | — | — | 30.00 | — |" in markdown
    assert "accuracy 40.00% without the stop-word filter, 50.00% with it" in markdown
    assert [paper_size(GPTConfig(n_layer=n, n_head=1, n_embd=d)) for n, d in ((24, 1024), (36, 1280), (48, 1600))] \
        == ["345M", "762M", "1542M"]


def test_published_numbers_are_the_papers_table_3():
    assert all(len(row) == len(COLUMNS) for row in PUBLISHED.values())
    assert PUBLISHED["117M"][0:2] == ["35.13", "45.99"] and PUBLISHED["1542M"][1] == "63.24"  # LAMBADA, filtered
    assert PUBLISHED["762M"][-1] == "44.575" and PUBLISHED["SOTA"][0] == "99.8"
    for column in range(len(COLUMNS)):  # bigger models do better, except CBT-CN at 1542M and 1BW SOTA
        values = [float(PUBLISHED[size][column]) for size in ("117M", "345M", "762M", "1542M")]
        better = values[1:] if COLUMNS[column][3] == 100.0 else [-v for v in values[1:]]
        worse = values[:-1] if COLUMNS[column][3] == 100.0 else [-v for v in values[:-1]]
        assert sum(b > w for b, w in zip(better, worse)) >= 2


# ---------------------------------------------------------------- lm-evaluation-harness


HARNESS_LAMBADA = """\
task: webtext_lambada
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
output_type: loglikelihood
test_split: test
doc_to_text: "<|endoftext|>{{{{text.split(' ')[:-1]|join(' ')}}}}"
doc_to_target: "{{{{' '+text.split(' ')[-1]}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
"""
HARNESS_WIKITEXT = """\
task: webtext_wikitext
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
output_type: loglikelihood_rolling
test_split: test
doc_to_text: ""
doc_to_target: !function webtext_tasks.detokenized
process_results: !function webtext_tasks.word_units
metric_list:
  - metric: word_perplexity
"""
HARNESS_UTILS = """\
from training.zero_shot.detokenize import count_words, detokenize


def detokenized(doc):
    return detokenize(doc["page"], "wikitext")


def word_units(doc, results):
    return {"word_perplexity": (results[0], count_words(doc["page"]))}
"""


@pytest.mark.skipif(shutil.which("lm_eval", path=os.path.dirname(sys.executable)) is None,
                    reason="lm-evaluation-harness not installed (pip install 'lm-eval[hf]==0.4.13')")
def test_agrees_with_lm_evaluation_harness_on_the_exported_model(wide_run, loaded, tmp_path):
    """The same model exported to transformers, the same files, through lm_eval offline: every
    LAMBADA target's log-likelihood and greedy match, and WikiText's rolling log-likelihood
    (disjoint windows of block_size, lm_eval's only rolling protocol) agree within 1e-4 relative."""
    from tests.training.train_fixtures import synthetic_documents

    model, tokenizer = loaded
    assert main(["export-hf", str(wide_run), str(tmp_path / "hf")]) == 0
    lambada = tmp_path / "lambada.jsonl"
    lambada.write_text("".join(json.dumps({"text": doc.rstrip(".")}) + "\n" for doc in synthetic_documents(24, seed=5)))
    wikitext = tmp_path / "wikitext.jsonl"
    wikitext.write_text(json.dumps({"page": WIKITEXT_2.read_text()}) + "\n")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "webtext_lambada.yaml").write_text(HARNESS_LAMBADA.format(data=lambada))
    (tasks / "webtext_wikitext.yaml").write_text(HARNESS_WIKITEXT.format(data=wikitext))
    (tasks / "webtext_tasks.py").write_text(HARNESS_UTILS)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf-home")}
    run = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "lm_eval"), "run", "--model", "hf",
         "--model_args", f"pretrained={tmp_path / 'hf'},dtype=float32", "--tasks", "webtext_lambada,webtext_wikitext",
         "--include_path", str(tasks), "--device", "cpu", "--batch_size", "1", "--log_samples",
         "--output_path", str(tmp_path / "out")], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]

    def samples(task):
        [path] = (tmp_path / "out").rglob(f"samples_{task}_*.jsonl")
        return sorted((json.loads(line) for line in path.read_text().splitlines()), key=lambda s: s["doc_id"])

    ours = score_lambada(model, tokenizer, read_lambada(lambada), "cpu", CFG)
    theirs = [sample["resps"][0][0] for sample in samples("webtext_lambada")]
    assert len(theirs) == len(ours) == 24
    for outcome, (log_likelihood, greedy) in zip(ours, theirs):
        assert outcome.log_likelihood == pytest.approx(float(log_likelihood), rel=1e-4)
        assert outcome.greedy_tokens == (str(greedy) == "True")
    accuracy = sum(str(greedy) == "True" for _, greedy in theirs) / len(theirs)
    assert 0 < accuracy == pytest.approx(evaluate_lambada(model, tokenizer, lambada, "cpu", CFG)
                                         ["accuracy_greedy_tokens"], rel=1e-4)
    disjoint = EvalConfig(batch_size=4, context=0, stride=model.config.block_size)
    result = evaluate_canonical(model, tokenizer, read_word_level("wikitext-2", WIKITEXT_2), "cpu", disjoint)
    [[rolling]] = samples("webtext_wikitext")[0]["resps"]
    assert -result["nll"] == pytest.approx(float(rolling[0] if isinstance(rolling, list) else rolling), rel=1e-4)
