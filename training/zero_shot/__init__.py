"""Zero-shot evaluation as the GPT-2 paper measured it (its Table 3): invertible detokenizers,
readers for the benchmarks' official files, perplexity in each dataset's canonical units,
LAMBADA and CBT, and the suite that runs them all (`webtext eval --suite paper`).

docs/evaluation.md describes every protocol and file format.
"""
