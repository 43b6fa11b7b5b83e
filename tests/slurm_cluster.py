"""A one-node SLURM cluster on this machine, from Debian's packages, for the tests that submit
to it: installed where missing (apt), started where not running, stopped if started here."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
CONF = Path("/etc/slurm/slurm.conf")


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


def _responds() -> bool:
    return shutil.which("sinfo") is not None and _run("sinfo", "-h", "-o", "%t").stdout.strip() \
        in ("idle", "mix", "alloc")


def _install() -> str | None:
    """Installs SLURM and munge; the reason it cannot, if it cannot."""
    if all(shutil.which(tool) for tool in ("sbatch", "slurmctld", "slurmd", "munged")):
        return None
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return "SLURM is not installed, and apt-get (as root) is not here to install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", *PACKAGES]):
        found = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600,
                               check=False)
        if found.returncode != 0:
            return f"{' '.join(command)} failed: {found.stderr[-500:]}"
    return None


def _configure() -> None:
    host = socket.gethostname().split(".")[0]
    cpus = os.cpu_count() or 1
    CONF.parent.mkdir(parents=True, exist_ok=True)
    CONF.write_text(f"""ClusterName=lightsweep
SlurmctldHost={host}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
JobRequeue=1
MpiDefault=none
NodeName={host} CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
    for folder in ("/var/spool/slurmctld", "/var/spool/slurmd", "/var/log/slurm"):
        Path(folder).mkdir(parents=True, exist_ok=True)


@contextlib.contextmanager
def slurm_cluster() -> Iterator[str | None]:
    """Yields None with a SLURM that answers, or the reason there is none (to skip)."""
    if _responds():
        yield None
        return
    reason = _install()
    if reason is not None:
        yield reason
        return
    started: list[str] = []
    Path("/run/munge").mkdir(exist_ok=True)
    shutil.chown("/run/munge", "munge", "munge")
    if _run("munge", "-n").returncode != 0:
        _run("runuser", "-u", "munge", "--", "/usr/sbin/munged")
        started.append("munged")
    if not CONF.exists():
        _configure()
    for daemon in ("slurmctld", "slurmd"):
        _run(f"/usr/sbin/{daemon}")
        started.append(daemon)
    deadline = time.monotonic() + 60
    while not _responds() and time.monotonic() < deadline:
        time.sleep(1)
    try:
        yield None if _responds() else "SLURM did not start (see /var/log/slurm)"
    finally:
        if "slurmctld" in started:
            _run("scontrol", "shutdown")  # the controller and its node daemon
        if "munged" in started:
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(Path("/run/munge/munged.pid").read_text()), 15)
