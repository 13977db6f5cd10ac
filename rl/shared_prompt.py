"""Prompt-shared GRPO: each group's prompt goes through the policy once, not once per completion.
Long because: the repacking, its masks and positions and the unpacking of log-probs must agree
token for token with TRL's layout; split apart, that agreement could not be read in one place.

Pika's batches are a 600-900 token prompt and 8-16 completions of at most ~24 tokens. TRL's GRPOTrainer scores
every completion with its own copy of the prompt, so the policy's forward and backward (and the old-policy and
reference passes) spend 85-90% of their work recomputing the same prompt. Here every batch TRL scores is
repacked: one sequence per distinct prompt,

    [prompt] [completion 1] [completion 2] ... [completion G]

with a block attention mask (each completion sees the prompt and its own earlier tokens, never a sibling) and
the position ids TRL's own forward gives each token (its column in the left-padded batch), so every completion
token sees exactly the keys, values and positions it sees in TRL's layout. The log-prob of a completion's first
token comes from the prompt's last position, shared by the group; the others from the previous token of the
same completion. Gradients reach the LoRA weights through the one prompt computation: the sum over the group
that TRL's G copies compute separately (chain rule), so log-probs and gradients are TRL's up to float rounding.

Why a packed sequence and not the prompt's KV cache expanded across the group: the packed batch is one
ordinary forward of the model, so it keeps working wherever TRL's forward works (PEFT, DDP/accelerate wrappers,
autocast, gradient checkpointing, which turns `use_cache` off during training), and the old-policy and reference
passes are the same call under no_grad. A cache would need two forwards per micro-batch, a cache that carries
gradients through checkpointed layers, and a copy of the prompt's keys/values per completion. What the packed
layout costs: attention over (P + sum of completion lengths)^2 per group instead of G * (P + C)^2, and a dense
mask, which rules out flash-attention kernels (sdpa's memory-efficient kernel and eager take it).

It is exact, and on by default (`trainer.share_prompt`), wherever TRL's scoring is one causal forward over
input_ids: sdpa or eager attention without sliding windows, no images, no MoE aux loss. Elsewhere, and whenever
a batch has no repeated prompt, it calls TRL's own method and logs why once. The first shared batch is checked
against TRL's own computation on two of its rows; a model that scores them differently (say, one that ignores
a 4D mask) turns sharing off for the run, logged. Dropout, where configured, draws one mask for the prompt
that the whole group shares: the expected gradient is TRL's, its noise is correlated within the group.

`rl/shared_prefill.py` does the same for `rollout=hf` sampling: one prefill per distinct prompt.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import torch

from rl.shared_prefill import prompt_groups, shared_prefill

log = logging.getLogger(__name__)

# Attention implementations that take an arbitrary 4D mask as it is (transformers' masking_utils returns a 4D
# mask untouched): sdpa as a boolean mask, eager as an additive one.
_MASKABLE_ATTENTION = ("sdpa", "eager")
# Largest |log-prob difference| the first-batch check accepts: float rounding in float32, bf16/fp16 rounding
# otherwise; a model that ignores the packed mask misses by whole nats.
_CHECK_TOLERANCE = {torch.float32: 1e-4, torch.float64: 1e-8}
_CHECK_TOLERANCE_LOW_PRECISION = 0.1


@dataclass
class Packed:
    """One packed sequence per distinct prompt, and where each scored token's log-prob comes from."""

    input_ids: torch.Tensor  # (U, L)
    position_ids: torch.Tensor  # (U, L) each token's column in TRL's (B, P + C) layout
    segments: torch.Tensor  # (U, L) -1 prompt, r >= 0 completion of batch row r, -2 padding
    first_scored: int  # packed column of the prompts' last token: every prompt ends there
    pred_seq: torch.Tensor  # (N,) packed row whose logits predict scored token n
    pred_col: torch.Tensor  # (N,) packed column of that position
    targets: torch.Tensor  # (N,) token ids scored
    out_row: torch.Tensor  # (N,) where the log-prob goes in the (B, C) result
    out_col: torch.Tensor  # (N,)

    def attention_mask(self, attn_implementation: str, dtype: torch.dtype) -> torch.Tensor:
        """(U, 1, L, L): causal, and a completion sees only the prompt and itself; padding sees itself."""
        seg = self.segments
        length = seg.size(1)
        causal = torch.ones(length, length, dtype=torch.bool, device=seg.device).tril()
        query, key = seg.unsqueeze(2), seg.unsqueeze(1)
        allowed = causal & ((key == -1) | (key == query))
        if attn_implementation == "eager":
            return torch.zeros(allowed.shape, dtype=dtype, device=seg.device).masked_fill(
                ~allowed, torch.finfo(dtype).min
            ).unsqueeze(1)
        return allowed.unsqueeze(1)


