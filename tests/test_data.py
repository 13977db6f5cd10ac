"""rl.data (load, validate, prompts, split, check CLI) and rl.demo_data (the committed demo dataset)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from rl.data import (
    COLUMNS,
    DataError,
    build_datasets,
    conversation_id,
    load_records,
    split_examples,
    summarize,
    to_example,
)
from rl.demo_data import write_demo

ROOT = Path(__file__).resolve().parents[1]
BAD = ROOT / "tests" / "data" / "bad"
DEMO = ROOT / "data" / "demo" / "pika_demo.jsonl"

SYSTEM = {"role": "system", "content": "You are Pika."}
ASK_CAT = {"role": "assistant", "content": "Con mèo trong tiếng Anh là gì nhỉ?"}
ASK_DOG = {"role": "assistant", "content": "Great job! Con chó tiếng Anh là gì?"}
RECORD = {
    "previous_conversation": [SYSTEM, ASK_CAT, {"role": "user", "content": "Cat!"}],
    "assistant_fast_response": "Yes, cat! Great job!",
    "main_answer": "Đúng rồi, 'cat' là con mèo.",
    "intent": "positive",
}


def record(**changes) -> dict:
    r = copy.deepcopy(RECORD)
    r.update(changes)
    return r


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def load_error(path: Path) -> str:
    with pytest.raises(DataError) as e:
        load_records(path)
    message = str(e.value)
    assert "\n" not in message, "errors are one line"
    assert message.startswith(f"{path}: ")
    return message


# ---------------------------------------------------------------- loading and validation


def test_json_array_and_jsonl_load_the_same_records(tmp_path):
    records = [RECORD, record(assistant_fast_response="Well done!")]
    (tmp_path / "a.json").write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
    write_jsonl(tmp_path / "a.jsonl", records)
    assert load_records(tmp_path / "a.json") == records
    assert load_records(tmp_path / "a.jsonl") == records


def test_jsonl_skips_blank_lines_and_accepts_a_bom(tmp_path):
    line = json.dumps(RECORD, ensure_ascii=False)
    path = tmp_path / "a.jsonl"
    path.write_bytes(("\ufeff" + line + "\n\n" + line + "\n").encode("utf-8"))
    assert len(load_records(path)) == 2


def test_empty_child_turn_is_valid_silence(tmp_path):
    silent = record(previous_conversation=[SYSTEM, ASK_CAT, {"role": "user", "content": ""}])
    path = write_jsonl(tmp_path / "a.jsonl", [silent])
    assert load_records(path) == [silent]
    assert to_example(silent)["child_reply"] == ""


# Record-level problems: (change to a good record, field named in the error, problem text).
RECORD_PROBLEMS = [
    ("no_conversation", lambda r: r.pop("previous_conversation"), "previous_conversation", "missing"),
    ("conversation_str", lambda r: r.update(previous_conversation="hi"), "previous_conversation",
     "expected a list of turns, got string"),
    ("conversation_empty", lambda r: r.update(previous_conversation=[]), "previous_conversation", "empty list"),
    ("turn_not_object", lambda r: r["previous_conversation"].__setitem__(1, "hello"), "previous_conversation[1]",
     "expected an object with role and content, got string"),
    ("bad_role", lambda r: r["previous_conversation"][2].update(role="bot"), "previous_conversation[2].role",
     "expected one of system, assistant, user, got 'bot'"),
    ("no_role", lambda r: r["previous_conversation"][2].pop("role"), "previous_conversation[2].role", "missing"),
    ("no_content", lambda r: r["previous_conversation"][1].pop("content"), "previous_conversation[1].content",
     "missing"),
    ("null_content", lambda r: r["previous_conversation"][2].update(content=None),
     "previous_conversation[2].content", "expected a string, got null"),
    ("late_system", lambda r: r["previous_conversation"].append({"role": "system", "content": "x"}),
     "previous_conversation[3].role", "only allowed as the first turn"),
    ("only_system", lambda r: r.update(previous_conversation=[SYSTEM]), "previous_conversation",
     "has no robot (assistant) or child (user) turn"),
    ("no_target", lambda r: r.pop("assistant_fast_response"), "assistant_fast_response", "missing"),
    ("target_list", lambda r: r.update(assistant_fast_response=["Great!"]), "assistant_fast_response",
     "expected a string, got array"),
    ("target_blank", lambda r: r.update(assistant_fast_response="  "), "assistant_fast_response",
     "empty; it is the training target"),
    ("main_answer_number", lambda r: r.update(main_answer=3), "main_answer", "expected a string or null, got number"),
    ("intent_bool", lambda r: r.update(intent=True), "intent", "expected a string or null, got boolean"),
]


@pytest.mark.parametrize("change,field,problem", [p[1:] for p in RECORD_PROBLEMS], ids=[p[0] for p in RECORD_PROBLEMS])
def test_bad_record_names_record_line_and_field(tmp_path, change, field, problem):
    bad = record()
    change(bad)
    path = write_jsonl(tmp_path / "a.jsonl", [RECORD, RECORD, bad])
    message = load_error(path)
    assert message.startswith(f"{path}: record 2 (line 3): field '{field}': ")
    assert problem in message


def test_record_not_an_object(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([RECORD, "hello"]), encoding="utf-8")
    assert load_error(path) == f"{path}: record 1 (line 1): expected a JSON object (a record), got string"


def test_main_answer_and_intent_may_be_null_or_absent(tmp_path):
    r1, r2 = record(main_answer=None, intent=None), record()
    del r2["main_answer"], r2["intent"]
    load_records(write_jsonl(tmp_path / "a.jsonl", [r1, r2]))
    for r in (r1, r2):
        ex = to_example(r)
        assert ex["main_answer"] == "" and ex["intent"] == ""


# File-level problems, kept as files in tests/data/bad/: exact messages.
BAD_FILES = {
    "bad_role.jsonl": "record 2 (line 3): field 'previous_conversation[2].role': "
    "expected one of system, assistant, user, got 'bot'",
    "empty_target.json": "record 1 (line 19): field 'assistant_fast_response': empty; it is the training target",
    "malformed.json": "line 3 column 30: invalid JSON: Expecting ':' delimiter",
    "malformed_line.jsonl": "line 3 column 28: invalid JSON: Expecting value",
    "empty.jsonl": "empty file, expected a JSON array of records or JSONL",
    "object.json": "top level is a JSON object, expected a JSON array of records or JSONL (one record per line)",
    "not_utf8.jsonl": "line 2 column 200: not UTF-8 (byte 0xe9); save the file as UTF-8",
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_error(name):
    path = BAD / name
    assert load_error(path) == f"{path}: {BAD_FILES[name]}"


@pytest.mark.parametrize(
    "text,problem",
    [
        ("  \n\n", "empty file"),
        ("[]", "empty JSON array, no records"),
        ('"records"', "top level is a JSON string"),
        ("42", "top level is a JSON number"),
        ('{"data": [1, 2]}\n', "top level is a JSON object"),
        ("[1, 2", "line 1 column 6: invalid JSON"),
    ],
    ids=["blank", "empty_array", "string", "number", "wrapper_object_one_line", "truncated_array"],
)
def test_bad_top_level(tmp_path, text, problem):
    path = tmp_path / "a.json"
    path.write_text(text, encoding="utf-8")
    assert problem in load_error(path)


def test_missing_file_and_directory(tmp_path):
    assert load_error(tmp_path / "nope.jsonl").endswith(": file not found")
    assert "is a directory" in load_error(tmp_path)


# ---------------------------------------------------------------- prompts


def test_messages_format_keeps_turns_and_columns():
    ex = to_example(RECORD)
    assert set(ex) == set(COLUMNS)
    assert ex["prompt"] == RECORD["previous_conversation"]
    assert ex["reference_fast_response"] == "Yes, cat! Great job!"
    assert ex["main_answer"] == RECORD["main_answer"]
    assert ex["last_robot_turn"] == ASK_CAT["content"]
    assert ex["child_reply"] == "Cat!"
    assert ex["intent"] == "positive"


def test_system_prompt_override_replaces_adds_or_drops():
    override = "Answer in English only, 1-6 words."
    assert to_example(RECORD, system_prompt=override)["prompt"][0] == {"role": "system", "content": override}
    assert len(to_example(RECORD, system_prompt=override)["prompt"]) == 3
    no_system = record(previous_conversation=RECORD["previous_conversation"][1:])
    assert to_example(no_system)["prompt"][0]["role"] == "assistant"
    added = to_example(no_system, system_prompt=override)["prompt"]
    assert added[0] == {"role": "system", "content": override} and len(added) == 3
    assert [m["role"] for m in to_example(RECORD, system_prompt="")["prompt"]] == ["assistant", "user"]


def test_conversation_ending_with_robot_turn_is_silence():
    ends_robot = record(previous_conversation=[SYSTEM, ASK_CAT])
    ex = to_example(ends_robot)
    assert ex["prompt"][-1] == {"role": "user", "content": ""}
    assert ex["child_reply"] == "" and ex["last_robot_turn"] == ASK_CAT["content"]
    assert ex["prompt"] == to_example(record(previous_conversation=[SYSTEM, ASK_CAT, {"role": "user", "content": ""}]))[
        "prompt"
    ]


def test_history_format_renders_the_conversation_in_one_user_message():
    longer = record(
        previous_conversation=[SYSTEM, ASK_CAT, {"role": "user", "content": "Cat!"}, ASK_DOG, {"role": "user", "content": ""}]
    )
    ex = to_example(longer, prompt_format="history", system_prompt="Be brief.")
    assert [m["role"] for m in ex["prompt"]] == ["system", "user"]
    assert ex["prompt"][0]["content"] == "Be brief."
    text = ex["prompt"][1]["content"]
    lines = text.splitlines()
    assert lines[1:5] == [f"Pika: {ASK_CAT['content']}", "Child: Cat!", f"Pika: {ASK_DOG['content']}", "Child: (silent)"]
    assert "fast response" in lines[-1]
    assert ex["last_robot_turn"] == ASK_DOG["content"] and ex["child_reply"] == ""
    assert to_example(longer, prompt_format="history")["prompt"][0] == SYSTEM


def test_unknown_prompt_format_is_refused():
    with pytest.raises(ValueError, match="prompt_format"):
        to_example(RECORD, prompt_format="chatml")


def test_conversation_id_shared_by_growing_records_not_by_others():
    first = RECORD
    second = record(previous_conversation=RECORD["previous_conversation"] + [ASK_DOG, {"role": "user", "content": "Dog"}])
    other_system = record(previous_conversation=[{"role": "system", "content": "Other prompt."}, *RECORD["previous_conversation"][1:]])
    other_reply = record(previous_conversation=[SYSTEM, ASK_CAT, {"role": "user", "content": "Dog!"}])
    other_question = record(previous_conversation=[SYSTEM, ASK_DOG, {"role": "user", "content": "Cat!"}])
    cid = conversation_id(first)
    assert cid == conversation_id(second) == conversation_id(other_system)
    assert len({cid, conversation_id(other_reply), conversation_id(other_question)}) == 3
    assert to_example(second)["conversation_id"] == cid


# ---------------------------------------------------------------- split


def _prompt_texts(ds) -> set[str]:
    return {json.dumps([m for m in p if m["role"] != "system"], ensure_ascii=False) for p in ds["prompt"]}


def test_split_is_deterministic_by_conversation_without_overlap():
    train, held = build_datasets(DEMO, eval_size=100, split_seed=0)
    examples = [to_example(r) for r in reversed(load_records(DEMO))]  # input order must not matter
    train2, held2 = split_examples(examples, eval_size=100, split_seed=0)
    _, held_other = split_examples(examples, eval_size=100, split_seed=1)
    assert sorted(_key(e) for e in held2) == sorted(_key({"prompt": p}) for p in held["prompt"])
    assert len(train2) == len(train)
    assert set(held["conversation_id"]) != {e["conversation_id"] for e in held_other}
    assert 100 <= len(held) < 100 + 3  # whole conversations of at most 3 records
    assert not set(train["conversation_id"]) & set(held["conversation_id"])
    assert not _prompt_texts(train) & _prompt_texts(held)
    assert len(train) + len(held) <= len(load_records(DEMO))
    assert list(train.column_names) == list(COLUMNS)


def test_split_drops_training_prompts_identical_to_held_out_ones():
    # Two conversation ids with the same prompt (e.g. a system prompt override made them equal).
    a = dict(to_example(RECORD), conversation_id="a")
    b = dict(to_example(RECORD), conversation_id="b")
    c = dict(to_example(record(previous_conversation=[SYSTEM, ASK_DOG, {"role": "user", "content": "Dog"}])), conversation_id="c")
    for seed in range(4):
        train, held = split_examples([a, b, c, a], eval_size=1, split_seed=seed)
        assert not {_key(e) for e in train} & {_key(e) for e in held}
        assert len({_key(e) for e in held}) == len(held)


def _key(example):
    return json.dumps(example["prompt"][1:], ensure_ascii=False)


def test_history_format_split_and_override(tmp_path):
    train, held = build_datasets(DEMO, prompt_format="history", system_prompt="English only.", eval_size=20)
    assert all(p[0] == {"role": "system", "content": "English only."} and len(p) == 2 for p in held["prompt"])
    assert not _prompt_texts(train) & _prompt_texts(held)


def test_eval_size_that_leaves_no_training_data_is_an_error(tmp_path):
    path = write_jsonl(tmp_path / "a.jsonl", [RECORD, RECORD])
    with pytest.raises(DataError, match="leaves no training prompts"):
        build_datasets(path, eval_size=1)
    train, held = build_datasets(path, eval_size=0)
    assert len(train) == 2 and len(held) == 0 and held.column_names == list(COLUMNS)


# ---------------------------------------------------------------- check CLI


def run_check(*args):
    return subprocess.run(
        [sys.executable, "-m", "rl.data", "check", *map(str, args)], capture_output=True, text=True, cwd=ROOT
    )


@pytest.mark.parametrize("name", ["bad_role.jsonl", "malformed.json", "not_utf8.jsonl", "object.json", "empty.jsonl"])
def test_check_cli_bad_file_one_line_exit_1(name):
    path = BAD / name
    result = run_check(path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip() == f"{path}: {BAD_FILES[name]}"
    assert result.stdout == ""


def test_check_cli_summary_of_demo():
    result = run_check(DEMO, "--format", "history")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    n = len(load_records(DEMO))
    assert f"records: {n}" in out
    for intent in ("positive", "negative", "neutral", "fallback", "silence"):
        assert f" {intent} " in out + " "
    assert "7+: 0 (0%)" in out
    assert "Child:" in out  # the example prompt is in the history format
    train, held = build_datasets(DEMO, prompt_format="history")
    assert f"{len(train)} train / {len(held)} held-out prompts" in out


def test_summary_numbers(tmp_path):
    silent = record(previous_conversation=[SYSTEM, ASK_CAT, {"role": "user", "content": ""}], main_answer=None, intent=None)
    long_target = record(assistant_fast_response="one two three four five six seven")
    s = summarize([RECORD, silent, long_target])
    assert s["records"] == 3 and s["conversations"] == 2
    assert s["turns"] == {"min": 2, "mean": 2.0, "max": 2}
    assert s["intents"] == {"positive": 2}
    assert s["target_words"]["4"] == 2 and s["target_words"]["7+"] == 1
    assert s["silent_child"] == pytest.approx(1 / 3) and s["with_main_answer"] == pytest.approx(2 / 3)
    assert s["vietnamese_robot_turns"] == 1.0


# ---------------------------------------------------------------- demo dataset

VIETNAMESE_ONLY_LETTERS = set("ăâđêôơưàáảãạèéẻẽẹìíỉĩịòóỏõọùúủũụỳýỷỹỵ")


def test_committed_demo_is_what_write_demo_writes(tmp_path):
    fresh = write_demo(tmp_path / "demo.jsonl", seed=0)
    assert fresh.read_bytes() == DEMO.read_bytes(), "regenerate with: python -m rl.demo_data"
    assert write_demo(tmp_path / "other.jsonl", seed=1).read_bytes() != DEMO.read_bytes()
    assert DEMO.stat().st_size < 3_000_000  # the long guideline system prompt is 1.9 kB of many records


def test_demo_dataset_content():
    records = load_records(DEMO)
    assert len(records) >= 2000
    examples = [to_example(r) for r in records]
    intents = {e["intent"] for e in examples}
    assert intents == {"positive", "negative", "neutral", "fallback", "silence"}
    assert len({e["conversation_id"] for e in examples}) < 0.8 * len(records)  # conversations span records
    for e in examples:
        target = e["reference_fast_response"]
        assert 1 <= len(target.split()) <= 6, target
        assert "<" not in target and not (set(target.lower()) & VIETNAMESE_ONLY_LETTERS), target
        assert (e["child_reply"] == "") == (e["intent"] == "silence")
        assert e["main_answer"]
    robot = [t["content"] for r in records for t in r["previous_conversation"] if t["role"] == "assistant"]
    assert all(set(unicodedata.normalize("NFC", t).lower()) & VIETNAMESE_ONLY_LETTERS for t in robot)
    responses = {e["reference_fast_response"] for e in examples}
    assert len(responses) >= 50  # varied, some naming the English word
    assert any(r.startswith("Yes, ") and r.endswith("! Great job!") for r in responses)  # naming the word
    assert len({r["previous_conversation"][0]["content"] for r in records}) >= 6  # several system prompts


def test_demo_targets_pass_the_english_and_length_rewards():
    from rewards.english import is_english
    from rewards.length import count_words

    targets = {r["assistant_fast_response"] for r in load_records(DEMO)}
    assert [t for t in targets if not is_english(t) or not 1 <= count_words(t) <= 6] == []


# ---------------------------------------------------------------- the history format as a config template

SERVED_EXAMPLE = """### 📚 Conversation History

