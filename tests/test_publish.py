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
from rl.config import Config, ModelConfig, ServingConfig
from rl.adapter_files import AdapterError, check_adapter, content_hash, stamp
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
QWEN = "Qwen/Qwen2.5-1.5B-Instruct"


TARGETS = ["q_proj", "v_proj"]


def make_adapter(folder: Path, seed: int = 0, base: str = "Qwen/Qwen2.5-1.5B-Instruct", extra=None,
                 tensors: dict | None = None, rank: int = 4) -> Path:
    """A PEFT LoRA adapter folder as `save_pretrained` writes it (config + safetensors + README)."""
    folder.mkdir(parents=True)
    config = {"peft_type": "LORA", "base_model_name_or_path": base, "r": rank, "lora_alpha": 8,
              "target_modules": TARGETS, "task_type": "CAUSAL_LM", **(extra or {})}  # fmt: skip
    (folder / "adapter_config.json").write_text(json.dumps(config))
    gen = torch.Generator().manual_seed(seed)
    if tensors is None:
        prefix = "base_model.model.model.layers.0.self_attn"
        tensors = {
            f"{prefix}.q_proj.lora_A.weight": torch.randn(rank, 64, generator=gen),
            f"{prefix}.q_proj.lora_B.weight": torch.randn(64, rank, generator=gen),
            f"{prefix}.v_proj.lora_A.weight": torch.randn(rank, 64, generator=gen),
            f"{prefix}.v_proj.lora_B.weight": torch.randn(16, rank, generator=gen),
        }
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "README.md").write_text("adapter card\n")
    return folder


def evaluated(adapter: Path, metrics: dict) -> dict:
    """`metrics` as an evaluation of exactly `adapter` records them (its content hash)."""
    return stamp(metrics, adapter)


def make_run(root: Path, metrics: dict | None, seed: int = 0) -> Path:
    """A training run dir: RUN/adapter + RUN/eval.json ({"before", "after"}); returns the adapter."""
    adapter = make_adapter(root / "adapter", seed)
    if metrics is not None:
        before = {**metrics, "english_rate": 0.5, "adapter_sha256": "0" * 64}
        (root / "eval.json").write_text(json.dumps({"before": before, "after": evaluated(adapter, metrics)}))
    return adapter


def pub(adapter: Path, serving_dir: Path, name: str = "fastresponse", metrics: dict | None = GOOD, **kwargs) -> Path:
    """publish() of an adapter trained on the real job's base, with an evaluation of exactly it."""
    if metrics is not None:
        kwargs["metrics"] = evaluated(adapter, metrics)
    return publish(adapter, serving_dir, name, BASE, trained_on=QWEN, **kwargs)


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


def audit(serving_dir: Path) -> list[str]:
    """Problems of any version in a serving dir: it must match its manifest, load, and have passed a
    matching evaluation (its manifest's metrics are of exactly its content) or say forced."""
    problems = []
    for version in sorted(serving_dir.glob(".versions/*/v*")):
        problems += [f"{version}: {p}" for p in serving.verify(version)]
        manifest = json.loads((version / "manifest.json").read_text())
        try:
            check_adapter(version)
        except AdapterError as err:
            problems.append(f"{version}: does not load: {err}")
        evaluated_sha = (manifest.get("metrics") or {}).get("adapter_sha256")
        if not manifest["forced"] and not (evaluated_sha == manifest["adapter_sha256"] == content_hash(version)):
            problems.append(f"{version}: neither forced nor gated on an evaluation of its own content")
    for leftover in serving_dir.glob(".versions/*/.[sp]*"):
        problems.append(f"{leftover}: left over")
    return problems


