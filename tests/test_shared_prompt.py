"""Prompt-shared GRPO (rl/shared_prompt.py, rl/shared_prefill.py) computes what TRL computes, on the nano model.

Every batch is built as TRL builds it: real demo prompts in both prompt formats, tokenized by the trainer,
of different lengths (so left-padded), completions sampled from the policy (most stop early at EOS),
right-padded, rows shuffled. TRL's own numbers come from the installed GRPOTrainer's method itself.
"""

from __future__ import annotations

import json
import logging

import pytest
import torch

from tests.composed import composed

LOGP_TOL = 1e-5  # float32
# an entropy sums p log p over the whole vocabulary: float32 rounding grows with it (measured up to 1.3e-5 at 4,096)
ENTROPY_TOL = 5e-5
GRAD_REL_TOL = 1e-4


def _trainer(nano, tmp_path, group: int, **overrides):
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from rl.config import ModelConfig
    from rl.model import load_policy
    from rl.shared_prompt import shared_prompt_trainer

    torch.manual_seed(0)
    policy, tokenizer = load_policy(ModelConfig(name_or_path=str(nano.base), adapter_path=str(nano.sft),
                                                dtype="float32"))
    settings = dict(output_dir=str(tmp_path), per_device_train_batch_size=group * 3, num_generations=group,
                    max_completion_length=16, bf16=False, use_cpu=True, report_to=[], logging_steps=1,
                    loss_type="dapo", beta=0.0)
    settings.update(overrides)
    trainer = shared_prompt_trainer(GRPOTrainer)(
        model=policy, reward_funcs=[lambda completions, **_: [float(len(c[0]["content"]) % 3) for c in completions]],
        args=GRPOConfig(**settings),
        train_dataset=Dataset.from_dict({"prompt": [[{"role": "user", "content": "hi"}]] * 4}),
        processing_class=tokenizer)
    trainer.current_gradient_accumulation_steps = 1  # Trainer.train() sets it in a run
    return trainer


@pytest.fixture(scope="module")
def trainer(nano, tmp_path_factory):
    return _trainer(nano, tmp_path_factory.mktemp("shared"), group=8)


def _prompts(nano, prompt_format: str, count: int = 3) -> list:
    """`count` demo prompts of distinct token lengths (so the batch is left-padded)."""
    from rl.data import build_datasets

    train_set, _ = build_datasets(str(nano.data), prompt_format=prompt_format, system_prompt=None, eval_size=16,
                                  split_seed=0)
    chosen, lengths = [], set()
    for prompt in train_set["prompt"]:
        size = sum(len(m["content"]) for m in prompt)
        if size not in lengths:
            chosen.append(prompt)
            lengths.add(size)
        if len(chosen) == count:
            return chosen
    raise AssertionError("demo data has too few distinct prompts")


def _batch(trainer, prompts: list, group: int, seed: int = 0):
    """(input_ids, attention_mask, logits_to_keep) as TRL's _generate_and_score_completions builds them."""
    from trl.trainer.utils import pad

    prompt_ids, _, _ = trainer._tokenize_prompts(prompts)
    repeated = [ids for ids in prompt_ids for _ in range(group)]
    torch.manual_seed(seed)
    completions, _ = trainer._generate_single_turn(repeated, None, {}, group)
    order = torch.randperm(len(repeated), generator=torch.Generator().manual_seed(seed))
    p = [torch.tensor(repeated[i]) for i in order]
    c = [torch.tensor(completions[i]) for i in order]
    ids = torch.cat([pad(p, padding_value=trainer._tokenizer.pad_token_id, padding_side="left"),
                     pad(c, padding_value=trainer._tokenizer.pad_token_id, padding_side="right")], dim=1)
    mask = torch.cat([pad([torch.ones_like(t) for t in p], padding_value=0, padding_side="left"),
                      pad([torch.ones_like(t) for t in c], padding_value=0, padding_side="right")], dim=1)
    return ids, mask, max(len(t) for t in c)


def _trl(trainer, *args, **kwargs):
    from trl import GRPOTrainer

    return GRPOTrainer._get_per_token_logps_and_entropies(trainer, trainer.model, *args, **kwargs)


@pytest.mark.parametrize("prompt_format", ["messages", "history"])
@pytest.mark.parametrize("group", [2, 8, 16])
def test_logps_entropies_and_gradients_match_trl(trainer, nano, prompt_format, group):
    ids, mask, keep = _batch(trainer, _prompts(nano, prompt_format), group)
    lengths = mask[:, :-keep].sum(1)
    assert len(set(lengths.tolist())) == 3 and bool((mask[:, -keep:].sum(1) < keep).any())  # padded both sides
    scored = mask[:, -keep:].bool()
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    weights = torch.randn(ids.size(0), keep, generator=torch.Generator().manual_seed(1))

    theirs, their_entropy, _ = _trl(trainer, ids, mask, keep, compute_entropy=True)
    ours, our_entropy, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, keep,
                                                                      compute_entropy=True)
    assert not trainer.share_prompt_off
    assert (ours - theirs).abs()[scored].max() < LOGP_TOL
    assert (our_entropy - their_entropy).abs()[scored].max() < ENTROPY_TOL
    their_grads = torch.autograd.grad((theirs * weights * scored).sum(), params)
    our_grads = torch.autograd.grad((ours * weights * scored).sum(), params)
    for a, b in zip(our_grads, their_grads):
        assert (a - b).norm() <= GRAD_REL_TOL * b.norm()


