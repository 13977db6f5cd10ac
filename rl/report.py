"""The evaluation report in a run dir: `eval.json`, `eval.md` (table + worst replies), `eval.png` (chart)."""

from __future__ import annotations

from pathlib import Path

from common.atomic_write import open_atomic, write_json_atomic, write_text_atomic

METRICS = ("english_rate", "tag_rate", "word_ok_rate", "judge_mean", "n")


def write_report(run_dir: Path, results: dict[str, dict], rows: dict[str, list[dict]] | None = None) -> None:
    """`results` = {"before": metrics, "after": metrics} (or one entry) -> eval.json, eval.md, eval.png."""
    run_dir = Path(run_dir)
    write_json_atomic(run_dir / "eval.json", results)
    write_text_atomic(run_dir / "eval.md", render_markdown(results, rows or {}))
    plot_metrics(results, run_dir / "eval.png", rows)


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


def plot_metrics(results: dict[str, dict], path: Path, rows: dict[str, list[dict]] | None = None) -> None:
    """Bars of the metrics per policy and, with rows, the distribution of the total reward."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {name: r for name, r in (rows or {}).items() if r}
    metrics = [m for m in METRICS if m != "n" and any(results[k].get(m) is not None for k in results)]
    fig, axes = plt.subplots(1, 2 if rows else 1, figsize=(11 if rows else 7, 3.5), squeeze=False)
    ax = axes[0][0]
    width = 0.8 / max(len(results), 1)
    for i, (name, values) in enumerate(results.items()):
        heights = [values.get(m) or 0.0 for m in metrics]
        bars = ax.bar([x + i * width for x in range(len(metrics))], heights, width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks([x + width * (len(results) - 1) / 2 for x in range(len(metrics))], metrics)
    ax.set_ylim(0, 1.1)
    ax.set_title(f"Held-out fast responses (n={next(iter(results.values())).get('n')})")
    ax.legend()
    if rows:
        ax = axes[0][1]
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


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")[:80]
