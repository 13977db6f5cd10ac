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

import hydra
from omegaconf import DictConfig, OmegaConf

from common.atomic_write import write_jsonl_atomic
from rewards.compose import RewardSpec, build_raw_funcs, combine, parse_specs, score_batch, without_disabled_judge


class ScoreError(ValueError):
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


def score_rows(rows: list[tuple[dict, str, dict]], specs: list[RewardSpec], data_cfg: dict, judge: dict,
               batch_size: int = 256, progress: bool = True) -> list[dict]:
    """Each input row plus `rewards` (raw scores) and `total` (combined as in training)."""
    from tqdm import tqdm

    funcs = build_raw_funcs(specs, judge=judge)
    to_example = _data().to_example
    out = []
    bar = tqdm(total=len(rows), unit="row", file=sys.stderr, disable=not progress or len(rows) < 1000)
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        examples = [to_example(record, data_cfg.get("prompt_format", "messages"), data_cfg.get("system_prompt"),
                               data_cfg.get("history")) for _, _, record in batch]
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


def run(cfg: dict) -> str:
    """Score cfg["input"] into cfg["output"]; returns the summary table."""
    judge = dict(cfg.get("judge") or {})
    specs = parse_specs(cfg.get("rewards") or {})
    specs, skipped = without_disabled_judge(specs, judge)
    rows = read_rows(Path(cfg["input"]), cfg.get("field"))
    if any(s.name == "judge_coherence" for s in specs):
        from rewards.judge import JudgeUnavailable, preflight

        try:
            preflight(judge)
        except JudgeUnavailable as err:
            raise ScoreError(str(err)) from None
    scored = score_rows(rows, specs, dict(cfg.get("data") or {}), judge, int(cfg.get("batch_size") or 256))
    write_jsonl_atomic(Path(cfg["output"]), scored)
    return summary(scored, specs, skipped)


@hydra.main(config_path="../conf", config_name="score", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        plain = {key: OmegaConf.to_container(cfg[key], resolve=True) if OmegaConf.is_config(cfg[key]) else cfg[key]
                 for key in ("input", "output", "field", "batch_size", "rewards", "judge", "data")}
    except Exception as e:  # a missing input= / output= reads as one line, not a Hydra traceback
        print(f"error: {str(e).splitlines()[0]} (usage: python -m rl.score +exp=NAME input=IN output=OUT)",
              file=sys.stderr)
        sys.exit(1)
    try:
        table = run(plain)
    except (ValueError, OSError) as e:  # DataError and ScoreError are ValueErrors
        print(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
        sys.exit(1)
    print(table)
    print(f"wrote {plain['output']}")


if __name__ == "__main__":
    main()
