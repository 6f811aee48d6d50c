"""The `beam` config section: where Beam pipelines run (Beam-free, so any command can load it)."""

from __future__ import annotations

from core.section import Section


class BeamConfig(Section):
    """Where Beam pipelines run. Anything after `--` on the command line is passed to Beam too."""

    defaults_key: ClassVar[str] = "beam"

    runner: str
    direct_num_workers: int
    direct_running_mode: str  # in_memory | multi_threading | multi_processing
    options: list[str]  # extra Beam pipeline options, e.g. ["--project=my-gcp-project"]
