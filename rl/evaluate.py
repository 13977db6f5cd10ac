"""Evaluate a policy on held-out prompts with greedy decoding and the experiment's own reward code.

The metrics that decide whether an adapter is good enough to serve:
- `english_rate`: share of replies `english_only` accepts;
- `tag_rate`: share of replies holding a `<say>` tag;
- `word_ok_rate`: share of replies within the word limits of the experiment's `word_count` (rl/rules.py);
- `judge_mean`: mean judge score where the judge answered (null when no judge);
- `n`: prompts evaluated.
Training calls `evaluate_policy` before and after GRPO; `rl.report` writes `eval.json`, `eval.md`, `eval.png`.
The CLI evaluates any adapter (a run's `adapter/`, a checkpoint, a published serving entry):

    python -m rl.evaluate +exp=english_only model=nano adapter=checkpoints/english_only/<time>/adapter
    python -m rl.evaluate +exp=english_only adapter=serving/fastresponse compare_sft=false

It writes the report to `checkpoints/eval/<time>/` (`hydra.run.dir` overrides it): with `compare_sft=true`
(default) the SFT adapter (`model.adapter_path`) is "before" and the given adapter "after".
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import torch

from common.errors import UserError
from rewards.compose import RewardSpec, build_raw_funcs, combine, score_batch
from rewards.fit import similarity
from rl.generation import generate_replies
from rl.metrics import METRICS, fit_flags, fit_rates, metrics_line, reply_rates
from rl.rules import PIKA_RULES, ReplyRules, rules_from

log = logging.getLogger(__name__)


def generate_greedy(model, tokenizer, prompts: list[list[dict]], batch_size: int, max_new_tokens: int) -> list[str]:
    """Chat prompts -> greedy replies (special tokens stripped), in order."""
    return generate_replies(model, tokenizer, prompts, batch_size, max_new_tokens, progress="evaluate")


def score_replies(examples: list[dict], replies: list[str], specs: list[RewardSpec], **outside) -> list[dict]:
    """One row per reply: the context, the reply, each raw reward score and the combined total."""
    columns = {key: [ex[key] for ex in examples] for key in examples[0] if key != "prompt"}
    prompts = [ex["prompt"] for ex in examples]
    scores = score_batch(build_raw_funcs(specs, **outside), prompts, replies, columns)
    references = [ex.get("reference_fast_response", "") for ex in examples]
    intents = [ex.get("intent") or "" for ex in examples]
    fit = fit_flags(replies, references, intents)
    rows = []
    for i, (example, reply) in enumerate(zip(examples, replies)):
        row_scores = {name: values[i] for name, values in scores.items()}
        rows.append(
            {
                "last_robot_turn": example.get("last_robot_turn", ""),
                "child_reply": example.get("child_reply", ""),
                "reference": references[i],
                "intent": intents[i],
                "reply": reply,
                "rewards": row_scores,
                "total": combine(row_scores, specs),
                "fit": fit[i],
                "similarity": similarity(reply, references[i]),
            }
        )
    return rows


def summarize_replies(rows: list[dict], rules: ReplyRules = PIKA_RULES) -> dict:
    """Rows from `score_replies` -> the evaluation metrics (METRICS, plus `top_reply` and `by_intent`);
    `rules`: the experiment's (`rl.rules.rules_from(specs)`), so the rates agree with its rewards."""
    replies = [r["reply"] for r in rows]
    rates = reply_rates(replies, rules)
    fit = fit_rates(replies, [r["reference"] for r in rows], [r.get("intent", "") for r in rows],
                    flags=[r["fit"] for r in rows] if rows and "fit" in rows[0] else None, rules=rules)
    judged = [r["rewards"]["judge_coherence"] for r in rows if r["rewards"].get("judge_coherence") is not None]
    metrics = {**rates, **fit}
    metrics["judge_mean"] = sum(judged) / len(judged) if judged else None
    metrics["reward_mean"] = sum(r["total"] for r in rows) / len(rows) if rows else None
    # judge_mean for each intent too, where the judge answered
    for intent, values in metrics["by_intent"].items():
        scores = [r["rewards"].get("judge_coherence") for r in rows if r.get("intent") == intent]
        scores = [x for x in scores if x is not None]
        values["judge_mean"] = sum(scores) / len(scores) if scores else None
    ordered = {k: metrics[k] for k in METRICS}
    ordered["top_reply"] = metrics["top_reply"]
    ordered["by_intent"] = metrics["by_intent"]
    return ordered


def evaluate_policy(model, tokenizer, dataset, specs, n, batch_size, max_new_tokens, **outside):
    """Greedy replies to the first `n` held-out prompts, scored -> (metrics, rows)."""
    examples = [dataset[i] for i in range(min(n, len(dataset)))]
    if not examples:
        raise UserError("evaluate: the held-out set is empty (data.eval_size must be > 0)")
    replies = generate_greedy(model, tokenizer, [ex["prompt"] for ex in examples], batch_size, max_new_tokens)
    rows = score_replies(examples, replies, specs, **outside)
    return summarize_replies(rows, rules_from(specs)), rows




# ---------------------------------------------------------------- CLI


def evaluate_adapter(config, out_dir: Path) -> dict:
    """Evaluate `config.adapter` (and the SFT adapter when `compare_sft`) -> the report's results.
    `config`: rl.config.EvaluateCli, checked."""
    from rl.adapter_files import stamp
    from rl.data import EVAL_ALL
    from rl.model import load_policy
    from rl.report import write_report
    from rl.run import prepare
    from rl.tracking import start_tracking

    run = prepare(config, load_model=False, train=False)
    model, data, evaluate = config.model, config.data, config.evaluate
    held_out = run.held_out
    # eval_size=all: the whole file is the test set, whatever evaluate.n says
    n = len(held_out) if data.eval_size == EVAL_ALL else evaluate.n
    log.info("data: %d of %d held-out prompts of %s", min(n, len(held_out)), len(held_out), data.path)
    # a published entry names the serving vLLM's --model as its base: the same weights
    aliases = [a for a in (*model.base_aliases, model.serving_base_model) if a]
    adapter = Path(config.adapter)
    candidates = {"before": Path(model.adapter_path), "after": adapter} if config.compare_sft else {"after": adapter}
    results, rows = {}, {}
    for name, path in candidates.items():
        policy, tokenizer = load_policy(replace(model, adapter_path=str(path), adapter_mode="continue",
                                                base_aliases=aliases))
        metrics, rows[name] = evaluate_policy(policy, tokenizer, held_out, run.specs, n, evaluate.batch_size,
                                              evaluate.max_new_tokens, **run.reward_kwargs)
        results[name] = stamp(metrics, path)  # what rl.publish matches: the gate judges exactly this adapter
        log.info("%s (%s): %s", name, path, metrics_line(results[name]))
    if len(results) == 1:
        results = {"adapter": results["after"]}
        rows = {"adapter": rows["after"]}
    out_dir.mkdir(parents=True, exist_ok=True)
    results = write_report(out_dir, results, rows)
    tracker = start_tracking(config.logging, out_dir, config, run_name=f"eval/{out_dir.name}")
    tracker.log_evaluation(results, rows, out_dir / "eval.png")
    tracker.finish()
    print(f"report: {out_dir}/eval.json, eval.md, eval.png")
    return results


def main() -> None:
    from rl.entry import hydra_cli

    hydra_cli("evaluate_cli", evaluate_adapter, record_failures=True)


if __name__ == "__main__":
    main()
