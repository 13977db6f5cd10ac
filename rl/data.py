"""Pika conversations -> validated records -> prompt dataset (train + held-out split).
Long because: reading, validating, prompting, bounding and splitting are one pipeline over one
record format whose error wording (file, record, line, field) they share; the bound itself is rl.prompt_bound.

The Pika format is a JSON array, or JSONL (one record per line), of records like
    {"previous_conversation": [{"role": "system", "content": "...guidelines..."},
                               {"role": "assistant", "content": "Con mèo trong tiếng Anh là gì nhỉ?"},
                               {"role": "user", "content": "Cat!"}],
     "assistant_fast_response": "Yes, cat! Great job!",
     "main_answer": "optional", "intent": "optional"}
Robot (Pika) turns have role "assistant", the child's turns role "user"; an empty child turn is silence.

Rules this module applies (decisions, each tested in tests/test_data.py):
- Every record is validated; the first problem raises `DataError`, one line:
  `FILE: record N (line L): field 'x': problem`. N is the 0-based index of the record in the file (the
  same numbering as `previous_conversation[i]`), L the line the record starts on (JSON array or JSONL).
- `assistant_fast_response` is the training target, so an empty (or blank) one is an error.
- A conversation that ends with a robot turn means the child did not answer: it is treated as silence
  (an empty user turn is appended to the prompt, `child_reply` is "").
- `conversation_id`: a conversation grows one record per child turn, so every record of it starts with
  the same first exchange. The id is a hash of the non-system turns up to and including the first child
  turn (robot opening(s) + the child's first reply), whitespace-normalised. The system turn is left out
  because users vary it.
- Split: conversations are ordered by sha256(f"{split_seed}:{conversation_id}") and whole conversations
  go to the held-out set until it has at least `eval_size` prompts. Prompts are compared without the
  system message; a training prompt identical to a held-out prompt is dropped from training, and
  duplicate held-out prompts are kept once.

Run:  python -m rl.data check FILE [--format messages|history] [--system-prompt TEXT] [--eval-size 128]
      [--split-seed 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import statistics
import sys
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

from common.conversation import DEFAULT_FORMAT, HistoryFormat
from common.errors import UserError
from rl.prompt_bound import BoundStats, PromptBound, PromptTooLong

ROLES = ("system", "assistant", "user")
PROMPT_FORMATS = ("messages", "history")
COLUMNS = (
    "prompt",
    "reference_fast_response",
    "main_answer",
    "last_robot_turn",
    "child_reply",
    "conversation_id",
    "intent",
)


class DataError(UserError, ValueError):
    """A bad data file or record; the message is one line naming the file, record/line and field."""


# ---------------------------------------------------------------- reading the file


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}.get(
        type(value), type(value).__name__
    )


def _read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, expected a JSON or JSONL file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read: {e.strerror or e}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        col = e.start - (raw.rfind(b"\n", 0, e.start) + 1) + 1
        raise DataError(
            f"{path}: line {line} column {col}: not UTF-8 (byte 0x{raw[e.start]:02x}); save the file as UTF-8"
        ) from None
    if not text.strip():
        raise DataError(f"{path}: empty file, expected a JSON array of records or JSONL")
    return text


def _json_error(path: Path, e: json.JSONDecodeError, line_offset: int = 0) -> DataError:
    return DataError(f"{path}: line {e.lineno + line_offset} column {e.colno}: invalid JSON: {e.msg}")


def _parse_array(path: Path, text: str) -> list[tuple[Any, int]]:
    """(record, start line) for each element of a JSON array."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise _json_error(path, e) from None
    # Walk the (valid) array again to learn the line each record starts on.
    decoder = json.JSONDecoder()
    out, pos = [], text.index("[") + 1
    line, counted = 1, 0  # newlines counted incrementally: a 7,000-record file stays linear
    for _ in data:
        while text[pos] in " \t\r\n,":
            pos += 1
        record, end = decoder.raw_decode(text, pos)
        line += text.count("\n", counted, pos)
        counted = pos
        out.append((record, line))
        pos = end
    return out


