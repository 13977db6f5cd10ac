"""The doctor's checks: each reads the run's config and the machine's readings and returns rows of the table.
Long because: one short function per row of the doctor's table, all of the same shape; a file per
check would hide the table's order.

A row is (check, status, found, fix): `ok`, `warn` (it can start, but look) or `fail` (it cannot start).
Nothing here starts a model, a server or a download; the only outside call is the judge's GET /models.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rl import gpu_budget
from rl.doctor.driver import EXTRA_CUDA, driver_cuda, driver_runs, extra_for_driver, min_driver, parse_version
from rl.doctor.readings import Reader, Readings

if TYPE_CHECKING:
    from rl.config import Config

OK, WARN, FAIL = "ok", "warn", "fail"
TIGHT_GIB = 1.0  # below this margin the estimate's own error decides: warn
BIG_MODEL_PARAMS = 100e6  # above this a CPU run takes days: the run needs a GPU


@dataclass
class Row:
    check: str
    status: str
    found: str
    fix: str = ""


@dataclass
class Run:
    """One experiment as the doctor sees it: its composed config and what follows from it."""

    name: str
    config: Config

    @property
    def rollout(self) -> str:
        return self.config.rollout.backend

    @property
    def unsloth(self) -> bool:
        return self.config.model.backend == "unsloth"

    def needs_vllm(self) -> bool:  # in this process (the server backends run vLLM in their own environment)
        return self.rollout in ("vllm_colocate", "vllm_server") or (self.unsloth and self.config.model.unsloth.fast_inference)

    def needs_gpu(self) -> bool:
        if self.rollout in ("vllm_colocate", "vllm_server") or self.unsloth:
            return True
        if self.nano_unbuilt():
            return False  # the project builds it on first use: a CPU model (before the build, no config.json)
        shape = gpu_budget.model_shape(self.config.model.name_or_path)
        return shape is None or shape.params() >= BIG_MODEL_PARAMS

    def judge_on(self) -> bool:
        return self.config.judge.enabled and "judge_coherence" in self.config.rewards

    def nano_unbuilt(self) -> bool:
        model = self.config.model
        return model.build_if_missing and not (Path(model.name_or_path) / "config.json").exists()


def install_command(extra: str | None) -> str:
    return f'pip install -e ".[{extra}]"' if extra else 'pip install -e ".[gpu-cu12]" (driver >= 525.60.13) or ".[gpu]" (>= 580)'


# ---- driver and GPUs ----
def check_driver(run: Run, m: Readings) -> Row:
    driver, t = m.driver(), m.torch
    torch_text = f"torch {t.version}" + (f" (CUDA {t.cuda} build)" if t.cuda else " (CPU build)")
    if m.nvidia_smi_error:
        return Row("driver", FAIL if run.needs_gpu() else WARN, f"nvidia-smi failed: {m.nvidia_smi_error}",
                   "fix the NVIDIA driver install (nvidia-smi must list the GPUs)")  # fmt: skip
    if driver is None:
        if run.needs_gpu():
            return Row("driver", FAIL, f"no NVIDIA driver (no nvidia-smi); {torch_text}",
                       "run the real job on the GPU box (docs/gpu.md), or the nano model here: model=nano")  # fmt: skip
        return Row("driver", OK, f"no NVIDIA driver; {torch_text}: fine for this CPU run")
    found = f"driver {driver} (CUDA {driver_cuda(driver) or '?'}); {torch_text}"
    suited = extra_for_driver(driver)
    if not t.cuda:
        status = FAIL if run.needs_gpu() else WARN
        return Row("driver", status, found + ": cannot use the GPUs",
                   f"{install_command(suited)} in a fresh venv (the CUDA build this driver runs)")  # fmt: skip
    runs = driver_runs(driver, t.cuda)
    if runs is False:
        fixes = []
        if suited:
            fixes.append(f"{install_command(suited)} in a fresh venv: CUDA {EXTRA_CUDA[suited]} wheels, run on driver "
                         f">= {min_driver(EXTRA_CUDA[suited])}")  # fmt: skip
        fixes.append(f"or upgrade the driver to >= {min_driver(t.cuda)} (stops what runs on the GPUs)")
        return Row("driver", FAIL, f"{found}: this build needs driver >= {min_driver(t.cuda)}", "; ".join(fixes))
    if t.error and not t.cuda_available:
        return Row("driver", FAIL, f"{found}; torch: {t.error}", "reinstall the GPU set in a fresh venv (docs/gpu.md)")
    native = parse_version(driver_cuda(driver))
    note = "" if native and native >= parse_version(t.cuda) else ", by CUDA minor-version compatibility"
    return Row("driver", OK, f"{found}: runs{note}")


def check_gpus(run: Run, m: Readings) -> Row:
    gpus, t = m.gpus(), m.torch
    visible = m.env.get("CUDA_VISIBLE_DEVICES")
    listed = ", ".join(f"{g.index}: {g.name} {g.total_gib:.0f} GiB" for g in gpus) or "none"
    found = f"nvidia-smi: {listed}; torch sees {t.device_count}" + (f" (CUDA_VISIBLE_DEVICES={visible})" if visible is not None else "")
    if not run.needs_gpu() and not gpus:
        return Row("GPUs", OK, "none; this run needs none (CPU)")
    if not gpus:
        return Row("GPUs", FAIL, found, "run on the GPU box; model=nano runs on a CPU")
    wanted = _placement(run, visible)
    missing = sorted({g for g in wanted if not g.isdigit() or int(g) not in {x.index for x in gpus}})
    if missing:
        return Row("GPUs", FAIL, f"{found}; the preset uses GPU {', '.join(missing)}",
                   "set rollout.server.gpus / train_gpus (or judge_server.gpus) to GPUs that exist")  # fmt: skip
    if run.rollout not in ("vllm_server", "vllm_lora") and t.device_count > 1 and not m.env.get("WORLD_SIZE"):
        return Row("GPUs", FAIL, f"{found}: one training process would see {t.device_count} GPUs",
                   f"CUDA_VISIBLE_DEVICES=0 python -m rl.train +exp={run.name} (the doctor too: CUDA_VISIBLE_DEVICES=0 python -m rl.doctor ...)")  # fmt: skip
    if t.cuda_available and t.device_count == 0:
        return Row("GPUs", FAIL, found, "CUDA_VISIBLE_DEVICES hides every GPU")
    return Row("GPUs", OK, found)


def _placement(run: Run, visible: str | None) -> list[str]:
    needs = gpu_budget.plan(run.config, visible) or []
    return [need.gpu for need in needs]


# ---- memory ----
def memory_verdict(run: Run, m: Readings, judge_running: bool) -> tuple[str, list[tuple[str, str, str]]]:
    """(status, [(gpu, status, text)]) of the run's budget against the memory free now."""
    needs = gpu_budget.plan(run.config, m.env.get("CUDA_VISIBLE_DEVICES"), judge_running=judge_running)
    if needs is None:
        return WARN, [("?", WARN, f"model {run.config.model.name_or_path!r}: shape unknown (no config.json), no budget")]
    gpus = {str(g.index): g for g in m.gpus()}
    rows, worst = [], OK
    for need in needs:
        gpu = gpus.get(need.gpu)
        if gpu is None:
            rows.append((need.gpu, FAIL, "no such GPU here"))
            worst = FAIL
            continue
        gib = need.gib(gpu.total_gib)
        margin = gpu.free_gib - gib
        status = FAIL if margin < 0 else WARN if margin < TIGHT_GIB else OK
        parts = " + ".join(f"{item.what} {item.size(gpu.total_gib):.1f}" for item in need.items)
        rows.append((need.gpu, status, f"needs {gib:.1f} GiB, {gpu.free_gib:.1f} of {gpu.total_gib:.1f} free ({parts})"))
        worst = FAIL if FAIL in (worst, status) else WARN if WARN in (worst, status) else OK
    return worst, rows


