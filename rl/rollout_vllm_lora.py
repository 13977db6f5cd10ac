"""`rollout=vllm_lora`: GRPO rollouts from a plain vLLM OpenAI server that serves the policy's LoRA by name.

No NCCL and no full-weight push: after every optimizer step the trainer saves only the adapter (tens of MB for the 1.5B model)
into a staging dir the server can read, tells the server to reload it in place
(`POST /v1/load_lora_adapter` with `load_inplace: true`), then asks `/v1/completions` for
`num_generations` samples per prompt by adapter name, with token ids and per-token log-probs. Any vLLM
version with runtime LoRA updating, on its own GPU or another machine (share the staging dir).

Start the server (GPU box: `python -m rl.launch ... rollout=vllm_lora` does this for you):

    VLLM_ALLOW_RUNTIME_LORA_UPDATING=true vllm serve Qwen/Qwen2.5-1.5B-Instruct \\
        --enable-lora --max-lora-rank 64 --max-loras 2 --max-model-len 1024
    python -m rl.train +exp=english_only rollout=vllm_lora rollout.base_url=http://127.0.0.1:8000

TRL calls `VLLMLoraRollout(prompts, trainer)` through GRPOTrainer's `rollout_func` hook (experimental in
TRL 1.15 and 1.16, same contract in both): `prompts` is this process's slice, each prompt already repeated
`num_generations` times in a row; the answer holds one completion per entry of `prompts`.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from common.retry import GaveUp, Retryable, RetryCounter, RetryPolicy, retry_call
from rl.config import VllmLoraConfig

log = logging.getLogger(__name__)


class RolloutServerError(RuntimeError):
    """The vLLM server did not answer usefully within the configured retries; the message is one line."""


@dataclass(kw_only=True)
class ServerSettings(VllmLoraConfig):
    """`rollout.vllm_lora` (its fields and defaults: rl.config.VllmLoraConfig) plus the server's URL."""

    base_url: str  # http://HOST:PORT, no /v1

    @classmethod
    def from_rollout(cls, rollout, run_dir: Path) -> ServerSettings:
        """The `rollout:` config group (rl.config.RolloutConfig, checked) -> settings; staging dir in the run dir."""
        settings = cls(base_url=str(rollout.base_url).rstrip("/").removesuffix("/v1"), **vars(rollout.vllm_lora))
        staging = Path(settings.staging_dir)
        settings.staging_dir = str(staging if staging.is_absolute() else Path(run_dir) / staging)
        return settings


@dataclass
class VLLMLoraRollout:
    """GRPOTrainer `rollout_func`: sync the adapter when the step changed, then sample from the server."""

    settings: ServerSettings
    counters: RetryCounter = field(default_factory=RetryCounter)  # logged as vllm_lora/http_*
    synced_step: int | None = None
    version: int = 0
    _client: httpx.Client | None = field(default=None, repr=False)

    def __call__(self, prompts: list, trainer) -> dict:
        mode = "train" if trainer.model.training else "eval"
        metrics = trainer._metrics[mode]  # TRL averages each list when it logs
        if self.synced_step != trainer.state.global_step:
            started = time.perf_counter()
            if trainer.accelerator.is_main_process:
                self.push_adapter(trainer.model)
            trainer.accelerator.wait_for_everyone()  # nobody samples from the old adapter
            self.synced_step = trainer.state.global_step
            metrics["vllm_lora/sync_ms"].append(1000 * (time.perf_counter() - started))

        started = time.perf_counter()
        prompt_ids = tokenize_prompts(trainer, prompts)
        sampling = sampling_params(trainer.args)
        spans = runs(prompts)
        by_run: dict[int, list] = {}
        for n in sorted({count for _, count in spans}):  # one request per group size (normally just one)
            starts = [start for start, count in spans if count == n]
            samples = self.complete([prompt_ids[start] for start in starts], n, sampling)
            by_run.update(zip(starts, samples))
        out = {"prompt_ids": [], "completion_ids": [], "logprobs": []}
        for start, _ in spans:
            for completion_ids, logprobs in by_run[start]:
                out["prompt_ids"].append(prompt_ids[start])
                out["completion_ids"].append(completion_ids)
                out["logprobs"].append(logprobs)
        metrics["vllm_lora/generate_ms"].append(1000 * (time.perf_counter() - started))
        metrics["vllm_lora/http_retries"].append(float(self.counters.retries))
        metrics["vllm_lora/http_failures"].append(float(self.counters.failures))
        return out

    # ---- adapter sync ----
    def push_adapter(self, model) -> Path:
        """Save only the adapter, under a fresh version dir (complete before the server sees it), and load it."""
        staging = Path(self.settings.staging_dir)
        staging.mkdir(parents=True, exist_ok=True)
        self.version += 1
        final = staging / f"{self.settings.adapter_name}-v{self.version:06d}"
        partial = staging / f".{final.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        model.save_pretrained(str(partial))
        partial.rename(final)
        server_dir = Path(self.settings.server_staging_dir) if self.settings.server_staging_dir else staging
        self.post(
            "/v1/load_lora_adapter",
            {"lora_name": self.settings.adapter_name, "lora_path": str(server_dir / final.name), "load_inplace": True},
        )
        for old in sorted(staging.glob(f"{self.settings.adapter_name}-v*"))[: -self.settings.keep_versions]:
            shutil.rmtree(old, ignore_errors=True)
        return final

    # ---- sampling ----
    def complete(self, prompt_ids: list[list[int]], n: int, sampling: dict) -> list[list]:
        """n samples of each tokenized prompt -> per prompt [(completion ids, per-token logprobs), ...]."""
        body = {
            "model": self.settings.adapter_name,
            "prompt": prompt_ids,
            "n": n,
            "logprobs": 0,  # only the sampled token's log-prob
            "return_token_ids": True,  # vLLM >= 0.10.2; older ones fall back to token_id:N strings below
            "return_tokens_as_token_ids": True,
            "add_special_tokens": False,  # the chat template already wrote them
            **sampling,
        }
        # choices come prompt-major: index = prompt * n + sample
        choices = sorted(self.post("/v1/completions", body)["choices"], key=lambda c: c["index"])
        if len(choices) != n * len(prompt_ids):
            raise RolloutServerError(
                f"{self.settings.base_url}/v1/completions: asked for {n * len(prompt_ids)} samples, got {len(choices)}"
            )
        parsed = [parse_choice(choice) for choice in choices]
        return [parsed[i * n : (i + 1) * n] for i in range(len(prompt_ids))]

    # ---- HTTP with bounded retries ----
    def post(self, path: str, body: dict) -> dict:
        url = f"{self.settings.base_url}{path}"

        def attempt() -> httpx.Response:
            try:
                response = self.client.post(url, json=body)
            except httpx.HTTPError as err:  # connection refused, timeout, ...
                raise Retryable(f"{type(err).__name__}: {err}") from None
            if response.status_code >= 500:
                raise Retryable(f"HTTP {response.status_code}: {response.text[:300]}")
            return response

        policy = RetryPolicy(attempts=self.settings.retries + 1, backoff_s=self.settings.backoff_s, max_backoff_s=30.0)
        try:
            response = retry_call(attempt, policy, counter=self.counters)
        except GaveUp as err:
            raise RolloutServerError(f"{url}: {err}".replace("\n", " ")) from None
        if response.status_code >= 400:  # the request itself is wrong: retrying will not help
            self.counters.failures += 1
            raise RolloutServerError(f"{url}: HTTP {response.status_code}: {response.text[:300]} (not retried)".replace("\n", " "))
        if "json" in response.headers.get("content-type", ""):
            return response.json()
        return {"text": response.text}  # /v1/load_lora_adapter answers in plain text

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            headers = {}
            if self.settings.api_key_env and os.environ.get(self.settings.api_key_env):
                headers["Authorization"] = f"Bearer {os.environ[self.settings.api_key_env]}"
            self._client = httpx.Client(timeout=self.settings.timeout_s, headers=headers)
        return self._client


