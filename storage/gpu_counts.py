"""GPUs per instance type and instance families, for cost per GPU-hour across clouds."""

from __future__ import annotations

import re

# From each provider's instance-type documentation. SageMaker ml.* types share their EC2 twin's
# count; GCP a2/a3 types state the count in their name (a2-highgpu-8g) and are parsed.
GPUS_PER_INSTANCE: dict[str, int] = {
    # AWS
    "p2.xlarge": 1,
    "p2.8xlarge": 8,
    "p2.16xlarge": 16,
    "p3.2xlarge": 1,
    "p3.8xlarge": 4,
    "p3.16xlarge": 8,
    "p3dn.24xlarge": 8,
    "p4d.24xlarge": 8,
    "p4de.24xlarge": 8,
    "p5.48xlarge": 8,
    "p5e.48xlarge": 8,
    "p5en.48xlarge": 8,
    "g4dn.xlarge": 1,
    "g4dn.2xlarge": 1,
    "g4dn.4xlarge": 1,
    "g4dn.8xlarge": 1,
    "g4dn.16xlarge": 1,
    "g4dn.12xlarge": 4,
    "g4dn.metal": 8,
    "g5.xlarge": 1,
    "g5.2xlarge": 1,
    "g5.4xlarge": 1,
    "g5.8xlarge": 1,
    "g5.16xlarge": 1,
    "g5.12xlarge": 4,
    "g5.24xlarge": 4,
    "g5.48xlarge": 8,
    "g6.xlarge": 1,
    "g6.2xlarge": 1,
    "g6.4xlarge": 1,
    "g6.8xlarge": 1,
    "g6.16xlarge": 1,
    "g6.12xlarge": 4,
    "g6.24xlarge": 4,
    "g6.48xlarge": 8,
    # Google Cloud (G2: NVIDIA L4)
    "g2-standard-4": 1,
    "g2-standard-8": 1,
    "g2-standard-12": 1,
    "g2-standard-16": 1,
    "g2-standard-32": 1,
    "g2-standard-24": 2,
    "g2-standard-48": 4,
    "g2-standard-96": 8,
    # Azure
    "standard_nc4as_t4_v3": 1,
    "standard_nc8as_t4_v3": 1,
    "standard_nc16as_t4_v3": 1,
    "standard_nc64as_t4_v3": 4,
    "standard_nc24ads_a100_v4": 1,
    "standard_nc48ads_a100_v4": 2,
    "standard_nc96ads_a100_v4": 4,
    "standard_nd96asr_v4": 8,
    "standard_nd96amsr_a100_v4": 8,
    "standard_nd96isr_h100_v5": 8,
}

_GCP_COUNTED = re.compile(r"^(a2|a3)-\w+-(\d+)g$", re.IGNORECASE)
_AZURE = re.compile(r"^Standard_([A-Z]+)\d+[a-z]*(_[A-Za-z0-9_]+)?$", re.IGNORECASE)


def gpus_per_instance(instance_type: str) -> int | None:
    """How many GPUs an instance type has, or None when it is not known."""
    name = instance_type.strip().lower().removeprefix("ml.")
    if counted := _GCP_COUNTED.match(name):
        return int(counted[2])
    return GPUS_PER_INSTANCE.get(name)


def instance_family(instance_type: str) -> str:
    """The family people compare: ``p4d`` (p4d.24xlarge), ``a2`` (a2-highgpu-8g), ``NC_T4_v3``."""
    name = instance_type.strip().removeprefix("ml.")
    if azure := _AZURE.match(name):
        return azure[1].upper() + (azure[2] or "")
    return re.split(r"[.-]", name, maxsplit=1)[0].lower()
