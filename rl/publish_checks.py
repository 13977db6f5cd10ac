"""What may be published, checked before anything is staged: the serving name, the adapter's files
(rl/adapter_files.py) and the base model it was trained on. Every refusal is a `PublishError`, one line
naming the file."""

from __future__ import annotations

import logging
import re
from pathlib import Path

from common.errors import UserError
from rl import adapter_files
from rl.adapter_files import AdapterError

log = logging.getLogger("rl.publish")  # one logger for every step of a publish

CONF_MODELS = Path(__file__).resolve().parents[1] / "conf" / "model"
# A name ending in -vN would collide with the per-version names of another adapter.
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_VERSIONED_RE = re.compile(r"-v\d+$")


class PublishError(UserError, ValueError):
    """A publish or rollback that cannot go ahead; the message is one line and says why."""


def one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME_RE.match(name) or _VERSIONED_RE.search(name):
        raise PublishError(
            f"serving.name: {name!r} is not a valid adapter name (letters, digits, '.', '_', '-', "
            "not starting with '.', not ending in -vN)"
        )


def _same_model(a: str, b: str) -> bool:
    if a == b:
        return True
    # local paths may be written relative or absolute
    pa, pb = Path(a), Path(b)
    return pa.exists() and pb.exists() and pa.resolve() == pb.resolve()


def model_group_for(base: str) -> str | None:
    """The conf/model/ group whose model.name_or_path is `base` (e.g. 'nano'), for a message that says
    which `model=` the adapter belongs to."""
    from omegaconf import OmegaConf

    for path in sorted(CONF_MODELS.glob("*.yaml")):
        try:
            name_or_path = OmegaConf.load(path).get("model", {}).get("name_or_path")
        except Exception:  # a broken group file is the config's business, not this message's
            continue
        if isinstance(name_or_path, str) and _same_model(name_or_path, base):
            return path.stem
    return None


def _check_base(config_file: Path, adapter_base, accepted: list[str]) -> None:
    """The adapter must be trained on the configured model (or an alias of it): its LoRA deltas mean
    nothing on another base, and vLLM's resolver would serve it once its base is rewritten."""
    if isinstance(adapter_base, str) and any(_same_model(adapter_base, a) for a in accepted):
        return
    group = model_group_for(adapter_base) if isinstance(adapter_base, str) else None
    hint = (
        f"it was trained on the {group} model: publish it with model={group}" if group
        else "publish it with the model it was trained on, or add that base to model.base_aliases"
    )  # fmt: skip
    raise PublishError(
        f"{config_file}: field 'base_model_name_or_path' is {adapter_base!r} but this publish is for "
        f"{accepted[0]!r}" + (f" (or {', '.join(map(repr, accepted[1:]))})" if accepted[1:] else "") + f"; {hint}"
    )


def validate(adapter_dir: Path, base_model: str, trained_on: str | None = None, aliases=()) -> dict:
    """Everything about the adapter itself that must hold before anything is staged; returns its config.
    Raises PublishError (one line, naming the file)."""
    adapter_dir = Path(adapter_dir)
    accepted = [m for m in dict.fromkeys([trained_on, *aliases, base_model]) if m]
    try:
        if not adapter_dir.is_dir():
            raise AdapterError(f"{adapter_dir}: adapter folder not found")
        adapter_files.refuse_symlinks(adapter_dir)
        config = adapter_files.read_config(adapter_dir)
        _check_base(adapter_dir / adapter_files.CONFIG, config.get("base_model_name_or_path"), accepted)
        base_dir = next(filter(None, map(adapter_files.local_model_config_dir, accepted)), None)
        if base_dir is None:
            log.info("no config.json of %s on this machine: LoRA shapes checked against the rank only", accepted[0])
        adapter_files.check_adapter(adapter_dir, base_dir)
    except AdapterError as err:
        raise PublishError(str(err)) from None
    return config
