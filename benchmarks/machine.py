"""The machine a benchmark ran on, in one line: cores, CPU, load, Python, numpy and its BLAS as threadpoolctl sees them."""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def blas() -> str:
    """numpy's BLAS: library, version, kernel architecture and threads (after any limit in force)."""
    import numpy as np
    from threadpoolctl import threadpool_info

    pools = [p for p in threadpool_info() if p.get("user_api") == "blas" and "numpy" in p.get("filepath", "")]
    if not pools:
        return f"numpy {np.__version__}, BLAS unknown"
    p = pools[0]
    kernel = f" {p['architecture']}" if p.get("architecture") else ""
    return f"numpy {np.__version__} with {p['internal_api']} {p['version']}{kernel}, {p['num_threads']} thread(s)"


def load() -> str:
    """The load average over 1, 5 and 15 minutes: above the core count, others' work shares the cores."""
    return ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "unknown"


def describe() -> str:
    return (
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {os.cpu_count()} cores, {cpu_model()}; "
        f"load average {load()}; Python {platform.python_version()}; {blas()}"
    )
