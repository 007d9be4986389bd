"""The train command a card shows: read it, print it, and check that it rebuilds the model's configs.

The training code does not record the command, so it comes from `textgen card --command` (or
metadata.json's "command"); parsed by the CLI's own parser (`textgen.train_flags`) it must rebuild
config.json and train_config.json (seed included) and name the dataset in metadata.json.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
from pathlib import Path
from typing import Any, Sequence

from textgen import config as config_lib
from textgen.config import TRAIN_CONFIG_FILE  # noqa: F401  (re-exported)
from textgen.errors import TextgenError

# The commands that make a model directory: `textgen train ...`, and `textgen average ...` (textgen.average).
MAKING_COMMANDS = ("train", "average")


class CardError(TextgenError):
    """A card cannot be written: no or wrong train command, bad evaluation file, not a model directory."""


def normalise_command(command: str) -> list[str]:
    """`textgen train ...` (also `.venv/bin/textgen` or `python -m textgen`) -> the argv after `textgen`."""
    try:
        words = shlex.split(command)
    except ValueError as err:
        raise CardError(f"cannot split the train command: {err}") from err
    if len(words) >= 3 and os.path.basename(words[0]).startswith("python") and words[1:3] == ["-m", "textgen"]:
        words = words[3:]
    elif words and os.path.basename(words[0]) == "textgen":
        words = words[1:]
    else:
        raise CardError(f"the train command must start with `textgen train`; got {command[:60]!r}")
    if not words or words[0] not in MAKING_COMMANDS:
        raise CardError(f"the train command must be a `textgen train` (or `textgen average`) command; got {command[:60]!r}")
    return words


def display_command(argv: Sequence[str]) -> str:
    """The command as printed in the card: `textgen` + the argv, shell-quoted."""
    return "textgen " + shlex.join(argv)


def check_command(argv: Sequence[str], model_dir: Path, config: Any, metadata: dict) -> None:
    """Raises CardError unless `textgen <argv>` rebuilds this model's configs, seed and dataset (an
    `average` command: its members and embedding dtype, `textgen.average.check_command`)."""
    from textgen import average, train_flags

    if argv[0] == average.COMMAND:
        try:
            problems = average.check_command(argv, model_dir, config, metadata)
        except average.AverageError as exc:
            raise CardError(str(exc)) from exc
        if problems:
            raise CardError("the average command would not rebuild this model: " + "; ".join(problems))
        return

    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            args = train_flags.parse_train_command(argv)
    except SystemExit as exc:
        last = (err.getvalue().strip().splitlines() or ["invalid arguments"])[-1]
        raise CardError(f"the train command does not parse: {last}") from exc
    try:
        model_cfg, train_cfg, _ = train_flags.train_configs(args)
    except config_lib.ConfigError as exc:
        raise CardError(f"the train command has a bad setting: {exc}") from exc
    problems = []
    if type(model_cfg) is not type(config):
        problems.append(f"it trains a {type(model_cfg).__name__}, the model is a {type(config).__name__}")
    else:
        problems += _diff("model config", config_lib.to_dict(config), config_lib.to_dict(model_cfg))
    dataset = (metadata.get("dataset") or {}).get("name")
    if dataset is not None and args.dataset != dataset:
        problems.append(f"dataset: the model was trained on {dataset}, the command uses {args.dataset}")
    train_path = model_dir / TRAIN_CONFIG_FILE
    if train_path.is_file():
        recorded = config_lib.to_dict(config_lib.load_config(train_path))
        problems += _diff("training config", recorded, config_lib.to_dict(train_cfg))
    elif metadata.get("seed") != train_cfg.seed:
        problems.append(f"seed: the model was trained with {metadata.get('seed')}, the command gives {train_cfg.seed}")
    if problems:
        raise CardError("the train command would not reproduce this model: " + "; ".join(problems))


def _diff(what: str, recorded: dict, command: dict, prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(recorded) | set(command)):
        a, b = recorded.get(key), command.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _diff(what, a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{what} {prefix}{key}: model {a!r}, command {b!r}")
    return out


def model_dir_of(argv: Sequence[str]) -> str | None:
    """The model directory a `textgen train` (or `average`) argv writes (`--out`), or None when it does not parse."""
    from textgen import average, train_flags

    if argv and argv[0] == average.COMMAND:
        try:
            return average.parse_command(argv).out
        except average.AverageError:
            return None
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            return train_flags.parse_train_command(argv).out
    except SystemExit:
        return None
