"""common/: atomic writes, the retry helper, the history format (rendered and parsed in one module)."""

from __future__ import annotations

import asyncio
import json
import os
import stat

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.atomic_write import open_atomic, write_bytes_atomic, write_json_atomic, write_jsonl_atomic, write_text_atomic
from common.conversation import HistoryFormat, last_exchange, parse_history, render_history
from common.retry import GaveUp, Retryable, RetryCounter, RetryPolicy, retry_call, retry_call_async

# ---------------------------------------------------------------- atomic writes


def test_atomic_writes_replace_the_file_whole(tmp_path):
    target = tmp_path / "sub" / "f.json"
    write_json_atomic(target, {"a": "việt"})
    assert json.loads(target.read_text(encoding="utf-8")) == {"a": "việt"}
    write_text_atomic(target, "second\n")
    assert target.read_text() == "second\n"
    write_bytes_atomic(target, b"\x00\x01")
    assert target.read_bytes() == b"\x00\x01"
    write_jsonl_atomic(tmp_path / "r.jsonl", ({"i": i} for i in range(3)))
    assert [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.json"]  # no temp file left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("old\n")

    def rows():
        yield {"i": 0}
        raise RuntimeError("source broke mid-way")

    with pytest.raises(RuntimeError, match="mid-way"):
        write_jsonl_atomic(target, rows())
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]


def test_atomic_files_get_the_usual_mode_not_mkstemps_0600(tmp_path):
    umask = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "f", "x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o644


def test_open_atomic_refuses_append_and_read_modes(tmp_path):
    with pytest.raises(ValueError, match="mode"):
        with open_atomic(tmp_path / "f", "a"):
            pass


# ---------------------------------------------------------------- retry


