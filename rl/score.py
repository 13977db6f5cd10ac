"""Score completions with an experiment's reward stack, exactly as training would.

    python -m rl.score +exp=english_only input=IN.jsonl output=OUT.jsonl [field=completion]

Input: a JSON array or JSONL of rows with `previous_conversation` (Pika turns) and `completion` (a string
or chat messages); a Pika data file works too and then its `assistant_fast_response` is scored, which
shows how much of the SFT data itself breaks the rules. Prompts and columns come from `rl.data.to_example`
with the config's data.prompt_format/system_prompt, so rewards see what they see in training.

Output (JSONL, written to a temp file and renamed): each input row plus `rewards` (name -> RAW component
score, or null for "no opinion") and `total` (`rewards.compose.combine`: gates applied, as in training).
Prints a summary: per reward the mean over rows with a score and the share of rows that FAIL it, i.e.
score < 1.0 (for 0/1 rewards: the rows it rejects; for word_count: rows not in the best band).
`judge_coherence` is skipped (and the summary says so) when `judge.enabled` is false.
Bad input: one line naming the file, record/line and field; exit 1.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from common.atomic_write import write_jsonl_atomic
from common.errors import UserError
from common.progress import progress_bar
from rewards.compose import RewardSpec, build_raw_funcs, combine, score_batch


class ScoreError(UserError, ValueError):
    """Bad input or config; the message is one line."""


def _data():
    import rl.data  # imported late: the data module pulls in `datasets`

    return rl.data


# ---------------------------------------------------------------- reading rows


def read_rows(path: Path, field: str | None) -> list[tuple[dict, str, dict]]:
    """[(input row, field scored, validated Pika record)]; raises DataError/ScoreError naming the row."""
    data = _data()
    rows = data.read_rows(path)  # rl.data's reader: same JSON/JSONL errors as training
    out = []
    for index, (row, line) in enumerate(rows):
        where = f"{path}: record {index} (line {line})"
        if not isinstance(row, dict):
            raise ScoreError(f"{where}: expected a JSON object (a row), got {type(row).__name__}")
        name = field or ("completion" if "completion" in row else "assistant_fast_response")
        if name not in row:
            raise ScoreError(f"{where}: field '{name}': missing (rows need `completion`, or a Pika "
                             "`assistant_fast_response`)")
        value = row[name]
        if not (isinstance(value, str) or _is_messages(value)):
            raise ScoreError(f"{where}: field '{name}': expected a string or chat messages, got "
                             f"{type(value).__name__}")
        record = dict(row)
        if name != "assistant_fast_response":
            # The scored text is the completion; the Pika target is optional here.
            record["assistant_fast_response"] = row.get("assistant_fast_response") or "(not given)"
        try:
            data.validate_record(record)
        except data.DataError as e:
            raise ScoreError(f"{where}: {e}") from None
        out.append((row, name, record))
    return out


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and all(
        isinstance(m, dict) and isinstance(m.get("content", ""), str) for m in value
    )


# ---------------------------------------------------------------- scoring


def score_rows(rows: list[tuple[dict, str, dict]], specs: list[RewardSpec], data_cfg, judge,
               batch_size: int = 256, progress: bool = True) -> list[dict]:
    """Each input row plus `rewards` (raw scores) and `total` (combined as in training).
    `data_cfg`: rl.config.DataConfig (prompt format, system prompt, history); `judge`: JudgeSettings or None."""
    funcs = build_raw_funcs(specs, **({"judge": judge} if judge is not None else {}))
    to_example = _data().to_example
    out = []
    bar = progress_bar(total=len(rows), unit="row", file=sys.stderr, disable=not progress or len(rows) < 1000)
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        examples = [to_example(record, data_cfg.prompt_format, data_cfg.system_prompt, data_cfg.history or None)
                    for _, _, record in batch]
        for example, (row, name, _) in zip(examples, batch):
            if name == "assistant_fast_response" or not row.get("assistant_fast_response"):
                example["reference_fast_response"] = ""  # nothing to fit: the scored text itself, or none given
        completions = [row[name] for row, name, _ in batch]
        columns = {key: [ex[key] for ex in examples] for key in examples[0] if key != "prompt"}
        prompts = [ex["prompt"] for ex in examples]
        scores = score_batch(funcs, prompts, completions, columns)
        for i, (row, _, _) in enumerate(batch):
            rewards = {name: scores[name][i] for name in funcs}
            out.append({**row, "rewards": rewards, "total": combine(rewards, specs)})
        bar.update(len(batch))
    bar.close()
    return out


def summary(scored: list[dict], specs: list[RewardSpec], skipped: list[str]) -> str:
    """Mean per reward (rows with a score) and the share failing it (score < 1.0)."""
    lines = [f"{'reward':<18}{'weight':>7}{'gate':>6}{'mean':>8}{'failing':>9}{'scored':>8}",
             "-" * 56]
    for spec in specs:
        values = [r["rewards"][spec.name] for r in scored if r["rewards"].get(spec.name) is not None]
        mean = sum(values) / len(values) if values else float("nan")
        failing = sum(v < 1.0 for v in values) / len(values) if values else float("nan")
        lines.append(f"{spec.name:<18}{spec.weight:>7.2f}{'yes' if spec.gate else '':>6}{mean:>8.3f}"
                     f"{failing:>8.1%}{len(values):>8}")
    totals = [r["total"] for r in scored]
    best = sum(s.weight for s in specs)
    lines.append(f"{'total':<18}{best:>7.2f}{'':>6}{sum(totals) / max(len(totals), 1):>8.3f}"
                 f"{sum(t < best for t in totals) / max(len(totals), 1):>8.1%}{len(totals):>8}")
    lines.append(f"{len(scored)} rows; 'failing' = share of scored rows below 1.0 (total: below the maximum "
                 f"{best:g}); mean over rows with a score (null = no opinion).")
    for name in skipped:
        lines.append(f"{name}: skipped (judge.enabled=false)")
    return "\n".join(lines)


def run(config) -> str:
    """Score config.input into config.output (rl.config.ScoreCli, checked); returns the summary table."""
    from rl.run import reward_specs

    specs, judge, judge_down = reward_specs(config)
    skipped = [] if config.judge.enabled else [n for n in config.rewards if n == "judge_coherence"]
    rows = read_rows(Path(config.input), config.field)
    if judge_down:
        _warn(f"judge: {judge_down}; judge.required=false, so scoring goes on without it (judge_coherence: null)")
    scored = score_rows(rows, specs, config.data, judge, config.batch_size)
    unanswered = sum(r["rewards"].get("judge_coherence") is None for r in scored) if judge else 0
    if judge and not judge_down and unanswered:
        _warn(f"judge: no score for {unanswered} of {len(scored)} rows (unreachable, slow or unusable answers)")
    write_jsonl_atomic(Path(config.output), scored)
    return summary(scored, specs, skipped)


def _warn(text: str) -> None:
    print(f"warning: {text}", file=sys.stderr, flush=True)


def main() -> None:
    from rl.entry import hydra_cli

    def job(config, run_dir) -> None:
        print(run(config))
        print(f"wrote {config.output}")

    hydra_cli("score", job)


if __name__ == "__main__":
    main()