def check_memory(run: Run, m: Readings, judge_running: bool) -> list[Row]:
    if not m.gpus():
        return [] if not run.needs_gpu() else [Row("memory", FAIL, "no GPU to hold the run", "run on the GPU box")]
    _, verdicts = memory_verdict(run, m, judge_running)
    fix = {FAIL: "pick a preset that fits now (the presets rows), or lower the GPU's share / batch (docs/gpu.md)",
           WARN: "little margin: lower rollout.vllm.gpu_memory_utilization or trainer.per_device_train_batch_size"}  # fmt: skip
    return [Row(f"memory GPU {gpu}", status, text, fix.get(status, "")) for gpu, status, text in verdicts]


def check_presets(presets: list[Run], m: Readings, judge_running) -> list[Row]:
    """Which presets fit the memory free right now (never fails the chosen run)."""
    if not m.gpus():
        return [Row("presets", OK, "no GPU here: the GPU presets are for the GPU box (docs/gpu.md)")]
    rows = []
    for preset in presets:
        status, verdicts = memory_verdict(preset, m, judge_running(preset))
        if status == OK:
            used = ", ".join(f"GPU {gpu}" for gpu, _, _ in verdicts)
            rows.append(Row(f"preset {preset.name}", OK, f"fits now ({used})"))
        else:
            short = "; ".join(f"GPU {gpu}: {text.split(' (')[0]}" for gpu, s, text in verdicts if s != OK)
            rows.append(Row(f"preset {preset.name}", WARN, f"does not fit now: {short}" if status == FAIL else f"tight: {short}"))
    return rows


