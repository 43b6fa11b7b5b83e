"""A sweep as a SLURM batch job that survives requeues and preemption.

``lightsweep slurm SWEEP [--nodes N] [--cpus-per-node C] [--gpus-per-node G] [--time T]
[--partition P] [--script-out FILE] [--submit] [launch's flags]`` writes an sbatch script that:

- starts Ray on the allocation, the head on the first node and a worker on each other, each on
  ports of its own (:mod:`tuning.platforms.slurm_node`), with a token of the job's own;
- runs ``launch ... --name NAME --if-exists resume``: the first run starts the sweep, a rerun
  continues it, a rerun of a finished sweep says where its results are;
- asks for ``--requeue`` and a SIGTERM ahead of the time limit (``--signal=B:TERM@SECONDS``),
  which it forwards to the driver; the driver then stops starting trials, saves the sweep's
  state and exits with :data:`REQUEUE_EXIT`, which the script turns into ``scontrol requeue``.
  A requeue from outside (``scontrol requeue``, preemption) ends the job the same way, and the
  job's next run resumes the sweep.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tuning.errors import REQUEUE_EXIT, SweepError

# Seconds before the time limit that SLURM sends the job its SIGTERM: a trial's epoch and the
# sweep's last save fit in it.
NOTICE_S = 120


@dataclass(frozen=True)
class SlurmJob:
    """What the batch script asks for and runs.

    Attributes:
        name: The experiment's name (fixed, so that every run of the job is the same sweep).
        launch_args: ``launch``'s arguments (the sweep file or ``--hydra ...`` and flags), as the
            user gave them, without ``--name``/``--if-exists``.
        nodes: Nodes of the allocation.
        cpus_per_node: CPUs Ray may use on each node.
        gpus_per_node: GPUs on each node (0: none asked).
        time: SLURM's time limit (``HH:MM:SS``, ``D-HH:MM``), or None for the partition's.
        partition: The partition, or None for the default.
        launch_dir: Where the job runs (the sweep's relative paths are relative to it).
        python: The Python of lightsweep's environment, as seen from the nodes.
    """

    name: str
    launch_args: list[str]
    nodes: int = 1
    cpus_per_node: int | None = None
    gpus_per_node: int = 0
    time: str | None = None
    partition: str | None = None
    launch_dir: Path = field(default_factory=Path.cwd)
    python: str = sys.executable

    def script(self) -> str:
        """The sbatch script."""
        head_file = f".lightsweep-ray-{self.name}-$SLURM_JOB_ID.address"
        directives = [
            f"--job-name=lightsweep-{self.name}",
            f"--nodes={self.nodes}",
            "--ntasks-per-node=1",
            *([f"--cpus-per-task={self.cpus_per_node}"] if self.cpus_per_node else []),
            *([f"--gpus-per-node={self.gpus_per_node}"] if self.gpus_per_node else []),
            *([f"--time={self.time}"] if self.time else []),
            *([f"--partition={self.partition}"] if self.partition else []),
            "--requeue",
            f"--signal=B:TERM@{NOTICE_S}",
            "--open-mode=append",  # a requeued run's output follows the first's
            f"--output=lightsweep-{self.name}-%j.out",
        ]
        node_args = [*([f"--cpus={self.cpus_per_node}"] if self.cpus_per_node else []),
                     f"--gpus={self.gpus_per_node}"]
        launch = [self.python, "-m", "tuning", "launch", *self.launch_args,
                  "--name", self.name, "--if-exists", "resume"]
        python = shlex.quote(self.python)
        return "\n".join([
            "#!/bin/bash",
            *(f"#SBATCH {d}" for d in directives),
            "# Written by lightsweep (lightsweep slurm). Each run of this job, the first",
            "# and every requeued one, runs the same sweep: it starts it, or resumes it.",
            "set -uo pipefail",
            f"cd {shlex.quote(str(self.launch_dir))}",
            'echo "lightsweep: job $SLURM_JOB_ID, run ${SLURM_RESTART_COUNT:-0}"',
            "export RAY_AUTH_MODE=token",
            f"export RAY_AUTH_TOKEN=$({python} -c 'import secrets; print(secrets.token_hex(32))')",
            f"head_file={head_file}",
            'rm -f "$head_file"',
            "# One Ray per node, this job's own (its ports found free on the node).",
            f'srun --nodes="$SLURM_NNODES" --ntasks-per-node=1 --kill-on-bad-exit=1 {python} '
            f'-m tuning.platforms.slurm_node "$head_file" {" ".join(node_args)} &',
            "ray_step=$!",
            "for _ in $(seq 300); do [ -s \"$head_file\" ] && break; sleep 1; done",
            'if [ ! -s "$head_file" ]; then echo "lightsweep: Ray did not start" >&2; '
            'kill "$ray_step"; exit 1; fi',
            'export RAY_ADDRESS=$(cat "$head_file")',
            f"{shlex.join(launch)} &",
            "driver=$!",
            "# SLURM's notice (the time limit, a requeue, preemption) goes to the driver, which",
            f"# saves the sweep and exits {REQUEUE_EXIT}.",
            "trap 'kill -TERM \"$driver\" 2>/dev/null' TERM",
            'wait "$driver"; code=$?',
            'while kill -0 "$driver" 2>/dev/null; do wait "$driver"; code=$?; done',
            'kill "$ray_step" 2>/dev/null; wait "$ray_step" 2>/dev/null',
            'rm -f "$head_file"',
            f'if [ "$code" -eq {REQUEUE_EXIT} ]; then',
            '  echo "lightsweep: the sweep stopped for the time limit or preemption; requeued"',
            '  scontrol requeue "$SLURM_JOB_ID"',
            "fi",
            'exit "$code"',
            "",
        ])


def submit(script: Path) -> str:
    """Submits ``script`` with ``sbatch``; the job's id.

    Raises:
        SweepError: If ``sbatch`` is missing or refuses the script, with its message.
    """
    if shutil.which("sbatch") is None:
        raise SweepError("--submit: sbatch is not on this machine's PATH. Fix: run on a SLURM "
                         f"login node, or submit {script} there with sbatch")
    found = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True,
                           check=False)
    if found.returncode != 0:
        raise SweepError(f"--submit: sbatch refused {script}: {found.stderr.strip()}")
    return found.stdout.strip().split(";")[0]
