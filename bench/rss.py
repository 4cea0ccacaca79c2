"""Peak resident memory of this process, measured so that a parent's size does not leak in."""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss_mb() -> float:
    """VmHWM from /proc (per address space, reset by exec). `ru_maxrss` is not used where /proc exists: Linux
    carries it across exec, so a child started from a large parent reports at least the parent's size."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
