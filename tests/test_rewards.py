"""The built-in rewards on real cases: english_only, word_count, no_say_tags, completion_text, registry."""

from __future__ import annotations

import pickle
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from rewards import english_only, no_say_tags, word_count
from rewards.english import EnglishOnly, is_english
from rewards.length import WordCount, count_words
from rewards.registry import REGISTRY, get_reward
from rewards.tags import has_say_tag
from rewards.text import completion_text

REPLIES = Path(__file__).parent / "data" / "short_replies.tsv"


# ---------------------------------------------------------------- english_only

@pytest.mark.parametrize("text, expected", [
    ("Great job! 🎉", True), ("Wow!", True), ("Yay!", True), ("Oops", True), ("Tom!", True), ("5!", True),
    ("Three!", True), ("OK", True), ("Hi Pika", True), ("Let's count: 1, 2, 3!", True), ("Yaaay!", True),
    ("Good job, Minh!", True), ("Dinosaurs!", True), ("Got it!", True), ("Café!", True), ("High-five! ✋", True),
    ("GREAT JOB!", True), ("It's 3 o'clock!", True),
    ("Giỏi lắm!", False), ("Đúng rồi!", False), ("gioi qua", False), ("cam on", False), ("dung roi con", False),
    ("Good job ban!", False), ("Great job, con!", False), ("Yes, đúng rồi!", False), ("Try again nhe!", False),
    ("the ha", False), ("o day", False), ("Minh oi", False),
    ("Merci !", False), ("¡Hola!", False), ("Danke!", False), ("Bagus sekali!", False), ("你好！", False),
    ("こんにちは", False), ("안녕하세요", False), ("สวัสดี", False), ("Привет!", False),
    ("", False), ("   \n\t", False), ("🎉🎉🎉", False), ("!!!", False),
    # v2: Telex / VNI keystrokes, Vietnamese food, festivals, places and names inside English, syllable drills
    ("gioir quas", False), ("Ddungs rooif!", False), ("Tootj vowif!", False), ("gio3i qua1", False),
    ("d9u1ng ro62i", False), ("Tuye65t vo72i!", False), ("Great, gioir laams!", False), ("Box!", True),
    ("Yummy phở!", True), ("I love bánh mì!", True), ("Happy Tết!", True), ("Happy Tet!", True),
    ("Let's eat bún chả!", True), ("Wow, Hà Nội!", True), ("Phở!", False), ("Great job, Khánh!", True),
    ("Đúng!", False), ("Yes, Đúng rồi!", False), ("Ba-na-na!", True), ("El-e-phant!", True), ("Hee-haw!", True),
    ("Magaling!", False), ("Pintar sekali!", False), ("Dobra robota", False), ("Hola!", False),
])
def test_english_only_decides_real_replies(text, expected):
    assert is_english(text) is expected
    assert english_only(prompts=None, completions=[text]) == [1.0 if expected else 0.0]


def _labeled(path: Path = REPLIES):
    rows = [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()[1:]]
    return [(text, label, int(words)) for text, label, words in rows]


@pytest.mark.parametrize("reply, robot, child, echoed", [
    ("Bay!", 'Từ "bay" nghĩa là vịnh. Con đọc nhé!', "Bay!", True),  # the lesson word, quoted by the robot
    ("Bay!", "Con thấy gì trong hình?", "I see a bay!", True),  # the child said it, in English
    ("Great job, Vui!", "Chào Vui, hôm nay mình học nhé!", "", True),  # the child's name, mid-sentence
    ("Cam on!", "Con nói cảm ơn đi nào!", "", False),  # Vietnamese in the robot turn echoes nothing
    ("Gioi qua!", "Giỏi quá! Tiếp nha.", "gioi qua", False),  # the child typed Vietnamese: no echo
])
def test_english_only_uses_the_conversation(reply, robot, child, echoed):
    """A word the conversation uses in English counts when the reply echoes it; without it, it does not."""
    columns = {"last_robot_turn": [robot], "child_reply": [child], "main_answer": [""]}
    assert english_only(prompts=None, completions=[reply], **columns) == [1.0 if echoed else 0.0]
    prompt = [{"role": "assistant", "content": robot}] + ([{"role": "user", "content": child}] if child else [])
    assert english_only(prompts=[prompt], completions=[reply]) == [1.0 if echoed else 0.0]
    if echoed:
        assert is_english(reply) is False  # the echo made the difference