def test_packing_scores_each_prompt_once(trainer, nano):
    from rl.shared_prompt import pack_groups

    ids, mask, keep = _batch(trainer, _prompts(nano, "messages"), group=8)
    packed, reason = pack_groups(ids, mask, keep)
    assert reason == ""
    assert packed.input_ids.size(0) == 3  # one sequence per prompt
    real = (packed.segments != -2).sum()
    assert real == int(mask[:, :-keep].sum(1).unique().sum() + mask[:, -keep:].sum())  # unique tokens only
    assert packed.targets.numel() == int(mask[:, -keep:].sum())


def test_loss_matches_trl_with_entropy_masking_kl_and_several_iterations(nano, tmp_path):
    """The loss options that read log-probs and entropies: top-entropy masking, the KL term against the
    reference, importance ratios against the old policy (num_iterations > 1), sequence-level sampling."""
    trainer = _trainer(nano, tmp_path, group=4, beta=0.04, top_entropy_quantile=0.5, num_iterations=2,
                       importance_sampling_level="sequence", loss_type="grpo")
    ids, mask, keep = _batch(trainer, _prompts(nano, "history"), group=4, seed=3)
    width = ids.size(1) - keep
    gen = torch.Generator().manual_seed(2)
    inputs = {"prompt_ids": ids[:, :width], "prompt_mask": mask[:, :width], "completion_ids": ids[:, width:],
              "completion_mask": mask[:, width:], "advantages": torch.randn(ids.size(0), generator=gen),
              "num_items_in_batch": mask[:, width:].sum()}
    with torch.no_grad():
        logps, _, _ = _trl(trainer, ids, mask, keep)
    inputs["old_per_token_logps"] = logps + 0.05 * torch.randn(logps.shape, generator=gen)
    inputs["ref_per_token_logps"] = logps + 0.1 * torch.randn(logps.shape, generator=gen)
    params = [p for p in trainer.model.parameters() if p.requires_grad]
    results = {}
    for off in ("test: TRL's path", ""):
        trainer.share_prompt_off = off
        loss = trainer.compute_loss(trainer.model, inputs)
        results[off] = (loss.detach(), torch.autograd.grad(loss, params))
    (loss_trl, grads_trl), (loss_ours, grads_ours) = results["test: TRL's path"], results[""]
    assert abs(loss_ours - loss_trl) <= 1e-5 * max(1.0, abs(loss_trl))
    for a, b in zip(grads_ours, grads_trl):
        assert (a - b).norm() <= GRAD_REL_TOL * b.norm()


def test_old_policy_and_reference_log_probs_are_shared_and_match(nano, tmp_path):
    """num_iterations > 1 and beta > 0: after sampling, TRL scores the batch under the old policy and the reference
    (the SFT adapter's frozen copy) through the same method; both passes are shared and equal TRL's."""
    trainer = _trainer(nano, tmp_path, group=4, num_iterations=2, beta=0.04)
    rows = [{"prompt": p} for p in _prompts(nano, "messages") for _ in range(4)]
    calls = []
    original = trainer._shared_logps
    trainer._shared_logps = lambda *a, **k: calls.append(1) or original(*a, **k)
    outputs = {}
    for off in ("", "test: TRL's path"):
        trainer.share_prompt_off = off
        torch.manual_seed(5)  # the same samples both ways (the shared prefill samples what generate samples)
        outputs[off] = trainer._generate_and_score_completions([dict(r) for r in rows])
    assert len(calls) >= 2, "the old-policy and reference passes did not go through the shared path"
    ours, theirs = outputs[""], outputs["test: TRL's path"]
    assert torch.equal(ours["completion_ids"], theirs["completion_ids"])
    scored = ours["completion_mask"].bool()
    for key in ("old_per_token_logps", "ref_per_token_logps"):
        assert (ours[key] - theirs[key]).abs()[scored].max() < LOGP_TOL, key


def test_a_fully_masked_batch_still_backpropagates(trainer, nano):
    """mask_truncated_completions can zero every completion of a micro-batch: the loss must stay differentiable."""
    ids, mask, keep = _batch(trainer, _prompts(nano, "messages"), group=2)
    mask = mask.clone()
    mask[:, -keep:] = 0
    logps, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, keep)
    assert not trainer.share_prompt_off and logps.abs().sum() == 0
    logps.sum().backward()
    trainer.model.zero_grad(set_to_none=True)


