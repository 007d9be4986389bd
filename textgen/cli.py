"""The `textgen` command: builds the parser from the command groups, runs one, and turns errors into exit codes.

No ML logic lives here. The sub-commands live in `textgen.commands`, one module per group; each
parses its flags, builds a config and calls one function. User errors (bad flags, bad config,
missing data) print one clear line to stderr and exit with code 2; they never show a stack trace.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Callable, Sequence

# Quiet TensorFlow's C++ start-up logging before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXIT_USAGE = 2

# The groups import their rooms inside the functions that run, so building the parser stays light.
from textgen.commands import UserError, print_json as _print_json  # noqa: E402,F401  (re-exported)
from textgen.commands.bench import BENCHMARKS, add_bench_commands  # noqa: E402,F401
from textgen.commands.data import add_data_commands  # noqa: E402
from textgen.commands.reports import add_card_commands, add_compare_commands  # noqa: E402
from textgen.commands.training import add_average_commands, add_evaluate_commands, add_train_commands  # noqa: E402
from textgen.commands.use import (  # noqa: E402
    add_export_commands, add_generate_commands, add_import_commands, add_predict_commands,
)
from textgen.errors import TextgenError  # noqa: E402


def train_configs(args) -> tuple:
    """(model config, TrainConfig, out dir) that `textgen train` builds from parsed flags."""
    from textgen import train_flags

    return train_flags.train_configs(args)


# --------------------------------------------------------------------------------------------
# Router

# One entry per group of textgen.commands; a new concern adds its group there and its entry here.
COMMAND_GROUPS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_data_commands,
    add_train_commands,
    add_evaluate_commands,
    add_average_commands,
    add_generate_commands,
    add_predict_commands,
    add_export_commands,
    add_import_commands,
    add_card_commands,
    add_compare_commands,
    add_bench_commands,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="textgen",
        description="Recurrent neural networks for character-level text generation and sentiment.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMAND_GROUPS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)  # argparse itself exits 2 on bad flags
    if extra:  # argparse stops a positional list at the first option; PATHs after options join it
        if getattr(args, "items", None) is None or any(e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.items += extra
    try:
        return int(args.func(args) or 0)
    except TextgenError as err:
        print(f"textgen: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as err:  # the file system said no (a path under a file, /proc, no permission, disk full)
        where = f" ({err.filename})" if err.filename and str(err.filename) not in str(err.strerror) else ""
        print(f"textgen: error: {err.strerror or err}{where}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("textgen: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
