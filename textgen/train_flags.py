"""The flags of `textgen train TASK` and the configs they build.

The CLI adds these parsers to `textgen`; the model card (`textgen.card`) parses a card's recorded
train command with them to check that it rebuilds the model's configs. Neither imports the other.
Shared flags are here; each task adds its own (`textgen.tasks.Task.add_flags`). No TensorFlow is
imported (the CLI builds its parser at start-up).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any, Callable, Sequence

from textgen import config as config_lib
from textgen import tasks
from textgen.config import TrainConfig


def resolve_configs(task: str, model_values: dict, train_values: dict, overrides: list[str]) -> tuple[Any, TrainConfig]:
    """Builds (model config, TrainConfig) from CLI flag values and `--set key=value` overrides.

    A `--set` key starting with `train.` or naming a TrainConfig field goes to the TrainConfig;
    `model.` or anything else goes to the model config. Unknown keys and wrong types raise
    ConfigError. Flag values of None mean "the config's default".
    """
    model_cfg = config_lib.apply_overrides(tasks.get(task).config_class(), {k: v for k, v in model_values.items() if v is not None})
    train_cfg = config_lib.apply_overrides(TrainConfig(), {k: v for k, v in train_values.items() if v is not None})
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    model_over, train_over = {}, {}
    for text in overrides:
        key, value = config_lib.parse_override(text)
        if key.startswith("train."):
            train_over[key[len("train."):]] = value
        elif key.startswith("model."):
            model_over[key[len("model."):]] = value
        elif key.split(".")[0] in train_fields:
            train_over[key] = value
        else:
            model_over[key] = value
    return config_lib.apply_overrides(model_cfg, model_over), config_lib.apply_overrides(train_cfg, train_over)


def add_train_flags(p: argparse.ArgumentParser, task: tasks.Task) -> None:
    """The flags every task's train command has, then the task's own."""
    from textgen.config import CELL_KINDS, PRECISIONS, SCHEDULES, STRATEGIES

    t = TrainConfig()
    m = task.config_class()
    p.add_argument("--dataset", default=None,
                   help=f"prepared TFDS corpus: {task.datasets_help}, or your own corpus's name "
                        f"(default: {task.default_dataset})")
    p.add_argument("--out", default=None, help=f"run directory to write (default: runs/{task.name}-DATASET)")
    p.add_argument("--data-dir", default=None, help="TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    p.add_argument("--manual-dir", default=None, help="folder with manually downloaded source files (offline preparation)")
    p.add_argument("--cell", default=m.rnn.cell, choices=CELL_KINDS, help=f"recurrent cell kind (default: {m.rnn.cell})")
    p.add_argument("--units", type=int, default=m.rnn.units, help=f"hidden units per recurrent layer (default: {m.rnn.units})")
    p.add_argument("--layers", type=int, default=m.rnn.layers, help=f"stacked recurrent layers (default: {m.rnn.layers})")
    p.add_argument("--embedding-dim", type=int, default=m.embedding_dim,
                   help=f"embedding size per {task.token} (default: {m.embedding_dim})")
    p.add_argument("--dropout", type=float, default=m.rnn.dropout,
                   help=f"dropout rate on each recurrent layer's output, 0..0.95 (default: {m.rnn.dropout})")
    p.add_argument("--epochs", type=int, default=t.epochs, help=f"maximum epochs (default: {t.epochs})")
    p.add_argument("--steps-per-epoch", type=int, default=t.steps_per_epoch,
                   help="batches per epoch; 0 = one full pass over the training split (default: 0)")
    p.add_argument("--validation-steps", type=int, default=t.validation_steps,
                   help="validation batches per epoch; 0 = the whole validation split (default: 0)")
    p.add_argument("--batch-size", type=int, default=t.batch_size,
                   help=f"global batch size in sequences/texts (default: {t.batch_size})")
    task.add_flags(p)
    p.add_argument("--learning-rate", type=float, default=t.learning_rate, help=f"Adam peak learning rate (default: {t.learning_rate})")
    p.add_argument("--schedule", default=t.schedule, choices=SCHEDULES, help=f"learning-rate schedule (default: {t.schedule})")
    p.add_argument("--clipnorm", type=float, default=t.clipnorm,
                   help=f"gradient norm clipping threshold; 0 = off (default: {t.clipnorm})")
    p.add_argument("--patience", type=int, default=t.patience,
                   help=f"early stopping after this many epochs without a better val_loss; 0 = off (default: {t.patience})")
    p.add_argument("--seed", type=int, default=None, help="random seed 0..2^31-2 for a repeatable run (default: random, recorded)")
    p.add_argument("--precision", default=t.precision, choices=PRECISIONS,
                   help=f"compute precision; weights stay float32 (default: {t.precision})")
    p.add_argument("--strategy", default=t.strategy, choices=STRATEGIES,
                   help="tf.distribute strategy; multiworker reads TF_CONFIG (default: default)")
    p.add_argument("--test", dest="score_test", action=argparse.BooleanOptionalAction, default=t.score_test,
                   help="score the test split when training ends; --no-test for the variants of a search, compared "
                        "on validation only (score the kept one once with `textgen evaluate`) (default: on)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="strict config override, repeatable: a model key (rnn.units=64) or a train key "
                        "(train.learning_rate=0.001); value parsed as JSON (default: none)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a finished textgen run in --out (never a folder textgen did not write) (default: refuse)")
    p.add_argument("--quiet", action="store_true",
                   help="no per-epoch output (default: a progress bar on a terminal, one line per epoch in a log)")


def add_train_parsers(sub: argparse._SubParsersAction, func: Callable | None = None) -> None:
    """`train` and one sub-command per registered task, each calling `func(args)`."""
    train = sub.add_parser("train", help="train a model and write a run directory")
    train_sub = train.add_subparsers(dest="task", required=True, metavar="{" + ",".join(tasks.trainable()) + "}")
    for name in tasks.trainable():
        task = tasks.get(name)
        p = train_sub.add_parser(name, help=task.help)
        add_train_flags(p, task)
        if func is not None:
            p.set_defaults(func=func)


def parse_train_command(argv: Sequence[str]) -> argparse.Namespace:
    """Parses a `train TASK ...` argv as `textgen` would (SystemExit, with argparse's message on
    stderr, when it does not parse)."""
    parser = argparse.ArgumentParser(prog="textgen")
    add_train_parsers(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser.parse_args(list(argv))


def train_configs(args) -> tuple:
    """(model config, TrainConfig, out dir) that `textgen train` builds from parsed flags.

    `textgen card` uses it to check that a recorded command reproduces a model's configs.
    """
    task = tasks.get(args.task)
    task_model, task_train = task.flag_values(args)
    model_values = {"rnn.cell": args.cell, "rnn.units": args.units, "rnn.layers": args.layers,
                    "rnn.dropout": args.dropout, "embedding_dim": args.embedding_dim, **task_model}
    train_values = {"epochs": args.epochs, "steps_per_epoch": args.steps_per_epoch,
                    "validation_steps": args.validation_steps, "batch_size": args.batch_size,
                    "learning_rate": args.learning_rate, "schedule": args.schedule, "clipnorm": args.clipnorm,
                    "patience": args.patience, "seed": args.seed, "precision": args.precision,
                    "strategy": args.strategy, "score_test": args.score_test, **task_train}
    model_cfg, train_cfg = resolve_configs(args.task, model_values, train_values, args.overrides)
    if args.dataset is None and getattr(args, "text_file", None):  # the corpus is named after the first file
        from textgen.corpus import name_from_file

        args.dataset = name_from_file(args.text_file[0])
    elif args.dataset is None:
        args.dataset = task.default_dataset
    out = args.out or os.path.join("runs", f"{args.task}-{args.dataset.replace('/', '_')}")
    return model_cfg, train_cfg, out