def _parse_jsonl(path: Path, text: str) -> list[tuple[Any, int]]:
    out = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            out.append((json.loads(line), lineno))
        except json.JSONDecodeError as e:
            if lineno == 1:
                # Maybe the whole file is one (pretty-printed) JSON value rather than JSONL.
                try:
                    whole = json.loads(text)
                except json.JSONDecodeError:
                    raise _json_error(path, e, line_offset=lineno - 1) from None
                raise DataError(
                    f"{path}: top level is a JSON {_type_name(whole)}, "
                    "expected a JSON array of records or JSONL (one record per line)"
                ) from None
            raise _json_error(path, e, line_offset=lineno - 1) from None
    return out


def _parse(path: Path, text: str) -> list[tuple[Any, int]]:
    first = text.lstrip()[0]
    if first == "[":
        rows = _parse_array(path, text)
        if not rows:
            raise DataError(f"{path}: empty JSON array, no records")
        return rows
    if first == "{":
        rows = _parse_jsonl(path, text)
        if len(rows) == 1 and isinstance(rows[0][0], dict) and "previous_conversation" not in rows[0][0]:
            # One object that is not a record, e.g. {"data": [...]}: a wrapper, not JSONL.
            raise DataError(
                f"{path}: top level is a JSON object, expected a JSON array of records or JSONL (one record per line)"
            )
        return rows
    try:
        whole = json.loads(text)
    except json.JSONDecodeError as e:
        raise _json_error(path, e) from None
    raise DataError(f"{path}: top level is a JSON {_type_name(whole)}, expected a JSON array of records or JSONL")


# ---------------------------------------------------------------- validating records


def validate_record(record: Any) -> None:
    """Raise DataError("field 'x': problem") (no file/record prefix) for the first problem found."""

    def bad(field: str, problem: str):
        raise DataError(f"field '{field}': {problem}")

    if not isinstance(record, dict):
        raise DataError(f"expected a JSON object (a record), got {_type_name(record)}")
    if "previous_conversation" not in record:
        bad("previous_conversation", "missing")
    turns = record["previous_conversation"]
    if not isinstance(turns, list):
        bad("previous_conversation", f"expected a list of turns, got {_type_name(turns)}")
    if not turns:
        bad("previous_conversation", "empty list, expected at least one robot or child turn")
    for i, turn in enumerate(turns):
        field = f"previous_conversation[{i}]"
        if not isinstance(turn, dict):
            bad(field, f"expected an object with role and content, got {_type_name(turn)}")
        if "role" not in turn:
            bad(f"{field}.role", "missing")
        role = turn["role"]
        if role not in ROLES:
            bad(f"{field}.role", f"expected one of {', '.join(ROLES)}, got {role!r}")
        if role == "system" and i != 0:
            bad(f"{field}.role", "a system turn is only allowed as the first turn")
        if "content" not in turn:
            bad(f"{field}.content", "missing")
        if not isinstance(turn["content"], str):
            bad(f"{field}.content", f"expected a string, got {_type_name(turn['content'])}")
    if all(t["role"] == "system" for t in turns):
        bad("previous_conversation", "has no robot (assistant) or child (user) turn")
    if "assistant_fast_response" not in record:
        bad("assistant_fast_response", "missing")
    target = record["assistant_fast_response"]
    if not isinstance(target, str):
        bad("assistant_fast_response", f"expected a string, got {_type_name(target)}")
    if not target.strip():
        bad("assistant_fast_response", "empty; it is the training target")
    for key in ("main_answer", "intent"):
        if record.get(key) is not None and not isinstance(record[key], str):
            bad(key, f"expected a string or null, got {_type_name(record[key])}")


def read_rows(path: str | Path) -> list[tuple[Any, int]]:
    """[(row, line it starts on)] of a JSON array or JSONL file, not validated; DataError for a bad file."""
    path = Path(path)
    return _parse(path, _read_text(path))


def load_records(path: str | Path) -> list[dict]:
    """Every record of a Pika JSON array or JSONL file, validated; raises DataError on the first problem."""
    return [record for record, _ in _load(path)]


