"""Evaluate a policy on held-out prompts with greedy decoding and the experiment's own reward code.

The metrics that decide whether an adapter is good enough to serve:
- `english_rate`: share of replies `english_only` accepts;
- `tag_rate`: share of replies holding a `<say>` tag;
- `word_ok_rate`: share of replies with 1-6 words;
- `judge_mean`: mean judge score where the judge answered (null when no judge);
- `n`: prompts evaluated.
Training calls `evaluate_policy` before and after GRPO and `write_report` for `eval.json`, `eval.md`,
`eval.png` in the run dir.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from pathlib import Path

import torch
from tqdm.auto import tqdm

from rewards.compose import RewardSpec, build_raw_funcs, combine, is_async
from rewards.english import is_english
from rewards.length import count_words
from rewards.tags import has_say_tag

log = logging.getLogger(__name__)

METRICS = ("english_rate", "tag_rate", "word_ok_rate", "judge_mean", "n")
WORD_OK = range(1, 7)  # Pika's fast response: 1-6 words


@torch.no_grad()
def generate_greedy(model, tokenizer, prompts: list[list[dict]], batch_size: int, max_new_tokens: int) -> list[str]:
    """Chat prompts -> greedy replies (special tokens stripped), in order."""
    model.eval()
    padding_side, tokenizer.padding_side = tokenizer.padding_side, "left"
    replies: list[str] = []
    try:
        for start in tqdm(range(0, len(prompts), batch_size), desc="evaluate", unit="batch", leave=False):
            texts = [
                tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)
                for p in prompts[start : start + batch_size]
            ]
            batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
            out = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
            new_tokens = out[:, batch["input_ids"].shape[1] :]
            replies.extend(tokenizer.batch_decode(new_tokens, skip_special_tokens=True))
    finally:
        tokenizer.padding_side = padding_side
    return [r.strip() for r in replies]


def score_replies(examples: list[dict], replies: list[str], specs: list[RewardSpec], **outside) -> list[dict]:
    """One row per reply: the context, the reply, each raw reward score and the combined total."""
    funcs = build_raw_funcs(specs, **outside)
    columns = {key: [ex[key] for ex in examples] for key in examples[0] if key != "prompt"}
    prompts = [ex["prompt"] for ex in examples]
    scores: dict[str, list] = {}
    for name, func in funcs.items():
        result = func(prompts=prompts, completions=replies, **columns)
        scores[name] = asyncio.run(result) if is_async(func) else result
    rows = []
    for i, (example, reply) in enumerate(zip(examples, replies)):
        row_scores = {name: _float_or_none(values[i]) for name, values in scores.items()}
        rows.append(
            {
                "last_robot_turn": example.get("last_robot_turn", ""),
                "child_reply": example.get("child_reply", ""),
                "reference": example.get("reference_fast_response", ""),
                "reply": reply,
                "rewards": row_scores,
                "total": combine(row_scores, specs),
            }
        )
    return rows


def summarize(rows: list[dict]) -> dict:
    """Rows from `score_replies` -> the evaluation metrics."""
    n = len(rows)
    if n == 0:
        return {"english_rate": None, "tag_rate": None, "word_ok_rate": None, "judge_mean": None, "n": 0}
    judged = [r["rewards"]["judge_coherence"] for r in rows if r["rewards"].get("judge_coherence") is not None]
    return {
        "english_rate": sum(is_english(r["reply"]) for r in rows) / n,
        "tag_rate": sum(has_say_tag(r["reply"]) for r in rows) / n,
        "word_ok_rate": sum(count_words(r["reply"]) in WORD_OK for r in rows) / n,
        "judge_mean": sum(judged) / len(judged) if judged else None,
        "n": n,
        "reward_mean": sum(r["total"] for r in rows) / n,
    }


def evaluate_policy(model, tokenizer, dataset, specs, n, batch_size, max_new_tokens, **outside):
    """Greedy replies to the first `n` held-out prompts, scored -> (metrics, rows)."""
    examples = [dataset[i] for i in range(min(n, len(dataset)))]
    if not examples:
        raise ValueError("evaluate: the held-out set is empty (data.eval_size must be > 0)")
    replies = generate_greedy(model, tokenizer, [ex["prompt"] for ex in examples], batch_size, max_new_tokens)
    rows = score_replies(examples, replies, specs, **outside)
    return summarize(rows), rows


def write_report(run_dir: Path, results: dict[str, dict], rows: dict[str, list[dict]] | None = None) -> None:
    """`results` = {"before": metrics, "after": metrics} (or one entry) -> eval.json, eval.md, eval.png."""
    run_dir = Path(run_dir)
    _write_atomic(run_dir / "eval.json", json.dumps(results, indent=2) + "\n")
    _write_atomic(run_dir / "eval.md", render_markdown(results, rows or {}))
    plot_metrics(results, run_dir / "eval.png")


def render_markdown(results: dict[str, dict], rows: dict[str, list[dict]]) -> str:
    names = list(results)
    lines = ["# Evaluation", "", "| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for metric in METRICS:
        lines.append(f"| {metric} | " + " | ".join(_fmt(results[name].get(metric)) for name in names) + " |")
    for name, name_rows in rows.items():
        worst = sorted(name_rows, key=lambda r: r["total"])[:10]
        lines += ["", f"## Worst replies ({name})", "", "| robot | child | reply | total |", "|---|---|---|---|"]
        for r in worst:
            cells = [r["last_robot_turn"], r["child_reply"] or "(silent)", r["reply"], _fmt(r["total"])]
            lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def plot_metrics(results: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in METRICS if m != "n" and any(results[k].get(m) is not None for k in results)]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    width = 0.8 / max(len(results), 1)
    for i, (name, values) in enumerate(results.items()):
        heights = [values.get(m) or 0.0 for m in metrics]
        bars = ax.bar([x + i * width for x in range(len(metrics))], heights, width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks([x + width * (len(results) - 1) / 2 for x in range(len(metrics))], metrics)
    ax.set_ylim(0, 1.1)
    ax.set_title(f"Held-out fast responses (n={next(iter(results.values())).get('n')})")
    ax.legend()
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _float_or_none(value) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")[:80]
