"""The one entry helper of every Hydra CLI: compose, check, then run the job on the typed config.

    def main() -> None:
        hydra_cli("config", train)          # train(config: rl.config.Config, run_dir: Path)

Before Hydra creates a run dir, the command line is composed once with Hydra's compose API and the
value rules are checked (`rl.config_rules.check`): a bad override or YAML value is one line naming the key,
the value and the rule, a typo'd key names the nearest real key, and nothing is written or loaded.
Then Hydra runs the job as usual (run dir, logging, `--cfg job`, `--help`), with the config converted
once into the dataclasses of rl/config.py. A `UserError` raised by the job is one line, no traceback.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from common.errors import UserError, interruptible, reporting_user_errors
from rl.config import SCHEMAS, Config, ConfigError, did_you_mean, value_problem
from rl.config_rules import check, schema_keys, unknown_keys

CONF = Path(__file__).resolve().parents[1] / "conf"
# The schema each primary config composes into (its `schema:` default).
_SCHEMA_OF = {"config": "train", "evaluate_cli": "evaluate", "publish_cli": "publish", "launch": "launch",
              "score": "score"}  # fmt: skip


def compose(config_name: str = "config", overrides: list[str] = (), check_values: bool = True,
            require_paths: bool = True) -> Config:
    """The typed config for `overrides`, exactly as the CLI composes it; ConfigError on any problem."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    try:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = hydra_compose(config_name=config_name, overrides=list(overrides))
    except Exception as err:  # Hydra and OmegaConf report a bad override or YAML value this way
        if _is_config_problem(err):
            raise ConfigError(explain(err, config_name)) from None
        raise
    config = typed(cfg, config_name)
    if check_values:
        check(config, require_paths=require_paths)
    return config


def typed(cfg: DictConfig, config_name: str = "config") -> Config:
    """The composed DictConfig -> the dataclasses of rl/config.py (interpolations resolved)."""
    from omegaconf.errors import OmegaConfBaseException

    schema = SCHEMAS[_SCHEMA_OF.get(config_name, "train")]
    forced = unknown_keys(cfg, schema)
    if forced:
        raise ConfigError("\n".join(_unknown(key, schema) for key in forced))
    try:
        return OmegaConf.to_object(cfg)
    except OmegaConfBaseException as err:
        raise ConfigError(explain(err, config_name)) from None


def hydra_cli(config_name: str, job: Callable[[Any, Path], Any], require_paths: bool = True,
              record_failures: bool = False) -> None:
    """Run `job(config, run_dir)` as a Hydra app of conf/<config_name>.yaml, reporting user errors in one line.

    `require_paths`: check that data and adapter paths exist before starting (off for jobs that read neither).
    `record_failures`: the job has a run dir of its own; a failure ends its log (rl.failed_run)."""
    import hydra
    from hydra._internal.utils import get_args_parser
    from hydra.core.hydra_config import HydraConfig

    interruptible()  # Ctrl-C saves and says how to resume, also under a shell that started us with it ignored
    args, _ = get_args_parser().parse_known_args(sys.argv[1:])
    hydra_only = args.help or args.hydra_help or args.info or args.shell_completion or getattr(args, "version", False)
    if not hydra_only and not args.multirun:
        with reporting_user_errors():
            # --cfg prints the config: a missing data file must not stop that, a wrong type still does
            compose(config_name, args.overrides, check_values=not args.cfg, require_paths=require_paths)

    # the job (and its log file, e.g. train.log) is named after the entry module, not this helper
    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    if main_spec is not None and not any(a.startswith("hydra.job.name=") for a in sys.argv[1:]):
        # first, so that it joins the other overrides even when an option (--cfg job) ends the command line
        sys.argv.insert(1, f"hydra.job.name={main_spec.name.rpartition('.')[2]}")

    @hydra.main(config_path="../conf", config_name=config_name, version_base="1.3")
    def task(cfg: DictConfig) -> None:
        run_dir = Path(HydraConfig.get().runtime.output_dir)
        with reporting_user_errors():
            try:
                config = typed(cfg, config_name)
                if args.multirun:  # each job of a sweep composes on its own
                    check(config, require_paths=require_paths)
                job(config, run_dir)
            except UserError as err:
                if record_failures:
                    from rl.failed_run import record_failure

                    record_failure(run_dir, " ".join(str(err).split()))
                raise
            except Exception as err:  # a bug or a crash: the traceback goes to the console and the log too
                if record_failures:
                    from rl.failed_run import record_failure

                    record_failure(run_dir, " ".join(str(err).split()) or type(err).__name__, err)
                raise

    task()


# ---------------------------------------------------------------- Hydra's errors -> one line


def _is_config_problem(err: BaseException) -> bool:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return isinstance(err, (HydraException, OmegaConfBaseException))


def explain(err: BaseException, config_name: str = "config") -> str:
    """One line for a composition error: `KEY: problem, got VALUE`, with the nearest real key for a typo."""
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

    inner = err
    while not isinstance(inner, OmegaConfBaseException) and inner.__cause__ is not None:
        inner = inner.__cause__
    text = str(err) if inner is err else f"{err}\n{inner}"
    full_key = getattr(inner, "full_key", None) or _field(text, "full_key")
    if isinstance(inner, MissingMandatoryValue) and full_key:
        return f"{full_key}: required, not set (pass {full_key}=...)"
    not_in = re.search(r"Key '([^']+)' not in '([^']+)'", text) or re.search(r"Key '([^']+)' is not in struct", text)
    if not_in and full_key:
        return _unknown(full_key, SCHEMAS[_SCHEMA_OF.get(config_name, "train")])
    if full_key and re.search(r"could not be converted|is not a valid bool|Invalid type assigned", text):
        return f"{full_key}: {value_problem(text)}"
    missing = re.search(r"Could not find '([^'/]+)/([^']+)'", text)
    if missing:  # a group option that does not exist: model=nanoo
        group, name = missing.groups()
        options = re.search(r"Available options in '[^']+':\n((?:\t.*\n?)*)", text)
        known = options.group(1).split() if options else []
        return (f"{group}={name}: no such option{did_you_mean(name, known)}"
                + (f"; {group} options: {', '.join(known)}" if known else ""))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(err).__name__
    if first.startswith("Error parsing override") and len(lines) > 1:
        first = f"{first}: {lines[1]}"
    return (f"{full_key}: " if full_key and full_key not in first else "") + first


def _unknown(full_key: str, schema: type) -> str:
    parent, _, name = full_key.rpartition(".")
    known = schema_keys(parent, schema) or []
    hint = did_you_mean(name, known)
    return f"{full_key}: unknown key{hint}" + ("" if hint or not known else f"; {parent or 'the top level'} has: {', '.join(known)}")


def _field(text: str, name: str) -> str | None:
    found = re.search(rf"{name}: ([^\s]+)", text)
    return found.group(1) if found else None
