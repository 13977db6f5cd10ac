"""The evaluation report in a run dir: `eval.json`, `eval.md` (table + worst replies), `eval.png` (chart)."""

from __future__ import annotations

from pathlib import Path

from common.atomic_write import open_atomic, write_json_atomic, write_text_atomic
from rl.metrics import METRICS, SHARES

WORST = 10  # replies listed per policy in eval.md


def write_report(run_dir: Path, results: dict[str, dict], rows: dict[str, list[dict]] | None = None) -> dict:
    """`results` = {"before": metrics, "after": metrics} (or one entry) -> eval.json, eval.md, eval.png.
    Returns what eval.json holds (rounded), so callers report the same numbers the file does."""
    run_dir = Path(run_dir)
    results = _rounded(results)
    write_json_atomic(run_dir / "eval.json", results)
    write_text_atomic(run_dir / "eval.md", render_markdown(results, rows or {}))
    plot_metrics(results, run_dir / "eval.png", rows)
    return results


def render_markdown(results: dict[str, dict], rows: dict[str, list[dict]]) -> str:
    names = list(results)
    lines = ["# Evaluation", "", "| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for metric in (*METRICS, "top_reply"):
        lines.append(f"| {metric} | " + " | ".join(_md_cell(_fmt(results[name].get(metric))) for name in names) + " |")
    intents = sorted({i for name in names for i in results[name].get("by_intent") or {}})
    if intents:
        lines += ["", "## By intent (fit / English / empty / top reply)", "",
                  "| intent | n | " + " | ".join(names) + " |", "|---" * (len(names) + 2) + "|"]
        for intent in intents:
            cells = []
            for name in names:
                v = (results[name].get("by_intent") or {}).get(intent)
                cells.append("-" if v is None else f"{v['fit_rate']:.2f} / {v['english_rate']:.2f} / "
                             f"{v['empty_rate']:.2f} / {_md_cell(v['top_reply'], 30)} ({v['top_reply_rate']:.0%})")
            n = next((results[k]["by_intent"][intent]["n"] for k in names if intent in (results[k].get("by_intent") or {})), "-")
            lines.append(f"| {intent} | {n} | " + " | ".join(cells) + " |")
    for name, name_rows in rows.items():
        # unfit first, then the least like their reference: a stock reply that games the rules shows here
        by_fit = sorted(name_rows, key=lambda r: (r.get("fit", True), r.get("similarity", 1.0), r["total"]))[:WORST]
        lines += _reply_table(f"Worst replies by fit ({name})", by_fit)
        by_reward = sorted(name_rows, key=lambda r: r["total"])[:WORST]
        lines += _reply_table(f"Worst replies by reward ({name})", by_reward)
    return "\n".join(lines) + "\n"


def _reply_table(title: str, rows: list[dict]) -> list[str]:
    lines = ["", f"## {title}", "", "| robot | child | reference | reply | fit | total |", "|---|---|---|---|---|---|"]
    for r in rows:
        fit = "-" if "fit" not in r else f"{'yes' if r['fit'] else 'no'} ({r['similarity']:.2f})"
        cells = [r["last_robot_turn"], r["child_reply"] or "(silent)", r.get("reference", ""), r["reply"] or "(empty)",
                 fit, _fmt(r["total"])]
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    return lines


def plot_metrics(results: dict[str, dict], path: Path, rows: dict[str, list[dict]] | None = None) -> None:
    """Bars of the metrics per policy and, with rows, the distribution of the total reward."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {name: r for name, r in (rows or {}).items() if r}
    metrics = [m for m in SHARES if any(results[k].get(m) is not None for k in results)]
    fig, axes = plt.subplots(1, 2 if rows else 1, figsize=(14 if rows else 9, 3.8), squeeze=False)
    ax = axes[0][0]
    width = 0.8 / max(len(results), 1)
    for i, (name, values) in enumerate(results.items()):
        heights = [values.get(m) or 0.0 for m in metrics]
        bars = ax.bar([x + i * width for x in range(len(metrics))], heights, width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks([x + width * (len(results) - 1) / 2 for x in range(len(metrics))],
                  [m.removesuffix("_rate") for m in metrics], rotation=30, ha="right")
    ax.set_ylim(0, 1.1)
    ax.set_title(f"Held-out fast responses (n={next(iter(results.values())).get('n')})")
    ax.legend()
    if rows:
        # fit per intent where records carry intents (the collapse shows as one intent's bar alone),
        # else the total reward distribution
        ax = axes[0][1]
        intents = sorted({i for v in results.values() for i in v.get("by_intent") or {}})
        if intents:
            for i, (name, values) in enumerate(results.items()):
                heights = [((values.get("by_intent") or {}).get(t) or {}).get("fit_rate") or 0.0 for t in intents]
                bars = ax.bar([x + i * width for x in range(len(intents))], heights, width, label=name)
                ax.bar_label(bars, fmt="%.2f", fontsize=8)
            ax.set_xticks([x + width * (len(results) - 1) / 2 for x in range(len(intents))], intents)
            ax.set_ylim(0, 1.1)
            ax.set_title("Fit rate by intent")
        else:
            ax.hist([[r["total"] for r in r_list] for r_list in rows.values()], bins=12, label=list(rows))
            ax.set_title("Total reward per reply")
            ax.set_xlabel("total reward")
        ax.legend()
    fig.tight_layout()
    with open_atomic(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=100)
    plt.close(fig)


def _fmt(value) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _md_cell(text, width: int = 80) -> str:
    """One table cell: pipes escaped, one line, cut at a word boundary with an ellipsis."""
    text = " ".join(str(text).split()).replace("|", "\\|")
    if len(text) <= width:
        return text
    return text[: width - 1].rsplit(" ", 1)[0] + "\u2026"


def _rounded(value, decimals: int = 6):
    """Metrics as people read them: 1.784375, not 1.7843750000000016 (float sums of 128 rows)."""
    if isinstance(value, float):
        return round(value, decimals)
    if isinstance(value, dict):
        return {k: _rounded(v, decimals) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v, decimals) for v in value]
    return value