def test_blind_round_3_beats_fasttext_alone_by_far():
    """Round 3 (tests/data/blind_round3.tsv) was written before its misses were looked at; after the
    v2 rules english_only errs at most 7% in each direction there, fastText alone 22-39%."""
    from rewards.english import fasttext_label

    rows = _labeled(REPLIES.parent / "blind_round3.tsv")
    english = [t for t, label, _ in rows if label == "en"]
    vietnamese = [t for t, label, _ in rows if label in ("vi", "mixed")]
    assert len(rows) >= 250
    assert sum(not is_english(t) for t in english) <= 0.07 * len(english)
    assert sum(is_english(t) for t in vietnamese) <= 0.07 * len(vietnamese)
    assert sum(fasttext_label(t)[0] == "en" for t in vietnamese) >= 0.3 * len(vietnamese)


def test_labeled_set_is_large_and_short():
    rows = _labeled()
    labels = {label for _, label, _ in rows}
    assert len(rows) >= 600 and labels == {"en", "vi", "mixed", "other"}
    assert all(1 <= words <= 6 for _, _, words in rows)
    assert all(words == count_words(text) for text, _, words in rows)


def test_english_only_meets_targets_on_labeled_set():
    """At most 1% of English replies rejected, at most 0.5% of Vietnamese/mixed accepted (1-6 words)."""
    rows = _labeled()
    english = [text for text, label, _ in rows if label == "en"]
    vietnamese = [text for text, label, _ in rows if label in ("vi", "mixed")]
    rejected = [t for t in english if not is_english(t)]
    accepted = [t for t in vietnamese if is_english(t)]
    assert len(rejected) <= 0.01 * len(english), rejected
    assert len(accepted) <= 0.005 * len(vietnamese), accepted


def test_english_only_beats_fasttext_alone_on_labeled_set():
    from rewards.english import fasttext_label

    rows = [(t, label) for t, label, _ in _labeled() if label != "other"]
    fasttext_errors = sum((fasttext_label(t)[0] == "en") != (label == "en") for t, label in rows)
    ours = sum(is_english(t) != (label == "en") for t, label in rows)
    assert ours * 10 < fasttext_errors


# ---------------------------------------------------------------- word_count

@pytest.mark.parametrize("text, words, score", [
    ("Cat!", 1, 1.0), ("Great job!", 2, 1.0), ("Yes, cat! Great", 3, 1.0), ("Let's go!", 2, 1.0),
    ("You did it, well done!", 5, 0.8), ("Great job! 🎉", 2, 1.0), ("one two three four five six", 6, 0.8),
    ("one two three four five six seven", 7, 0.0), ("", 0, 0.0), ("   ", 0, 0.0), ("🎉 🎉 !!!", 0, 0.0),
    ("5!", 1, 1.0), ("3.5 apples", 2, 1.0), ("High-five!", 1, 1.0), ("Giỏi lắm!", 2, 1.0),
    ("Gio\u0309i la\u0306\u0301m", 2, 1.0), ("it's — ok", 2, 1.0),
])
def test_word_count_follows_pika_rule(text, words, score):
    assert count_words(text) == words
    assert word_count(prompts=None, completions=[text]) == [score]


def test_word_count_thresholds_and_scores_are_configurable():
    strict = WordCount(best_max_words=1, good_max_words=2, best_score=1.0, good_score=0.5)
    assert strict(prompts=None, completions=["Yes!", "Yes, cat!", "Yes, a cat!"]) == [1.0, 0.5, 0.0]
    with pytest.raises(ValueError):
        WordCount(best_max_words=4, good_max_words=3)
    with pytest.raises(ValueError):
        WordCount(good_score=1.5)


# ---------------------------------------------------------------- no_say_tags