def runs(prompts: list) -> list[tuple[int, int]]:
    """(start, length) of each run of equal consecutive prompts: one request with n=length per run.

    TRL repeats every prompt `num_generations` times in a row; a run split across processes, or two equal
    prompts from different rows, still gets the right number of samples.
    """
    spans: list[tuple[int, int]] = []
    for i, prompt in enumerate(prompts):
        if spans and prompts[spans[-1][0]] == prompt:
            spans[-1] = (spans[-1][0], spans[-1][1] + 1)
        else:
            spans.append((i, 1))
    return spans


def tokenize_prompts(trainer, prompts: list) -> list[list[int]]:
    """Token ids exactly as GRPOTrainer would build them (chat template with the generation prompt)."""
    tokenizer = trainer.processing_class
    if prompts and isinstance(prompts[0], list):  # conversational
        encoded = tokenizer.apply_chat_template(
            conversation=prompts,
            chat_template=getattr(trainer, "chat_template", None),
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            **(getattr(trainer, "chat_template_kwargs", None) or {}),
        )
        return [list(ids) for ids in encoded["input_ids"]]
    return [list(ids) for ids in tokenizer(text=prompts)["input_ids"]]


def sampling_params(args) -> dict:
    """GRPOConfig sampling settings -> OpenAI/vLLM completion request fields."""
    params = {
        "max_tokens": args.max_completion_length,
        "temperature": args.temperature,
        "top_p": args.top_p,
        # vLLM: -1 disables top-k; TRL's 0/None mean the same, and some vLLM versions reject them
        "top_k": args.top_k if args.top_k else -1,
        "min_p": args.min_p or 0.0,
        "repetition_penalty": args.repetition_penalty,
    }
    params.update(args.generation_kwargs or {})
    return params


def parse_choice(choice: dict) -> tuple[list[int], list[float | None]]:
    """One completion choice -> (completion token ids, per-token log-probs of the sampled tokens)."""
    logprobs = choice.get("logprobs") or {}
    token_logprobs = list(logprobs.get("token_logprobs") or [])
    ids = choice.get("token_ids")
    if ids is None:  # servers without return_token_ids: tokens come as "token_id:N"
        ids = [int(token.removeprefix("token_id:")) for token in logprobs.get("tokens") or []]
    if len(token_logprobs) != len(ids):
        raise RolloutServerError(
            f"completion choice {choice.get('index')}: {len(ids)} tokens but {len(token_logprobs)} log-probs"
        )
    return list(ids), token_logprobs
