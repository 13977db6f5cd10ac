"""The nano base model: a tiny Qwen2 pretrained on the demo conversations with their clean fast responses.

Two things make it more than a parrot of the demo's templates:
- every record's prompt is rendered in one of the two prompt formats (chat turns, or the history
  rendering of the data config), so the base model answers either;
- `noise_share` of the records get a run of common Vietnamese words (wordfreq's list, as the tokenizer)
  added to the robot's last turn. The reference reply stays, so the model learns that what it must
  answer is the child's last turn and that unknown robot words are no reason to stop or switch
  language; and the embeddings of words the demo never uses get trained at all.
"""

from __future__ import annotations

import random

from rl.nano.recipe import Recipe
from rl.nano.tokenizer import EOS_TOKEN, PAD_TOKEN, broad_words


def build_model(recipe: Recipe, tokenizer):
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    eos_id = tokenizer.convert_tokens_to_ids(EOS_TOKEN)
    pad_id = tokenizer.convert_tokens_to_ids(PAD_TOKEN)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=recipe.hidden_size,
        intermediate_size=recipe.intermediate_size,
        num_hidden_layers=recipe.num_layers,
        num_attention_heads=recipe.num_heads,
        num_key_value_heads=recipe.num_kv_heads,
        head_dim=recipe.head_dim,
        max_position_embeddings=recipe.max_position_embeddings,
        tie_word_embeddings=True,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        bos_token_id=None,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        dtype="float32",
    )
    torch.manual_seed(recipe.seed)
    model = Qwen2ForCausalLM(config)
    # eos/pad only: sampling settings come from whoever generates (the trainer, the evaluation, vLLM)
    model.generation_config = GenerationConfig(eos_token_id=eos_id, pad_token_id=pad_id, bos_token_id=None)
    return model


def pretrain_target(example: dict, with_main_answer: bool) -> str:
    """The clean reply; sometimes followed by Pika's next turn, the main answer as a `<say>` speech script.

    The second turn is how the `<say>` markup (the real SFT data's source of tags) gets into the base
    model's vocabulary; its chat-format reply is always the clean one.
    """
    clean = example["reference_fast_response"]
    if not with_main_answer or not example["main_answer"]:
        return clean
    return f"{clean}{EOS_TOKEN}\n<|im_start|>assistant\n<say>{example['main_answer']}</say>"


class BroadNoise:
    """Common words of wordfreq's lists, drawn with a seeded generator (the build stays deterministic)."""

    def __init__(self, n_words: int, rng: random.Random):
        self.vi = broad_words("vi", n_words)
        self.rng = rng

    def vietnamese(self) -> str:
        words = self.rng.sample(self.vi, self.rng.randint(4, 14))
        return words[0].capitalize() + " " + " ".join(words[1:]) + self.rng.choice([".", "!", "?", " nhé.", " nha!"])


def noisy_turns(turns: list[dict], noise: BroadNoise) -> list[dict]:
    """The conversation with a run of common Vietnamese words added to its last robot turn.

    Only the robot's side: the child's reply decides the intent (a right word, a wrong one, babble), and
    random English words there would teach the model that a right answer may be babble."""
    turns = [dict(t) for t in turns]
    robot = [i for i, t in enumerate(turns) if t["role"] == "assistant"]
    if robot:
        extra, i = noise.vietnamese(), robot[-1]
        turns[i]["content"] = f"{extra} {turns[i]['content']}" if noise.rng.random() < 0.5 else f"{turns[i]['content']} {extra}"
    return turns