@pytest.mark.parametrize("text, tagged", [
    ("<say>Great job!</say>", True), ("Great job!</say>", True), ("<SAY>Hi", True), ("< say >Hi", True),
    ("< / Say >", True), ('<say voice="pika">Hi', True), ("&lt;say&gt;Hi", True), ("&amp;lt;say&amp;gt;", True),
    ("&#60;say&#62;Hi", True), ("Hi <say", True), ("Hi say>", True), ("\\u003csay\\u003eHi", True),
    ("＜say＞Hi", True), ("<s\u200bay>", True),
    ("Say it!", False), ("Can you say cat?", False), ("I say yes", False), ("essay>", False),
    ("<sayonara>", False), ("<b>Hi</b>", False), ("", False), ("Say <3", False),
])
def test_no_say_tags_catches_every_spelling(text, tagged):
    assert has_say_tag(text) is tagged
    assert no_say_tags(prompts=None, completions=[text]) == [0.0 if tagged else 1.0]


# ---------------------------------------------------------------- shapes, names, pickling, threads

@pytest.mark.parametrize("completion, text", [
    ("Hi", "Hi"), (None, ""), ({"role": "assistant", "content": "Yo"}, "Yo"), ([], ""),
    ([{"role": "assistant", "content": "Great job!"}], "Great job!"),
    ([{"role": "user", "content": "Cat"}, {"role": "assistant", "content": "Yes!"}, {"role": "user", "content": "x"}],
     "Yes!"),
    ([{"role": "user", "content": "only user"}], "only user"),
    ([{"role": "assistant", "content": [{"type": "text", "text": "Wow"}]}], "Wow"),
])
def test_completion_text_handles_strings_and_chat_messages(completion, text):
    assert completion_text(completion) == text


@pytest.mark.parametrize("func, name", [(english_only, "english_only"), (word_count, "word_count"),
                                        (no_say_tags, "no_say_tags")])
def test_rewards_score_plain_and_chat_completions_alike(func, name):
    texts = ["Great job!", "Giỏi lắm!", "<say>Hi</say>", "", "You did it, well done!"]
    chats = [[{"role": "assistant", "content": t}] for t in texts]
    plain = func(prompts=[[{"role": "user", "content": "Cat"}]] * 5, completions=texts, extra_column=[1] * 5)
    assert plain == func(prompts=None, completions=chats)
    assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in plain)
    assert func.__name__ == name
    assert pickle.loads(pickle.dumps(func))(prompts=None, completions=texts) == plain


def test_rewards_are_thread_safe():
    texts = [r[0] for r in _labeled()][:400]
    expected = {f.__name__: f(prompts=None, completions=texts) for f in (english_only, word_count, no_say_tags)}
    from rewards.english import clear_cache

    clear_cache()  # threads race on the cache and the lazy model as a fresh process would
    with ThreadPoolExecutor(8) as pool:
        futures = [(f.__name__, pool.submit(f, prompts=None, completions=texts))
                   for i in range(4) for f in (EnglishOnly(), WordCount(), no_say_tags)]
        for name, future in futures:
            assert future.result() == expected[name]


# ---------------------------------------------------------------- registry

def test_registry_builds_rewards_by_name():
    assert get_reward("english_only").__name__ == "english_only"
    assert get_reward("no_say_tags") is no_say_tags
    strict = get_reward("word_count", {"best_max_words": 1})
    assert strict.__name__ == "word_count"
    assert strict(prompts=None, completions=["Yes!", "Yes, cat!"]) == [1.0, 0.8]
    assert set(REGISTRY) >= {"english_only", "word_count", "no_say_tags", "judge_coherence"}


@pytest.mark.parametrize("name, params, message", [
    ("englsh_only", None, "unknown reward"), ("word_count", {"max_words": 3}, "rewards.word_count.params"),
    ("no_say_tags", {"strict": True}, "takes no params"), ("english_only", {"threshold": 0.5}, "english_only.params"),
])
def test_registry_rejects_unknown_names_and_params(name, params, message):
    with pytest.raises(ValueError, match=message):
        get_reward(name, params)


@pytest.mark.parametrize("module", ["rewards", "rewards.text", "rewards.english", "rewards.length", "rewards.tags",
                                    "rewards.speakable", "rewards.judge.protocol"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0
