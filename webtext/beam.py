"""Beam pipeline options from the `beam` config section plus pass-through arguments."""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from webtext.config import BeamConfig

# Beam's DirectRunner first tries PrismRunner, which downloads a Go binary from the internet
# before falling back. Locally we go straight to the Python FnApiRunner that DirectRunner
# would fall back to: same semantics, honours the direct_* options, never touches the network.
LOCAL_RUNNER = "FnApiRunner"


def pipeline_options(cfg: BeamConfig, passthrough: list[str] = ()) -> PipelineOptions:
    """Options for `beam.Pipeline`; arguments given after `--` override the config."""
    runner = cfg.runner
    for arg in passthrough:
        if arg.startswith("--runner="):
            runner = arg.split("=", 1)[1]
    local = runner.lower() in ("directrunner", "direct", "fnapirunner")
    args = [f"--runner={LOCAL_RUNNER if local else runner}"]
    if local:
        args += [
            f"--direct_num_workers={cfg.direct_num_workers}",
            f"--direct_running_mode={cfg.direct_running_mode}",
        ]
    args += list(cfg.options) + [a for a in passthrough if not a.startswith("--runner=")]
    return PipelineOptions(args)