# ---- packages ----
def check_packages(run: Run, m: Readings, sets: dict[str, dict[str, str]], core: dict[str, str]) -> Row:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    got = m.packages

    def ok(name: str, spec: str) -> bool:
        version = got.get(name) or got.get(name.replace("-", "_"))
        try:
            return version is not None and SpecifierSet(spec).contains(version, prereleases=True)
        except InvalidSpecifier:
            return False

    shown = ", ".join(f"{n} {got.get(n) or '-'}" for n in ("torch", "trl", "transformers", "peft", "vllm", "unsloth"))
    broken = [f"{n} {got.get(n) or 'missing'} (needs {spec})" for n, spec in core.items() if n in got and not ok(n, spec)]
    if broken:
        return Row("packages", FAIL, f"{shown}; outside the project's bounds: {', '.join(broken)}", 'pip install -e "."')
    matched = [name for name, pins in sets.items() if all(ok(n, spec) for n, spec in pins.items())]
    suited = extra_for_driver(m.driver()) if m.driver() else None
    if matched:
        return Row("packages", OK, f"{shown}: the known-good set .[{matched[0]}]")
    if run.needs_vllm() and not got.get("vllm"):
        return Row("packages", FAIL, f"{shown}: rollout={run.rollout} needs vLLM here", install_command(suited))
    if run.unsloth and not got.get("unsloth"):
        return Row("packages", FAIL, f"{shown}: model.backend=unsloth needs Unsloth", install_command(suited))
    if run.rollout == "vllm_server":
        from rl.rollout import trl_vllm_server_problem

        problem = trl_vllm_server_problem(got.get("trl"), got.get("vllm"))
        if problem:
            return Row("packages", FAIL, f"{shown}: {problem}", install_command("gpu-cu12"))
    if got.get("vllm") or got.get("unsloth") or run.needs_gpu():
        closest = max(sets, key=lambda name: sum(ok(n, s) for n, s in sets[name].items()))
        off = [f"{n} {got.get(n) or got.get(n.replace('-', '_')) or 'missing'} (pinned {s.lstrip('=')})"
               for n, s in sets[closest].items() if not ok(n, s)]  # fmt: skip
        return Row("packages", WARN, f"{shown}: not a known-good GPU set; vs .[{closest}]: {', '.join(off)}",
                   f"{install_command(suited)} in a fresh venv")  # fmt: skip
    return Row("packages", OK, f"{shown}: the core set (CPU face)")


