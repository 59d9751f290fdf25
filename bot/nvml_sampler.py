"""One sample of every GPU on this host through NVML (nvidia-ml-py's ``pynvml``) or a stand-in."""

from __future__ import annotations

import json
from datetime import datetime
from types import ModuleType
from typing import Any

MIB = 1024 * 1024


class NvmlUnavailable(Exception):
    """No NVIDIA driver, library or GPU here: the agent has nothing to report."""


def load_nvml() -> ModuleType:
    """The initialised ``pynvml`` module, or NvmlUnavailable saying why not."""
    try:
        import pynvml
    except ImportError as error:
        raise NvmlUnavailable(f"nvidia-ml-py is not installed ({error})") from None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as error:
        raise NvmlUnavailable(
            f"NVML could not start ({error}): is this a GPU host with the NVIDIA driver?"
        ) from None
    return pynvml


def _optional(call: Any, *args: Any) -> Any:
    """A reading some GPUs do not support (power, temperature) as None instead of an error."""
    try:
        return call(*args)
    except Exception:
        return None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class NvmlSampler:
    """Reads utilization, memory, power, temperature and compute processes of each GPU."""

    def __init__(
        self,
        nvml: Any,
        host: str,
        instance_id: str | None = None,
        provider: str | None = None,
    ) -> None:
        self.nvml = nvml
        self.host = host
        self.instance_id = instance_id
        self.provider = provider

    def _processes(self, handle: Any) -> list[dict[str, Any]]:
        nvml = self.nvml
        found = []
        for process in _optional(nvml.nvmlDeviceGetComputeRunningProcesses, handle) or []:
            name = _optional(nvml.nvmlSystemGetProcessName, process.pid)
            used = getattr(process, "usedGpuMemory", None)
            found.append(
                {
                    "pid": process.pid,
                    "name": _text(name).rsplit("/", 1)[-1] if name else f"pid {process.pid}",
                    "used_memory_mb": used / MIB if isinstance(used, int) else None,
                }
            )
        return found

    def sample(self, now: datetime) -> list[dict[str, Any]]:
        """One `gpu_samples` row per GPU, taken at `now` (naive UTC)."""
        nvml = self.nvml
        rows = []
        for index in range(nvml.nvmlDeviceGetCount()):
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            memory = _optional(nvml.nvmlDeviceGetMemoryInfo, handle)
            power = _optional(nvml.nvmlDeviceGetPowerUsage, handle)
            processes = self._processes(handle)
            rows.append(
                {
                    "host": self.host,
                    "instance_id": self.instance_id,
                    "provider": self.provider,
                    "gpu_index": index,
                    "gpu_uuid": _text(nvml.nvmlDeviceGetUUID(handle)),
                    "gpu_model": _text(nvml.nvmlDeviceGetName(handle)),
                    "sampled_at": now,
                    "utilization_pct": float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu),
                    "memory_used_mb": memory.used / MIB if memory else None,
                    "memory_total_mb": memory.total / MIB if memory else None,
                    "power_w": power / 1000 if power is not None else None,
                    "temperature_c": _optional(
                        nvml.nvmlDeviceGetTemperature, handle, nvml.NVML_TEMPERATURE_GPU
                    ),
                    "process_count": len(processes),
                    "processes_json": json.dumps(processes),
                    "source": "nvml",
                }
            )
        return rows
