"""The GPT-2 paper's Table 3 for one checkpoint (`webtext eval --suite paper --data DIR`): every
benchmark found in DIR evaluated by the paper's protocol, set beside the numbers the paper
published for GPT-2 of the same size.

PUBLISHED is Table 3 of Radford et al. (2019), "Language Models are Unsupervised Multitask
Learners", typed in from the paper: LAMBADA accuracy there is with the stop-word filter (52.66%
without it at 1542M, 63.24% with it), accuracies are in percent, enwik8 in bits per byte and
text8 in bits per character.
"""

from __future__ import annotations

import logging
from pathlib import Path

from training.config import EvalConfig
from training.evaluate import window_and_stride
from training.model import GPTConfig
from training.zero_shot.cbt import evaluate_cbt
from training.zero_shot.formats import DETOKENIZER, find_benchmarks, read_character_level, read_word_level
from training.zero_shot.lambada import evaluate_lambada
from training.zero_shot.perplexity import evaluate_canonical

log = logging.getLogger(__name__)

# (dataset, result key, header, factor to the paper's scale), in the paper's column order
COLUMNS: list[tuple[str, str, str, float]] = [
    ("lambada", "perplexity", "LAMBADA (PPL)", 1.0),
    ("lambada", "accuracy_with_stop_word_filter", "LAMBADA (ACC)", 100.0),
    ("cbt-cn", "accuracy", "CBT-CN (ACC)", 100.0),
    ("cbt-ne", "accuracy", "CBT-NE (ACC)", 100.0),
    ("wikitext-2", "perplexity", "WikiText2 (PPL)", 1.0),
    ("ptb", "perplexity", "PTB (PPL)", 1.0),
    ("enwik8", "bits_per_byte", "enwik8 (BPB)", 1.0),
    ("text8", "bits_per_character", "text8 (BPC)", 1.0),
    ("wikitext-103", "perplexity", "WikiText103 (PPL)", 1.0),
    ("1bw", "perplexity", "1BW (PPL)", 1.0),
]
# Table 3 as printed (strings keep the paper's digits); SOTA = the best earlier result it cites.
PUBLISHED: dict[str, list[str]] = {
    "SOTA": ["99.8", "59.23", "85.7", "82.3", "39.14", "46.54", "0.99", "1.08", "18.3", "21.8"],
    "117M": ["35.13", "45.99", "87.65", "83.4", "29.41", "65.85", "1.16", "1.17", "37.50", "75.20"],
    "345M": ["15.60", "55.48", "92.35", "87.1", "22.76", "47.33", "1.01", "1.06", "26.37", "55.72"],
    "762M": ["10.87", "60.12", "93.45", "88.0", "19.93", "40.31", "0.97", "1.02", "22.05", "44.575"],
    "1542M": ["8.63", "63.24", "93.30", "89.05", "18.34", "35.76", "0.93", "0.98", "17.48", "42.16"],
}
PAPER_SIZES = {(12, 768): "117M", (24, 1024): "345M", (36, 1280): "762M", (48, 1600): "1542M"}


def paper_size(model_config: GPTConfig) -> str | None:
    """The paper's name for a model of this depth and width, if it is one of its four."""
    return PAPER_SIZES.get((model_config.n_layer, model_config.n_embd))


def run_suite(model, tokenizer, data_dir, device, config: EvalConfig) -> dict[str, dict]:
    """{dataset: result} for every benchmark file under data_dir, in Table 3's column order."""
    results = {}
    for name, path in find_benchmarks(data_dir).items():
        log.info("%s: %s", name, path)
        if name == "lambada":
            result = evaluate_lambada(model, tokenizer, path, device, config)
        elif name.startswith("cbt-"):
            result = evaluate_cbt(model, tokenizer, path, device, config)
        else:
            reader = read_word_level if name in DETOKENIZER else read_character_level
            result = evaluate_canonical(model, tokenizer, reader(name, path), device, config)
        results[name] = {**result, "file": str(path)}
    return results


def table3(results: dict[str, dict], model_config: GPTConfig, parameters: int, checkpoint: str,
           config: EvalConfig) -> dict:
    """Table 3's rows (the paper's for this size, or all of them for another size, then ours)
    with the full results, as JSON-ready data."""
    size = paper_size(model_config)
    window, stride = window_and_stride(model_config.block_size, config)
    paper_rows = ["SOTA", size] if size else list(PUBLISHED)
    rows = [{"model": f"GPT-2 {name} (paper)" if name != "SOTA" else "SOTA (paper)",
             "values": [float(value) for value in PUBLISHED[name]]} for name in paper_rows]
    ours = [results[dataset][key] * factor if dataset in results else None for dataset, key, _, factor in COLUMNS]
    rows.append({"model": f"ours: {checkpoint}", "values": ours})
    return {
        "checkpoint": checkpoint,
        "paper_size": size,
        "model": {"n_layer": model_config.n_layer, "n_head": model_config.n_head, "n_embd": model_config.n_embd,
                  "block_size": model_config.block_size, "vocab_size": model_config.vocab_size,
                  "parameters": parameters},
        "protocol": {"context": window, "stride": stride, "lambada_candidates": config.lambada_candidates},
        "columns": [header for _, _, header, _ in COLUMNS],
        "rows": rows,
        "results": results,
    }


def table3_markdown(table: dict) -> str:
    """The table as Markdown, with the figures behind it in notes below."""
    size = table["paper_size"]
    lines = [f"# Zero-shot results (GPT-2 paper, Table 3): {table['checkpoint']}", ""]
    if not size:
        lines += [f"Not one of the paper's four sizes ({table['model']['n_layer']} layers, "
                  f"{table['model']['n_embd']} wide): all of its rows are shown.", ""]
    lines += ["| Model | " + " | ".join(table["columns"]) + " |", "|---" * (len(table["columns"]) + 1) + "|"]
    for row in table["rows"]:
        paper = row["model"].endswith("(paper)")
        name = row["model"].removesuffix(" (paper)").removeprefix("GPT-2 ")
        cells = [PUBLISHED[name][i] if paper else _cell(value) for i, value in enumerate(row["values"])]
        lines.append(f"| {row['model']} | " + " | ".join(cells) + " |")
    results, protocol = table["results"], table["protocol"]
    lines += ["", f"Sliding windows of {protocol['context']} tokens, step {protocol['stride']}. "
              "PPL per original word (detokenized text, original words + one end-of-line per line); "
              "accuracies in %; — = file not found."]
    if "lambada" in results:
        lambada = results["lambada"]
        lines.append(f"LAMBADA ({lambada['examples']} passages, {Path(lambada['file']).name}): accuracy "
                     f"{100 * lambada['accuracy']:.2f}% without the stop-word filter, "
                     f"{100 * lambada['accuracy_with_stop_word_filter']:.2f}% with it (the table's figure).")
    for name, result in results.items():
        raw = next((value for key, value in result.items() if key.endswith("_without_detokenizer")), None)
        if raw is not None:
            metric = next(key for key in ("perplexity", "bits_per_byte", "bits_per_character") if key in result)
            lines.append(f"{name}: {_cell(result[metric])} detokenized, {_cell(raw)} as the file spells it.")
    lines += ["", "Files:", *(f"- {name}: {result['file']}" for name, result in results.items()), ""]
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.2f}" if abs(value) < 1e6 else f"{value:.3g}"
