"""Generate the bundled sample into sample/generated/ (or --out DIR) unless an up-to-date build is
there already, and print where its parts are."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sample.bundled import DEFAULT_FOLDER, ensure_built


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sample", description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_FOLDER, metavar="DIR",
                        help="folder to generate into (default: %(default)s)")
    args = parser.parse_args(argv)
    sample = ensure_built(args.out)
    print(f"dump: {sample.dump}\nweb:  {sample.web}\nground truth: {sample.truth}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
