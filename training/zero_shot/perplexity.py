"""Perplexity in a benchmark's canonical units (GPT-2 paper §3.1): the log-likelihood of the
whole test text, scored with sliding windows (eval.context tokens, step eval.stride), divided by
the number of units the benchmark counts, not by our tokens. Word-level sets (WikiText, PTB, 1BW)
are scored detokenized and divided by their original words (+1 end-of-line per line, as their
standard loaders count); enwik8 in bits per byte, text8 in bits per character.
"""

from __future__ import annotations

import math

from training.config import EvalConfig
from training.evaluate import score_ids, window_and_stride
from training.zero_shot.formats import CanonicalText

METRIC = {"word": "perplexity", "byte": "bits_per_byte", "character": "bits_per_character"}


def per_unit(nll: float, unit: str, units: int) -> float:
    """Perplexity per word, or bits per byte / character, of a summed NLL in nats."""
    if unit == "word":
        return math.exp(min(nll / units, 700.0))
    return nll / (math.log(2) * units)


def evaluate_canonical(model, tokenizer, dataset: CanonicalText, device, config: EvalConfig) -> dict:
    """The dataset's metric in its units; with eval.without_detokenizer also the metric of the
    file as spelled (what the detokenizer gains)."""
    window, stride = window_and_stride(model.config.block_size, config)
    metric = METRIC[dataset.unit]
    score = score_ids(model, [tokenizer.eot_id] + tokenizer.encode(dataset.text), device, config, desc=dataset.name)
    result = {
        metric: per_unit(score.nll, dataset.unit, dataset.units), "unit": dataset.unit, "units": dataset.units,
        "tokens": int(score.tokens), "nll": score.nll, "detokenizer": dataset.detokenizer,
        "context": window, "stride": stride, "file": str(dataset.path),
    }
    if config.without_detokenizer and dataset.detokenizer:
        raw = score_ids(model, [tokenizer.eot_id] + tokenizer.encode(dataset.raw), device, config,
                        desc=f"{dataset.name} as spelled")
        result[f"{metric}_without_detokenizer"] = per_unit(raw.nll, dataset.unit, dataset.units)
    return result
