"""What the doctor reads of the machine, behind one interface: the live machine, or a recorded reading.

    reader = LiveReader()                          # nvidia-smi, torch, installed packages, env, disk, the judge
    reader = RecordedReader.load("box.json")       # the same readings from a file (tests, a user's report)
    python -m rl.doctor --record box.json ...      # writes this machine's readings to a file

Secrets are never read: for WANDB_API_KEY / JUDGE_API_KEY only whether they are set. Reading never raises:
what cannot be read is None, or an error text the checks show.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rewards.judge.settings import JudgeSettings

NVIDIA_SMI_QUERY = [
    "nvidia-smi",
    "--query-gpu=index,name,memory.total,memory.used,memory.free,driver_version,compute_cap",
    "--format=csv,noheader,nounits",
]
PACKAGES = ("torch", "trl", "transformers", "peft", "accelerate", "datasets", "vllm", "unsloth", "unsloth_zoo",
            "xformers", "torchao", "bitsandbytes", "wandb")  # fmt: skip
ENV = ("CUDA_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "WORLD_SIZE", "HF_HUB_OFFLINE", "WANDB_MODE")
SECRETS = ("WANDB_API_KEY", "JUDGE_API_KEY")  # only "set" or absent


@dataclass
class Gpu:
    index: int
    name: str
    total_mib: float
    used_mib: float
    free_mib: float
    compute_cap: str | None = None

    @property
    def free_gib(self) -> float:
        return self.free_mib / 1024

    @property
    def total_gib(self) -> float:
        return self.total_mib / 1024


@dataclass
class TorchInfo:
    version: str | None = None  # "2.10.0+cu128"
    cuda: str | None = None  # torch.version.cuda: "12.8"; None for a CPU build
    cuda_available: bool = False
    device_count: int = 0
    error: str | None = None  # what torch said when CUDA would not initialise


@dataclass
class Readings:
    nvidia_smi: str | None = None  # raw output of NVIDIA_SMI_QUERY; None: no nvidia-smi on PATH
    nvidia_smi_error: str | None = None
    torch: TorchInfo = field(default_factory=TorchInfo)
    packages: dict[str, str | None] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)  # the ENV names that are set; SECRETS as "set"

    def gpus(self) -> list[Gpu]:
        """nvidia-smi's GPUs (physical indices); a line that does not parse is skipped."""
        gpus = []
        for line in (self.nvidia_smi or "").splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) < 6:
                continue
            try:
                gpus.append(Gpu(int(parts[0]), parts[1], float(parts[2]), float(parts[3]), float(parts[4]),
                                parts[6] if len(parts) > 6 and parts[6] not in ("", "[N/A]") else None))  # fmt: skip
            except ValueError:
                continue
        return gpus

    def driver(self) -> str | None:
        for line in (self.nvidia_smi or "").splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) >= 6 and parts[5]:
                return parts[5]
        return None


class Reader:
    """The interface the checks read through."""

    def machine(self) -> Readings:
        raise NotImplementedError

    def disk_free_gib(self, path: Path) -> float | None:
        raise NotImplementedError

    def judge_problem(self, judge: JudgeSettings) -> str | None:
        """None when the judge answers and serves judge.model; else the reason, one line."""
        raise NotImplementedError


class LiveReader(Reader):
    def __init__(self) -> None:
        self._machine: Readings | None = None
        self._judge: dict[tuple, str | None] = {}

    def machine(self) -> Readings:
        if self._machine is None:
            self._machine = Readings(
                *_nvidia_smi(), torch=_torch_info(), packages=_package_versions(),
                env={**{k: os.environ[k] for k in ENV if k in os.environ}, **{k: "set" for k in SECRETS if os.environ.get(k)}},
            )  # fmt: skip
        return self._machine

    def disk_free_gib(self, path: Path) -> float | None:
        existing = _nearest_existing(Path(path))
        try:
            return shutil.disk_usage(existing).free / 1024**3
        except OSError:
            return None

    def judge_problem(self, judge: JudgeSettings) -> str | None:
        key = (judge.base_url, judge.model)
        if key not in self._judge:
            from rewards.judge import JudgeUnavailable, preflight

            # one quick try: the doctor reports, training's own preflight retries
            quick = dataclasses.replace(judge, timeout_s=min(judge.timeout_s, 5.0), retries=0, required=True)
            try:
                preflight(quick)
                self._judge[key] = None
            except (JudgeUnavailable, ValueError) as err:
                self._judge[key] = " ".join(str(err).split())
        return self._judge[key]


class RecordedReader(Reader):
    """Readings from a file written by `--record` (or by hand, for tests): the machine, plus `disk_free_gib`
    (one number for every path) and `judge` (null: the judge answers; a text: why it does not)."""

    def __init__(self, readings: Readings, disk_free_gib: float | None = None, judge: str | None = None):
        self.readings, self.disk, self.judge = readings, disk_free_gib, judge

    @classmethod
    def load(cls, path: str | Path) -> RecordedReader:
        data = json.loads(Path(path).read_text())
        machine = data["machine"]
        readings = Readings(
            nvidia_smi=machine.get("nvidia_smi"), nvidia_smi_error=machine.get("nvidia_smi_error"),
            torch=TorchInfo(**machine.get("torch") or {}), packages=machine.get("packages") or {},
            env=machine.get("env") or {},
        )  # fmt: skip
        return cls(readings, data.get("disk_free_gib"), data.get("judge"))

    def machine(self) -> Readings:
        return self.readings

    def disk_free_gib(self, path: Path) -> float | None:
        return self.disk

    def judge_problem(self, judge: JudgeSettings) -> str | None:
        return self.judge


def record(reader: Reader, path: Path, judge: JudgeSettings | None) -> None:
    """Write the reader's readings as a file RecordedReader.load reads back."""
    data = {
        "machine": asdict(reader.machine()),
        "disk_free_gib": reader.disk_free_gib(Path("checkpoints")),
        "judge": reader.judge_problem(judge) if judge else None,
    }
    Path(path).write_text(json.dumps(data, indent=2) + "\n")


# ---- live readings ----
def _nvidia_smi() -> tuple[str | None, str | None]:
    if shutil.which(NVIDIA_SMI_QUERY[0]) is None:
        return None, None
    try:
        result = subprocess.run(NVIDIA_SMI_QUERY, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, f"nvidia-smi did not answer: {err}"
    if result.returncode != 0:
        return None, " ".join((result.stdout + result.stderr).split())[:300] or f"nvidia-smi exited {result.returncode}"
    return result.stdout, None


def _torch_info() -> TorchInfo:
    import warnings

    try:
        import torch
    except Exception as err:  # a broken install is a finding, not a crash
        return TorchInfo(error=f"import torch failed: {err}")
    info = TorchInfo(version=torch.__version__, cuda=torch.version.cuda)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            info.cuda_available = bool(torch.cuda.is_available())
            info.device_count = torch.cuda.device_count() if info.cuda_available else 0
        except Exception as err:
            info.error = " ".join(str(err).split())
    said = [" ".join(str(w.message).split()) for w in caught if "CUDA" in str(w.message) or "driver" in str(w.message)]
    if said and not info.error:
        info.error = said[0][:400]
    return info


def _package_versions() -> dict[str, str | None]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def _nearest_existing(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
