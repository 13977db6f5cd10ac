"""Tell a running vLLM server to serve a new version of an adapter by name (runtime LoRA loading:
`VLLM_ALLOW_RUNTIME_LORA_UPDATING=true`), retried and bounded."""

from __future__ import annotations

import logging

from common.retry import GaveUp, Retryable, RetryPolicy, retry_call
from rl.publish_checks import PublishError

log = logging.getLogger("rl.publish")  # one logger for every step of a publish

RELOAD_ATTEMPTS = 5
RELOAD_TIMEOUT_S = 60.0  # one load may read a large adapter from disk


class ReloadError(PublishError):
    """The files are published but the running server did not take the new version."""


def reload_adapter(reload_url: str, name: str, lora_path: str, attempts: int = RELOAD_ATTEMPTS) -> None:
    """Make the vLLM server at reload_url serve `lora_path` under `name`.

    Unload, then load from the version's own folder: a new path (and a new LoRA id) means vLLM's prefix
    cache, keyed by (name, path), cannot hand out blocks computed with the old weights. Retried with
    backoff on connection errors and 5xx; bounded by `attempts`.
    """
    import httpx

    base = reload_url.rstrip("/").removesuffix("/v1")

    def attempt() -> None:
        try:
            with httpx.Client(timeout=RELOAD_TIMEOUT_S) as client:
                unload = client.post(f"{base}/v1/unload_lora_adapter", json={"lora_name": name})
                if unload.status_code not in (200, 404):  # 404: not loaded yet, fine
                    raise Retryable(f"POST {base}/v1/unload_lora_adapter -> {unload.status_code}: {_short(unload.text)}")
                load = client.post(f"{base}/v1/load_lora_adapter", json={"lora_name": name, "lora_path": lora_path})
        except httpx.HTTPError as err:
            raise Retryable(str(err) or type(err).__name__) from None
        if load.status_code != 200:
            # 400 "already been loaded": a request re-resolved the name between our two calls; go again
            raise Retryable(f"POST {base}/v1/load_lora_adapter -> {load.status_code}: {_short(load.text)}")

    def warn(n: int, reason: str, _delay: float) -> None:
        log.warning("reload of %s failed (attempt %d/%d): %s", name, n, attempts, reason)

    try:
        retry_call(attempt, RetryPolicy(attempts=attempts, backoff_s=1.0, max_backoff_s=8.0), on_retry=warn)
    except GaveUp as err:
        raise ReloadError(f"reload of {name!r} at {base} failed after {attempts} attempts: {_short(err.reason)}") from None
    log.info("server %s now serves %s from %s", base, name, lora_path)


def unload(reload_url: str, name: str) -> None:
    import httpx

    base = reload_url.rstrip("/").removesuffix("/v1")
    httpx.post(f"{base}/v1/unload_lora_adapter", json={"lora_name": name}, timeout=RELOAD_TIMEOUT_S)


def _short(text: str, limit: int = 300) -> str:
    return " ".join(text.split())[:limit]
