"""rl.publish / rl.serving on disk: the gate, the manifest, versions, rollback, nothing half-written, CLI errors.

The real-server behaviour (vLLM picks up and reloads what is published) is in tests/test_publish_vllm.py.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from safetensors.torch import save_file

from rl import serving
from rl.publish import (
    DEFAULT_GATE,
    GateRefused,
    PublishError,
    ReloadError,
    gate_failures,
    publish,
    publish_from_config,
    reload_adapter,
    rollback,
)

REPO = Path(__file__).resolve().parents[1]
GOOD = {"english_rate": 1.0, "tag_rate": 0.0, "word_ok_rate": 0.99, "judge_mean": None, "n": 128}
BASE = "unsloth/Qwen2.5-1.5B-Instruct"


def make_adapter(folder: Path, seed: int = 0, base: str = "Qwen/Qwen2.5-1.5B-Instruct") -> Path:
    """A PEFT LoRA adapter folder as `save_pretrained` writes it (config + safetensors + README)."""
    folder.mkdir(parents=True)
    config = {"peft_type": "LORA", "base_model_name_or_path": base, "r": 4, "lora_alpha": 8,
              "target_modules": ["q_proj", "v_proj"], "task_type": "CAUSAL_LM"}  # fmt: skip
    (folder / "adapter_config.json").write_text(json.dumps(config))
    gen = torch.Generator().manual_seed(seed)
    tensors = {
        "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight": torch.randn(4, 64, generator=gen),
        "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight": torch.randn(64, 4, generator=gen),
    }
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "README.md").write_text("adapter card\n")
    return folder


def make_run(root: Path, metrics: dict | None, seed: int = 0) -> Path:
    """A training run dir: RUN/adapter + RUN/eval.json ({"before", "after"}); returns the adapter."""
    adapter = make_adapter(root / "adapter", seed)
    if metrics is not None:
        before = {**metrics, "english_rate": 0.5}
        (root / "eval.json").write_text(json.dumps({"before": before, "after": metrics}))
    return adapter


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    """Every entry under folder (links by target, files by content), to compare before/after."""
    out = {}
    for path in sorted(folder.rglob("*")) if folder.exists() else []:
        rel = path.relative_to(folder).as_posix()
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            out[rel] = sha(path)
    return out


# ---------------------------------------------------------------- the gate

GATE_CASES = [
    # metrics overriding GOOD, expected failing metric names
    ({}, []),
    ({"english_rate": 0.99, "tag_rate": 0.0, "word_ok_rate": 0.98}, []),  # exactly at the bounds passes
    ({"english_rate": 0.9899}, ["english_rate"]),
    ({"tag_rate": 0.001}, ["tag_rate"]),
    ({"word_ok_rate": 0.5, "english_rate": 0.2}, ["english_rate", "word_ok_rate"]),
    ({"english_rate": None}, ["english_rate"]),  # no value is not a pass
    ({"english_rate": float("nan")}, ["english_rate"]),
    ({"tag_rate": True}, ["tag_rate"]),  # a bool is not a rate
]


@pytest.mark.parametrize("override,failing", GATE_CASES)
def test_gate_failures_table(override, failing):
    failures = gate_failures({**GOOD, **override}, DEFAULT_GATE)
    assert [f.split()[0] for f in failures] == failing


def test_gate_missing_metric_and_bad_gate_spec():
    assert gate_failures({"tag_rate": 0.0}, {"english_rate": {"min": 0.9}}) == ["english_rate missing (got None)"]
    with pytest.raises(PublishError, match="serving.gate.english_rate"):
        gate_failures(GOOD, {"english_rate": {"above": 0.9}})


@given(
    english=st.floats(0, 1), tag=st.floats(0, 1), word_ok=st.floats(0, 1),
)  # fmt: skip
def test_gate_passes_exactly_when_every_bound_holds(english, tag, word_ok):
    metrics = {"english_rate": english, "tag_rate": tag, "word_ok_rate": word_ok}
    holds = english >= 0.99 and tag <= 0.0 and word_ok >= 0.98
    assert (gate_failures(metrics, DEFAULT_GATE) == []) == holds


def test_refuses_below_gate_listing_metrics_and_writes_nothing(tmp_path):
    adapter = make_run(tmp_path / "run", {**GOOD, "english_rate": 0.9, "tag_rate": 0.05})
    with pytest.raises(GateRefused) as err:
        publish(adapter, tmp_path / "serving", "fastresponse", BASE)
    message = str(err.value)
    assert "\n" not in message
    assert "english_rate 0.9 < 0.99" in message and "tag_rate 0.05 > 0" in message
    assert "word_ok_rate" not in message and "serving.force=true" in message
    assert snapshot(tmp_path / "serving") == {}


def test_force_publishes_below_gate_and_says_so(tmp_path):
    adapter = make_run(tmp_path / "run", {**GOOD, "word_ok_rate": 0.5})
    version = publish(adapter, tmp_path / "serving", "fastresponse", BASE, force=True)
    manifest = json.loads((version / "manifest.json").read_text())
    assert manifest["forced"] is True and manifest["gate_failures"] == ["word_ok_rate 0.5 < 0.98"]


def test_no_evaluation_is_refused_unless_forced(tmp_path):
    adapter = make_run(tmp_path / "run", None)
    with pytest.raises(GateRefused, match="no evaluation found"):
        publish(adapter, tmp_path / "serving", "fastresponse", BASE)
    assert publish(adapter, tmp_path / "serving", "fastresponse", BASE, force=True).name == "v1"


@pytest.mark.parametrize(
    "content,where",
    [
        ({"adapter": {**GOOD, "english_rate": 0.5}}, "adapter"),  # single-adapter evaluation: its only entry
        ({**GOOD, "english_rate": 0.5}, "adapter"),  # a flat metrics dict inside the adapter folder
    ],
)
def test_eval_json_forms(tmp_path, content, where):
    adapter = make_adapter(tmp_path / "run" / "adapter")
    (adapter / "eval.json" if where == "adapter" else adapter.parent / "eval.json").write_text(json.dumps(content))
    with pytest.raises(GateRefused, match="english_rate 0.5 < 0.99"):
        publish(adapter, tmp_path / "serving", "fastresponse", BASE)


def test_malformed_eval_json_names_the_file(tmp_path):
    adapter = make_run(tmp_path / "run", None)
    (tmp_path / "run" / "eval.json").write_text('{"before": {"english_rate": 1.0}, "after": 3}')
    with pytest.raises(PublishError, match=r"eval.json: field 'after'"):
        publish(adapter, tmp_path / "serving", "fastresponse", BASE)


def test_explicit_metrics_override_eval_json(tmp_path):
    adapter = make_run(tmp_path / "run", {**GOOD, "english_rate": 0.1})
    version = publish(adapter, tmp_path / "serving", "fastresponse", BASE, metrics=GOOD)
    assert json.loads((version / "manifest.json").read_text())["metrics"] == GOOD


# ---------------------------------------------------------------- what lands on disk


def test_manifest_and_base_model_rewrite(tmp_path):
    run = tmp_path / "run"
    adapter = make_run(run, GOOD)
    source_config = (adapter / "adapter_config.json").read_text()
    version = publish(adapter, tmp_path / "serving", "fastresponse", BASE)

    assert version == tmp_path / "serving" / ".versions" / "fastresponse" / "v1"
    published = json.loads((version / "adapter_config.json").read_text())
    assert published["base_model_name_or_path"] == BASE
    assert {k: v for k, v in published.items() if k != "base_model_name_or_path"} == {
        k: v for k, v in json.loads(source_config).items() if k != "base_model_name_or_path"
    }
    assert (adapter / "adapter_config.json").read_text() == source_config  # the run's adapter is untouched

    manifest = json.loads((version / "manifest.json").read_text())
    assert manifest["base_model"] == BASE
    assert manifest["base_model_path"] == "Qwen/Qwen2.5-1.5B-Instruct"
    assert manifest["source_run"] == str(run.resolve())
    assert manifest["source_adapter"] == str(adapter.resolve())
    assert manifest["metrics"] == GOOD and manifest["forced"] is False and manifest["version"] == 1
    assert manifest["git_commit"] is None or len(manifest["git_commit"]) == 40
    created = dt.datetime.fromisoformat(manifest["created"])
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 60
    files = {p.name for p in version.iterdir()} - {"manifest.json"}
    assert set(manifest["files"]) == files == {"adapter_config.json", "adapter_model.safetensors", "README.md"}
    for rel, digest in manifest["files"].items():
        assert sha(version / rel) == digest
    assert sha(version / "adapter_model.safetensors") == sha(adapter / "adapter_model.safetensors")


def test_versions_links_and_earlier_versions_kept(tmp_path):
    serving_dir = tmp_path / "serving"
    for seed in range(3):
        publish(make_adapter(tmp_path / f"a{seed}", seed), serving_dir, "fastresponse", BASE, metrics=GOOD)

    assert serving.list_versions(serving_dir, "fastresponse") == [1, 2, 3]
    assert os.readlink(serving_dir / "fastresponse") == ".versions/fastresponse/v3"  # relative: movable
    for v in (1, 2, 3):
        link = serving_dir / f"fastresponse-v{v}"
        assert os.readlink(link) == f".versions/fastresponse/v{v}"
        assert serving.verify(link) == []
        assert sha(link / "adapter_model.safetensors") == sha(tmp_path / f"a{v - 1}" / "adapter_model.safetensors")
    # what vLLM's resolver opens: DIR/NAME/adapter_config.json through the link
    assert json.loads((serving_dir / "fastresponse" / "adapter_config.json").read_text())["peft_type"] == "LORA"


def test_rollback_walks_back_and_publish_continues_numbering(tmp_path):
    serving_dir = tmp_path / "serving"
    for seed in range(3):
        publish(make_adapter(tmp_path / f"a{seed}", seed), serving_dir, "fastresponse", BASE, metrics=GOOD)
    assert rollback(serving_dir, "fastresponse").name == "v2"
    assert serving.current_version(serving_dir, "fastresponse") == 2
    assert rollback(serving_dir, "fastresponse").name == "v1"
    with pytest.raises(PublishError, match="first version v1, nothing to roll back"):
        rollback(serving_dir, "fastresponse")
    assert publish(tmp_path / "a0", serving_dir, "fastresponse", BASE, metrics=GOOD).name == "v4"
    assert serving.current_version(serving_dir, "fastresponse") == 4


def test_rollback_refuses_a_tampered_version(tmp_path):
    serving_dir = tmp_path / "serving"
    for seed in range(2):
        publish(make_adapter(tmp_path / f"a{seed}", seed), serving_dir, "fastresponse", BASE, metrics=GOOD)
    (serving_dir / "fastresponse-v1" / "adapter_model.safetensors").write_bytes(b"truncated")
    with pytest.raises(PublishError, match="adapter_model.safetensors: sha256 differs"):
        rollback(serving_dir, "fastresponse")
    assert serving.current_version(serving_dir, "fastresponse") == 2
    with pytest.raises(PublishError, match="nothing published"):
        rollback(serving_dir, "other")


def test_failed_copy_leaves_the_served_version_untouched(tmp_path):
    serving_dir = tmp_path / "serving"
    publish(make_adapter(tmp_path / "good"), serving_dir, "fastresponse", BASE, metrics=GOOD)
    before = snapshot(serving_dir)
    broken = make_adapter(tmp_path / "broken", seed=1)
    (broken / "zz_tokenizer.json").symlink_to(tmp_path / "gone")  # read fails after the weights are copied
    with pytest.raises(PublishError, match="copy failed"):
        publish(broken, serving_dir, "fastresponse", BASE, metrics=GOOD)
    assert snapshot(serving_dir) == before  # no v2, no staging folder, links unchanged


def test_leftover_staging_of_a_killed_publish_is_cleaned(tmp_path):
    serving_dir = tmp_path / "serving"
    publish(make_adapter(tmp_path / "a"), serving_dir, "fastresponse", BASE, metrics=GOOD)
    leftover = serving_dir / ".versions" / "fastresponse" / ".staging-v2-99999"
    leftover.mkdir()
    (leftover / "adapter_config.json").write_text("{")
    assert serving.list_versions(serving_dir, "fastresponse") == [1]
    assert publish(tmp_path / "a", serving_dir, "fastresponse", BASE, metrics=GOOD).name == "v2"
    assert not leftover.exists()


def test_plain_folder_at_name_is_kept_as_a_version(tmp_path):
    serving_dir = tmp_path / "serving"
    hand_copied = make_adapter(serving_dir / "fastresponse", seed=5, base=BASE)
    weights = sha(hand_copied / "adapter_model.safetensors")
    assert publish(make_adapter(tmp_path / "a"), serving_dir, "fastresponse", BASE, metrics=GOOD).name == "v2"
    assert rollback(serving_dir, "fastresponse").name == "v1"
    assert sha(serving_dir / "fastresponse" / "adapter_model.safetensors") == weights


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "fastresponse-v2"])
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(PublishError, match="serving.name"):
        publish(make_adapter(tmp_path / "a"), tmp_path / "serving", name, BASE, metrics=GOOD)


@pytest.mark.parametrize(
    "break_it,match",
    [
        (lambda a: (a / "adapter_config.json").write_text('{"peft_type": "IA3"}'), "field 'peft_type'"),
        (lambda a: (a / "adapter_config.json").write_text("{not json"), "cannot read the adapter config"),
        (lambda a: (a / "adapter_model.safetensors").unlink(), "no adapter weights"),
    ],
)
def test_bad_adapters_are_refused(tmp_path, break_it, match):
    adapter = make_adapter(tmp_path / "a")
    break_it(adapter)
    with pytest.raises(PublishError, match=match):
        publish(adapter, tmp_path / "serving", "fastresponse", BASE, metrics=GOOD)


def test_publish_from_config_reads_the_serving_block(tmp_path):
    config = {"serving": {"dir": str(tmp_path / "serving"), "name": "fr", "base_model": BASE,
                          "gate": {"english_rate": {"min": 0.5}}, "force": False, "reload_url": None}}  # fmt: skip
    version = publish_from_config(config, make_adapter(tmp_path / "a"), {"english_rate": 0.6})
    assert version == tmp_path / "serving" / ".versions" / "fr" / "v1"
    config["serving"]["base_model"] = None
    with pytest.raises(PublishError, match="serving.base_model: not set"):
        publish_from_config(config, tmp_path / "a", {"english_rate": 0.6})


def test_reload_against_no_server_fails_bounded_with_a_clear_message():
    port = _closed_port()
    with pytest.raises(ReloadError) as err:
        reload_adapter(f"http://127.0.0.1:{port}/v1", "fastresponse", "/srv/x/v2", attempts=2)
    assert f"127.0.0.1:{port} failed after 2 attempts" in str(err.value)
    assert "files are published at /srv/x/v2" in str(err.value)


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- the CLI


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rl.publish", *args], cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_cli_publish_refuse_and_rollback(tmp_path):
    serving_dir = tmp_path / "serving"
    common = [f"serving.dir={serving_dir}", "serving.name=fastresponse", f"serving.base_model={BASE}"]
    bad = make_run(tmp_path / "bad", {**GOOD, "english_rate": 0.7})
    good = make_run(tmp_path / "good", GOOD)

    refused = run_cli(f"adapter={bad}", *common)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip().splitlines() == [
        f"error: refusing to publish {bad}: below the gate: english_rate 0.7 < 0.99 "
        "(serving.force=true publishes anyway)"
    ]
    assert snapshot(serving_dir) == {}

    for adapter in (good, bad):
        done = run_cli(f"adapter={adapter}", *common, "serving.force=true")
        assert done.returncode == 0, done.stderr
    assert serving.current_version(serving_dir, "fastresponse") == 2
    assert not (REPO / ".hydra").exists() and not (REPO / "publish.log").exists()

    back = run_cli("rollback", *common)
    assert back.returncode == 0, back.stderr
    assert f"rolled back: fastresponse -> {serving_dir}/.versions/fastresponse/v1" in back.stdout
    assert serving.current_version(serving_dir, "fastresponse") == 1


@pytest.mark.parametrize(
    "args,message",
    [
        ((), "error: adapter=PATH is required"),
        (("adapter=/nonexistent/adapter",), "error: /nonexistent/adapter: adapter folder not found"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, args, message):
    done = run_cli(*args, f"serving.dir={tmp_path}/serving", f"serving.base_model={BASE}")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message)