def install_sets() -> tuple[dict[str, dict[str, str]], dict[str, str]]:
    """({extra: {package: specifier}} of the GPU extras, {package: specifier} of the core deps), read from
    pyproject.toml in a checkout, else from the installed project's metadata."""
    from packaging.requirements import Requirement

    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    requirements: list[tuple[str | None, str]] = []
    if pyproject.exists():
        import tomllib

        project = tomllib.loads(pyproject.read_text())["project"]
        requirements += [(None, r) for r in project["dependencies"]]
        requirements += [(extra, r) for extra in EXTRA_CUDA for r in project["optional-dependencies"].get(extra, [])]
    else:
        from importlib.metadata import requires

        for line in requires("pika-grpo") or []:
            req = Requirement(line)
            extra = next((e for e in EXTRA_CUDA if req.marker and req.marker.evaluate({"extra": e})), None)
            if req.marker is None or extra:
                requirements.append((extra, f"{req.name}{req.specifier}"))
    sets: dict[str, dict[str, str]] = {extra: {} for extra in EXTRA_CUDA}
    core: dict[str, str] = {}
    for extra, line in requirements:
        req = Requirement(line)
        (sets[extra] if extra else core)[req.name.replace("_", "-").lower()] = str(req.specifier)
    return sets, core


# ---- files and services ----
def check_base_model(run: Run, m: Readings) -> Row:
    name = run.config.model.name_or_path
    if Path(name).exists():
        return Row("base model", OK, f"{name} (local)")
    if run.nano_unbuilt():
        return Row("base model", OK, f"{name}: the nano model, built on first use (about 4 minutes on one core)")
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = isinstance(try_to_load_from_cache(name, "config.json"), str)
    except Exception:
        cached = False
    if cached:
        return Row("base model", OK, f"{name} (in the Hugging Face cache)")
    if m.env.get("HF_HUB_OFFLINE") in ("1", "true", "True"):
        return Row("base model", FAIL, f"{name}: not in the Hugging Face cache and HF_HUB_OFFLINE is set",
                   f"huggingface-cli download {name} on a machine with internet, or unset HF_HUB_OFFLINE")  # fmt: skip
    return Row("base model", WARN, f"{name}: not in the Hugging Face cache; the first run downloads it",
               f"huggingface-cli download {name} (ahead of time)")  # fmt: skip


def check_adapter(run: Run) -> Row:
    from rl.model import ModelConfigError, check_adapter_base

    model = run.config.model
    adapter = Path(model.adapter_path)
    if run.nano_unbuilt():
        return Row("SFT adapter", OK, f"{adapter}: built with the nano model on first use")
    try:
        check_adapter_base(adapter, model.name_or_path, model.base_aliases)
    except ModelConfigError as err:
        fix = f"copy your SFT LoRA (adapter_config.json + weights) to {adapter}, or set model.adapter_path=DIR"
        return Row("SFT adapter", FAIL, str(err), fix if "no adapter_config.json" in str(err) else "")
    import json

    cfg = json.loads((adapter / "adapter_config.json").read_text())
    return Row("SFT adapter", OK, f"{adapter}: LoRA r={cfg.get('r')} on {cfg.get('base_model_name_or_path')}")


def check_data(run: Run) -> Row:
    from rl.data import DataError, load_records, summarize

    data = run.config.data
    try:
        records = load_records(data.path)
        s = summarize(records, data.prompt_format, data.system_prompt, data.eval_size, data.split_seed)
    except (DataError, OSError) as err:
        return Row("data", FAIL, " ".join(str(err).split()), f"python -m rl.data check {data.path}")
    split = s["split"]
    found = (f"{data.path}: {s['records']} records, {s['conversations']} conversations, "
             f"{split['train']} train / {split['held_out']} held-out prompts")  # fmt: skip
    if not split["train"]:
        return Row("data", FAIL, found, "lower data.eval_size")
    return Row("data", OK, found)


