"""The KL anchor (trainer.beta > 0) is the SFT adapter the run started from, not the bare base model.

TRL (1.14.2, 1.15.0 and 1.16.0 alike, with peft >= 0.20) gives a PEFT model that already carries a
trained adapter a frozen copy of it named "ref" and computes the reference log-probs with it; a model
with a fresh adapter gets the base model (adapters disabled) instead. This pins the first case for our
`adapter_mode=continue` policy, and that the copy stays put while the policy trains.
"""

from __future__ import annotations

import pytest

from tests.composed import composed

pytestmark = pytest.mark.slow


def test_kl_reference_is_a_frozen_copy_of_the_sft_adapter(nano, tmp_path):
    import torch
    from datasets import Dataset
    from safetensors.torch import load_file
    from trl import GRPOConfig, GRPOTrainer

    from rewards.fit import reference_fit
    from rl.data import build_datasets
    from rl.model import load_policy

    config = composed("+exp=english_only", "model=nano", "logging=none")
    policy, tokenizer = load_policy(config.model)
    train_set, _ = build_datasets(nano.data, eval_size=128)
    args = GRPOConfig(output_dir=str(tmp_path), beta=0.04, max_steps=1, per_device_train_batch_size=8,
                      num_generations=8, max_completion_length=8, learning_rate=1e-2, report_to="none",
                      use_cpu=True, save_strategy="no", logging_steps=1)
    trainer = GRPOTrainer(model=policy, reward_funcs=[reference_fit], args=args,
                          train_dataset=Dataset.from_list(train_set.to_list()[:8]), processing_class=tokenizer)
    assert set(policy.peft_config) == {"default", "ref"}
    sft = load_file(str(nano.sft / "adapter_model.safetensors"))

    def weights(adapter: str) -> dict[str, torch.Tensor]:
        out = {}
        for name, param in policy.named_parameters():
            if f".{adapter}." in name:
                out[name.replace(f".{adapter}", "").replace("base_model.model.", "")] = param.detach().clone()
        return out

    def sft_weights() -> dict[str, torch.Tensor]:
        return {k.replace("base_model.model.", ""): v for k, v in sft.items()}

    ref, expected = weights("ref"), sft_weights()
    assert ref.keys() == expected.keys() and all(torch.equal(ref[k], expected[k]) for k in ref)
    assert not any(p.requires_grad for n, p in policy.named_parameters() if ".ref." in n)
    trainer.train()
    moved = weights("default")
    assert any(not torch.equal(moved[k], expected[k]) for k in moved)  # the policy trained...
    assert all(torch.equal(weights("ref")[k], expected[k]) for k in ref)  # ...its anchor did not
