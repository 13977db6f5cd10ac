"""What `rl.train` costs per GRPO step over a plain TRL script, on the nano model with the same settings.

    OMP_NUM_THREADS=1 python -m bench.train_overhead [--steps 12] [--repeats 2]

Both sides load the nano base + SFT adapter, sample `num_generations` replies per prompt with
transformers' generate, score them with the same three rewards and take a GRPO step; the plain script
has none of our layers (no config mapping, no gates, no rollout metrics, no W&B, no evaluation). Runs
alternate (rl.train, plain, rl.train, plain, ...) so drift on a shared machine hits both; the figure is
the median of TRL's own `step_time` over the steps after the first (warm-up) of each run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def composed_config(steps: int):
    from rl.entry import compose

    return compose("config", ["+exp=english_only", "model=nano", "logging=none", "evaluate.enabled=false",
                              f"trainer.max_steps={steps}", f"trainer.save_steps={steps}",
                              "trainer.log_completions=false"])


def step_times(log_history: list[dict]) -> list[float]:
    return [entry["step_time"] for entry in log_history if "step_time" in entry][1:]


def run_rl_train(config, workdir: Path) -> list[float]:
    from rl.train import train

    run_dir = workdir / f"rl_train_{time.monotonic_ns()}"
    train(config, run_dir)
    state = json.loads((run_dir / f"checkpoint-{config.trainer.max_steps}" / "trainer_state.json").read_text())
    return step_times(state["log_history"])


def run_plain_trl(config, workdir: Path) -> list[float]:
    """The script a user would write with TRL alone."""
    import torch
    from datasets import Dataset
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
    from trl import GRPOConfig, GRPOTrainer

    from rewards import english_only, no_say_tags, word_count

    set_seed(config.seed)
    model_cfg, rollout = config.model, config.rollout
    tokenizer = AutoTokenizer.from_pretrained(model_cfg.name_or_path)
    base = AutoModelForCausalLM.from_pretrained(model_cfg.name_or_path, dtype=torch.float32)
    model = PeftModel.from_pretrained(base, model_cfg.adapter_path, is_trainable=True)
    records = [json.loads(line) for line in Path(config.data.path).read_text().splitlines() if line.strip()]
    dataset = Dataset.from_list([{"prompt": r["previous_conversation"]} for r in records])
    weights = [config.rewards[name].weight for name in ("english_only", "no_say_tags", "word_count")]
    args = GRPOConfig(
        output_dir=str(workdir / f"plain_{time.monotonic_ns()}"),
        seed=config.seed,
        reward_weights=weights,
        report_to="none",
        bf16=False,
        use_cpu=True,
        **config.trainer.grpo_args(),  # TRL's keys only (share_prompt is ours)
        num_generations=rollout.num_generations,
        max_completion_length=rollout.max_completion_length,
        temperature=rollout.temperature,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=[english_only, no_say_tags, word_count], args=args,
                          train_dataset=dataset, processing_class=tokenizer)
    trainer.train()
    return step_times(trainer.state.log_history)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    import logging

    logging.basicConfig(level=logging.WARNING)
    from rl.nano import ensure_nano

    ensure_nano()
    config = composed_config(args.steps)
    times: dict[str, list[float]] = {"rl.train": [], "plain TRL": []}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name, run in (("rl.train", run_rl_train), ("plain TRL", run_plain_trl)):
                got = run(config, Path(tmp))
                times[name] += got
                print(f"repeat {repeat + 1}: {name:9s} median step {statistics.median(got):.3f} s", flush=True)

    ours, plain = statistics.median(times["rl.train"]), statistics.median(times["plain TRL"])
    print("\n| runner | steps timed | median s/step | p90 s/step |\n|---|---|---|---|")
    for name, values in times.items():
        p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
        print(f"| {name} | {len(values)} | {statistics.median(values):.3f} | {p90:.3f} |")
    print(f"\nratio rl.train / plain TRL = {ours / plain:.3f} (target <= 1.10)")


if __name__ == "__main__":
    main()