def _load(path: str | Path) -> list[tuple[dict, int]]:
    path = Path(path)
    rows = read_rows(path)
    for index, (record, line) in enumerate(rows):
        try:
            validate_record(record)
        except DataError as e:
            raise DataError(f"{path}: record {index} (line {line}): {e}") from None
    return rows


# ---------------------------------------------------------------- records -> prompts


def _dialogue(record: dict) -> list[dict]:
    """The non-system turns, ending with a child turn (a trailing robot turn means the child was silent)."""
    turns = [{"role": t["role"], "content": t["content"]} for t in record["previous_conversation"] if t["role"] != "system"]
    if turns[-1]["role"] == "assistant":
        turns.append({"role": "user", "content": ""})
    return turns


def _system_text(record: dict, system_prompt: str | None) -> str:
    """system_prompt None keeps the record's system turn, a string replaces it ("" drops it)."""
    if system_prompt is not None:
        return system_prompt
    first = record["previous_conversation"][0]
    return first["content"] if first["role"] == "system" else ""


def _normalise(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def conversation_id(record: dict) -> str:
    """Stable id shared by all records of one conversation: hash of its first exchange (see module doc)."""
    opening = []
    for turn in record["previous_conversation"]:
        if turn["role"] == "system":
            continue
        opening.append([turn["role"], _normalise(turn["content"])])
        if turn["role"] == "user":
            break
    return hashlib.sha256(json.dumps(opening, ensure_ascii=False).encode()).hexdigest()[:16]


def history_format(history: HistoryFormat | dict | None) -> HistoryFormat:
    """`data.history` (the template of the history format: header, role markers, gaps) -> HistoryFormat."""
    if history is None:
        return DEFAULT_FORMAT
    if isinstance(history, HistoryFormat):
        return history
    known = {f.name for f in dataclasses.fields(HistoryFormat)}
    unknown = sorted(set(history) - known)
    if unknown:
        raise DataError(f"data.history: unknown key {unknown[0]!r}; known: {', '.join(sorted(known))}")
    bad = [k for k, v in history.items() if not isinstance(v, str)]
    if bad:
        raise DataError(f"data.history.{bad[0]}: expected a string, got {_type_name(history[bad[0]])}")
    fmt = HistoryFormat(**history)
    if not fmt.robot.strip() or not fmt.child.strip() or fmt.robot == fmt.child:
        raise DataError("data.history: robot and child markers must be different and not blank")
    return fmt


def render_prompt(system: str, turns: list[dict], prompt_format: str = "messages",
                  history: HistoryFormat | dict | None = None) -> list[dict]:
    """A system text ("" = none) and the conversation's turns -> the chat prompt of `prompt_format`."""
    head = [{"role": "system", "content": system}] if system else []
    if prompt_format == "messages":
        return head + turns
    return head + [{"role": "user", "content": history_format(history).render(turns)}]


def to_example(record: dict, prompt_format: str = "messages", system_prompt: str | None = None,
               history: HistoryFormat | dict | None = None, bound: PromptBound | None = None) -> dict:
    """One validated record -> a prompt row (columns in COLUMNS) for TRL's GRPOTrainer.

    With a `bound` the prompt keeps only the newest turns that fit (rl.prompt_bound; PromptTooLong when
    none do); the row's "prompt_tokens" and "turns_dropped" say what bounding did."""
    if prompt_format not in PROMPT_FORMATS:
        raise ValueError(f"prompt_format: expected one of {', '.join(PROMPT_FORMATS)}, got {prompt_format!r}")
    turns = _dialogue(record)
    system = _system_text(record, system_prompt)
    extra = {}
    if bound is not None:
        kept, tokens = bound.fit(turns, lambda some: render_prompt(system, some, prompt_format, history))
        extra = {"prompt_tokens": tokens, "turns_dropped": len(turns) - len(kept)}
        turns = kept
    prompt = render_prompt(system, turns, prompt_format, history)
    robot_turns = [t["content"] for t in turns if t["role"] == "assistant"]
    return {
        "prompt": prompt,
        "reference_fast_response": record["assistant_fast_response"],
        "main_answer": record.get("main_answer") or "",
        "last_robot_turn": robot_turns[-1] if robot_turns else "",
        "child_reply": turns[-1]["content"],
        "conversation_id": conversation_id(record),
        "intent": record.get("intent") or "",
        **extra,
    }


def bounded_examples(path: str | Path, prompt_format: str, system_prompt: str | None,
                     history: HistoryFormat | dict | None, bound: PromptBound | None,
                     too_long: str = "skip") -> tuple[list[dict], BoundStats | None]:
    """Every record of `path` as a prompt row, bounded when `bound` is given; (rows, what bounding did).
    A record too long even when trimmed is skipped, or (too_long="refuse") a DataError naming it."""
    history = history_format(history)
    rows = _load(path)
    if bound is None:
        return [to_example(r, prompt_format, system_prompt, history) for r, _ in rows], None
    stats, examples = BoundStats(bound.max_tokens), []
    for index, (record, line) in enumerate(rows):
        try:
            example = to_example(record, prompt_format, system_prompt, history, bound)
        except PromptTooLong as err:
            if too_long == "refuse":
                raise DataError(
                    f"{path}: record {index} (line {line}): field 'previous_conversation': the prompt is "
                    f"{err.tokens} tokens with only the system prompt, the last robot turn and the child's reply "
                    f"left; data.max_prompt_tokens is {bound.max_tokens} (data.too_long=refuse; skip to drop it)"
                ) from None
            stats.skipped += 1
            continue
        stats.trimmed += example["turns_dropped"] > 0
        stats.turns_dropped += example.pop("turns_dropped")
        stats.lengths.append(example.pop("prompt_tokens"))
        examples.append(example)
    return examples, stats


# ---------------------------------------------------------------- split


def _prompt_key(example: dict) -> str:
    # Without the system message: the same conversation under another system prompt is still a leak.
    return json.dumps([m for m in example["prompt"] if m["role"] != "system"], ensure_ascii=False)


EVAL_ALL = "all"  # data.eval_size=all: every record is held out (a test file evaluated whole, nothing to train on)


def parse_eval_size(value) -> int | str:
    """data.eval_size: a whole number >= 0 or "all"; anything else is a ValueError naming the key."""
    if value == EVAL_ALL or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise ValueError(f"data.eval_size: expected a whole number >= 0 or 'all', got {value!r}")


def split_examples(examples: list[dict], eval_size: int | str, split_seed: int = 0) -> tuple[list[dict], list[dict]]:
    """(train, held_out): whole conversations, chosen by a seeded hash, until held_out has >= eval_size
    ("all": every conversation)."""
    eval_size = parse_eval_size(eval_size)
    if eval_size == EVAL_ALL:
        return [], list(examples)  # every record, in file order, duplicates included: the file as it is
    by_conv: dict[str, list[dict]] = {}
    for ex in examples:
        by_conv.setdefault(ex["conversation_id"], []).append(ex)
    order = sorted(by_conv, key=lambda cid: hashlib.sha256(f"{split_seed}:{cid}".encode()).hexdigest())
    held_out, held_keys, taken = [], set(), set()
    for cid in order:
        if len(held_out) >= eval_size:
            break
        taken.add(cid)
        for ex in by_conv[cid]:
            key = _prompt_key(ex)
            if key not in held_keys:
                held_keys.add(key)
                held_out.append(ex)
    train = [ex for cid in order if cid not in taken for ex in by_conv[cid] if _prompt_key(ex) not in held_keys]
    # Keep file order inside each set: deterministic and easy to trace back to records.
    position = {id(ex): i for i, ex in enumerate(examples)}
    return sorted(train, key=lambda ex: position[id(ex)]), sorted(held_out, key=lambda ex: position[id(ex)])


def _features():
    from datasets import Features, List, Value

    cols = {c: Value("string") for c in COLUMNS}
    cols["prompt"] = List({"role": Value("string"), "content": Value("string")})
    return Features(cols)


def build_datasets(
    path: str | Path,
    prompt_format: str = "messages",
    system_prompt: str | None = None,
    eval_size: int | str = 128,
    split_seed: int = 0,
    history: HistoryFormat | dict | None = None,
    bound: PromptBound | None = None,
    too_long: str = "skip",
    stats_out: list | None = None,
):
    """(train, held_out) as datasets.Dataset with the columns in COLUMNS, split by conversation.

    eval_size="all" holds out every record (train is empty): a test file evaluated whole. With a `bound`,
    prompts are bounded (see bounded_examples) and what that did is appended to `stats_out`."""
    from datasets import Dataset

    eval_size = parse_eval_size(eval_size)
    examples, stats = bounded_examples(path, prompt_format, system_prompt, history, bound, too_long)
    if stats_out is not None and stats is not None:
        stats_out.append(stats)
    if not examples:
        raise DataError(f"{path}: every record is longer than data.max_prompt_tokens={bound.max_tokens} "
                        "even with its oldest turns dropped")
    train, held_out = split_examples(examples, eval_size, split_seed)
    if not train and eval_size != EVAL_ALL:
        raise DataError(
            f"{path}: eval_size={eval_size} leaves no training prompts "
            f"({len(examples)} records in {len({e['conversation_id'] for e in examples})} conversations)"
        )
    features = _features()
    as_columns = lambda rows: {c: [r[c] for r in rows] for c in COLUMNS}  # noqa: E731
    return (
        Dataset.from_dict(as_columns(train), features=features),
        Dataset.from_dict(as_columns(held_out), features=features),
    )


# ---------------------------------------------------------------- summary (python -m rl.data check)


def summarize(
    records: list[dict],
    prompt_format: str = "messages",
    system_prompt: str | None = None,
    eval_size: int | str = 128,
    split_seed: int = 0,
) -> dict:
    """Numbers printed by `check`: sizes, turns, intents, languages, target lengths, silence, main answers."""
    from rewards.english import is_english  # the reward's own detector: the share it would reject
    from rewards.length import count_words

    examples = [to_example(r, prompt_format, system_prompt) for r in records]
    turns = [sum(t["role"] != "system" for t in r["previous_conversation"]) for r in records]
    robot = [t["content"] for r in records for t in r["previous_conversation"] if t["role"] == "assistant"]
    lengths = Counter(min(count_words(r["assistant_fast_response"]), 7) for r in records)
    n = len(records)
    train, held_out = split_examples(examples, eval_size, split_seed)
    return {
        "records": n,
        "conversations": len({e["conversation_id"] for e in examples}),
        "turns": {"min": min(turns), "mean": statistics.fmean(turns), "max": max(turns)},
        "intents": dict(Counter(e["intent"] for e in examples if e["intent"]).most_common()),
        "vietnamese_robot_turns": sum(not is_english(t) for t in robot) / len(robot) if robot else 0.0,
        "robot_turns": len(robot),
        "target_words": {("7+" if k == 7 else str(k)): lengths.get(k, 0) for k in range(1, 8)},
        "silent_child": sum(e["child_reply"] == "" for e in examples) / n,
        "ends_with_robot_turn": sum(r["previous_conversation"][-1]["role"] == "assistant" for r in records),
        "with_main_answer": sum(bool(e["main_answer"]) for e in examples) / n,
        "example_prompt": examples[0]["prompt"],
        "split": {"eval_size": eval_size, "split_seed": split_seed, "train": len(train), "held_out": len(held_out)},
    }


def format_summary(path: str | Path, s: dict, prompt_format: str = "messages") -> str:
    n = s["records"]
    lines = [
        f"{path}: OK",
        f"records: {n}   conversations: {s['conversations']}",
        f"turns per record (without system): min {s['turns']['min']}  mean {s['turns']['mean']:.2f}  "
        f"max {s['turns']['max']}",
    ]
    if s["intents"]:
        lines.append("intents: " + "  ".join(f"{k} {v}" for k, v in s["intents"].items()))
        missing = n - sum(s["intents"].values())
        if missing:
            lines.append(f"  (no intent: {missing})")
    else:
        lines.append("intents: none given")
    lines += [
        f"Vietnamese robot turns: {s['vietnamese_robot_turns']:.1%} of {s['robot_turns']} (not rewards.english.is_english)",
        "target length in words: "
        + "  ".join(f"{k}: {v} ({v / n:.0%})" for k, v in s["target_words"].items()),
        f"silent child (empty last child turn): {s['silent_child']:.1%}"
        + (f"  (of which {s['ends_with_robot_turn']} end with a robot turn)" if s["ends_with_robot_turn"] else ""),
        f"with main_answer: {s['with_main_answer']:.1%}",
        f"split (eval_size {s['split']['eval_size']}, split_seed {s['split']['split_seed']}): "
        f"{s['split']['train']} train / {s['split']['held_out']} held-out prompts"
        + ("  (every record evaluated)" if s["split"]["eval_size"] == EVAL_ALL
           else "  (eval_size leaves no training prompts!)" if not s["split"]["train"] else ""),
        f"example prompt ({prompt_format}):",
    ]
    for m in s["example_prompt"]:
        content = m["content"] if len(m["content"]) <= 300 else m["content"][:300] + "..."
        lines.append(f"  [{m['role']}] " + content.replace("\n", "\n    "))
    return "\n".join(lines)


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}")
    return int(text)


