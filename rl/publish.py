"""Publish a trained LoRA adapter to the serving directory that a running vLLM serves it from.

    python -m rl.publish adapter=checkpoints/english_only/<time>/adapter            # serving/fastresponse
    python -m rl.publish adapter=PATH model=nano serving.dir=DIR serving.name=fastresponse \
        serving.reload_url=http://127.0.0.1:8000                                       # + tell vLLM
    python -m rl.publish rollback serving.dir=DIR serving.name=fastresponse           # previous version

What a publish does, in order (nothing is written before step 3):
1. validates the adapter (rl/adapter_files.py): a LoRA config, weights that parse with every tensor
   read and finite, names and shapes that fit the rank, the target modules and (when its config.json
   is on this machine) the base model; its base is `model.name_or_path` or an alias; no symlinks;
2. finds the evaluation of exactly this adapter, by content hash (weights, config, tokenizer): the
   adapter folder's eval.json, its run dir's (whose "after" entry is the run's adapter/, never a
   checkpoint) or an rl.evaluate report under `serving.evaluations`; refuses when there is none (saying
   how to evaluate it) or it is below `serving.gate` (default: english_rate >= 0.99, tag_rate <= 0,
   word_ok_rate >= 0.98, over n >= 100 held-out prompts; the report names the experiment's word limits,
   rl/rules.py). `serving.force=true` skips this step only:
   loudly, and the manifest says `forced: true`;
3. copies what a server reads (config, weights, tokenizer files) into a staging folder, fsyncs it and
   names it `DIR/.versions/NAME/vN`, with `base_model_name_or_path` rewritten to `serving.base_model`
   (exactly the `--model` argument of the serving vLLM: its filesystem resolver compares the two) and
   a `manifest.json` (base model, source run, git commit, the evaluation, sha256 of every file);
4. links `DIR/NAME-vN`; with `serving.reload_url`, has the server load vN under NAME (vLLM caches an
   adapter by name once loaded); then switches `DIR/NAME` to vN, the one step that makes it served.
A failure at any step undoes vN and says which step failed and what serves; a publish killed half-way
is undone by the next publish or rollback (a journal, `.pending.json`). See rl/serving.py for the layout.
Start vLLM with `VLLM_PLUGINS=lora_filesystem_resolver VLLM_LORA_RESOLVER_CACHE_DIR=DIR
VLLM_ALLOW_RUNTIME_LORA_UPDATING=true ... --enable-lora --max-loras K` (K above the adapters in use).
Step 1 is rl/publish_checks.py, step 2 rl/publish_gate.py, steps 3-4 and rollback rl/publish_versions.py,
the reload rl/serving_reload.py; this module reads the config and is the CLI.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from rl.publish_checks import PublishError, model_group_for, one_line, validate
from rl.publish_gate import DEFAULT_GATE, GateRefused, evaluations_in, find_evaluation, gate_failures
from rl.publish_versions import publish, rollback
from rl.rules import rules_from
from rl.serving_reload import ReloadError, reload_adapter

# what callers import from rl.publish: the whole publishing face in one place
__all__ = ["DEFAULT_GATE", "GateRefused", "PublishError", "ReloadError", "evaluations_in", "find_evaluation",
           "gate_failures", "main", "publish", "publish_from_config", "reload_adapter", "rollback", "validate"]


# ---------------------------------------------------------------- config / CLI


def publish_from_config(config, adapter_dir, metrics: dict | None = None, source_run=None,
                        eval_path=None, on_step: Callable[[str], None] | None = None) -> Path:
    """`publish` with the `serving:` and `model:` groups of the config (rl.config.Config); what rl.train
    calls at the end and the CLI runs. The only place a publish reads the config."""
    opts, model = config.serving, config.model
    trained_on = model.name_or_path
    group = model_group_for(trained_on) if trained_on else None
    hint = (f"python -m rl.evaluate +exp={_experiment_of(Path(adapter_dir), config)} adapter={{adapter}}"
            + (f" model={group}" if group else ""))
    gate = {metric: {k: v for k, v in vars(bound).items() if v is not None} for metric, bound in opts.gate.items()}
    # the experiment's word limits, when the config names one (rl.publish without +exp=... has no rewards)
    rules = rules_from(config.reward_specs()) if config.rewards else None
    return publish(
        adapter_dir, opts.dir, opts.name, opts.base_model, metrics=metrics, gate=gate, force=opts.force,
        reload_url=opts.reload_url, source_run=source_run, eval_path=eval_path, server_dir=opts.server_dir,
        trained_on=trained_on, aliases=model.base_aliases, eval_dirs=opts.evaluations, evaluate_hint=hint,
        on_step=on_step, rules=rules,
    )  # fmt: skip


def _experiment_of(adapter_dir: Path, config) -> str:
    """The experiment an adapter was trained in (its run dir's config), for the rl.evaluate command."""
    from omegaconf import OmegaConf

    for resolved in (adapter_dir.parent / "config.resolved.yaml", adapter_dir / "config.resolved.yaml"):
        try:
            name = OmegaConf.load(resolved).get("exp_name")
        except Exception:  # no run config next to it: fall back below
            continue
        if isinstance(name, str) and name != "default":
            return name
    return config.exp_name if config.exp_name != "default" else "english_only"


def _job(command: str):
    def job(config, run_dir) -> None:
        opts = config.serving
        try:
            if command == "rollback":
                path = rollback(opts.dir, opts.name, opts.reload_url, opts.server_dir)
                print(f"rolled back: {opts.name} -> {path}")
                return
            if not config.adapter:
                raise PublishError("adapter: required, not set (pass adapter=PATH, the adapter folder to publish)")
            path = publish_from_config(config, config.adapter, eval_path=config.eval)
        except OSError as err:  # the serving dir is not writable, a disk is full: the user's to fix
            raise PublishError(one_line(err)) from None
        print(f"published: {opts.name} -> {path}")

    return job


def main(argv: list[str] | None = None) -> None:
    """`rollback` is a bare word before the Hydra overrides; take it off argv before Hydra parses it."""
    from rl.entry import hydra_cli

    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args and args[0] in ("publish", "rollback") else "publish"
    sys.argv = [sys.argv[0], *args]
    # a publish reads serving.* and the adapter, not the training data or the SFT adapter
    hydra_cli("publish_cli", _job(command), require_paths=False)


if __name__ == "__main__":
    main()
