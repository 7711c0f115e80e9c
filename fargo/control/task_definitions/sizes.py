"""Task sizes: parsing "1 vCPU" / "2 GB" forms and the Fargate cpu -> memory table.

Register-time checks accept every size Fargate has; `task_size_supported` adds what a platform
version allows, for RunTask and CreateService.
"""
from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from fargo.errors import ClientException
from fargo.control.task_definitions import messages as msg
from fargo.platform import PlatformVersion

_CPU = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(vcpu)?\s*$", re.IGNORECASE)
_MEMORY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(gb)?\s*$", re.IGNORECASE)

# cpu units -> allowed memory (MiB); Linux Fargate [botocore TaskDefinition.memory doc].
FARGATE_TASK_SIZES: dict[int, frozenset[int]] = {
    256: frozenset((512, 1024, 2048)),
    512: frozenset(range(1024, 4096 + 1, 1024)),
    1024: frozenset(range(2048, 8192 + 1, 1024)),
    2048: frozenset(range(4096, 16384 + 1, 1024)),
    4096: frozenset(range(8192, 30720 + 1, 1024)),
    8192: frozenset(range(16384, 61440 + 1, 4096)),
    16384: frozenset(range(32768, 122880 + 1, 8192)),
}
# 8 and 16 vCPU arrived with platform 1.4.0.
LARGE_TASK_CPUS = frozenset((8192, 16384))


def _scaled(text: str, pattern: re.Pattern[str]) -> int | None:
    """Number of units in `text`: plain integers as they are, a unit suffix times 1024."""
    match = pattern.match(text)
    if match is None:
        return None
    number, unit = match.groups()
    try:
        value = Decimal(number) * (1024 if unit else 1)
    except InvalidOperation:  # pragma: no cover - the regex admits only decimals
        return None
    if value != value.to_integral_value() or value <= 0:
        return None
    return int(value)


def parse_task_cpu(value: str | int) -> int:
    """"256", "1 vCPU", "1vcpu", "0.25 vCPU" -> cpu units; ClientException otherwise."""
    units = _scaled(str(value), _CPU)
    if units is None:
        raise ClientException(msg.INVALID_TASK_CPU)
    return units


def parse_task_memory(value: str | int) -> int:
    """"512", "1 GB", "1GB", "0.5GB" -> MiB; ClientException otherwise."""
    mib = _scaled(str(value), _MEMORY)
    if mib is None:
        raise ClientException(msg.INVALID_TASK_MEMORY)
    return mib


def fargate_size_exists(cpu: int, memory: int) -> bool:
    """Whether any Fargate platform runs a task of this size."""
    return memory in FARGATE_TASK_SIZES.get(cpu, frozenset())


def task_size_supported(cpu: int | str, memory: int | str, platform: PlatformVersion) -> bool:
    """Whether `platform` runs a task of this size (cpu units / MiB, or their string forms)."""
    cpu_units = parse_task_cpu(cpu) if isinstance(cpu, str) else cpu
    memory_mib = parse_task_memory(memory) if isinstance(memory, str) else memory
    if not fargate_size_exists(cpu_units, memory_mib):
        return False
    return platform.large_task_sizes or cpu_units not in LARGE_TASK_CPUS
