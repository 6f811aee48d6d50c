"""Page faults of a training-like allocation loop with and without the CPU malloc settings.

    .venv/bin/python -m bench.bench_host_memory [--rounds N]

Each variant runs in its own process (glibc reads tunables only at start): it allocates, fills
and frees a 64 MB tensor round after round, as a training step does with its logits, and counts
the minor page faults of the last rounds after 24 settling rounds (the tuned heap needs a few
rounds to settle: glibc 2.36's posix_memalign cannot reuse a freed block of exactly the size asked
for). Variants: glibc defaults; `keep_freed_memory()` (mallopt); mallopt plus the huge-page
tunable, as `webtext train` runs. The result is each variant's faults per round and the ratio
to the defaults'; with 4 KiB pages and no transparent huge pages, the defaults fault in the whole
64 MB every round (16,384 faults). Page-fault counts depend on the kernel and on memory pressure
from other processes, which is why this is a benchmark and not a test.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results" / "host_memory.json"
SCRIPT = """
import json, resource, sys
import torch
from training import host_memory
applied = host_memory.keep_freed_memory() if sys.argv[1] != "default" else False
for _ in range(24):
    torch.ones(16 * 2**20).sum()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
rounds = int(sys.argv[2])
for _ in range(rounds):
    torch.ones(16 * 2**20).sum()
print(json.dumps({"applied": applied, "faults_per_round": (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / rounds}))
"""
VARIANTS = {
    "default": {},
    "mallopt": {},
    "mallopt+hugetlb": {"GLIBC_TUNABLES": "glibc.malloc.hugetlb=1"},
}


def measure(variant: str, rounds: int) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT, variant, str(rounds)], cwd=REPO, capture_output=True,
                          text=True, check=True, env={"PATH": "/usr/bin:/bin", **VARIANTS[variant]})
    return json.loads(done.stdout)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8, help="measured rounds per variant (after 24 settling)")
    args = parser.parse_args(argv if argv is not None else [])
    results = {variant: measure(variant, args.rounds) for variant in VARIANTS}
    baseline = results["default"]["faults_per_round"]
    for variant, result in results.items():
        result["ratio_to_default"] = round(result["faults_per_round"] / baseline, 4) if baseline else None
        print(f"{variant:<18} applied={result['applied']!s:<5} faults/round {result['faults_per_round']:>9.1f}"
              f"  x{result['ratio_to_default']}")
    thp = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    payload = {"rounds": args.rounds, "transparent_hugepage": thp.read_text().strip() if thp.exists() else None,
               "variants": results, "target": "mallopt faults/round <= 1/4 of the defaults'"}
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return payload


if __name__ == "__main__":
    main(sys.argv[1:])
