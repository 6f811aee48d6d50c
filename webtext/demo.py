"""`webtext demo`: every stage end to end on the bundled offline sample.

It runs exactly the commands a user would (`webtext harvest`, `crawl --replay`, `build`,
`tokenizer train`, `tokenize`, `train`, `sample`), each in its own process with
`--config pipelines.demo.yaml` (demo-scale settings, layered over pipelines.yaml) plus your own
`--config`/`--set` arguments, and prints each command as it runs it: copied, a command gives the
demo's result. Then it prints one table of per-stage counts and the validation loss. The crawl
goes through the replay server on 127.0.0.1: nothing leaves the machine. Its dead links are
looked up in the sample's bundled web archive (`crawl.source: live_then_archive`), which the
demo serves with pywb's `wayback` on 127.0.0.1 (at the port of `crawl.archive.cdx_url` in
pipelines.demo.yaml) while the crawl runs; it then prints how many pages came from where.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.request import urlopen

from core.stats import StageCounts, format_counts_table, stats_file

if TYPE_CHECKING:
    from sample.bundled import Sample

DEMO_MARKER = ".webtext-demo"  # marks a folder the demo made, so a rerun may clear it

# The demo's settings: a partial config layered over pipelines.yaml, shipped with the package
# (a link to the repository's pipelines.demo.yaml), passed to and printed with every command.
DEMO_CONFIG = (Path(__file__).parent / "pipelines.demo.yaml").resolve()
DEMO_PROMPT = "The history of the"
# pywb (`make pywb`) serves the bundled archive; its collection name is the path of the demo's cdx_url.
PYWB_BIN = Path(__file__).resolve().parents[1] / ".venv-pywb" / "bin"
ARCHIVE_COLLECTION = "sample"

# (subfolder of --out, its stats file, the name earlier versions gave it): where each stage writes
# its counts. Spelled out (tests/webtext/test_demo.py checks them against the stages' constants)
# so that the CLI does not import the stages' heavy modules.
STATS_FILES = [
    ("urls", "_harvest_stats.json", "harvest_stats.json"),
    ("crawl", "crawl_stats.json", None),
    ("dataset", "build_stats.json", None),
    ("tokens", "tokenize_stats.json", None),
]


def demo_steps(out: Path, sample: Sample, config_files: list[str] = (), overrides: list[str] = ()) -> list[tuple[str, list[str]]]:
    """(what it does, webtext arguments) for every stage, in order, on `sample`; each command
    carries `--config pipelines.demo.yaml`, then `config_files` and `overrides` (the user's)."""
    settings = []
    for config_file in [_shown_path(DEMO_CONFIG), *config_files]:
        settings += ["--config", str(config_file)]
    for override in overrides:
        settings += ["--set", override]
    steps = [
        ("Reddit dump -> URLs with >= 3 karma", ["harvest", "--dumps", _shown_path(sample.dump), "--out", str(out / "urls")]),
        ("crawl the URLs from the sample web served on 127.0.0.1",
         ["crawl", "--urls", str(out / "urls"), "--out", str(out / "crawl"), "--replay", _shown_path(sample.web)]),
        ("WARC -> extracted, filtered, deduplicated Parquet shards",
         ["build", "--warc", str(out / "crawl"), "--out", str(out / "dataset")]),
        ("learn a byte-level BPE vocabulary", ["tokenizer", "train", "--shards", str(out / "dataset"),
                                               "--out", str(out / "tokenizer")]),
        ("shards -> token shards", ["tokenize", "--shards", str(out / "dataset"), "--tokenizer",
                                    str(out / "tokenizer"), "--out", str(out / "tokens")]),
        ("train a tiny GPT-2", ["train", "--tokens", str(out / "tokens"), "--out", str(out / "run")]),
        ("sample from it", ["sample", "--checkpoint", str(out / "run"), "--prompt", DEMO_PROMPT]),
    ]
    return [(what, args + settings) for what, args in steps]


def prepare_out(out: Path) -> None:
    """Use an absent or empty folder, or clear one an earlier demo made; refuse anything else."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out} is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not (out / DEMO_MARKER).exists():
            raise ValueError(f"--out {out} is not empty and was not made by `webtext demo`; "
                             "choose another folder or empty it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / DEMO_MARKER).write_text("made by `webtext demo`; a rerun clears this folder\n")


def read_stage_counts(out: Path) -> dict[str, StageCounts]:
    """Per-stage counts from the stats files the stages wrote, in pipeline order."""
    counts: dict[str, StageCounts] = {}
    for folder, name, legacy_name in STATS_FILES:
        path = Path(stats_file(out / folder, name, legacy_name))
        if path.exists():
            stages = json.loads(path.read_text())["stages"]
            counts.update({stage: StageCounts.from_json(stage, c) for stage, c in stages.items()})
    from shards.manifest import STAGE_CHAIN  # here: the command-line parser imports no pyarrow

    rank = {stage: i for i, stage in enumerate(["harvest", "crawl", *STAGE_CHAIN, "tokenize"])}
    return dict(sorted(counts.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))


def validation_losses(log_path: Path) -> list[tuple[int, float]]:
    """(step, loss) of every validation record in a run's log.jsonl."""
    if not log_path.exists():
        return []
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    return [(r["step"], r["loss"]) for r in records if r.get("kind") == "val"]


def _shown_path(path: Path) -> str:
    """`path` relative to the working directory when it is inside it (shorter to copy)."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def demo_settings() -> str:
    """The settings the demo changes, one `section.key: value  # why` per line, from the file."""
    lines, sections = [], []  # sections: (indent, name) of the enclosing (nested) sections
    for line in DEMO_CONFIG.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip())
        setting, _, why = line.strip().partition("#")
        key, _, value = setting.partition(":")
        sections = [(level, name) for level, name in sections if level < indent]
        if not value.strip():
            sections.append((indent, key.strip()))
            continue
        dotted = ".".join([name for _, name in sections] + [key.strip()])
        lines.append(f"  {dotted}: {value.strip()}" + (f"  ({why.strip()})" if why else ""))
    return "\n".join(lines)


def _run_step(number: int, total: int, what: str, args: list[str]) -> None:
    print(f"\n[{number}/{total}] {what}\n$ webtext {shlex.join(args)}", flush=True)
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "webtext", *args], check=True)
    print(f"  ({time.perf_counter() - started:.0f} s)", flush=True)


def local_archive_port(config_files: list[str] = (), overrides: list[str] = ()) -> int | None:
    """The port the demo serves the bundled archive on: that of `crawl.archive.cdx_url` when the
    demo's crawl asks an archive on 127.0.0.1 (pipelines.demo.yaml), else None."""
    from webtext.config import load_config

    crawl = load_config([DEMO_CONFIG, *config_files], overrides).crawl
    cdx = urlsplit(crawl.archive.cdx_url)
    if crawl.source == "live" or cdx.hostname != "127.0.0.1" or not cdx.port:
        return None
    return cdx.port


@contextlib.contextmanager
def serve_bundled_archive(sample: Sample, folder: Path, port: int):
    """pywb's `wayback` on 127.0.0.1:`port` with the sample's captures as collection `sample`."""
    manager, wayback = PYWB_BIN / "wb-manager", PYWB_BIN / "wayback"
    if not wayback.exists():
        raise FileNotFoundError(f"pywb is not installed in {PYWB_BIN.parent} (run `make pywb`), or run the demo "
                                f"without the archive: --set crawl.source=live")
    folder.mkdir(parents=True, exist_ok=True)
    for step in (["init", ARCHIVE_COLLECTION], ["add", ARCHIVE_COLLECTION, str(sample.archive / "captures.warc.gz")]):
        made = subprocess.run([str(manager), *step], cwd=folder, capture_output=True, text=True)
        if made.returncode:
            raise RuntimeError(f"`wb-manager {shlex.join(step)}` failed: {made.stderr.strip()[-300:]}")
    with socket.socket() as probe:  # a server already there would answer the readiness check below
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            raise RuntimeError(f"127.0.0.1:{port} is taken, so the bundled archive cannot be served there; choose "
                               f"another port with --set crawl.archive.cdx_url=... and crawl.archive.replay_url=...") from None
    command = [str(wayback), "-p", str(port), "-b", "127.0.0.1", "-d", str(folder)]
    print(f"\n[archive] the bundled web archive, served by pywb while the crawl runs\n$ {shlex.join(command)}", flush=True)
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urlopen(f"http://127.0.0.1:{port}/{ARCHIVE_COLLECTION}/cdx?url=http://x.example/", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"pywb did not start on 127.0.0.1:{port} (is the port taken? choose another "
                                       f"with --set crawl.archive.cdx_url=... and crawl.archive.replay_url=...)")
                time.sleep(0.2)
        yield
    finally:
        server.terminate()
        server.wait(timeout=30)


def pages_by_source(crawl_dir: Path) -> str:
    """One line: pages fetched live, recovered from the archive, dead links the archive lacks."""
    import pyarrow.parquet as pq

    parts = sorted((crawl_dir / "crawl_log").glob("*.parquet"))
    if not parts:
        return ""
    rows = [row for part in parts for row in pq.read_table(part, columns=["outcome", "source"]).to_pylist()]
    live = sum(row["outcome"] == "ok" and row["source"] != "archive" for row in rows)
    archived = sum(row["outcome"] == "ok" and row["source"] == "archive" for row in rows)
    missing = sum(row["outcome"] == "archive_missing" for row in rows)
    errors = sum(row["outcome"] == "archive_error" for row in rows)
    return (f"Pages by source: {live} fetched live, {archived} recovered from the web archive; "
            f"{missing} dead links the archive does not hold, {errors} archive errors, "
            f"{len(rows) - live - archived - missing - errors} URLs failed otherwise")


def run_demo(args, cfg) -> int:
    from sample.bundled import ensure_built

    out = Path(args.out)
    prepare_out(out)
    started = time.perf_counter()
    sample = ensure_built()  # generates the sample on first use
    steps = demo_steps(out, sample, args.config, args.overrides)
    archive_port = local_archive_port(args.config, args.overrides)
    for number, (what, step_args) in enumerate(steps, 1):
        serving = (serve_bundled_archive(sample, out / "archive", archive_port)
                   if step_args[0] == "crawl" and archive_port else contextlib.nullcontext())
        try:
            with serving:
                _run_step(number, len(steps), what, step_args)
        except subprocess.CalledProcessError as exc:
            print(f"webtext demo: `webtext {step_args[0]}` failed (exit {exc.returncode}); "
                  f"its output is above, its files under {out}/", file=sys.stderr)
            return exc.returncode or 1
        except (FileNotFoundError, RuntimeError) as exc:
            print(f"webtext demo: {exc}", file=sys.stderr)
            return 1
    print("\nPer-stage counts (records in / out / dropped by reason):")
    print(format_counts_table(read_stage_counts(out)))
    print(pages_by_source(out / "crawl"))
    losses = validation_losses(out / "run" / "log.jsonl")
    if losses:
        print("\nValidation loss: " + ", ".join(f"{loss:.2f} (step {step})" for step, loss in losses))
    print(f"\nDemo finished in {time.perf_counter() - started:.0f} s; outputs under {out}/ "
          f"(dataset card: {out / 'dataset' / 'README.md'}, loss curve: {out / 'run' / 'loss.png'})")
    return 0


def register(subparsers, common) -> None:
    import argparse

    parser = subparsers.add_parser(
        "demo", parents=[common],
        help="run every stage on the bundled offline sample (harvest, crawl, build, tokenize, train, sample)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"Settings the demo changes ({_shown_path(DEMO_CONFIG)}):\n{demo_settings()}",
    )
    parser.add_argument("--out", default="out/demo",
                        help="work directory: absent, empty or made by an earlier demo (then cleared); default out/demo")
    parser.set_defaults(func=run_demo)