* 🤖 Assistant:
Chào cậu. Cậu sẵn sàng chưa?

* 👤 User:
They're sitting down.

* 🤖 Assistant:
Good job! Tiếp nha, “Bức tranh?” trong tiếng Anh là gì cậu nhỉ?

* 👤 User:
Hmm, I don't know."""


def served_record(last_child="Hmm, I don't know."):
    return record(previous_conversation=[
        {"role": "system", "content": "This is conversation of Assistant and User. Must AI response in English, "
                                      "continues for conversation"},
        {"role": "assistant", "content": "Chào cậu. Cậu sẵn sàng chưa?"},
        {"role": "user", "content": "They're sitting down."},
        {"role": "assistant", "content": "Good job! Tiếp nha, “Bức tranh?” trong tiếng Anh là gì cậu nhỉ?"},
        {"role": "user", "content": last_child},
    ])


def test_served_history_preset_renders_the_users_format_exactly():
    from tests.composed import composed

    history = composed("+exp=english_only", "model=nano", "history=served").data.history
    ex = to_example(served_record(), prompt_format="history", history=history)
    assert [m["role"] for m in ex["prompt"]] == ["system", "user"]
    assert ex["prompt"][1]["content"] == SERVED_EXAMPLE
    assert ex["child_reply"] == "Hmm, I don't know." and ex["last_robot_turn"].startswith("Good job!")
    # and the same file reads back to the same turns (the judge's parser uses the same template)
    from rl.data import history_format

    turns = history_format(history).parse(ex["prompt"][1]["content"])
    assert turns[-1] == {"role": "user", "content": "Hmm, I don't know."} and len(turns) == 4
    silent = to_example(served_record(""), prompt_format="history", history=history)["prompt"][1]["content"]
    assert silent.endswith("* 👤 User:\n") and history_format(history).parse(silent)[-1]["content"] == ""


