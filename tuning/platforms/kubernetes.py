"""A sweep as a KubeRay ``RayJob`` (``ray.io/v1``) that survives the loss of its head.

``lightsweep k8s SWEEP [--image IMAGE] [--workers N] [--cpus-per-worker C]
[--gpus-per-worker G] [--storage URI] [--volume-claim CLAIM] [--working-dir URI] [--out FILE]
[launch's flags]`` writes two manifests, for ``kubectl apply -f FILE``:

- a ``Secret`` holding the cluster's token (Ray's token authentication), given to every pod;
- a ``RayJob``: a head that runs no trials (``num-cpus: "0"``; it holds the sweep's driver), a
  worker group of the resources asked (GPUs as ``nvidia.com/gpu``), the entrypoint
  ``launch ... --name NAME --if-exists resume``, a ``backoffLimit`` under which KubeRay reruns
  the entrypoint on a new RayCluster after a head loss (the rerun continues the sweep from its
  storage), and ``shutdownAfterJobFinishes``.

The experiment's storage must outlive every pod: a cloud URI, or a path on a volume that every
pod mounts (``--volume-claim``); a path on the head's own disk is refused. The project reaches
the pods in the image (its working directory), or as a ``working_dir`` archive
(``--working-dir s3://.../project.zip``, in ``runtimeEnvYAML``).
"""

from __future__ import annotations

import re
import secrets
import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml

from tuning.errors import SweepError
from tuning.record.location import Location

API_VERSION = "ray.io/v1"
TOKEN_KEY = "auth_token"
STORAGE_MOUNT = "/mnt/lightsweep"


