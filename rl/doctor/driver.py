"""Which NVIDIA driver a CUDA build needs, and what to do when the installed one is too old.

NVIDIA's rule (CUDA compatibility guide, "minor version compatibility"): a program built with CUDA X.y
runs on any driver of the same major release from the first one that shipped with X.0, without PTX JIT
(the project's wheels carry sm_80/sm_86 machine code, so Ampere never needs it). Forward-compatibility
packages, which would let an older driver run a newer major, are not supported on GeForce cards.
No imports beyond the standard library: scripts/check_extras.sh uses this table with a bare python.
"""

from __future__ import annotations

# CUDA major -> the oldest Linux driver that runs every build of that major (minor-version compatibility)
MIN_DRIVER = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}

# what each extra installs (pyproject.toml): torch's CUDA runtime
EXTRA_CUDA = {"gpu": "13.0", "gpu-cu12": "12.8"}


def parse_version(text: str | None) -> tuple[int, ...] | None:
    """'530.41.03' -> (530, 41, 3); '12.8' -> (12, 8); None or junk -> None."""
    try:
        return tuple(int(part) for part in str(text).strip().split("."))
    except ValueError:
        return None


def min_driver(cuda: str) -> str | None:
    """The oldest driver a CUDA build (e.g. '12.8', '13.0') runs on; None for an unknown major."""
    version = parse_version(cuda)
    return MIN_DRIVER.get(version[0]) if version else None


def driver_runs(driver: str, cuda: str) -> bool | None:
    """Does this driver run this CUDA build? None when either is unreadable."""
    need, have = parse_version(min_driver(cuda)), parse_version(driver)
    if need is None or have is None:
        return None
    return have >= need


def extra_for_driver(driver: str) -> str | None:
    """The GPU extra whose wheels this driver runs (the newest that fits), None when neither."""
    for extra, cuda in sorted(EXTRA_CUDA.items(), key=lambda item: parse_version(item[1]), reverse=True):
        if driver_runs(driver, cuda):
            return extra
    return None


def driver_cuda(driver: str) -> str | None:
    """The newest CUDA major.minor a driver supports natively ('530.41.03' -> '12.1'), as nvidia-smi prints it."""
    have = parse_version(driver)
    if have is None:
        return None
    best = None
    for floor, cuda in _NATIVE:
        if have >= parse_version(floor):
            best = cuda
    return best


# the driver each CUDA toolkit release shipped with (Linux), for the "CUDA Version" nvidia-smi shows
_NATIVE = [
    ("450.80.02", "11.0"), ("460.27.03", "11.2"), ("470.42.01", "11.4"), ("510.39.01", "11.6"),
    ("520.61.05", "11.8"), ("525.60.13", "12.0"), ("530.30.02", "12.1"), ("535.54.03", "12.2"),
    ("545.23.06", "12.3"), ("550.54.14", "12.4"), ("555.42.02", "12.5"), ("560.28.03", "12.6"),
    ("570.26", "12.8"), ("575.51.03", "12.9"), ("580.65.06", "13.0"),
]  # fmt: skip