def _eval_size(text: str) -> int | str:
    if text == EVAL_ALL:
        return text
    return _count(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rl.data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    check = sub.add_parser("check", help="validate a Pika data file and print a summary")
    check.add_argument("file")
    check.add_argument("--format", choices=PROMPT_FORMATS, default="messages", help="prompt format of the example")
    check.add_argument("--system-prompt", default=None, help="replace the conversations' system prompt")
    check.add_argument("--eval-size", type=_eval_size, default=128,
                       help="held-out prompts of the split shown ('all': every record)")
    check.add_argument("--split-seed", type=_count, default=0)
    check.add_argument("--tokenizer", default=None,
                       help="the model's tokenizer (a folder or hub name, e.g. checkpoints/nano/base): prompt "
                            "lengths in its tokens, bounded as training bounds them")
    check.add_argument("--max-prompt-tokens", type=_count, default=None,
                       help="data.max_prompt_tokens (default: the model's context minus --max-completion-length)")
    check.add_argument("--max-completion-length", type=_count, default=24, help="rollout.max_completion_length")
    args = parser.parse_args(argv)
    try:
        records = load_records(args.file)
        bound = None
        if args.tokenizer:
            bound = prompt_bound(args.tokenizer, args.max_prompt_tokens, args.max_completion_length)
            _, stats = bounded_examples(args.file, args.format, args.system_prompt, None, bound)
    except (DataError, OSError, ValueError) as e:
        print(" ".join(str(e).split()), file=sys.stderr)
        return 1
    summary = summarize(records, args.format, args.system_prompt, args.eval_size, args.split_seed)
    print(format_summary(args.file, summary, args.format))
    print(stats.line() if bound else "prompt tokens: not measured (pass --tokenizer, e.g. checkpoints/nano/base)")
    return 0


def prompt_bound(tokenizer_source, max_prompt_tokens: int | None, max_completion_length: int,
                 model_path: str | None = None) -> PromptBound:
    """The bound a run applies: `max_prompt_tokens`, or the context of the model at `model_path` (default: where
    the tokenizer came from) minus the completion length."""
    from transformers import AutoTokenizer

    from rl.prompt_bound import context_length

    tokenizer = (AutoTokenizer.from_pretrained(str(tokenizer_source)) if isinstance(tokenizer_source, (str, Path))
                 else tokenizer_source)
    if max_prompt_tokens is None:
        model_path = model_path or tokenizer.name_or_path
        context = context_length(model_path)
        if context is None:
            raise DataError(f"{model_path}: its config names no context length; set "
                            "data.max_prompt_tokens")
        max_prompt_tokens = context - max_completion_length
        if max_prompt_tokens < 1:
            raise DataError(f"rollout.max_completion_length {max_completion_length} leaves no room for a prompt "
                            f"in the model's context of {context} tokens")
    return PromptBound(tokenizer, max_prompt_tokens)


if __name__ == "__main__":
    sys.exit(main())
