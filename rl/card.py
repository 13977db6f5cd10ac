"""The adapter card of a run (`<run dir>/README.md`, copied into `adapter/README.md`).

TRL writes a generic model card at every checkpoint ("a fine-tuned version of [None]", a question
about a time machine, and a W&B URL lookup that warns in offline runs). This one says what this
adapter is: the base model and the SFT adapter it continues, the data, the rewards and their weights,
how far it trained, how it did on held-out prompts before and after, and how to serve and publish it.
"""

from __future__ import annotations

from pathlib import Path

from common.atomic_write import write_text_atomic
from rl.rules import ReplyRules, rules_from

METRICS = (
    ("english_rate", "English replies", "higher"),
    ("tag_rate", "replies with `<say>` tags", "lower"),
    ("word_ok_rate", "replies of {words}", "higher"),  # the run's word limits (rl/rules.py)
    ("empty_rate", "empty replies", "lower"),
    ("distinct_rate", "distinct replies (collapse: near 1/n)", "higher"),
    ("fit_rate", "replies that fit their conversation", "higher"),
    ("judge_mean", "judge coherence (0-1)", "higher"),
    ("reward_mean", "total reward", "higher"),
)


def without_trl_card(trainer_cls: type) -> type:
    """The trainer class with TRL's per-checkpoint model card turned off (this module writes the card)."""

    def create_model_card(self, *args, **kwargs) -> None:
        return None

    return type(trainer_cls.__name__, (trainer_cls,), {"create_model_card": create_model_card})


def render_card(config, run_dir: Path, results: dict, steps: int, data_sizes: tuple[int, int] | None) -> str:
    """`config`: the run's rl.config.Config."""
    model, data, rollout, trainer = config.model, config.data, config.rollout, config.trainer
    run_dir = Path(run_dir)
    adapter = run_dir / "adapter"
    exp = config.exp_name
    overrides = " model=nano" if "nano" in str(model.name_or_path) else ""
    serving_base = model.serving_base_model or model.name_or_path
    rules = rules_from(config.reward_specs())
    lines = [
        f"# Pika fast-response adapter: {exp} ({run_dir.name})",
        "",
        f"A LoRA adapter for Pika's fast response ({rules.words} of simple English before the main answer), trained "
        "with GRPO from the SFT adapter below (`python -m rl.train`).",
        "",
        "| | |",
        "|---|---|",
        f"| base model | `{model.name_or_path}` (served as `{serving_base}`) |",
        f"| SFT adapter it continues | `{model.adapter_path}` (adapter_mode={model.adapter_mode}) |",
        f"| data | `{data.path}`, prompt format `{data.prompt_format}`"
        + (f", {data_sizes[0]} training prompts, {data_sizes[1]} held out" if data_sizes else "") + " |",
        f"| GRPO steps | {steps} of {trainer.max_steps}; {rollout.num_generations} samples per prompt, "
        f"learning rate {trainer.learning_rate}, beta {trainer.beta}, loss {trainer.loss_type} |",
        f"| rollouts | {rollout.backend} |",
        "",
        "## Rewards",
        "",
        "| reward | weight | gate |",
        "|---|---|---|",
    ]
    judge_on = config.judge.enabled
    for spec in config.reward_specs():
        off = " (off: no judge configured)" if spec.name == "judge_coherence" and not judge_on else ""
        lines.append(f"| `{spec.name}`{off} | {spec.weight} | {'yes' if spec.gate else 'no'} |")
    lines += ["", "Gates multiply the other rewards: a Vietnamese or tagged reply never outscores a compliant one.", ""]
    lines += _evaluation(results, rules)
    lines += [
        "## Serve it",
        "",
        "Any vLLM OpenAI server with LoRA enabled, the adapter by name:",
        "",
        "```bash",
        f"vllm serve {serving_base} --enable-lora --max-lora-rank 64 --lora-modules fastresponse={adapter}",
        "```",
        "",
        "## Publish it",
        "",
        "Into the serving directory a vLLM server reads adapters from by name (gated on `eval.json`; "
        "`rollback` restores the previous version):",
        "",
        "```bash",
        f"python -m rl.publish adapter={adapter}{overrides}",
        f"python -m rl.publish rollback{overrides}",
        "```",
        "",
        f"Evaluate it again: `python -m rl.evaluate +exp={exp} adapter={adapter}{overrides}`. "
        f"The resolved config of this run: `{run_dir / 'config.resolved.yaml'}`.",
        "",
    ]
    return "\n".join(lines)


def _evaluation(results: dict, rules: ReplyRules) -> list[str]:
    if not results:
        return ["## Evaluation", "", "Not evaluated (evaluate.enabled=false).", ""]
    names = [name for name in ("before", "after") if name in results] or list(results)
    label = {"before": "before (SFT)", "after": "after (GRPO)"}
    n = next(iter(results.values())).get("n")
    lines = [
        "## Evaluation",
        "",
        f"Greedy replies to {n} held-out prompts, scored with the training rewards (`eval.json`, `eval.md`, `eval.png`).",
        "",
        "| metric | " + " | ".join(label.get(x, x) for x in names) + " | better |",
        "|---" * (len(names) + 2) + "|",
    ]
    for key, what, better in METRICS:
        values = [results[name].get(key) for name in names]
        if all(v is None for v in values):
            continue
        cells = ["-" if v is None else f"{v:.3f}" for v in values]
        lines.append(f"| {what.format(words=rules.words)} | " + " | ".join(cells) + f" | {better} |")
    return lines + [""]


def write_card(config, run_dir: Path, results: dict, steps: int, data_sizes=None) -> Path:
    """README.md in the run dir and in its adapter/ (which peft filled with its own template)."""
    text = render_card(config, run_dir, results, steps, data_sizes)
    card = write_text_atomic(Path(run_dir) / "README.md", text)
    if (Path(run_dir) / "adapter").is_dir():
        write_text_atomic(Path(run_dir) / "adapter" / "README.md", text)
    return card