@pytest.fixture(autouse=True)
def serving_dir_audit(request, tmp_path):
    """After every test: the serving dir it used holds only versions that are sound (the issue's bar)."""
    yield
    if request.node.get_closest_marker("tampered") is None and (tmp_path / "serving").exists():
        assert audit(tmp_path / "serving") == []


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
    ({"n": 99}, ["n"]),  # 99 held-out replies are not enough evidence to serve children
    ({"n": 100}, []),
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
    english=st.floats(0, 1), tag=st.floats(0, 1), word_ok=st.floats(0, 1), n=st.integers(0, 10_000),
)  # fmt: skip
def test_gate_passes_exactly_when_every_bound_holds(english, tag, word_ok, n):
    metrics = {"english_rate": english, "tag_rate": tag, "word_ok_rate": word_ok, "n": n}
    holds = english >= 0.99 and tag <= 0.0 and word_ok >= 0.98 and n >= 100
    assert (gate_failures(metrics, DEFAULT_GATE) == []) == holds


def test_refuses_below_gate_listing_metrics_and_writes_nothing(tmp_path):
    adapter = make_run(tmp_path / "run", {**GOOD, "english_rate": 0.9, "tag_rate": 0.05})
    with pytest.raises(GateRefused) as err:
        pub(adapter, tmp_path / "serving", metrics=None)
    message = str(err.value)
    assert "\n" not in message
    assert "english_rate 0.9 < 0.99" in message and "tag_rate 0.05 > 0" in message
    assert "word_ok_rate" not in message and "serving.force=true" in message
    assert snapshot(tmp_path / "serving") == {}


def test_force_publishes_below_gate_and_says_so(tmp_path):
    adapter = make_run(tmp_path / "run", {**GOOD, "word_ok_rate": 0.5})
    version = pub(adapter, tmp_path / "serving", metrics=None, force=True)
    manifest = json.loads((version / "manifest.json").read_text())
    assert manifest["forced"] is True and manifest["gate_failures"] == ["word_ok_rate 0.5 < 0.98"]


def test_no_evaluation_is_refused_unless_forced(tmp_path):
    adapter = make_run(tmp_path / "run", None)
    with pytest.raises(GateRefused, match="no evaluation of this adapter") as err:
        pub(adapter, tmp_path / "serving", metrics=None)
    assert f"python -m rl.evaluate +exp=english_only adapter={adapter}" in str(err.value)
    assert pub(adapter, tmp_path / "serving", metrics=None, force=True).name == "v1"


@pytest.mark.parametrize("form", ["single", "flat"])
def test_eval_json_forms(tmp_path, form):
    adapter = make_adapter(tmp_path / "run" / "adapter")
    metrics = evaluated(adapter, {**GOOD, "english_rate": 0.5})
    content = {"adapter": metrics} if form == "single" else metrics  # rl.evaluate compare_sft=false / flat
    (adapter / "eval.json").write_text(json.dumps(content))
    with pytest.raises(GateRefused, match="english_rate 0.5 < 0.99"):
        pub(adapter, tmp_path / "serving", metrics=None)


def test_malformed_eval_json_names_the_file(tmp_path):
    adapter = make_run(tmp_path / "run", None)
    (tmp_path / "run" / "eval.json").write_text('{"before": {"english_rate": 1.0}, "after": 3}')
    with pytest.raises(PublishError, match=r"eval.json: field 'after'"):
        pub(adapter, tmp_path / "serving", metrics=None)


def test_explicit_metrics_override_eval_json(tmp_path):
    adapter = make_run(tmp_path / "run", {**GOOD, "english_rate": 0.1})
    version = pub(adapter, tmp_path / "serving")
    assert json.loads((version / "manifest.json").read_text())["metrics"] == evaluated(adapter, GOOD)


# ---------------------------------------------------------------- what lands on disk