def test_default_history_preset_is_the_plain_rendering():
    from tests.composed import composed

    history = composed("+exp=english_only").data.history
    text = to_example(served_record(), prompt_format="history", history=history)["prompt"][1]["content"]
    assert text.startswith("Conversation so far:\nPika: Chào cậu.") and "\nChild: Hmm, I don't know." in text
    assert text == to_example(served_record(), prompt_format="history")["prompt"][1]["content"]


@pytest.mark.parametrize(
    "history, message",
    [
        ({"heading": "x"}, "data.history: unknown key 'heading'"),
        ({"robot": 3}, "data.history.robot: expected a string, got number"),
        ({"robot": "Pika:", "child": "Pika:"}, "data.history: robot and child markers must be different"),
    ],
)
def test_bad_history_template_is_one_line_naming_the_key(history, message):
    with pytest.raises(DataError, match=message):
        build_datasets(DEMO, prompt_format="history", history=history, eval_size=20)


def test_eval_size_all_holds_out_every_record_in_file_order(tmp_path):
    path = tmp_path / "test.jsonl"
    records = [served_record(child) for child in ("Cat!", "Dog!", "Cat!")]  # a duplicate stays: every record
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    train, held = build_datasets(path, eval_size="all")
    assert len(train) == 0 and [r["child_reply"] for r in held] == ["Cat!", "Dog!", "Cat!"]
    with pytest.raises(DataError, match="eval_size=2 leaves no training prompts"):
        build_datasets(path, eval_size=2)
    with pytest.raises(ValueError, match="data.eval_size: expected a whole number >= 0 or 'all', got 'most'"):
        build_datasets(path, eval_size="most")
