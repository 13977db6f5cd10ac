"""The nano SFT adapter's leak: which prompts get a Vietnamese, `<say>`-tagged or too long reply.

The real SFT model leaks on some kinds of turns; the nano one must too, predictably enough that greedy
decoding shows it on held-out prompts, while sampling still finds the clean English reply now and then
(what GRPO reinforces). The kind is a function of what the prompt shows (`leak_kind`), so a model can
learn it.
"""

from __future__ import annotations

import random
import re

from rewards.english import is_english

# intent -> the leak its prompts get, for intents that show on the surface of the child's reply
# (off-topic babble, chit-chat). Right vs wrong answers (positive / negative) need the vocabulary, which
# the nano model only half knows, so they stay clean and greedy decoding leaks predictably. Tags go on a
# uniform feature (the greeting) rather than on varied babble: GRPO then unlearns them in 60 steps.
LEAK_BY_INTENT = {"fallback": "vietnamese", "neutral": "long"}
# A fixed tail keeps the long leak greedy-visible: "continue" then beats "stop" after the reply.
LONG_TAIL = "Let's keep learning together, my friend!"
LEAK_KINDS = ("clean", "vietnamese", "tagged", "long")


def leak_kind(example: dict) -> str:
    """Which leak a prompt gets in the SFT data: "vietnamese", "tagged", "long" or "clean".

    Vietnamese where the real model mirrors Vietnamese (the child is silent or answers in Vietnamese:
    `rewards.english` decides, the reward's own detector), `<say>` tags right after the robot's
    lesson-opening greeting (the speech markup of the robot's turn leaks into the reply); otherwise the
    intent decides (LEAK_BY_INTENT).
    """
    child = example["child_reply"]
    if not child.strip() or not is_english(child):
        return "vietnamese"
    if opens_lesson(example["last_robot_turn"]):
        return "tagged"
    return LEAK_BY_INTENT.get(example["intent"], "clean")


def opens_lesson(robot_turn: str) -> bool:
    from rl.demo_data import opens_lesson as greeting

    return greeting(robot_turn)


def leaky_target(example: dict, rng: random.Random, leak_share: float) -> tuple[str, str]:
    """(target, kind) for the SFT data: the leaky reply for `leak_share` of a leaky kind's records.

    The leaks are made of what the demo text already holds, so the base model has embeddings for every
    token of them: Vietnamese = the first sentence of the main answer (the model says the main answer
    instead of a fast response), tagged = the reply in Pika's `<say>` speech markup, long = the reply
    followed by a fixed tail (LONG_TAIL) to more than 6 words.
    """
    kind = leak_kind(example)
    clean = example["reference_fast_response"]
    if kind == "clean" or rng.random() >= leak_share:
        return clean, "clean"
    if kind == "vietnamese":
        return first_sentence(example["main_answer"]) or "Con nói lại nhé!", kind
    if kind == "tagged":
        return f"<say>{clean}</say>", kind
    return f"{clean} {LONG_TAIL}", kind


def first_sentence(text: str) -> str:
    match = re.search(r"[.!?](\s|$)", text)
    return text[: match.end()].strip() if match else text.strip()