def pack_groups(input_ids: torch.Tensor, attention_mask: torch.Tensor, logits_to_keep: int,
                require_repeats: bool = True) -> tuple[Packed | None, str]:
    """TRL's left-padded (B, P + C) prompt+completion batch -> one packed sequence per distinct prompt.

    Returns (None, reason) when the batch has a layout this packing does not reproduce, or (with
    `require_repeats`) no prompt that appears twice.
    """
    batch, width = input_ids.shape
    prompt_width = width - logits_to_keep
    prompt_ids, prompt_mask = input_ids[:, :prompt_width], attention_mask[:, :prompt_width]
    completion_ids, completion_mask = input_ids[:, prompt_width:], attention_mask[:, prompt_width:]
    if prompt_width < 1 or not bool(prompt_mask[:, -1].all()):
        return None, "prompts are not left-padded (a prompt does not end at the last prompt column)"
    # TRL pads completions on the right: a mask of ones then zeros. Holes would change which position predicts.
    if bool((completion_mask[:, 1:] > completion_mask[:, :-1]).any()):
        return None, "completion masks are not right-padded"

    group_of = prompt_groups(prompt_ids, prompt_mask)
    groups = int(group_of.max()) + 1
    if require_repeats and groups == batch:
        return None, "no prompt repeats in the batch"

    device = input_ids.device
    rows_of = [torch.nonzero(group_of == g).flatten().tolist() for g in range(groups)]
    prompt_lengths = prompt_mask.sum(1)
    completion_lengths = completion_mask.sum(1)
    first_scored = int(max(prompt_lengths[rows[0]] for rows in rows_of)) - 1
    blocks = [int(sum(completion_lengths[r] for r in rows)) for rows in rows_of]
    length = first_scored + 1 + max(blocks)

    ids = torch.zeros(groups, length, dtype=input_ids.dtype, device=device)
    positions = torch.zeros(groups, length, dtype=torch.long, device=device)
    segments = torch.full((groups, length), -2, dtype=torch.long, device=device)
    pred_seq, pred_col, targets, out_row, out_col = [], [], [], [], []
    columns = torch.arange(width, device=device)
    for g, rows in enumerate(rows_of):
        first = rows[0]
        real = prompt_mask[first].bool()
        n_prompt = int(real.sum())
        start = first_scored + 1 - n_prompt  # prompts end at the same packed column, padding on the left
        ids[g, start : first_scored + 1] = prompt_ids[first, real]
        positions[g, start : first_scored + 1] = columns[:prompt_width][real]
        segments[g, start : first_scored + 1] = -1
        cursor = first_scored + 1
        for r in rows:
            n = int(completion_lengths[r])
            if n == 0:
                continue
            ids[g, cursor : cursor + n] = completion_ids[r, :n]
            positions[g, cursor : cursor + n] = prompt_width + columns[:n]
            segments[g, cursor : cursor + n] = r
            # token 0 is predicted by the prompt's last position, token t by token t-1 of the same completion
            pred_col.append(torch.cat([torch.tensor([first_scored], device=device),
                                       torch.arange(cursor, cursor + n - 1, device=device)]))
            pred_seq.append(torch.full((n,), g, device=device))
            targets.append(completion_ids[r, :n])
            out_row.append(torch.full((n,), r, device=device))
            out_col.append(torch.arange(n, device=device))
            cursor += n

    def flat(parts, dtype=torch.long):
        return torch.cat(parts).to(dtype) if parts else torch.zeros(0, dtype=dtype, device=device)

    return Packed(ids, positions, segments, first_scored, flat(pred_seq), flat(pred_col), flat(targets),
                  flat(out_row), flat(out_col)), ""


