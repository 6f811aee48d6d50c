"""Beam pipeline options from the `beam` config section plus pass-through arguments."""

from __future__ import annotations

from apache_beam.options.pipeline_options import PipelineOptions

from webtext.config import BeamConfig


def pipeline_options(cfg: BeamConfig, passthrough: list[str] = ()) -> PipelineOptions:
    """Options for `beam.Pipeline`; arguments given after `--` override the config."""
    args = [f"--runner={cfg.runner}"]
    if cfg.runner in ("DirectRunner", "direct"):
        args += [
            f"--direct_num_workers={cfg.direct_num_workers}",
            f"--direct_running_mode={cfg.direct_running_mode}",
        ]
    args += list(cfg.options) + list(passthrough)
    return PipelineOptions(args)
