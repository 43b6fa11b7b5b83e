"""One node's Ray for a SLURM job: ``srun python -m tuning.platforms.slurm_node HEAD_FILE ...``.

The job's first node starts Ray's head, the others join it; each on ports found free on its own
node, so that two jobs sharing a node do not collide (Ray's ``symmetric-run`` takes fixed ports,
refuses a node where any Ray runs, and ends with ``ray stop``, which stops every Ray on the
node, another user's too). The head writes its address to ``HEAD_FILE`` (on the file system the
job's nodes share); a SIGTERM (the step's end, a requeue) stops this node's Ray, and only it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

# Ray's ports besides the GCS's, each found free on the node.
PORT_FLAGS = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
              "--dashboard-agent-grpc-port", "--metrics-export-port", "--runtime-env-agent-port")
HEAD_WAIT_S = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def node_ip() -> str:
    """This node's address as the others reach it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("10.255.255.255", 1))  # no packet is sent: picks the outgoing interface
            return str(s.getsockname()[0])
        except OSError:
            return "127.0.0.1"


def ray_command(head: str | None, cpus: int | None, gpus: int | None) -> tuple[list[str], str]:
    """``ray start --block`` for this node (the head where ``head`` is None), and the head's
    address."""
    ray = str(Path(sys.executable).parent / "ray")
    command = [ray, "start", "--block", "--disable-usage-stats",
               *(f"{flag}={free_port()}" for flag in PORT_FLAGS)]
    if cpus is not None:
        command.append(f"--num-cpus={cpus}")
    if gpus is not None:
        command.append(f"--num-gpus={gpus}")
    if head is None:
        address = f"{node_ip()}:{free_port()}"
        host, port = address.rsplit(":", 1)
        command += ["--head", f"--node-ip-address={host}", f"--port={port}",
                    f"--ray-client-server-port={free_port()}", f"--dashboard-port={free_port()}"]
        return command, address
    return [*command, f"--address={head}", f"--node-ip-address={node_ip()}"], head


def _listening(address: str, ray: subprocess.Popen[bytes]) -> bool:
    """Waits until the head's GCS takes connections (False if Ray ended first)."""
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + HEAD_WAIT_S
    while time.monotonic() < deadline and ray.poll() is None:
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                return True
        except OSError:
            time.sleep(0.5)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tuning.platforms.slurm_node")
    parser.add_argument("head_file", type=Path)
    parser.add_argument("--cpus", type=int)
    parser.add_argument("--gpus", type=int)
    args = parser.parse_args(argv)
    is_head = int(os.environ.get("SLURM_NODEID", os.environ.get("SLURM_PROCID", "0"))) == 0
    head = None
    if not is_head:
        deadline = time.monotonic() + HEAD_WAIT_S
        while not args.head_file.is_file():
            if time.monotonic() > deadline:
                sys.stderr.write(f"lightsweep: no Ray head address in {args.head_file}\n")
                return 1
            time.sleep(1)
        head = args.head_file.read_text().strip()
    command, address = ray_command(head, args.cpus, args.gpus)
    ray = subprocess.Popen(command, start_new_session=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(ray.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if is_head:
        if not _listening(address, ray):
            sys.stderr.write(f"lightsweep: Ray's head did not start at {address}\n")
            stop(signal.SIGTERM, None)
            return 1
        tmp = args.head_file.with_suffix(".tmp")
        tmp.write_text(address + "\n")
        tmp.replace(args.head_file)
    code = ray.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(ray.pid, signal.SIGKILL)  # its raylet and workers, if any were left
    return code


if __name__ == "__main__":
    raise SystemExit(main())
