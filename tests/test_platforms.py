"""The job files a sweep is handed to its platform with: a SLURM batch script and a KubeRay
RayJob, checked against what their platforms document."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest
import yaml

from tuning.errors import REQUEUE_EXIT, SweepError
from tuning.platforms.kubernetes import STORAGE_MOUNT, RayJobManifest
from tuning.platforms.slurm import NOTICE_S, SlurmJob

# RayJobSpec's fields (KubeRay ray.io/v1, ray-operator/apis/ray/v1/rayjob_types.go).
RAYJOB_SPEC_FIELDS = {
    "activeDeadlineSeconds", "backoffLimit", "rayClusterSpec", "submitterPodTemplate", "metadata",
    "clusterSelector", "submitterConfig", "entrypoint", "runtimeEnvYAML", "jobId",
    "submissionMode", "entrypointResources", "entrypointNumCpus", "entrypointNumGpus",
    "ttlSecondsAfterFinished", "shutdownAfterJobFinishes", "suspend"}
# RayClusterSpec's and its groups' fields that the manifest uses.
CLUSTER_FIELDS = {"headGroupSpec", "workerGroupSpecs", "rayVersion", "enableInTreeAutoscaling",
                  "autoscalerOptions", "headServiceAnnotations", "suspend"}
HEAD_FIELDS = {"rayStartParams", "template", "serviceType", "headService", "enableIngress"}
WORKER_FIELDS = {"groupName", "replicas", "minReplicas", "maxReplicas", "rayStartParams",
                 "template", "numOfHosts", "scaleStrategy", "suspend", "idleTimeoutSeconds"}


def test_the_slurm_script_asks_for_requeue_and_notice_and_resumes_its_sweep(
        tmp_path: Path) -> None:
    job = SlurmJob(name="mnist", launch_args=["search_spaces/smoke.yaml", "--num-samples", "4"],
                   nodes=2, cpus_per_node=8, gpus_per_node=1, time="04:00:00",
                   partition="gpu", launch_dir=tmp_path, python="/env/bin/python")
    script = job.script()
    directives = [line.removeprefix("#SBATCH ") for line in script.splitlines()
                  if line.startswith("#SBATCH ")]
    assert {"--nodes=2", "--ntasks-per-node=1", "--cpus-per-task=8", "--gpus-per-node=1",
            "--time=04:00:00", "--partition=gpu", "--requeue",
            f"--signal=B:TERM@{NOTICE_S}"} <= set(directives)
    launch = next(line for line in script.splitlines() if " -m tuning launch " in line)
    assert shlex.split(launch.removesuffix(" &")) == [
        "/env/bin/python", "-m", "tuning", "launch", "search_spaces/smoke.yaml",
        "--num-samples", "4", "--name", "mnist", "--if-exists", "resume"]
    assert f'if [ "$code" -eq {REQUEUE_EXIT} ]' in script
    assert 'scontrol requeue "$SLURM_JOB_ID"' in script
    assert "ray symmetric-run" not in script and "ray stop" not in script
    path = tmp_path / "job.sbatch"
    path.write_text(script)
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0


def _manifest(**changes: object) -> list[dict]:
    fields = {"name": "mnist_cnn", "launch_args": ["search_spaces/mnist1d_cnn.yaml"],
              "storage": "s3://bucket/runs", "workers": 3, "cpus_per_worker": 8,
              "gpus_per_worker": 1, **changes}
    return RayJobManifest(**fields).documents()  # type: ignore[arg-type]


def test_the_rayjob_uses_kuberays_documented_fields_and_reruns_its_entrypoint() -> None:
    secret, job = _manifest()
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    assert set(job["spec"]) <= RAYJOB_SPEC_FIELDS
    spec = job["spec"]
    assert spec["backoffLimit"] >= 1 and spec["shutdownAfterJobFinishes"] is True
    assert shlex.split(spec["entrypoint"]) == [
        "python", "-m", "tuning", "launch", "search_spaces/mnist1d_cnn.yaml", "--name",
        "mnist_cnn", "--storage", "s3://bucket/runs", "--if-exists", "resume"]
    cluster = spec["rayClusterSpec"]
    assert set(cluster) <= CLUSTER_FIELDS
    assert set(cluster["headGroupSpec"]) <= HEAD_FIELDS
    assert cluster["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"  # no trial on the head
    [group] = cluster["workerGroupSpecs"]
    assert set(group) <= WORKER_FIELDS
    assert group["replicas"] == 3 and group["rayStartParams"]["num-cpus"] == "8"
    [worker] = group["template"]["spec"]["containers"]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # The token: a Secret, given to every pod (and the submitter) as RAY_AUTH_TOKEN.
    assert secret["kind"] == "Secret" and len(secret["stringData"]["auth_token"]) == 64
    pods = [cluster["headGroupSpec"]["template"], group["template"], spec["submitterPodTemplate"]]
    for pod in pods:
        env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
        assert env["RAY_AUTH_MODE"]["value"] == "token"
        assert env["RAY_AUTH_TOKEN"]["valueFrom"]["secretKeyRef"]["name"] == \
            secret["metadata"]["name"]


def test_storage_on_the_heads_own_disk_is_refused_and_a_shared_volume_mounted() -> None:
    with pytest.raises(SweepError, match=r"--storage: runs would be on the head pod's own disk"):
        _manifest(storage="runs")
    _, job = _manifest(storage=f"{STORAGE_MOUNT}/runs", volume_claim="sweeps",
                       working_dir="s3://bucket/project.zip")
    group = job["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]
    assert group["template"]["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == \
        "sweeps"
    assert group["template"]["spec"]["containers"][0]["volumeMounts"][0]["mountPath"] == \
        STORAGE_MOUNT
    assert yaml.safe_load(job["spec"]["runtimeEnvYAML"]) == {"working_dir":
                                                            "s3://bucket/project.zip"}