def check_judge(run: Run, reader: Reader) -> tuple[Row, bool]:
    """(row, the judge answers)."""
    judge = run.config.judge
    if not run.judge_on():
        return Row("judge", OK, "off (judge=none or no judge_coherence reward)"), False
    problem = reader.judge_problem(judge)
    if problem is None:
        return Row("judge", OK, f"{judge.base_url} serves {judge.model}"), True
    status = FAIL if judge.required else WARN
    return Row("judge", status, problem, judge_command(run.config) or "start it (docs/judge.md), or judge=none"), False


def judge_command(config: Config) -> str | None:
    """The command that starts the judge's vLLM server where the preset puts it (judge_server)."""
    from urllib.parse import urlparse

    server, judge = config.judge_server, config.judge
    if server.gpus is None or not judge.model:
        return None
    url = urlparse(judge.base_url or "")
    args = [f"CUDA_VISIBLE_DEVICES={server.gpus}", "vllm", "serve", judge.model]
    for key in ("quantization", "dtype", "gpu_memory_utilization", "max_model_len", "max_num_seqs"):
        if getattr(server, key) is not None:
            args += [f"--{key.replace('_', '-')}", str(getattr(server, key))]
    args += ["--host", url.hostname or "127.0.0.1", "--port", str(url.port or 8001)]
    return "start the judge: " + " ".join(args)


def check_wandb(run: Run, m: Readings) -> Row:
    from rl.tracking import wandb_mode

    logging = run.config.logging
    if logging.backend == "none":
        return Row("W&B", OK, "disabled (logging=none)")
    try:
        mode = wandb_mode(m.env)  # the key's presence only: the reader never reads its value
    except ValueError as err:
        return Row("W&B", FAIL, str(err), "WANDB_MODE=online, offline or disabled (or unset)")
    if mode == "disabled":
        return Row("W&B", OK, "disabled (WANDB_MODE=disabled)")
    if not m.packages.get("wandb"):
        return Row("W&B", FAIL, "logging=wandb but wandb is not installed", 'pip install -e "."')
    if mode == "online":
        key = "WANDB_API_KEY is set (not shown)" if m.env.get("WANDB_API_KEY") else "no WANDB_API_KEY: wandb login's"
        return Row("W&B", OK, f"online ({key}), project {logging.project}")
    return Row("W&B", OK, "offline: runs are kept in the run dir (wandb sync later); set WANDB_API_KEY for online")


def check_serving(run: Run) -> Row:
    publish_on = run.config.publish.enabled
    folder = Path(run.config.serving.dir)
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    writable = os.access(existing, os.W_OK | os.X_OK) and existing.is_dir()
    found = f"{folder}" + ("" if folder.exists() else f" (created on first publish, in {existing})")
    if writable:
        return Row("serving dir", OK, f"{found}: writable")
    return Row("serving dir", FAIL if publish_on else WARN, f"{found}: not writable",
               f"serving.dir=DIR that this user can write (the vLLM server's VLLM_LORA_RESOLVER_CACHE_DIR)")  # fmt: skip


def check_disk(run: Run, reader: Reader) -> Row:
    root = Path("checkpoints")
    free = reader.disk_free_gib(root)
    shape = gpu_budget.train_shape(run.config)
    keep = run.config.trainer.save_total_limit or 3  # None keeps every checkpoint: budget three
    # kept checkpoints + the one being written + the final adapter, plus eval files and W&B's offline logs
    need = (gpu_budget.checkpoint_gib(shape) * (keep + 2) if shape else 1.0) + 0.5
    if free is None:
        return Row("disk", WARN, f"{root}: free space unreadable")
    found = f"{root}: {free:.1f} GiB free, a run writes about {need:.1f} GiB"
    return Row("disk", OK if free >= need else FAIL, found, "" if free >= need else "free space, or hydra.run.dir=DIR elsewhere")
