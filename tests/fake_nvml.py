"""A stand-in for ``pynvml`` with scripted GPUs: the calls the agent makes, nothing more."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace

NVML_TEMPERATURE_GPU = 0


class NVMLError(Exception):
    """What pynvml raises; NotSupported readings come as this."""


@dataclass
class FakeGpu:
    """One GPU's readings; `processes` maps pid to (name, bytes of GPU memory)."""

    utilization: int = 0
    memory_used: int = 0
    memory_total: int = 24 * 1024**3
    power_mw: int | None = 60_000
    temperature: int = 40
    processes: dict[int, tuple[str, int]] = field(default_factory=dict)
    name: str = "NVIDIA A10G"
    uuid: str = "GPU-0"


class FakeNvml:
    """The module-level functions of pynvml over a list of FakeGpu."""

    NVML_TEMPERATURE_GPU = NVML_TEMPERATURE_GPU
    NVMLError = NVMLError

    def __init__(self, gpus: list[FakeGpu]) -> None:
        self.gpus = gpus

    def nvmlDeviceGetCount(self) -> int:
        return len(self.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> FakeGpu:
        return self.gpus[index]

    def nvmlDeviceGetUtilizationRates(self, gpu: FakeGpu) -> SimpleNamespace:
        return SimpleNamespace(gpu=gpu.utilization, memory=0)

    def nvmlDeviceGetMemoryInfo(self, gpu: FakeGpu) -> SimpleNamespace:
        return SimpleNamespace(used=gpu.memory_used, total=gpu.memory_total)

    def nvmlDeviceGetPowerUsage(self, gpu: FakeGpu) -> int:
        if gpu.power_mw is None:
            raise NVMLError("Not Supported")
        return gpu.power_mw

    def nvmlDeviceGetTemperature(self, gpu: FakeGpu, sensor: int) -> int:
        assert sensor == NVML_TEMPERATURE_GPU
        return gpu.temperature

    def nvmlDeviceGetComputeRunningProcesses(self, gpu: FakeGpu) -> list[SimpleNamespace]:
        return [
            SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, (_, used) in gpu.processes.items()
        ]

    def nvmlSystemGetProcessName(self, pid: int) -> bytes:
        for gpu in self.gpus:
            if pid in gpu.processes:
                return gpu.processes[pid][0].encode()
        raise NVMLError("Not Found")

    def nvmlDeviceGetUUID(self, gpu: FakeGpu) -> str:
        return gpu.uuid

    def nvmlDeviceGetName(self, gpu: FakeGpu) -> bytes:
        return gpu.name.encode()
