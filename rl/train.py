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

This is the only module that sees Hydra's config; everything below it takes plain dicts.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from common.atomic_write import write_text_atomic

log = logging.getLogger("rl.train")


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    config = OmegaConf.to_container(cfg, resolve=True)
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    from rl.failed_run import record_failure

    try:
        train(config, run_dir)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        record_failure(run_dir, str(err))
        sys.exit(1)
    except Exception as err:  # a bug or a crash: the traceback goes to the console and the log too
        record_failure(run_dir, " ".join(str(err).split()) or type(err).__name__, err)
        raise


class UserError(Exception):
    """A problem the user can fix from the message alone; reported in one line, no traceback."""


def train(config: dict, run_dir: Path) -> dict:
    """Run one experiment end to end; returns the evaluation results ({"before": ..., "after": ...})."""
    from rl.data import DataError
    from rl.model import ModelConfigError

    run_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(run_dir / "config.resolved.yaml", OmegaConf.to_yaml(OmegaConf.create(config)))
    try:
        return _train(config, run_dir)
    except (DataError, ModelConfigError, ValueError, FileNotFoundError) as err:
        raise UserError(str(err)) from None


def _train(config: dict, run_dir: Path) -> dict:
    import torch
    from transformers import set_seed
    from transformers.trainer_utils import get_last_checkpoint

    from rewards.compose import build_reward_funcs, is_async
    from rl.card import without_trl_card, write_card
    from rl.console import quiet_console, quiet_libraries, summary_lines
    from rl.data import EVAL_ALL, build_datasets
    from rl.evaluate import evaluate_policy
    from rl.metrics import metrics_line
    from rl.model import ensure_built, load_policy
    from rl.adapter_files import stamp
    from rl.report import write_report
    from rl.resume import load_before, pick_checkpoint, save_before
    from rl.rollout import check_available, grpo_args, trainer_hooks
    from rl.rollout_metrics import WithRolloutMetrics
    from rl.shared_prompt import shared_prompt_trainer
    from rl.tracking import check_tracking, start_tracking

    model_cfg, data_cfg, rollout = config["model"], config["data"], config["rollout"]
    trainer_cfg, eval_cfg = config["trainer"], config["evaluate"]
    set_seed(config["seed"])
    quiet_libraries()
    if config.get("cpu_threads"):
        torch.set_num_threads(config["cpu_threads"])
    if data_cfg["eval_size"] == EVAL_ALL:
        raise UserError("data.eval_size=all holds out every record and leaves nothing to train on; "
                        "use it with rl.evaluate (python -m rl.evaluate ... data.path=FILE data.eval_size=all)")
    # a GPU-only choice on a machine without it fails here, before minutes of loading
    check_available(rollout.get("backend", "hf"))
    check_tracking(config["logging"])  # a WANDB_MODE typo, before the model loads
    if model_cfg.get("backend") == "unsloth":
        from rl.model_unsloth import check_available as check_unsloth

        check_unsloth()

    # ---- the nano model is built on first use ----
    ensure_built(model_cfg, data_cfg)

    # ---- data ----
    train_set, held_out = build_datasets(
        data_cfg["path"],
        prompt_format=data_cfg["prompt_format"],
        system_prompt=data_cfg.get("system_prompt"),
        eval_size=data_cfg["eval_size"],
        split_seed=data_cfg["split_seed"],
        history=data_cfg.get("history"),
    )
    log.info("data: %d training prompts, %d held out (%s)", len(train_set), len(held_out), data_cfg["path"])

    # ---- rewards ----
    specs, outside = _reward_specs(config)
    reward_funcs, reward_weights = build_reward_funcs(specs, group_size=rollout["num_generations"], **outside)
    first_sync = next(i for i, f in enumerate(reward_funcs) if not is_async(f))
    reward_funcs[first_sync] = WithRolloutMetrics(reward_funcs[first_sync])
    log.info("rewards: %s", ", ".join(f"{s.name} x{s.weight}{' (gate)' if s.gate else ''}" for s in specs))

    # ---- model ----
    policy, tokenizer = load_policy(model_cfg)

    # ---- evaluate the SFT policy (kept across resumes: it does not change) ----
    results: dict[str, dict] = {}
    rows: dict[str, list] = {}
    before_file = run_dir / "eval_before.json"

    def evaluate():
        return evaluate_policy(policy, tokenizer, held_out, specs, eval_cfg["n"], eval_cfg["batch_size"],
                               eval_cfg["max_new_tokens"], **outside)

    if eval_cfg["enabled"]:
        saved = load_before(before_file, model_cfg["adapter_path"])
        if saved is not None:
            results["before"], rows["before"] = saved
        else:
            metrics, rows["before"] = evaluate()
            results["before"] = stamp(metrics, model_cfg["adapter_path"])
            save_before(before_file, results["before"], rows["before"])
        log.info("before (SFT): %s", metrics_line(results["before"]))

    # ---- train ----
    # imported after the model: Unsloth swaps in its own GRPOTrainer when it loads
    from trl import GRPOConfig, GRPOTrainer

    tracker = start_tracking(config["logging"], run_dir, config, run_name=f"{config['exp_name']}/{run_dir.name}")
    use_bf16 = model_cfg.get("dtype") == "bfloat16" and torch.cuda.is_available()
    try:
        args = GRPOConfig(
            output_dir=str(run_dir),
            seed=config["seed"],
            reward_weights=reward_weights,
            report_to=tracker.report_to,
            run_name=f"{config['exp_name']}/{run_dir.name}",
            bf16=use_bf16,
            use_cpu=not torch.cuda.is_available(),
            save_strategy="steps",
            **{key: value for key, value in trainer_cfg.items() if key != "share_prompt"},
            **grpo_args(rollout),
        )
    except TypeError as err:
        raise UserError(f"trainer/rollout config: {err}") from None
    # each group's prompt scored (and, with rollout=hf, prefilled) once; TRL's own path where that is not exact
    trainer_cls = shared_prompt_trainer(GRPOTrainer, trainer_cfg.get("share_prompt", True), model_cfg.get("backend"))
    # TRL 1.15+ reseeds inside GRPOTrainer, 1.14.2 does not: seed here so every TRL starts training alike
    set_seed(config["seed"])
    trainer_cls = without_trl_card(trainer_cls)  # rl.card writes the run's card at the end
    trainer = trainer_cls(
        model=policy,
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=train_set,
        processing_class=tokenizer,
        **trainer_hooks(rollout, run_dir, model_cfg),
    )
    quiet_console(trainer)  # one line per logging step; TRL's full dict goes to train.log and W&B
    checkpoint = pick_checkpoint(run_dir) if config["resume"] else None
    if config["resume"]:
        log.info("resume: %s", checkpoint or "no checkpoint in the run dir yet, starting from the SFT adapter")
    try:
        trainer.train(resume_from_checkpoint=checkpoint)
    except KeyboardInterrupt:
        last = get_last_checkpoint(str(run_dir))
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
    if eval_cfg["enabled"]:
        metrics, rows["after"] = evaluate()
        results["after"] = stamp(metrics, adapter_dir)  # what a publish of adapter/ is gated on
        log.info("after (GRPO): %s", metrics_line(results["after"]))
        results = write_report(run_dir, results, rows)
        tracker.log_evaluation(results, rows, run_dir / "eval.png")
    write_card(config, run_dir, results, trainer.state.global_step, (len(train_set), len(held_out)))
    _point_latest(run_dir, config["exp_name"])
    tracker_line = tracker.where()
    tracker.finish()

    # ---- publish (gated on the evaluation) ----
    if config.get("publish", {}).get("enabled"):
        from rl.publish import publish_from_config

        publish_from_config(config, adapter_dir, results.get("after"), source_run=run_dir)
    print("\n".join(summary_lines(run_dir, results, tracker_line)), flush=True)
    return results


def _reward_specs(config: dict):
    """The experiment's rewards, minus the judge when none is configured; plus what the judge needs."""
    from rewards.compose import parse_specs, without_disabled_judge

    judge = config.get("judge") or {"enabled": False}
    specs, dropped = without_disabled_judge(parse_specs(config.get("rewards") or {}), judge)
    if dropped:
        log.info("judge: none configured (judge=none), judge_coherence is off for this run")
    if not any(s.name == "judge_coherence" for s in specs):
        return specs, {}
    from rewards.judge import JudgeUnavailable, preflight

    try:
        preflight(judge)
    except JudgeUnavailable as err:
        if judge.get("required", True):
            raise UserError(f"{err} (set judge.required=false to train without it)") from None
        log.warning("judge: %s; continuing, judge_coherence gives no score while it is down", err)
    return specs, {"judge": judge}


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
    try:
        return [o for o in HydraConfig.get().overrides.task if not o.startswith(("resume=", "hydra.run.dir="))]
    except ValueError:
        return []


if __name__ == "__main__":
    main()