class Clock:
    """A fake clock the fake sleep advances: deadlines are tested without waiting."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def flaky(failures: int, exc=Retryable("HTTP 503")):
    calls = []

    def attempt():
        calls.append(1)
        if len(calls) <= failures:
            raise exc
        return "ok"

    return attempt, calls


@pytest.mark.parametrize(
    "failures, attempts, result, tries, sleeps",
    [
        (0, 3, "ok", 1, []),
        (2, 3, "ok", 3, [0.5, 1.0]),
        (3, 3, GaveUp, 3, [0.5, 1.0]),
        (5, 1, GaveUp, 1, []),
    ],
)
def test_retry_is_bounded_by_attempts_with_growing_backoff(failures, attempts, result, tries, sleeps):
    clock, counter = Clock(), RetryCounter()
    attempt, calls = flaky(failures)
    policy = RetryPolicy(attempts=attempts, backoff_s=0.5)
    if result is GaveUp:
        with pytest.raises(GaveUp) as err:
            retry_call(attempt, policy, counter=counter, sleep=clock.sleep, clock=lambda: clock.now)
        assert err.value.attempts == tries and err.value.reason == "HTTP 503"
        assert str(err.value) == f"HTTP 503 ({tries} attempt{'s' if tries > 1 else ''})"
    else:
        assert retry_call(attempt, policy, counter=counter, sleep=clock.sleep, clock=lambda: clock.now) == result
    assert len(calls) == tries and clock.sleeps == sleeps
    assert counter == RetryCounter(calls=1, attempts=tries, retries=len(sleeps), failures=int(result is GaveUp))


def test_backoff_is_capped():
    policy = RetryPolicy(attempts=10, backoff_s=1, max_backoff_s=4)
    assert [policy.delay(n) for n in range(1, 6)] == [1, 2, 4, 4, 4]


def test_the_deadline_stops_retrying_before_a_sleep_would_pass_it():
    clock = Clock()
    attempt, calls = flaky(100)
    policy = RetryPolicy(attempts=None, backoff_s=1.0, multiplier=1.0, deadline_s=3.5)
    with pytest.raises(GaveUp) as err:
        retry_call(attempt, policy, sleep=clock.sleep, clock=lambda: clock.now)
    assert err.value.deadline_hit and "deadline reached" in str(err.value)
    assert clock.now <= 3.5 and len(calls) == 4  # tries at t = 0, 1, 2, 3


def test_other_errors_leave_at_once_and_count_as_failures():
    counter = RetryCounter()
    attempt, calls = flaky(1, exc=KeyError("not worth retrying"))
    with pytest.raises(KeyError):
        retry_call(attempt, RetryPolicy(attempts=5, backoff_s=0), counter=counter)
    assert len(calls) == 1 and counter.failures == 1 and counter.retries == 0


def test_retry_on_names_the_exception_types_and_on_retry_reports_each():
    seen = []
    attempt, calls = flaky(2, exc=ConnectionError("refused"))
    policy = RetryPolicy(attempts=3, backoff_s=0, retry_on=(ConnectionError,))
    assert retry_call(attempt, policy, on_retry=lambda n, why, delay: seen.append((n, why))) == "ok"
    assert seen == [(1, "ConnectionError: refused"), (2, "ConnectionError: refused")]


def test_jitter_stays_within_half_to_full_backoff():
    policy = RetryPolicy(attempts=3, backoff_s=2.0, jitter=True)
    delays = [policy.delay(1) for _ in range(200)]
    assert all(1.0 <= d <= 2.0 for d in delays) and len(set(delays)) > 1


def test_the_async_loop_retries_the_same_way():
    counter = RetryCounter()
    calls = []

    async def attempt():
        calls.append(1)
        if len(calls) < 3:
            raise Retryable("timed out")
        return 42

    assert asyncio.run(retry_call_async(attempt, RetryPolicy(attempts=3, backoff_s=0), counter=counter)) == 42
    assert counter == RetryCounter(calls=1, attempts=3, retries=2, failures=0)


@pytest.mark.parametrize("kwargs", [{"attempts": None}, {"attempts": 0}, {"multiplier": 0.5}, {"backoff_s": -1}])
def test_unbounded_or_nonsense_policies_are_refused(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


# ---------------------------------------------------------------- history format

USERS_FORMAT = HistoryFormat(  # the users' own rendering (pika_prompts.md, section 2)
    header="### 📚 Conversation History",
    robot="* 🤖 Assistant:",
    child="* 👤 User:",
    silent="",
    instruction="",
    turn_break="\n",
    turn_gap="\n\n",
)


def test_render_and_parse_the_default_format():
    turns = [
        {"role": "assistant", "content": "Good job! Tiếp nha, “Bức tranh?” là gì?"},
        {"role": "user", "content": "Hmm, I don't know."},
    ]
    text = render_history(turns)
    assert text.splitlines() == [
        "Conversation so far:",
        "Pika: Good job! Tiếp nha, “Bức tranh?” là gì?",
        "Child: Hmm, I don't know.",
        "",
        "Write Pika's fast response to the child's last turn.",
    ]
    assert parse_history(text) == turns
    assert last_exchange(parse_history(text)) == ("Good job! Tiếp nha, “Bức tranh?” là gì?", "Hmm, I don't know.")


def test_a_format_like_the_users_renders_their_example_exactly():
    turns = [{"role": "assistant", "content": "Good job! Tiếp nha?"}, {"role": "user", "content": "Amazing!"}]
    text = USERS_FORMAT.render(turns)
    assert text == "### 📚 Conversation History\n\n* 🤖 Assistant:\nGood job! Tiếp nha?\n\n* 👤 User:\nAmazing!"
    assert USERS_FORMAT.parse(text) == turns


@pytest.mark.parametrize(
    "text, expected",
    [
        ("no turns here", None),
        ("", None),
        (None, None),
        ("Pika: hi", [{"role": "assistant", "content": "hi"}]),
        ("Pika: a\nChild: (silent)", [{"role": "assistant", "content": "a"}, {"role": "user", "content": ""}]),
        ("Pika: line one\nline two\nChild: ok", [{"role": "assistant", "content": "line one\nline two"},
                                                 {"role": "user", "content": "ok"}]),
    ],
)
def test_parse_history_cases(text, expected):
    assert parse_history(text) == expected


def test_last_exchange_of_a_conversation_ending_on_the_robot_is_a_silent_child():
    assert last_exchange([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "Chào!"}]) == ("Chào!", "")
    assert last_exchange([]) == ("", "")


# Content as the data allows it: any text without a line that starts like a speaker marker.
_content = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40).filter(
    lambda t: not any(line.lstrip().startswith(("Pika:", "Child:", "* 🤖", "* 👤")) for line in t.splitlines())
)
_turns = st.lists(st.tuples(st.sampled_from(["assistant", "user"]), _content), min_size=1, max_size=6)


@settings(max_examples=200, deadline=None)
@given(_turns, st.sampled_from([HistoryFormat(), USERS_FORMAT]))
def test_parse_reads_back_what_render_wrote(turns, fmt):
    turns = [{"role": role, "content": content} for role, content in turns]
    silent = lambda t: t["role"] == "user" and t["content"].strip() == fmt.silent  # noqa: E731
    expected = [{"role": t["role"], "content": "" if silent(t) else t["content"].strip()} for t in turns]
    assert fmt.parse(fmt.render(turns)) == expected


# ---------------------------------------------------------------- the loops that use it


def test_the_launchers_health_wait_is_bounded_by_its_deadline_and_stops_on_a_dead_server(tmp_path):
    import subprocess
    import sys
    import time

    from rl.launch import LaunchError, wait_for_health
    from tests.vllm_server import free_port

    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(LaunchError, match=r"not healthy after 2s"):
        wait_for_health(url, None, 2.0, tmp_path / "server.log")
    assert 1.0 <= time.monotonic() - started < 4.0
    dead = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    dead.wait()
    with pytest.raises(LaunchError, match="exited with code 3 before it was healthy"):
        wait_for_health(url, dead, 60.0, tmp_path / "server.log")
