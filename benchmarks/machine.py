"""What the numbers were measured on: the machine and the versions."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any


def _first(path: str, prefix: str) -> str | None:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(prefix):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def machine_info() -> dict[str, Any]:
    """Cores, memory, CPU model, OS and current load."""
    mem_kib = _first("/proc/meminfo", "MemTotal")
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    return {
        "cpu": _first("/proc/cpuinfo", "model name") or platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "ram_gib": round(int(mem_kib.split()[0]) / 1024**2, 1) if mem_kib else None,
        "os": f"{platform.system()} {platform.release()}",
        "load_average": load,
    }


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    """Versions of Python and of the packages in play (this environment)."""
    return {
        "python": platform.python_version(),
        **{name: _version(name) for name in ("ssshelf", "aiobotocore", "botocore", "moto")},
    }
