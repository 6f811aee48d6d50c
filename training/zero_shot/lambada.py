"""LAMBADA as the GPT-2 paper scored it: the last word of each passage, predicted greedily over
all of its tokens, with and without the paper's stop-word filter (its accuracy rose from 52.66%
to 63.24% with the filter; Table 3 shows the filtered figure), and the perplexity of the last word.

Without the filter a passage counts when greedy decoding after the context reproduces the
target's tokens and the token after them does not continue the word (it begins a new word,
punctuation or <|endoftext|>). The filter approximates what the model is not told, that the
word ends the sentence: a prediction that is a stop word (or no word at all: punctuation, which
a target never is) is passed over and the next likeliest first token is completed greedily
instead, up to eval.lambada_candidates first tokens.
`accuracy_greedy_tokens` counts only the token match (no word-end check), which is what
lm-evaluation-harness reports as LAMBADA `acc`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from training.config import EvalConfig
from training.evaluate import next_token_argmax, score_continuations
from training.zero_shot.formats import LastWordExample, read_lambada

MAX_WORD_TOKENS = 8  # a predicted word is cut after this many tokens
# NLTK's English stop-word list (179 words), written out here.
STOP_WORDS = frozenset("""
i me my myself we our ours ourselves you you're you've you'll you'd your yours yourself yourselves he him his
himself she she's her hers herself it it's its itself they them their theirs themselves what which who whom this
that that'll these those am is are was were be been being have has had having do does did doing a an the and but
if or because as until while of at by for with about against between into through during before after above
below to from up down in out on off over under again further then once here there when where why how all any both
each few more most other some such no nor not only own same so than too very s t can will just don don't should
should've now d ll m o re ve y ain aren aren't couldn couldn't didn didn't doesn doesn't hadn hadn't hasn hasn't
haven haven't isn isn't ma mightn mightn't mustn mustn't needn needn't shan shan't shouldn shouldn't wasn wasn't
weren weren't won won't wouldn wouldn't
""".split())


@dataclass(frozen=True)
class LambadaOutcome:
    log_likelihood: float  # of the target's tokens (nats)
    greedy_tokens: bool  # greedy decoding reproduces the target's tokens
    correct: bool  # ... and the word ends there
    correct_with_stop_word_filter: bool


def continues_word(tokenizer, token_id: int) -> bool:
    """Whether a token glues onto the word before it (a letter, digit, ' or - first)."""
    if token_id == tokenizer.eot_id:
        return False
    first = tokenizer.decode([token_id])[:1]
    return first.isalnum() or first in "'-"


def greedy_words(model, tokenizer, prefixes: list[list[int]], device, batch_size: int) -> list[str]:
    """The word each prefix's last token begins, completed greedily until a token does not
    continue it (or MAX_WORD_TOKENS), without surrounding spaces."""
    sequences = [list(prefix) for prefix in prefixes]
    words = [[prefix[-1]] for prefix in prefixes]
    active = list(range(len(prefixes)))
    for _ in range(MAX_WORD_TOKENS - 1):
        if not active:
            break
        chosen = next_token_argmax(model, [sequences[i] for i in active], device, batch_size)
        still = []
        for i, token in zip(active, chosen):
            if continues_word(tokenizer, token):
                sequences[i].append(token)
                words[i].append(token)
                still.append(i)
        active = still
    return [tokenizer.decode(word).strip() for word in words]


def score_lambada(model, tokenizer, examples: list[LastWordExample], device,
                  config: EvalConfig) -> list[LambadaOutcome]:
    """Each passage scored after <|endoftext|> + its context."""
    pairs = [([tokenizer.eot_id] + tokenizer.encode(example.context), tokenizer.encode(example.target))
             for example in examples]
    scores = score_continuations(model, pairs, device, config.batch_size, first_choices=config.lambada_candidates,
                                 desc="lambada")
    targets = [example.target.strip() for example in examples]
    correct = [score.greedy and not continues_word(tokenizer, score.next_id) for score in scores]
    # A correct greedy word (a target is a word) is also the filter's choice unless it is a stop word,
    # in which case the filter passes over it and settles on another word. Every other passage needs
    # the filter's own pick.
    filtered = [right and target.lower() not in STOP_WORDS for right, target in zip(correct, targets)]
    pending = [i for i, right in enumerate(correct) if not right]
    for rank in range(config.lambada_candidates):
        pending = [i for i in pending if rank < len(scores[i].first_choices)]
        if not pending:
            break
        words = greedy_words(model, tokenizer, [pairs[i][0] + [scores[i].first_choices[rank]] for i in pending],
                             device, config.batch_size)
        still = []
        for i, word in zip(pending, words):
            if word.lower() in STOP_WORDS or not any(char.isalnum() for char in word):
                still.append(i)
            else:
                filtered[i] = word == targets[i]
        pending = still
    return [LambadaOutcome(sum(score.log_likelihoods), score.greedy, right, right_filtered)
            for score, right, right_filtered in zip(scores, correct, filtered)]


def summarize(outcomes: list[LambadaOutcome]) -> dict:
    n = len(outcomes)
    mean_nll = -sum(outcome.log_likelihood for outcome in outcomes) / n
    return {
        "accuracy": sum(outcome.correct for outcome in outcomes) / n,
        "accuracy_with_stop_word_filter": sum(outcome.correct_with_stop_word_filter for outcome in outcomes) / n,
        "accuracy_greedy_tokens": sum(outcome.greedy_tokens for outcome in outcomes) / n,
        "perplexity": math.exp(min(mean_nll, 700.0)),
        "examples": n,
    }


def evaluate_lambada(model, tokenizer, path, device, config: EvalConfig) -> dict:
    """LAMBADA accuracy (without and with the stop-word filter) and last-word perplexity of a
    file in either official format (formats.read_lambada)."""
    examples = read_lambada(Path(path))
    try:
        return summarize(score_lambada(model, tokenizer, examples, device, config))
    except ValueError as exc:  # a target too long for the model's block
        raise ValueError(f"{path}: {exc}") from None
