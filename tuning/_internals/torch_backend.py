"""Ray's ``TorchConfig``, without importing torch in the process that builds the trainer.

``ray.train.torch`` imports torch (444 MB of a process's memory against 131 MB, and a second of
CPU) at module level. Building the trainer needs none of it; setting up the workers' process
group does, and imports it then, wherever Train's controller runs. A run of one worker gets no
process group, so a one-worker trial's process never imports torch.
Private: ``_TorchBackend``, ``TorchConfigContextManager``, ``TrainingFramework``. Public way:
``TorchConfig``, which imports torch at module level (what runs where this layer is off).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from tuning._internals.probe import classes_in_source, layer, require_methods

LAYER = "lazy-torch-config"


@layer(LAYER, "building a trial's trainer without importing torch",
       "each trial's process imports torch, as Ray's TorchConfig does")
def _probe() -> None:
    # Read, not imported: importing ray.train.torch imports torch, which this layer saves.
    classes = classes_in_source("ray.train.torch", "config.py")
    require_methods(classes, {"_TorchBackend": {"on_start", "on_shutdown", "on_training_start"},
                              "TorchConfigContextManager": {"__enter__", "__exit__"}},
                    "ray.train.torch.config")


@cache
def lazy_torch_config_class() -> type:
    """The :class:`ray.train.backend.BackendConfig` that stands for ``TorchConfig`` (built on
    first call, where the probe passed)."""
    from ray.train.backend import Backend, BackendConfig
    from typing_extensions import override

    class _TorchDeviceContext:
        """Ray's ``TorchConfigContextManager`` (each worker's CUDA device), imported where
        it runs."""

        def __enter__(self) -> None:
            from ray.train.torch.config import TorchConfigContextManager

            self._inner = TorchConfigContextManager()
            self._inner.__enter__()

        def __exit__(self, *exc: object) -> bool:
            return bool(self._inner.__exit__(*exc))

    class _TorchBackendWhereItRuns(Backend):
        """Ray's ``_TorchBackend``, imported where it runs: in Train's controller."""

        share_cuda_visible_devices: bool = True  # as _TorchBackend: DDP ranks of a node see each GPU

        # A run of one worker trains without DDP (tuning.trial.worker): no process group, whose
        # set-up would cost a rendezvous and an import of torch, for collectives with no one to
        # talk to.
        @staticmethod
        def _delegate(hook: str, worker_group: Any, backend_config: Any) -> None:
            if len(worker_group) > 1:
                from ray.train.torch.config import TorchConfig, _TorchBackend

                config = TorchConfig(backend=backend_config.backend,
                                     init_method=backend_config.init_method,
                                     timeout_s=backend_config.timeout_s)
                getattr(_TorchBackend(), hook)(worker_group, config)

        @override
        def on_start(self, worker_group: Any, backend_config: Any) -> None:
            self._delegate("on_start", worker_group, backend_config)

        @override
        def on_shutdown(self, worker_group: Any, backend_config: Any) -> None:
            self._delegate("on_shutdown", worker_group, backend_config)

        @override
        def on_training_start(self, worker_group: Any, backend_config: Any) -> None:
            self._delegate("on_training_start", worker_group, backend_config)

    @dataclass
    class LazyTorchConfig(BackendConfig):
        backend: str | None = None
        init_method: str = "env"
        timeout_s: int = 1800

        @property
        def backend_cls(self) -> type[Backend]:
            return _TorchBackendWhereItRuns

        @property
        def train_func_context(self) -> type[_TorchDeviceContext]:
            return _TorchDeviceContext

        @property
        def framework(self) -> Any:
            # Train's name for the framework (newer releases ask it; older ones never do)
            from ray.train.v2._internal.util import TrainingFramework

            return TrainingFramework.TORCH

        @override
        def to_dict(self) -> dict[str, Any]:
            return {"backend": self.backend, "init_method": self.init_method,
                    "timeout_s": self.timeout_s}

    return LazyTorchConfig
