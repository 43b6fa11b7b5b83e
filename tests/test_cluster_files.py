"""The cluster-launcher files pass Ray's own validation and keep the cluster closed."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from tests.conftest import REPO

CLUSTER_FILES = ["cluster.yaml", "cluster-onprem.yaml"]


def _load(name: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / name).read_text())


@pytest.mark.parametrize("name", CLUSTER_FILES)
def test_cluster_file_passes_ray_launcher_validation(name: str) -> None:
    config = prepare_config(_load(name))
    validate_config(config)  # raises on a schema error


@pytest.mark.parametrize("name", CLUSTER_FILES)
def test_every_node_runs_ray_with_token_auth_and_a_private_dashboard(name: str) -> None:
    config = _load(name)
    starts = config["head_start_ray_commands"] + config["worker_start_ray_commands"]
    assert all("RAY_AUTH_MODE=token" in c for c in starts if "ray start" in c)
    [head] = [c for c in config["head_start_ray_commands"] if "ray start" in c]
    assert "--dashboard-host=127.0.0.1" in head
    assert "~/.ray/auth_token" in config["file_mounts"].values()


@pytest.mark.parametrize("name", CLUSTER_FILES)
def test_nodes_install_the_pinned_stack_and_the_project(name: str) -> None:
    [install] = _load(name)["setup_commands"]
    assert "-c /home/ubuntu/lightsweep/constraints.txt" in install
    assert install.endswith("-e /home/ubuntu/lightsweep")


def test_aws_opens_only_ssh_to_the_world() -> None:
    provider = _load("cluster.yaml")["provider"]
    assert provider["type"] == "aws"
    open_ports = [(p["FromPort"], p["ToPort"]) for p in provider["security_group"]["IpPermissions"]
                  if any(r["CidrIp"] == "0.0.0.0/0" for r in p.get("IpRanges", []))]
    assert open_ports == [(22, 22)]


def test_aws_has_an_autoscaling_gpu_worker_type() -> None:
    config = _load("cluster.yaml")
    workers = {k: v for k, v in config["available_node_types"].items()
               if k != config["head_node_type"]}
    assert any(v["node_config"]["InstanceType"].startswith(("g", "p")) and v["max_workers"] > v["min_workers"]
               for v in workers.values())
