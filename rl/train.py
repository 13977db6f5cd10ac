"""GRPO on Pika's fast responses: start from the SFT LoRA, reward English-only, short, untagged replies.

    python -m rl.train +exp=english_only model=nano      # the whole loop on a CPU in minutes
    python -m rl.train +exp=english_only                  # the real job: Qwen2.5-1.5B + checkpoints/sft
    python -m rl.train +exp=english_only --cfg job        # print the composed config
    python -m rl.train +exp=english_only resume=true hydra.run.dir=checkpoints/english_only/<time>

What it does: each step samples `rollout.num_generations` replies per prompt from the policy, scores
them with the experiment's rewards (gates multiply the rest), and takes a GRPO step on the LoRA
weights with group-normalised advantages (TRL's GRPOTrainer). Before and after training it decodes
held-out prompts greedily and scores them with the same reward code (`eval.json`). Everything a run
writes goes to its run dir: `checkpoints/<exp>/<time>/` unless `hydra.run.dir` says otherwise.

The config is typed and checked before anything loads (rl/config.py, rl/entry.py); the setup it shares
with the evaluation and the tests is rl/run.py.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
from pathlib import Path

from common.atomic_write import write_text_atomic
from rl.config import Config

log = logging.getLogger("rl.train")


def main() -> None:
    from rl.entry import hydra_cli

    hydra_cli("config", train, record_failures=True)


def train(config: Config, run_dir: Path) -> dict:
    """Run one experiment end to end (`config` checked); returns the evaluation results ({"before", "after"})."""
    import torch
    from omegaconf import OmegaConf
    from transformers import set_seed

    from rewards.compose import build_reward_funcs
    from rl.adapter_files import stamp
    from rl.card import without_trl_card, write_card
    from rl.console import quiet_console, summary_lines
    from rl.evaluate import evaluate_policy
    from rl.metrics import metrics_line
    from rl.report import write_report
    from rl.resume import load_before, pick_checkpoint, save_before
    from rl.rollout import grpo_args, trainer_hooks
    from rl.rollout_metrics import with_rollout_metrics
    from rl.run import prepare
    from rl.shared_prompt import shared_prompt_trainer
    from rl.tracking import start_tracking

    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.resolved.yaml", OmegaConf.to_yaml(dataclasses.asdict(config)))
    run = prepare(config)  # seed, threads, machine checks, nano build, rewards + judge, data, model
    model_cfg, rollout, eval_cfg = config.model, config.rollout, config.evaluate

    # ---- rewards, as TRL calls them ----
    reward_funcs, reward_weights = build_reward_funcs(run.specs, group_size=rollout.num_generations,
                                                      **run.reward_kwargs)
    reward_funcs, logged = with_rollout_metrics(reward_funcs, run.rules)
    if not logged:
        log.warning("rollout metrics: every reward is asynchronous (judge only); rollout/* is not logged")

    # ---- evaluate the SFT policy (kept across resumes: it does not change) ----
    results: dict[str, dict] = {}
    rows: dict[str, list] = {}
    before_file = run_dir / "eval_before.json"

    def evaluate():
        return evaluate_policy(run.policy, run.tokenizer, run.held_out, run.specs, eval_cfg.n, eval_cfg.batch_size,
                               eval_cfg.max_new_tokens, **run.reward_kwargs)

    if eval_cfg.enabled:
        saved = load_before(before_file, model_cfg.adapter_path)
        if saved is not None:
            results["before"], rows["before"] = saved
        else:
            metrics, rows["before"] = evaluate()
            results["before"] = stamp(metrics, model_cfg.adapter_path)
            save_before(before_file, results["before"], rows["before"])
        log.info("before (SFT): %s", metrics_line(results["before"]))

    # ---- train ----
    # imported after the model: Unsloth swaps in its own GRPOTrainer when it loads
    from trl import GRPOConfig, GRPOTrainer

    run_name = f"{config.exp_name}/{run_dir.name}"
    tracker = start_tracking(config.logging, run_dir, config, run_name=run_name)
    use_bf16 = model_cfg.dtype == "bfloat16" and torch.cuda.is_available()
    args = GRPOConfig(
        output_dir=str(run_dir),
        seed=config.seed,
        reward_weights=reward_weights,
        report_to=tracker.report_to,
        run_name=run_name,
        bf16=use_bf16,
        use_cpu=not torch.cuda.is_available(),
        save_strategy="steps",
        **config.trainer.grpo_args(),
        **grpo_args(rollout, run.max_prompt_tokens),
    )
    # each group's prompt scored (and, with rollout=hf, prefilled) once; TRL's own path where that is not exact
    trainer_cls = shared_prompt_trainer(GRPOTrainer, config.trainer.share_prompt, model_cfg.backend)
    # TRL 1.15+ reseeds inside GRPOTrainer, 1.14.2 does not: seed here so every TRL starts training alike
    set_seed(config.seed)
    trainer_cls = without_trl_card(trainer_cls)  # rl.card writes the run's card at the end
    trainer = trainer_cls(
        model=run.policy,
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=run.train_set,
        processing_class=run.tokenizer,
        **trainer_hooks(rollout, run_dir),
    )
    quiet_console(trainer)  # one line per logging step; TRL's full dict goes to train.log and W&B
    checkpoint = pick_checkpoint(run_dir) if config.resume else None
    if config.resume:
        log.info("resume: %s", checkpoint or "no checkpoint in the run dir yet, starting from the SFT adapter")
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
    except KeyboardInterrupt:
        # a Ctrl-C during a save leaves that checkpoint without its last files: name the one resume would use
        last = pick_checkpoint(run_dir)
        log.error(
            "interrupted at step %d; last checkpoint: %s; continue with: python -m rl.train %s resume=true "
            "hydra.run.dir=%s", trainer.state.global_step, last, " ".join(_overrides()), run_dir,
        )
        tracker.finish()
        sys.exit(130)

    adapter_dir = run_dir / "adapter"
    trainer.save_model(str(adapter_dir))
    # with trainer.beta > 0 TRL keeps a frozen copy of the SFT adapter as "ref" (the KL anchor) and PEFT
    # saves it beside the trained one: not part of what this run made, nor of what gets served
    shutil.rmtree(adapter_dir / "ref", ignore_errors=True)
    log.info("adapter saved: %s", adapter_dir)

    # ---- evaluate the trained policy, report ----
    if eval_cfg.enabled:
        metrics, rows["after"] = evaluate()
        results["after"] = stamp(metrics, adapter_dir)  # what a publish of adapter/ is gated on
        log.info("after (GRPO): %s", metrics_line(results["after"]))
        results = write_report(run_dir, results, rows)
        tracker.log_evaluation(results, rows, run_dir / "eval.png")
    write_card(config, run_dir, results, trainer.state.global_step, (len(run.train_set), len(run.held_out)))
    _point_latest(run_dir, config.exp_name)
    tracker_line = tracker.where()
    tracker.finish()

    # ---- publish (gated on the evaluation) ----
    if config.publish.enabled:
        from rl.publish import publish_from_config

        publish_from_config(config, adapter_dir, results.get("after"), source_run=run_dir)
    print("\n".join(summary_lines(run_dir, results, tracker_line, rules=run.rules)), flush=True)
    return results


def _point_latest(run_dir: Path, exp_name: str) -> None:
    """checkpoints/<exp>/latest -> the newest finished run, so commands can name it without the time."""
    run_dir = Path(run_dir).resolve()  # resumed through .../latest: point at the real folder
    if run_dir.parent.name != exp_name:  # a run dir of the user's choosing: no sibling link next to it
        return
    link = run_dir.parent / "latest"
    if link.exists() and not link.is_symlink():
        return
    tmp = run_dir.parent / f".latest.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    os.symlink(run_dir.name, tmp)
    os.replace(tmp, link)


def _overrides() -> list[str]:
    from hydra.core.hydra_config import HydraConfig

    try:
        return [o for o in HydraConfig.get().overrides.task if not o.startswith(("resume=", "hydra.run.dir="))]
    except ValueError:
        return []


if __name__ == "__main__":
    main()