def packed_logps(model, packed: Packed, batch: int, logits_to_keep: int, temperature: float,
                 compute_entropy: bool, entropy_requires_grad: bool,
                 autocast) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs (and entropies) of every completion, (B, C), from one forward of the packed batch.

    Positions TRL masks out get 0, as TRL 1.15+ gives them (its loss multiplies them by the mask anyway).
    """
    inner = _unwrapped(model)
    mask = packed.attention_mask(inner.config._attn_implementation, inner.get_input_embeddings().weight.dtype)
    keep = packed.input_ids.size(1) - packed.first_scored
    with autocast:
        logits = model(
            input_ids=packed.input_ids,
            attention_mask=mask,
            position_ids=packed.position_ids,
            logits_to_keep=keep,
            use_cache=False,
        ).logits
    logits = logits[:, -keep:]  # a no-op where the model honours logits_to_keep
    scored = logits[packed.pred_seq, packed.pred_col - packed.first_scored].float() / temperature
    log_probs = torch.log_softmax(scored, dim=-1)
    token_logps = log_probs.gather(-1, packed.targets.unsqueeze(-1)).squeeze(-1)
    out = token_logps.new_zeros(batch, logits_to_keep)
    logps = out.index_put((packed.out_row, packed.out_col), token_logps)
    if token_logps.numel() == 0:  # every completion masked: keep a differentiable zero, as TRL does
        logps = logps + 0.0 * logits.sum()
    entropies = None
    if compute_entropy:
        with torch.set_grad_enabled(entropy_requires_grad and torch.is_grad_enabled()):
            source = log_probs if entropy_requires_grad else log_probs.detach()
            token_entropy = -(source.exp() * source).sum(-1)
            entropies = out.detach().new_zeros(batch, logits_to_keep).index_put(
                (packed.out_row, packed.out_col), token_entropy
            )
    return logps, entropies


def model_reason(model) -> str:
    """Why this model's attention can't be shared ("" when it can)."""
    config = _unwrapped(model).config
    attn = getattr(config, "_attn_implementation", None)
    if attn not in _MASKABLE_ATTENTION:
        return f"attention implementation {attn!r} does not take a block mask (sdpa or eager do)"
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    if text is not config or getattr(config, "vision_config", None) is not None:
        return "multimodal model"
    layer_types = getattr(text, "layer_types", None) or ()
    if any(t != "full_attention" for t in layer_types):
        return f"layer types {sorted(set(layer_types))}: only full attention is packed exactly"
    if getattr(text, "is_encoder_decoder", False):
        return "encoder-decoder model"
    return ""


def _unwrapped(model):
    while hasattr(model, "module"):  # DDP and friends
        model = model.module
    return model


def check_tolerance(model, mixed_precision: bool) -> float:
    dtype = _unwrapped(model).get_input_embeddings().weight.dtype
    if mixed_precision:
        return _CHECK_TOLERANCE_LOW_PRECISION
    return _CHECK_TOLERANCE.get(dtype, _CHECK_TOLERANCE_LOW_PRECISION)


def shared_prompt_trainer(trainer_cls: type, enabled: bool = True, backend: str = "transformers") -> type:
    """`trainer_cls` (TRL's GRPOTrainer) with prompt-shared scoring, or `trainer_cls` itself (logged why)."""
    if not enabled:
        log.info("share_prompt: off (trainer.share_prompt=false): TRL's per-completion scoring")
        return trainer_cls
    if backend == "unsloth":
        log.info("share_prompt: off: Unsloth's GRPOTrainer computes its own log-probs (TRL's path)")
        return trainer_cls

    class SharedPromptGRPOTrainer(trainer_cls):
        """GRPOTrainer whose log-prob passes (policy, old policy, reference) compute each prompt once per group."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            # why the log-prob passes use TRL's path ("" while they are shared)
            self.share_prompt_off = model_reason(self.accelerator.unwrap_model(self.model))
            self._share_prompt_checked = False
            self._share_prompt_logged: set[str] = set()
            if self.share_prompt_off:
                log.info("share_prompt: off: %s (TRL's path)", self.share_prompt_off)
            else:
                log.info("share_prompt: on: each group's prompt is scored once")
            # vLLM shares the prompt through its prefix cache; continuous batching manages its own cache
            self.share_prefill = not (self.use_vllm or getattr(self, "use_transformers_continuous_batching", False))

        def _generate_single_turn(self, *args, **kwargs):
            if not self.share_prefill:
                return super()._generate_single_turn(*args, **kwargs)
            with shared_prefill(self.accelerator.unwrap_model(self.model)):
                return super()._generate_single_turn(*args, **kwargs)

        def _get_per_token_logps_and_entropies(self, model, input_ids, attention_mask, logits_to_keep,
                                               batch_size=None, compute_entropy=False, compute_aux_loss=False,
                                               **extra):
            def trl_path(reason: str):
                if reason and reason not in self._share_prompt_logged:
                    self._share_prompt_logged.add(reason)
                    log.info("share_prompt: TRL's path for a batch: %s", reason)
                return super(SharedPromptGRPOTrainer, self)._get_per_token_logps_and_entropies(
                    model, input_ids, attention_mask, logits_to_keep, batch_size=batch_size,
                    compute_entropy=compute_entropy, compute_aux_loss=compute_aux_loss, **extra)

            if self.share_prompt_off:
                return trl_path("")
            if compute_aux_loss:
                return trl_path("MoE load-balancing loss requested")
            if any(value is not None for value in extra.values()):
                return trl_path("multimodal inputs")
            packed, reason = pack_groups(input_ids, attention_mask, logits_to_keep)
            if packed is None:
                return trl_path(reason)
            if not self._share_prompt_checked:
                self._share_prompt_checked = True
                if not self._check_against_trl(model, input_ids, attention_mask, logits_to_keep):
                    return trl_path("")
            logps, entropies = self._shared_logps(model, input_ids, attention_mask, logits_to_keep, batch_size,
                                                  compute_entropy, packed)
            return logps, entropies, None

        def _shared_logps(self, model, input_ids, attention_mask, logits_to_keep, batch_size, compute_entropy,
                          packed: Packed | None = None):
            """Packed log-probs, in chunks of whole groups of at most `batch_size` rows (TRL's memory cap)."""
            chunks = _group_chunks(input_ids, attention_mask, logits_to_keep, batch_size)
            results = []
            for rows in chunks:
                if packed is None or len(chunks) > 1:
                    packed, _ = pack_groups(input_ids[rows], attention_mask[rows], logits_to_keep,
                                            require_repeats=False)
                results.append((rows, packed_logps(
                    model, packed, len(rows), logits_to_keep, self.temperature, compute_entropy,
                    getattr(self, "_entropy_bonus_enabled", False), self.accelerator.autocast())))
            if len(results) == 1:
                return results[0][1]
            back = torch.argsort(torch.cat([rows for rows, _ in results]))
            logps = torch.cat([part[0] for _, part in results])[back]
            entropies = torch.cat([part[1] for _, part in results])[back] if compute_entropy else None
            return logps, entropies

        def _check_against_trl(self, model, input_ids, attention_mask, logits_to_keep) -> bool:
            """Once per run: two rows of one group, scored both ways in eval mode (no dropout), must agree."""
            packed, _ = pack_groups(input_ids, attention_mask, logits_to_keep)
            group = packed.segments[0]
            rows = torch.unique(group[group >= 0])[:2]
            if rows.numel() < 2:
                rows = torch.arange(min(2, input_ids.size(0)), device=input_ids.device)
            unwrapped = self.accelerator.unwrap_model(model)
            was_training = unwrapped.training
            unwrapped.eval()
            try:
                with torch.no_grad():
                    ids, mask = input_ids[rows], attention_mask[rows]
                    theirs, _, _ = super()._get_per_token_logps_and_entropies(unwrapped, ids, mask, logits_to_keep)
                    ours, _ = self._shared_logps(unwrapped, ids, mask, logits_to_keep, None, False)
            finally:
                unwrapped.train(was_training)
            scored = mask[:, -logits_to_keep:].bool()
            diff = (theirs.float() - ours.float()).abs()[scored].max().item() if scored.any() else 0.0
            tolerance = check_tolerance(unwrapped, bool(self.args.bf16 or self.args.fp16))
            if diff > tolerance:
                self.share_prompt_off = (f"packed log-probs differ from TRL's by {diff:.3g} > {tolerance:g} on this "
                                          "model")
                log.warning("share_prompt: off: %s (TRL's path from now on)", self.share_prompt_off)
                return False
            log.info("share_prompt: checked against TRL's scoring on the first batch: max |dlogp| %.2g", diff)
            return True

    SharedPromptGRPOTrainer.__qualname__ = f"SharedPrompt{trainer_cls.__name__}"
    return SharedPromptGRPOTrainer


def _group_chunks(input_ids, attention_mask, logits_to_keep, batch_size):
    """Row indices per chunk: whole groups, at most `batch_size` rows each (a larger group is one chunk)."""
    device = input_ids.device
    prompt_width = input_ids.size(1) - logits_to_keep
    group_of = prompt_groups(input_ids[:, :prompt_width], attention_mask[:, :prompt_width])
    groups = [torch.nonzero(group_of == g).flatten() for g in range(int(group_of.max()) + 1)]
    limit = batch_size or input_ids.size(0)
    chunks, current = [], []
    for rows in groups:
        if current and sum(len(r) for r in current) + len(rows) > limit:
            chunks.append(torch.cat(current))
            current = []
        current.append(rows)
    chunks.append(torch.cat(current))
    if len(chunks) == 1:  # the common case: keep TRL's row order, no gather
        return [torch.arange(input_ids.size(0), device=device)]
    return chunks

