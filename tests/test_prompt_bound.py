"""Bounded prompts (issue 11): data.max_prompt_tokens in the model's own tokens, oldest turns trimmed first,
the system prompt, last robot turn and child reply kept; too long ones skipped or refused, all counted."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rl.data import DataError, build_datasets, prompt_bound
from rl.prompt_bound import PromptBound, PromptTooLong
from tests.composed import composed

ROOT = Path(__file__).resolve().parents[1]
SYSTEM = {"role": "system", "content": "You are Pika, a friendly robot who teaches English."}
LAST_ROBOT = "Con mèo trong tiếng Anh là gì nhỉ?"


def record(n_turns: int, child: str = "Cat!", robot_words: int = 6, tag: str = "a") -> dict:
    """A system prompt, `n_turns` older turns (each ends with its index), the last robot turn, the child's
    reply; `tag` opens the conversation (records of one tag are one conversation)."""
    turns = [SYSTEM]
    for i in range(n_turns):
        content = f"{tag} " + " ".join(["hello", "apple", "cat"][j % 3] for j in range(robot_words)) + f" {i}"
        turns.append({"role": "assistant" if i % 2 == 0 else "user", "content": content})
    turns += [{"role": "assistant", "content": LAST_ROBOT}, {"role": "user", "content": child}]
    return {"previous_conversation": turns, "assistant_fast_response": "Yes, cat!"}


def write(tmp_path: Path, records: list[dict]) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return path


class CountingTokenizer:
    """The nano tokenizer, counting how often a prompt is tokenized (what bounding a record costs)."""

    def __init__(self, tokenizer):
        self.tokenizer, self.calls = tokenizer, 0
        self.name_or_path = tokenizer.name_or_path

    def apply_chat_template(self, *args, **kwargs):
        self.calls += 1
        return self.tokenizer.apply_chat_template(*args, **kwargs)


@pytest.fixture(scope="module")
def tokenizer(nano):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(nano.base))


def tokens(tokenizer, prompt) -> int:
    return len(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=False))


def test_a_10000_turn_record_is_cut_to_the_bound_keeping_what_the_reply_answers(tokenizer, tmp_path):
    path = write(tmp_path, [record(10_000), record(10_000, tag="c"), record(2, tag="b")])
    counting = CountingTokenizer(tokenizer)
    bound = PromptBound(counting, 1_000)
    stats = []
    train, held_out = build_datasets(path, eval_size=1, bound=bound, stats_out=stats)
    rows = list(train) + list(held_out)
    assert len(rows) == 3
    longest = max(rows, key=lambda r: len(r["prompt"]))
    n = tokens(tokenizer, longest["prompt"])
    assert 900 < n <= 1_000  # as many of the newest turns as fit, not a few
    assert longest["prompt"][0] == SYSTEM
    assert longest["prompt"][-2:] == [{"role": "assistant", "content": LAST_ROBOT}, {"role": "user", "content": "Cat!"}]
    kept = [int(t["content"].rsplit(" ", 1)[1]) for t in longest["prompt"][1:-2]]
    assert kept == list(range(10_000 - len(kept), 10_000))  # the oldest went, the order stays
    summary = stats[0].summary()
    assert summary["trimmed"] == 2 and summary["skipped"] == 0
    assert summary["turns_dropped"] == 2 * (10_000 - len(kept))
    assert summary["prompt_tokens"]["max"] == n
    assert counting.calls < 2 * 4 + 2 * 40  # galloping: tens of tokenizations per long record, never thousands


def test_a_short_record_is_measured_once_and_left_whole(tokenizer):
    counting = CountingTokenizer(tokenizer)
    turns = record(4)["previous_conversation"][1:]
    render = lambda some: [SYSTEM, *some]  # noqa: E731
    kept, n = PromptBound(counting, 1_000).fit(turns, render)
    assert kept == turns and n == tokens(tokenizer, render(turns)) and counting.calls == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n_turns=st.integers(0, 60), robot_words=st.integers(1, 30), max_tokens=st.integers(20, 600))
def test_the_kept_prompt_is_the_longest_suffix_that_fits(tokenizer, n_turns, robot_words, max_tokens):
    turns = record(n_turns, robot_words=robot_words)["previous_conversation"][1:]
    render = lambda some: [SYSTEM, *some]  # noqa: E731
    bound = PromptBound(tokenizer, max_tokens)
    try:
        kept, n = bound.fit(turns, render)
    except PromptTooLong as err:
        assert err.tokens == tokens(tokenizer, render(turns[-2:])) > max_tokens
        return
    assert kept == turns[len(turns) - len(kept):] and len(kept) >= 2
    assert n == tokens(tokenizer, render(kept)) <= max_tokens
    if len(kept) < len(turns):  # one more older turn would not fit
        assert tokens(tokenizer, render(turns[len(turns) - len(kept) - 1:])) > max_tokens


def test_too_long_even_trimmed_is_skipped_and_counted_or_refused_naming_the_record(tokenizer, tmp_path):
    huge_reply = record(2, child="cat " * 3_000, tag="h")
    path = write(tmp_path, [record(2), record(3, tag="b"), huge_reply, record(5, tag="c")])
    stats = []
    train, held_out = build_datasets(path, eval_size=1, bound=PromptBound(tokenizer, 200), stats_out=stats)
    assert len(train) + len(held_out) == 3 and stats[0].skipped == 1
    assert all("cat cat" not in r["child_reply"] for r in list(train) + list(held_out))
    with pytest.raises(DataError) as err:
        build_datasets(path, eval_size=1, bound=PromptBound(tokenizer, 200), too_long="refuse")
    message = str(err.value)
    assert "\n" not in message and f"{path}: record 2 (line 3): field 'previous_conversation'" in message
    assert "data.max_prompt_tokens is 200" in message


def test_the_default_bound_is_the_models_context_after_the_completion(nano):
    bound = prompt_bound(str(nano.base), None, 24)
    context = json.loads((nano.base / "config.json").read_text())["max_position_embeddings"]
    assert bound.max_tokens == context - 24
    assert prompt_bound(str(nano.base), 300, 24).max_tokens == 300
    with pytest.raises(DataError, match="leaves no room"):
        prompt_bound(str(nano.base), None, context)


def test_a_run_bounds_its_data_before_the_model_loads(nano, tmp_path, caplog):
    from rl.run import prepare

    demo = [json.loads(line) for line in Path(nano.data).read_text().splitlines()[:40]]
    path = write(tmp_path, [*demo, record(10_000)])
    # build_if_missing=false: training on another data file would rebuild the shared nano model from it
    config = composed("+exp=english_only", "model=nano", "logging=none", f"data.path={path}", "data.eval_size=8",
                      "data.max_prompt_tokens=400", "model.build_if_missing=false", check=True)
    build = (nano.base.parent / "nano_build.json").read_bytes()
    with caplog.at_level(logging.INFO):
        run = prepare(config, load_model=False)
    assert (nano.base.parent / "nano_build.json").read_bytes() == build
    assert run.policy is None and run.max_prompt_tokens == 400
    for row in list(run.train_set) + list(run.held_out):
        assert tokens(run.tokenizer, row["prompt"]) <= 400
    assert run.data_stats["trimmed"] >= 1 and run.data_stats["prompt_tokens"]["max"] <= 400
    assert "prompts bounded to 400 tokens" in caplog.text


def test_data_check_reports_prompt_tokens_with_the_models_tokenizer(nano, tmp_path):
    path = write(tmp_path, [record(2), record(10_000, tag="b"), record(2, child="cat " * 3_000, tag="c")])
    result = subprocess.run([sys.executable, "-m", "rl.data", "check", str(path), "--tokenizer", str(nano.base),
                             "--max-prompt-tokens", "300", "--eval-size", "1"],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    line = next(l for l in result.stdout.splitlines() if l.startswith("prompts bounded"))
    assert "bounded to 300 tokens: 1 trimmed" in line and "1 skipped as too long" in line
    assert "prompt tokens min" in line and "p95" in line
    missing = subprocess.run([sys.executable, "-m", "rl.data", "check", str(path), "--tokenizer",
                              str(tmp_path / "nope")], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert missing.returncode == 1 and len(missing.stderr.strip().splitlines()) == 1, missing.stderr[-2000:]
