"""`--executor submitit`: the shards as a submitit job array (Slurm, or local processes).

`submitit.AutoExecutor` picks Slurm when `srun` is on PATH and submitit's local executor
otherwise. Part files and submitit's folder (pickles, logs, the sbatch script) must then lie
on a filesystem the nodes share: they go beside the run file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eigenbench.errors import MissingDependency
from eigenbench.run.fanout_worker import ShardJob, run_shard

DEFAULT_TIME_MIN = 24 * 60
"""Job time limit when `--slurm-time` is not given (submitit's local default is 2 minutes)."""


@dataclass(frozen=True, slots=True)
class SlurmSettings:
    """What the `--slurm-*` options ask of each array task (ignored by the local fallback)."""

    partition: str | None = None
    gpus_per_task: int | None = None
    time_min: int | None = None
    account: str | None = None

    def parameters(self, cluster: str, tasks: int) -> dict[str, Any]:
        """`AutoExecutor.update_parameters` keywords for `cluster`."""
        params: dict[str, Any] = {
            "name": "eigenbench",
            "timeout_min": self.time_min or DEFAULT_TIME_MIN,
        }
        if cluster == "slurm":
            params["slurm_array_parallelism"] = max(1, tasks)
            for key, value in (
                ("slurm_partition", self.partition),
                ("slurm_gpus_per_task", self.gpus_per_task),
                ("slurm_account", self.account),
            ):
                if value is not None:
                    params[key] = value
        return params


def import_submitit() -> Any:
    """The submitit module; MissingDependency (exit 4) naming the extra that installs it."""
    try:
        import submitit
    except ImportError:
        raise MissingDependency(
            "--executor submitit needs submitit: pip install eigenbench[cluster]"
        ) from None
    return submitit


def cluster_here() -> str:
    """ "slurm" when submitit would submit to Slurm from here, else "local"."""
    submitit = import_submitit()
    try:
        return str(submitit.AutoExecutor.which())
    except RuntimeError:
        return "local"


class SubmititLaunch:
    """The jobs as one submitit array; `kill` cancels what still runs (scancel on Slurm)."""

    def __init__(
        self, jobs: Sequence[ShardJob], folder: Path, slurm: SlurmSettings, cluster: str
    ) -> None:
        submitit = import_submitit()
        executor = submitit.AutoExecutor(folder=folder, cluster=cluster)
        executor.update_parameters(**slurm.parameters(cluster, len(jobs)))
        self.handles: list[Any] = list(executor.map_array(run_shard, list(jobs)))

    def close(self) -> None:
        """Nothing to release: every job has ended."""

    def kill(self) -> None:
        for job in self.handles:
            if not job.done():
                with contextlib.suppress(Exception):
                    job.cancel(check=False)


def submitit_launcher(folder: Path, slurm: SlurmSettings, cluster: str) -> Any:
    """A `fanout.Launcher` that submits through submitit into `folder`."""

    def launch(jobs: Sequence[ShardJob]) -> SubmititLaunch:
        return SubmititLaunch(jobs, folder, slurm, cluster)

    return launch