def k8s_name(text: str) -> str:
    """``text`` as a Kubernetes object name (lowercase letters, digits and dashes)."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return (name or "sweep")[:40].rstrip("-")


@dataclass(frozen=True)
class RayJobManifest:
    """What the RayJob asks for and runs.

    Attributes:
        name: The experiment's name (fixed: every rerun of the entrypoint is the same sweep).
        launch_args: ``launch``'s arguments as the user gave them (the sweep file or
            ``--hydra ...`` and flags), without ``--name``, ``--storage``, ``--if-exists``.
        storage: Where experiments go: a cloud URI, or a path under ``STORAGE_MOUNT`` on the
            volume ``volume_claim``.
        image: The container image of every pod (Ray and lightsweep's stack installed).
        workers: Worker pods.
        cpus_per_worker: CPUs of each worker pod (Ray's ``num-cpus``).
        gpus_per_worker: GPUs of each worker pod.
        memory_per_worker: Memory of each worker pod.
        volume_claim: A PersistentVolumeClaim every pod mounts at ``STORAGE_MOUNT``.
        working_dir: A ``working_dir`` URI (a zip of the project) for ``runtimeEnvYAML``; None
            when the image holds the project.
        backoff_limit: How often KubeRay reruns the entrypoint on a new cluster.
        token: The cluster's token (random by default).
    """

    name: str
    launch_args: list[str]
    storage: str
    image: str = "rayproject/ray:2.60.0-py311"
    workers: int = 1
    cpus_per_worker: int = 4
    gpus_per_worker: int = 0
    memory_per_worker: str = "16Gi"
    volume_claim: str | None = None
    working_dir: str | None = None
    backoff_limit: int = 5
    token: str = field(default_factory=lambda: secrets.token_hex(32))

    def check(self) -> None:
        """Refuses storage that a rerun on a new cluster would not find.

        Raises:
            SweepError: Naming the flag and the fix.
        """
        if Location.parse(self.storage).is_local:
            if self.volume_claim is None:
                raise SweepError(
                    f"--storage: {self.storage} would be on the head pod's own disk, which a "
                    "rerun after the head's loss does not have. Fix: give a cloud URI "
                    "(s3://bucket/runs), or a path on a volume every pod mounts (--volume-claim "
                    f"CLAIM --storage {STORAGE_MOUNT}/runs)")
            if not self.storage.startswith(f"{STORAGE_MOUNT}/"):
                raise SweepError(f"--storage: the volume is mounted at {STORAGE_MOUNT}. Fix: "
                                 f"--storage {STORAGE_MOUNT}/runs")

    def entrypoint(self) -> str:
        return shlex.join(["python", "-m", "tuning", "launch", *self.launch_args,
                           "--name", self.name, "--storage", self.storage,
                           "--if-exists", "resume"])

    def _secret_name(self) -> str:
        return f"{k8s_name(self.name)}-ray-token"

    def _env(self) -> list[dict[str, Any]]:
        return [{"name": "RAY_AUTH_MODE", "value": "token"},
                {"name": "RAY_AUTH_TOKEN", "valueFrom": {"secretKeyRef": {
                    "name": self._secret_name(), "key": TOKEN_KEY}}}]

    def _container(self, name: str, resources: dict[str, Any]) -> dict[str, Any]:
        container: dict[str, Any] = {"name": name, "image": self.image, "env": self._env(),
                                     "resources": {"requests": resources, "limits": resources}}
        if self.volume_claim:
            container["volumeMounts"] = [{"name": "lightsweep-storage",
                                          "mountPath": STORAGE_MOUNT}]
        return container

    def _pod(self, container: dict[str, Any]) -> dict[str, Any]:
        spec: dict[str, Any] = {"containers": [container]}
        if self.volume_claim:
            spec["volumes"] = [{"name": "lightsweep-storage",
                                "persistentVolumeClaim": {"claimName": self.volume_claim}}]
        return {"spec": spec}

    def documents(self) -> list[dict[str, Any]]:
        """The Secret and the RayJob."""
        self.check()
        worker_resources: dict[str, Any] = {"cpu": str(self.cpus_per_worker),
                                            "memory": self.memory_per_worker}
        if self.gpus_per_worker:
            worker_resources["nvidia.com/gpu"] = str(self.gpus_per_worker)
        worker_params = {"num-cpus": str(self.cpus_per_worker),
                         **({"num-gpus": str(self.gpus_per_worker)}
                            if self.gpus_per_worker else {})}
        spec: dict[str, Any] = {
            "entrypoint": self.entrypoint(),
            # Each retry makes a new RayCluster and reruns the entrypoint, which resumes.
            "backoffLimit": self.backoff_limit,
            "shutdownAfterJobFinishes": True,
            "ttlSecondsAfterFinished": 600,
            "rayClusterSpec": {
                "headGroupSpec": {
                    # The head holds the sweep's driver and Tune's trial drivers, no worker.
                    "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
                    "template": self._pod(self._container(
                        "ray-head", {"cpu": "2", "memory": "8Gi"})),
                },
                "workerGroupSpecs": [{
                    "groupName": "trials",
                    "replicas": self.workers,
                    "minReplicas": self.workers,
                    "maxReplicas": self.workers,
                    "rayStartParams": worker_params,
                    "template": self._pod(self._container("ray-worker", worker_resources)),
                }],
            },
            # `ray job submit` needs the token too.
            "submitterPodTemplate": {"spec": {"restartPolicy": "Never", "containers": [{
                "name": "ray-job-submitter", "image": self.image, "env": self._env()}]}},
        }
        if self.working_dir:
            spec["runtimeEnvYAML"] = yaml.safe_dump({"working_dir": self.working_dir})
        secret = {"apiVersion": "v1", "kind": "Secret",
                  "metadata": {"name": self._secret_name()}, "type": "Opaque",
                  "stringData": {TOKEN_KEY: self.token}}
        job = {"apiVersion": API_VERSION, "kind": "RayJob",
               "metadata": {"name": k8s_name(f"lightsweep-{self.name}"),
                            "labels": {"app.kubernetes.io/managed-by": "lightsweep"}},
               "spec": spec}
        return [secret, job]

    def yaml(self) -> str:
        """The manifests as one YAML stream, for ``kubectl apply -f``."""
        header = (f"# lightsweep sweep {self.name}: kubectl apply -f THIS_FILE; follow it with "
                  f"kubectl get rayjob {k8s_name(f'lightsweep-{self.name}')} -w\n")
        return header + yaml.safe_dump_all(self.documents(), sort_keys=False)
