"""The Children's Book Test as the GPT-2 paper scored it: each candidate is put into the gap and
the model picks the candidate under which the candidate and the rest of the sentence after it
are likeliest, given the passage and the sentence up to the gap (the part before the gap is the
same for every candidate, so this ranks like the probability of the whole filled-in sentence).
Accuracy is reported per file: CBT-CN (common nouns) and CBT-NE (named entities) in Table 3.
"""

from __future__ import annotations

from pathlib import Path

from training.config import EvalConfig
from training.evaluate import score_continuations
from training.zero_shot.formats import read_cbt


def evaluate_cbt(model, tokenizer, path, device, config: EvalConfig) -> dict:
    """Accuracy on a CBT file in either format (formats.read_cbt)."""
    examples = read_cbt(Path(path))
    pairs, spans = [], []
    for example in examples:
        before, space = (example.before[:-1], " ") if example.before.endswith(" ") else (example.before, "")
        context = [tokenizer.eot_id] + tokenizer.encode(before)
        spans.append((len(pairs), len(example.candidates)))
        pairs += [(context, tokenizer.encode(space + candidate + example.after)) for candidate in example.candidates]
    try:
        nlls = [score.nll for score in score_continuations(model, pairs, device, config.batch_size, desc="cbt")]
    except ValueError as exc:  # a question too long for the model's block
        raise ValueError(f"{path}: {exc}") from None
    correct = 0
    for (first, count), example in zip(spans, examples):
        best = min(range(count), key=lambda i: nlls[first + i])
        correct += example.candidates[best] == example.answer
    return {"accuracy": correct / len(examples), "examples": len(examples)}