def test_manifest_and_base_model_rewrite(tmp_path):
    run = tmp_path / "run"
    adapter = make_run(run, GOOD)
    source_config = (adapter / "adapter_config.json").read_text()
    version = pub(adapter, tmp_path / "serving", metrics=None)

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
    assert manifest["metrics"] == evaluated(adapter, GOOD) and manifest["forced"] is False and manifest["version"] == 1
    assert manifest["adapter_sha256"] == content_hash(adapter) == content_hash(version)
    assert manifest["evaluation"] == str((run / "eval.json").resolve())
    assert manifest["git_commit"] is None or len(manifest["git_commit"]) == 40
    created = dt.datetime.fromisoformat(manifest["created"])
    assert abs((dt.datetime.now(dt.timezone.utc) - created).total_seconds()) < 60
    files = {p.name for p in version.iterdir()} - {"manifest.json"}
    assert set(manifest["files"]) == files == {"adapter_config.json", "adapter_model.safetensors"}
    for rel, digest in manifest["files"].items():
        assert sha(version / rel) == digest
    assert sha(version / "adapter_model.safetensors") == sha(adapter / "adapter_model.safetensors")


def test_versions_links_and_earlier_versions_kept(tmp_path):
    serving_dir = tmp_path / "serving"
    for seed in range(3):
        pub(make_adapter(tmp_path / f"a{seed}", seed), serving_dir)

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
        pub(make_adapter(tmp_path / f"a{seed}", seed), serving_dir)
    assert rollback(serving_dir, "fastresponse").name == "v2"
    assert serving.current_version(serving_dir, "fastresponse") == 2
    assert rollback(serving_dir, "fastresponse").name == "v1"
    with pytest.raises(PublishError, match="first version v1, nothing to roll back"):
        rollback(serving_dir, "fastresponse")
    assert pub(tmp_path / "a0", serving_dir).name == "v4"
    assert serving.current_version(serving_dir, "fastresponse") == 4


@pytest.mark.tampered
def test_rollback_refuses_a_tampered_version(tmp_path):
    serving_dir = tmp_path / "serving"
    for seed in range(2):
        pub(make_adapter(tmp_path / f"a{seed}", seed), serving_dir)
    (serving_dir / "fastresponse-v1" / "adapter_model.safetensors").write_bytes(b"truncated")
    with pytest.raises(PublishError, match="adapter_model.safetensors: sha256 differs"):
        rollback(serving_dir, "fastresponse")
    assert serving.current_version(serving_dir, "fastresponse") == 2
    with pytest.raises(PublishError, match="nothing published"):
        rollback(serving_dir, "other")


def test_leftover_staging_of_a_killed_publish_is_cleaned(tmp_path):
    serving_dir = tmp_path / "serving"
    pub(make_adapter(tmp_path / "a"), serving_dir)
    leftover = serving_dir / ".versions" / "fastresponse" / ".staging-v2-99999"
    leftover.mkdir()
    (leftover / "adapter_config.json").write_text("{")
    assert serving.list_versions(serving_dir, "fastresponse") == [1]
    assert pub(tmp_path / "a", serving_dir).name == "v2"
    assert not leftover.exists()


def test_plain_folder_at_name_is_kept_as_a_version(tmp_path):
    serving_dir = tmp_path / "serving"
    hand_copied = make_adapter(serving_dir / "fastresponse", seed=5, base=BASE)
    weights = sha(hand_copied / "adapter_model.safetensors")
    assert pub(make_adapter(tmp_path / "a"), serving_dir).name == "v2"
    assert rollback(serving_dir, "fastresponse").name == "v1"
    assert sha(serving_dir / "fastresponse" / "adapter_model.safetensors") == weights


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "fastresponse-v2"])
def test_bad_names_are_refused(tmp_path, name):
    with pytest.raises(PublishError, match="serving.name"):
        pub(make_adapter(tmp_path / "a"), tmp_path / "serving", name)


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
        pub(adapter, tmp_path / "serving")