def test_shared_prefill_samples_what_generate_samples(trainer, nano):
    """rollout=hf: one prefill per prompt gives the same tokens as TRL's generate, greedy and seeded sampling."""
    from transformers import GenerationConfig

    from rl.shared_prefill import shared_prefill

    prompt_ids, _, _ = trainer._tokenize_prompts(_prompts(nano, "history"))
    model = trainer.model
    ids = [torch.tensor(p) for p in prompt_ids for _ in range(4)]
    width = max(len(t) for t in ids)
    input_ids = torch.stack([torch.cat([torch.zeros(width - len(t), dtype=torch.long), t]) for t in ids])
    attention_mask = torch.stack([torch.cat([torch.zeros(width - len(t)), torch.ones(len(t))]).long() for t in ids])
    calls = []
    original_forward = model.forward
    for do_sample in (False, True):
        config = GenerationConfig(max_new_tokens=12, do_sample=do_sample, pad_token_id=0,
                                  eos_token_id=trainer.eos_token_ids, temperature=1.0, top_k=0, top_p=1.0)
        with torch.no_grad():
            torch.manual_seed(7)
            plain = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
            with shared_prefill(model):
                model.forward = lambda *a, **k: calls.append(k["input_ids"].shape) or original_forward(*a, **k)
                torch.manual_seed(7)
                shared = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
                del model.forward
        assert torch.equal(plain, shared)
    assert "generate" not in vars(model)
    assert calls[0] == (3, width - 1)  # the prefill: three distinct prompts, not twelve rows


def test_sharing_falls_back_where_it_is_not_exact(trainer, nano):
    from trl import GRPOTrainer

    from rl.shared_prompt import model_reason, pack_groups, shared_prompt_trainer

    ids, mask, keep = _batch(trainer, _prompts(nano, "messages"), group=2)
    width = ids.size(1) - keep
    first_of = {tuple((ids[r, :width] * mask[r, :width]).tolist()): r for r in reversed(range(ids.size(0)))}
    distinct = torch.tensor(sorted(first_of.values()))
    assert len(distinct) == 3
    packed, reason = pack_groups(ids[distinct], mask[distinct], keep)
    assert packed is None and reason == "no prompt repeats in the batch"
    ours, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids[distinct], mask[distinct], keep)
    theirs, _, _ = _trl(trainer, ids[distinct], mask[distinct], keep)
    assert torch.equal(ours, theirs)  # TRL's own path, bit for bit

    config = trainer.model.config
    original = config._attn_implementation
    try:
        config._attn_implementation = "flash_attention_2"
        assert "flash_attention_2" in model_reason(trainer.model)
    finally:
        config._attn_implementation = original
    assert model_reason(trainer.model) == ""
    assert shared_prompt_trainer(GRPOTrainer, enabled=False) is GRPOTrainer
    assert shared_prompt_trainer(GRPOTrainer, backend="unsloth") is GRPOTrainer


def test_a_model_that_scores_packed_batches_differently_turns_sharing_off(nano, tmp_path):
    """The first shared batch is checked against TRL's scoring; a mismatch means TRL's path for the run."""
    trainer = _trainer(nano, tmp_path, group=4)
    ids, mask, keep = _batch(trainer, _prompts(nano, "messages"), group=4)
    base = trainer.model.get_base_model().model
    original = base.forward

    def ignores_4d_masks(*args, attention_mask=None, **kwargs):  # as a model with its own mask code might
        if attention_mask is not None and attention_mask.dim() == 4:
            attention_mask = None
        return original(*args, attention_mask=attention_mask, **kwargs)

    base.forward = ignores_4d_masks
    try:
        ours, _, _ = trainer._get_per_token_logps_and_entropies(trainer.model, ids, mask, keep)
        theirs, _, _ = _trl(trainer, ids, mask, keep)
    finally:
        del base.forward
    assert "differ from TRL's" in trainer.share_prompt_off
    assert torch.equal(ours, theirs)


@pytest.mark.slow
def test_seeded_nano_run_is_the_same_with_sharing_on_and_off(nano, tmp_path, caplog):
    """A few steps of the README's main command, sharing on (the default) and off: same samples, same rewards,
    losses within float noise. (The full 100-step comparison, measured once: bench/RESULTS.md.)"""
    from rl.train import train

    histories = {}
    for share in ("true", "false"):
        config = composed("+exp=english_only", "model=nano", "logging=none", "evaluate.enabled=false",
                          "trainer.max_steps=3", "trainer.save_steps=3", "trainer.log_completions=false",
                          f"trainer.share_prompt={share}")
        assert config.trainer.share_prompt is (share == "true")
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="rl.shared_prompt"):
            train(config, tmp_path / share)
        said = " | ".join(r.getMessage() for r in caplog.records if r.name == "rl.shared_prompt")
        assert ("checked against TRL's scoring" in said) is (share == "true"), said
        state = json.loads((tmp_path / share / "checkpoint-3" / "trainer_state.json").read_text())
        histories[share] = [e for e in state["log_history"] if "loss" in e]
    on, off = histories["true"], histories["false"]
    assert len(on) == len(off) == 3
    for a, b in zip(on, off):
        assert a["reward"] == pytest.approx(b["reward"], abs=1e-6)
        assert a["completions/mean_length"] == b["completions/mean_length"]
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-4)
        assert a["entropy"] == pytest.approx(b["entropy"], abs=1e-4)
