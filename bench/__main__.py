"""`python -m bench [NAME...]`: run the benchmarks (all by default) and print their tables.

Each `bench/bench_<name>.py` measures ratios against a baseline run in the same process and
writes `bench/results/<name>.json`; the README quotes those files.
"""

import importlib
import pkgutil
import sys
import time

import bench


def main(names: list[str]) -> int:
    available = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    unknown = set(names) - set(available)
    if unknown:
        print(f"unknown benchmark(s): {', '.join(sorted(unknown))}; available: {', '.join(available)}", file=sys.stderr)
        return 2
    for name in names or available:
        print(f"== bench {name} ==", flush=True)
        started = time.perf_counter()
        module = importlib.import_module(f"bench.bench_{name}")
        module.main()
        print(f"== bench {name}: {time.perf_counter() - started:.0f} s ==\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
