"""`python -m rl.score`: scores a small file end to end (subprocess, as a user runs it)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROBOT = {"role": "assistant", "content": "Con mèo trong tiếng Anh là gì nhỉ?"}


def _score(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """The CLI without a judge server (the judge's own tests cover scoring with one)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "rl.score", "+exp=english_only", "judge=none", *args],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def _write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _row(completion, child="Cat!"):
    return {"previous_conversation": [ROBOT, {"role": "user", "content": child}], "completion": completion}


def test_scores_completion_rows_with_raw_components_and_total(tmp_path):
    rows = [_row("Yes, cat! Great job!"), _row("Giỏi lắm!"),
            _row([{"role": "assistant", "content": "<say>Cat!</say>"}], child=""), _row(""),
            _row("Cat!")]
    out = tmp_path / "out" / "scored.jsonl"
    result = _score(f"input={_write_jsonl(tmp_path / 'in.jsonl', rows)}", f"output={out}")
    assert result.returncode == 0, result.stderr
    scored = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["completion"] for r in scored] == [r["completion"] for r in rows]  # input rows kept
    assert [r["rewards"] for r in scored] == [
        {"english_only": 1.0, "no_say_tags": 1.0, "speakable": 1.0, "word_count": 0.8, "reference_fit": None},
        {"english_only": 0.0, "no_say_tags": 1.0, "speakable": 1.0, "word_count": 1.0, "reference_fit": None},
        {"english_only": 1.0, "no_say_tags": 0.0, "speakable": 0.0, "word_count": 1.0, "reference_fit": None},
        {"english_only": 0.0, "no_say_tags": 1.0, "speakable": 1.0, "word_count": 0.0, "reference_fit": None},
        {"english_only": 1.0, "no_say_tags": 1.0, "speakable": 1.0, "word_count": 1.0, "reference_fit": None},
    ]  # no reference fast response in these rows: reference_fit has no opinion
    assert [r["total"] for r in scored] == pytest.approx([3.8, 2.0, 1.0, 2.0, 4.0])
    # Summary: english_only fails 2 of 5 rows; word_count (below 1.0) 2 of 5.
    line = next(l for l in result.stdout.splitlines() if l.startswith("english_only"))
    assert "40.0%" in line and "0.600" in line
    assert not list(out.parent.glob(".*.tmp"))


def test_scores_a_pika_data_file_by_its_fast_response(tmp_path):
    records = [{"previous_conversation": [ROBOT, {"role": "user", "content": "Cat"}],
                "assistant_fast_response": text, "main_answer": "Cat is con mèo."}
               for text in ("Yes, cat!", "Đúng rồi!", "&lt;say&gt;Cat")]
    src = tmp_path / "pika.json"
    src.write_text(json.dumps(records, ensure_ascii=False, indent=1), encoding="utf-8")  # a JSON array
    out = tmp_path / "scored.jsonl"
    result = _score(f"input={src}", f"output={out}")
    assert result.returncode == 0, result.stderr
    scored = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["rewards"]["english_only"], r["rewards"]["no_say_tags"]) for r in scored] == [
        (1.0, 1.0), (0.0, 1.0), (1.0, 0.0)]


def test_disabled_judge_is_skipped_and_said(tmp_path):
    out = tmp_path / "scored.jsonl"
    result = _score(f"input={_write_jsonl(tmp_path / 'in.jsonl', [_row('Great job!')])}", f"output={out}",
                    "rewards.judge_coherence.weight=1.0")
    assert result.returncode == 0, result.stderr
    assert "judge_coherence: skipped (judge.enabled=false)" in result.stdout
    assert "judge_coherence" not in json.loads(out.read_text())["rewards"]


@pytest.mark.parametrize("rows, expected", [
    ([_row("Hi"), {"previous_conversation": [{"role": "robot", "content": "x"}], "completion": "Hi"}],
     "record 1 (line 2): field 'previous_conversation[0].role'"),
    ([_row(42)], "record 0 (line 1): field 'completion': expected a string or chat messages"),
    ([{"previous_conversation": [ROBOT]}], "record 0 (line 1): field 'assistant_fast_response': missing"),
])
def test_bad_rows_give_one_line_error_and_no_output(tmp_path, rows, expected):
    src = _write_jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.jsonl"
    out.write_text("previous good output\n")
    result = _score(f"input={src}", f"output={out}")
    assert result.returncode == 1
    assert result.stderr.strip() == result.stderr.strip().splitlines()[0]  # one line, no traceback
    assert str(src) in result.stderr and expected in result.stderr
    assert out.read_text() == "previous good output\n"  # not half-written
    assert not list(tmp_path.glob(".*.tmp"))


def test_invalid_json_and_missing_arguments_are_one_line_errors(tmp_path):
    src = tmp_path / "broken.jsonl"
    src.write_text(json.dumps(_row("Hi")) + "\n{not json\n")
    result = _score(f"input={src}", f"output={tmp_path / 'o.jsonl'}")
    assert result.returncode == 1 and f"{src}: line 2" in result.stderr and "Traceback" not in result.stderr
    result = _score(f"input={src}")
    assert result.returncode == 1 and "output" in result.stderr and "Traceback" not in result.stderr


def test_unreachable_judge_fails_fast_in_one_line(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "rl.score", "+exp=english_only", "judge.base_url=http://127.0.0.1:9/v1",
         f"input={_write_jsonl(tmp_path / 'in.jsonl', [_row('Cat!')])}", f"output={tmp_path / 'out.jsonl'}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert "127.0.0.1:9" in result.stderr
    assert not (tmp_path / "out.jsonl").exists()