def test_publish_from_config_reads_the_serving_block(tmp_path):
    config = Config(serving=ServingConfig(dir=str(tmp_path / "serving"), name="fr", base_model=BASE,
                                          gate={"english_rate": {"min": 0.5}}),
                    model=ModelConfig(name_or_path=QWEN))
    adapter = make_adapter(tmp_path / "a")
    version = publish_from_config(config, adapter, evaluated(adapter, {"english_rate": 0.6}))
    assert version == tmp_path / "serving" / ".versions" / "fr" / "v1"
    config.serving.base_model = None
    with pytest.raises(PublishError, match="serving.base_model: not set"):
        publish_from_config(config, adapter, evaluated(adapter, {"english_rate": 0.6}))


def test_reload_against_no_server_fails_bounded_with_a_clear_message():
    port = _closed_port()
    with pytest.raises(ReloadError) as err:
        reload_adapter(f"http://127.0.0.1:{port}/v1", "fastresponse", "/srv/x/v2", attempts=2)
    assert f"reload of 'fastresponse' at http://127.0.0.1:{port} failed after 2 attempts" in str(err.value)


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ---------------------------------------------------------------- the gate judges exactly what it publishes


def test_a_checkpoint_is_not_gated_on_the_runs_final_evaluation(tmp_path):
    """RUN/eval.json evaluates RUN/adapter; RUN/checkpoint-2 is another adapter and has no evaluation."""
    run = tmp_path / "run"
    make_run(run, GOOD)
    checkpoint = make_adapter(run / "checkpoint-2", seed=7)
    (checkpoint / "optimizer.pt").write_bytes(b"optimizer state")
    with pytest.raises(GateRefused) as err:
        pub(checkpoint, tmp_path / "serving", metrics=None)
    message = str(err.value)
    assert "no evaluation of this adapter" in message and str(run / "eval.json") in message
    assert f"python -m rl.evaluate +exp=english_only adapter={checkpoint}" in message and "\n" not in message
    assert snapshot(tmp_path / "serving") == {}


def test_an_evaluation_report_of_the_checkpoint_gates_it(tmp_path):
    """rl.evaluate's report (checkpoints/eval/<time>/eval.json) is found by the adapter's hash, newest first."""
    run = tmp_path / "run"
    make_run(run, GOOD)
    checkpoint = make_adapter(run / "checkpoint-2", seed=7)
    reports = tmp_path / "checkpoints" / "eval"
    old, new = reports / "t1", reports / "t2"
    for folder, english in ((old, 1.0), (new, 0.578)):
        folder.mkdir(parents=True)
        entry = evaluated(checkpoint, {**GOOD, "english_rate": english})
        (folder / "eval.json").write_text(json.dumps({"before": {**GOOD, "adapter_sha256": "0" * 64}, "after": entry}))
        os.utime(folder / "eval.json", (1000 + english, 1000 + english) if folder == old else None)
    with pytest.raises(GateRefused, match="english_rate 0.578 < 0.99"):
        pub(checkpoint, tmp_path / "serving", metrics=None, eval_dirs=[reports])
    (new / "eval.json").unlink()
    version = pub(checkpoint, tmp_path / "serving", metrics=None, eval_dirs=[reports])
    assert json.loads((version / "manifest.json").read_text())["evaluation"] == str((old / "eval.json").resolve())


def test_explicit_eval_file_of_another_adapter_is_refused(tmp_path):
    adapter = make_run(tmp_path / "run", GOOD)
    other = make_adapter(tmp_path / "other", seed=3)
    with pytest.raises(GateRefused, match="no evaluation of this adapter"):
        pub(other, tmp_path / "serving", metrics=None, eval_path=adapter.parent / "eval.json")
    with pytest.raises(GateRefused, match="the evaluation given is of another adapter"):
        publish(other, tmp_path / "serving", "fastresponse", BASE, trained_on=QWEN, metrics=evaluated(adapter, GOOD))


def test_force_is_loud_recorded_and_never_skips_validation(tmp_path, caplog):
    adapter = make_run(tmp_path / "run", None)
    with caplog.at_level("WARNING", logger="rl.publish"):
        version = pub(adapter, tmp_path / "serving", metrics=None, force=True)
    assert "FORCED PUBLISH" in caplog.text
    assert json.loads((version / "manifest.json").read_text())["forced"] is True
    broken = make_adapter(tmp_path / "broken")
    (broken / "adapter_model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(PublishError, match="not a readable weights file"):
        pub(broken, tmp_path / "serving", force=True)


# ---------------------------------------------------------------- validation before staging


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _retensor(adapter: Path, change) -> None:
    from safetensors.torch import load_file

    tensors = load_file(str(adapter / "adapter_model.safetensors"))
    change(tensors)
    save_file(tensors, str(adapter / "adapter_model.safetensors"))


Q = "base_model.model.model.layers.0.self_attn.q_proj"
BAD_ADAPTERS = [
    # (how to break it, what the one-line refusal says)
    (lambda a: (a / "adapter_config.json").write_text('{"peft_type": "IA3"}'), "field 'peft_type'"),
    (lambda a: (a / "adapter_config.json").write_text("{not json"), "cannot read the adapter config"),
    (lambda a: (a / "adapter_model.safetensors").unlink(), "no adapter weights"),
    (lambda a: _truncate(a / "adapter_model.safetensors"), "adapter_model.safetensors: not a readable weights file"),
    (lambda a: (a / "adapter_model.safetensors").write_text("not a safetensors file"), "not a readable weights file"),
    (lambda a: _retensor(a, lambda t: t[f"{Q}.lora_A.weight"].fill_(float("nan"))), "NaN or infinite"),
    (lambda a: _retensor(a, lambda t: t.update({f"{Q}.lora_A.weight": torch.zeros(8, 64)})), "do not fit rank r=4"),
    (lambda a: _retensor(a, lambda t: t.pop(f"{Q}.lora_B.weight")), "has lora_A but no lora_B"),
    (lambda a: _retensor(a, lambda t: t.update({Q.replace("q_proj", "o_proj") + ".lora_A.weight": torch.zeros(4, 64)})),
     "'o_proj' is not in the config's target_modules"),
    (lambda a: _retensor(a, lambda t: t.update({"base_model.model.lm_head.weight": torch.zeros(2, 2)})), "not a LoRA weight"),
    (lambda a: (a / "notes.txt").symlink_to(a.parent / "outside.txt"), "notes.txt: a symlink"),
    (lambda a: (a / "sub").symlink_to(a.parent, target_is_directory=True), "sub: a symlink"),
]


@pytest.mark.parametrize("break_it,match", BAD_ADAPTERS)
def test_bad_adapters_are_refused_before_anything_is_staged(tmp_path, break_it, match):
    serving_dir = tmp_path / "serving"
    pub(make_adapter(tmp_path / "good"), serving_dir)
    before = snapshot(serving_dir)
    (tmp_path / "outside.txt").write_text("secret")
    adapter = make_adapter(tmp_path / "a", seed=1)
    break_it(adapter)
    with pytest.raises(PublishError, match=match) as err:
        pub(adapter, serving_dir, force=True)  # force never skips validation
    assert "\n" not in str(err.value)
    assert snapshot(serving_dir) == before


def test_only_what_a_server_reads_is_copied(tmp_path):
    adapter = make_run(tmp_path / "run", None)
    for name in ("optimizer.pt", "rng_state.pth", "scheduler.pt", "trainer_state.json", "training_args.bin"):
        (adapter / name).write_bytes(b"trainer state")
    (adapter / "tokenizer.json").write_text("{}")
    (adapter / "tokenizer_config.json").write_text("{}")
    version = pub(adapter, tmp_path / "serving")
    assert {p.name for p in version.iterdir()} == {
        "adapter_config.json", "adapter_model.safetensors", "tokenizer.json", "tokenizer_config.json", "manifest.json"
    }  # fmt: skip


def test_an_adapter_of_another_base_is_refused_not_rewritten(tmp_path):
    adapter = make_adapter(tmp_path / "llama", base="meta-llama/Llama-3.1-8B-Instruct")
    with pytest.raises(PublishError) as err:
        pub(adapter, tmp_path / "serving")
    message = str(err.value)
    assert "'meta-llama/Llama-3.1-8B-Instruct'" in message and repr(QWEN) in message and "model.base_aliases" in message
    assert not (tmp_path / "serving").exists() or snapshot(tmp_path / "serving") == {}


def test_a_nano_adapter_published_for_the_real_job_names_model_nano(tmp_path):
    from tests.composed import composed

    config = composed("adapter=x", f"serving.dir={tmp_path / 'serving'}", config_name="publish_cli")
    assert config.model.name_or_path == QWEN  # the README's command: no model=nano
    adapter = make_adapter(tmp_path / "nano", base="checkpoints/nano/base")
    with pytest.raises(PublishError, match="trained on the nano model: publish it with model=nano"):
        publish_from_config(config, adapter, evaluated(adapter, GOOD))


@pytest.fixture
def tiny_base(tmp_path) -> Path:
    """A local base model config: hidden 64, 1 layer, 4 heads, 1 KV head (q: 64 -> 64, v: 64 -> 16)."""
    from transformers import Qwen2Config

    folder = tmp_path / "base"
    Qwen2Config(vocab_size=32, hidden_size=64, intermediate_size=128, num_hidden_layers=1, num_attention_heads=4,
                num_key_value_heads=1).save_pretrained(folder)  # fmt: skip
    return folder


@pytest.mark.parametrize(
    "change,match",
    [
        (lambda t: None, None),
        (lambda t: t.update({Q.replace("layers.0", "layers.3") + ".lora_A.weight": torch.zeros(4, 64),
                             Q.replace("layers.0", "layers.3") + ".lora_B.weight": torch.zeros(64, 4)}),
         "'model.layers.3.self_attn.q_proj' does not exist in the base model"),
        (lambda t: t.update({f"{Q}.lora_A.weight": torch.zeros(4, 32)}), "map 32 -> 64 features but the base model's module maps 64 -> 64"),
    ],
)
def test_shapes_are_checked_against_a_local_base_model(tmp_path, tiny_base, change, match):
    adapter = make_adapter(tmp_path / "a", base=str(tiny_base))
    _retensor(adapter, change)
    run = lambda: publish(adapter, tmp_path / "serving", "fastresponse", str(tiny_base),  # noqa: E731
                          metrics=evaluated(adapter, GOOD))
    if match is None:
        assert run().name == "v1"
    else:
        with pytest.raises(PublishError, match=match):
            run()


# ---------------------------------------------------------------- every failure leaves the previous version


STEP_MESSAGES = {
    "copy": "copying .*adapter_config.json into .* failed: injected",
    "fsync": "syncing .* to disk failed: injected",
    "rename": "naming the staged copy .*/v2 failed: injected",
    "link": "linking .*fastresponse-v2 -> .* failed: injected",
    "switch": "pointing .*/fastresponse at v2 failed: injected",
}


@pytest.mark.parametrize("step", list(STEP_MESSAGES))
def test_a_failing_step_says_which_and_changes_nothing(tmp_path, step):
    serving_dir = tmp_path / "serving"
    pub(make_adapter(tmp_path / "good"), serving_dir)
    before = snapshot(serving_dir)

    def fail(at: str) -> None:
        if at == step:
            raise OSError("injected")

    with pytest.raises(PublishError, match=STEP_MESSAGES[step]) as err:
        pub(make_adapter(tmp_path / "next", seed=1), serving_dir, on_step=fail)
    assert f"nothing changed: {serving_dir / 'fastresponse'} still points at v1" in str(err.value)
    assert snapshot(serving_dir) == before  # no orphan v2, no staging folder, no journal, links as they were
    assert pub(make_adapter(tmp_path / "again", seed=2), serving_dir).name == "v2"


def test_an_immutable_serving_dir_fails_at_the_link_step_and_leaves_no_orphan(tmp_path):
    """The issue's case: links cannot be made in DIR (chattr +i); the new version is removed again."""
    serving_dir = tmp_path / "serving"
    pub(make_adapter(tmp_path / "good"), serving_dir)
    before = snapshot(serving_dir)
    if subprocess.run(["chattr", "+i", str(serving_dir)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        with pytest.raises(PublishError) as err:
            pub(make_adapter(tmp_path / "next", seed=1), serving_dir)
    finally:
        subprocess.run(["chattr", "-i", str(serving_dir)], check=True)
    message = str(err.value)
    assert f"linking {serving_dir / 'fastresponse-v2'}" in message and "Operation not permitted" in message
    assert "copy" not in message.split(": ", 2)[1] and "still points at v1" in message
    assert snapshot(serving_dir) == before


def test_a_failed_reload_switches_nothing_and_says_what_serves(tmp_path):
    serving_dir = tmp_path / "serving"
    pub(make_adapter(tmp_path / "good"), serving_dir)
    before = snapshot(serving_dir)
    url = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(ReloadError) as err:
        pub(make_adapter(tmp_path / "next", seed=1), serving_dir, reload_url=url, reload_attempts=1)
    message = str(err.value)
    assert f"reload of 'fastresponse' at {url} failed after 1 attempts" in message
    assert f"nothing changed: {serving_dir / 'fastresponse'} still points at v1" in message
    assert f"the server at {url} did not take v1 back either" in message and "\n" not in message
    assert snapshot(serving_dir) == before


KILL_SCRIPT = """
import os, signal, sys
from rl.publish import publish
from rl.adapter_files import stamp
adapter, serving_dir, step = sys.argv[1:4]
def at(name):
    if name == step:
        os.kill(os.getpid(), signal.SIGKILL)
metrics = stamp({"english_rate": 1.0, "tag_rate": 0.0, "word_ok_rate": 1.0, "n": 128}, adapter)
publish(adapter, serving_dir, "fastresponse", "unsloth/Qwen2.5-1.5B-Instruct", metrics=metrics,
        trained_on="Qwen/Qwen2.5-1.5B-Instruct", on_step=at)
"""


@pytest.mark.parametrize("step", ["copy", "fsync", "rename", "link", "switch"])
def test_a_publish_killed_at_each_step_leaves_the_previous_version(tmp_path, step):
    serving_dir = tmp_path / "serving"
    pub(make_adapter(tmp_path / "good"), serving_dir)
    killed = subprocess.run([sys.executable, "-c", KILL_SCRIPT, str(make_adapter(tmp_path / "next", seed=1)),
                             str(serving_dir), step], cwd=REPO, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert killed.returncode == -9, killed.stderr
    assert serving.current_version(serving_dir, "fastresponse") == 1
    assert serving.verify(serving_dir / "fastresponse") == []
    # the next publish undoes what the killed one left (staging, an unserved v2, its link, the journal)
    assert pub(make_adapter(tmp_path / "again", seed=2), serving_dir).name == "v2"
    assert serving.list_versions(serving_dir, "fastresponse") == [1, 2]
    assert sha(serving_dir / "fastresponse" / "adapter_model.safetensors") == sha(
        tmp_path / "again" / "adapter_model.safetensors"
    )


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
        ((), "error: adapter: required, not set (pass adapter=PATH"),
        (("adapter=/nonexistent/adapter",), "error: /nonexistent/adapter: adapter folder not found"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, args, message):
    done = run_cli(*args, f"serving.dir={tmp_path}/serving", f"serving.base_model={BASE}")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message)
