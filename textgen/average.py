"""`textgen average`: one sentiment model whose P(positive) is the mean of several trained ones'.

ULMFiT averages a forward and a backward classifier; any sentiment models that err on different
texts gain from it (the word-pair BiGRU and the classifier fine-tuned from the IMDB language model
do). The members are chosen on validation only: they must have been trained on the same dataset
with the same held-out validation rule (their train_config.json), and the command scores each
member and the average on exactly those held-out examples, prints them and records them in
metadata.json. It never reads a test split.

    textgen average runs/a runs/b --out saved_models/imdb_average [--embedding-dtype float16]

The output folder is built whole under a staging name and swapped in (`textgen.folders`), so a
`kill -9` leaves the old folder or the new one; `--overwrite` replaces only a folder textgen wrote.
"""

from __future__ import annotations

import argparse
import itertools
import os
import shlex
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from textgen.config import EMBEDDING_DTYPES, SentimentConfig
from textgen.errors import TextgenError

COMMAND = "average"  # `textgen average`: the command a card of an average shows


class AverageError(TextgenError, ValueError):
    """The models cannot be averaged, or the output folder cannot be written."""


def add_flags(p: argparse.ArgumentParser) -> None:
    """The flags of `textgen average` (also what `textgen card` parses a recorded command with)."""
    p.add_argument("members", nargs="+", metavar="MODEL_DIR",
                   help="two or more sentiment model directories trained on the same dataset with the same "
                        "held-out validation examples")
    p.add_argument("--out", required=True, help="model directory to write (a new folder, or one textgen wrote "
                                                "with --overwrite)")
    p.add_argument("--embedding-dtype", choices=EMBEDDING_DTYPES, default="float32",
                   help="storage of the members' embedding tables: float16 halves the largest part of the file "
                        "(default: float32)")
    p.add_argument("--data-dir", default=None, help="TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    p.add_argument("--manual-dir", default=None, help="folder with manually downloaded source files (offline preparation)")
    p.add_argument("--overwrite", action="store_true", help="replace --out when textgen wrote it (default: refuse)")


def parse_command(argv: Sequence[str]) -> argparse.Namespace:
    """Parses an `average ...` argv as `textgen` would (AverageError when it does not parse)."""
    import contextlib
    import io

    parser = argparse.ArgumentParser(prog="textgen average", exit_on_error=False)
    add_flags(parser)
    words = list(argv)
    if not words or words[0] != COMMAND:
        raise AverageError(f"not a `textgen {COMMAND}` command: {shlex.join(words)[:60]!r}")
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            return parser.parse_args(words[1:])
    except (SystemExit, argparse.ArgumentError) as exc:
        last = (err.getvalue().strip().splitlines() or [str(exc)])[-1]
        raise AverageError(f"the {COMMAND} command does not parse: {last}") from None


def load_members(paths: Sequence[str | os.PathLike]):
    """The loaded member directories, checked: sentiment models (not averages), each once, trained on
    one dataset with one held-out validation rule. Returns (model dirs, (validation_fraction, train_limit))."""
    from textgen import config as config_lib
    from textgen.artifacts import load_model_dir
    from textgen.config import TRAIN_CONFIG_FILE

    if len(paths) < 2:
        raise AverageError(f"give two or more model directories to average; got {len(paths)}")
    seen = {}
    for path in paths:
        real = Path(path).resolve()
        if real in seen:
            raise AverageError(f"{path} is given twice (as {seen[real]}): each member counts once")
        seen[real] = path
    dirs, rules, datasets = [], set(), set()
    for path in paths:
        md = load_model_dir(path)
        if type(md.config) is not SentimentConfig:
            raise AverageError(f"{path} holds a {md.task} model; an average's members are sentiment models "
                               "(`textgen train sentiment`)")
        train_file = Path(path) / TRAIN_CONFIG_FILE
        if not train_file.is_file():
            raise AverageError(f"{path}: no {TRAIN_CONFIG_FILE}, so nothing says which examples its training held out")
        cfg = config_lib.load_config(train_file)
        rules.add((cfg.validation_fraction, cfg.train_limit))
        datasets.add((md.metadata.get("dataset") or {}).get("name"))
        dirs.append(md)
    if len(datasets) != 1 or len(rules) != 1:
        raise AverageError("the models were trained on different data or validation splits (datasets "
                           f"{sorted(map(str, datasets))}; validation fraction, train limit {sorted(rules)}): an "
                           "average is chosen on validation examples none of its members trained on")
    return dirs, rules.pop()


def validation_scores(models, dataset: str, rule: tuple[float, int], data_dir=None, manual_dir=None) -> dict:
    """Accuracy of each model and of the mean of their P(positive) (threshold 0.5) on the examples
    their training held out: {"dataset", "split", "examples", "members": [accuracy, ...], "accuracy",
    "subsets": {(i, j, ...): accuracy of those members' mean} for every choice of two or more}."""
    from textgen.evaluate import _examples, classification_metrics
    from textgen.inference import THRESHOLD, SentimentPredictor

    texts, labels, _ = _examples(dataset, "validation", 0, data_dir, manual_dir, held_out=rule)
    probs = [SentimentPredictor(m).scores(texts)["p_positive"] for m in models]  # [(examples,)]
    acc = lambda p: classification_metrics(labels, p, THRESHOLD)["accuracy"]  # noqa: E731
    subsets = {s: acc(np.mean([probs[i] for i in s], axis=0))
               for k in range(2, len(probs) + 1) for s in itertools.combinations(range(len(probs)), k)}
    return {"dataset": dataset, "split": "validation", "examples": len(texts), "members": [acc(p) for p in probs],
            "accuracy": subsets[tuple(range(len(probs)))], "subsets": subsets}


def _member_record(md, accuracy: float) -> dict:
    """What the average's metadata.json keeps of a member: where it was, its weights, seed, training
    time (and its language models': a fine-tuned member's cost includes its pretraining)."""
    m = md.metadata
    source = m.get("init_from") or {}
    return {"path": str(md.path), "dataset": (m.get("dataset") or {}).get("name"), "seed": m.get("seed"),
            "weights_sha256": m.get("weights_sha256"), "training_time_s": m.get("training_time_s"),
            "validation_accuracy": accuracy,
            "init_from": {k: source[k] for k in ("path", "training_time_s", "backward_path", "backward_training_time_s")
                          if source.get(k) is not None}}


def average_model_dirs(paths: Sequence[str | os.PathLike], out: str | os.PathLike, *, embedding_dtype: str = "float32",
                       overwrite: bool = False, data_dir=None, manual_dir=None, print_fn: Callable[[str], None] = print) -> Path:
    """Writes the average of the sentiment model directories `paths` to `out`; returns `out`.

    Raises:
        AverageError: fewer than two members, a member twice, a member that is not a sentiment model
            or has no train_config.json, members trained on other data or held-out splits, or an
            `out` that overlaps a member or is a folder textgen did not write.
        ModelDirError: a member is not a loadable model directory.
    """
    from textgen import folders
    from textgen.artifacts import MODEL_DIR_ENTRIES, save_model_dir
    from textgen.config import AverageConfig
    from textgen.models.average import build_average_model, members_of
    from textgen.provenance import provenance

    if embedding_dtype not in EMBEDDING_DTYPES:
        raise AverageError(f"embedding dtype must be one of {', '.join(EMBEDDING_DTYPES)}; got {embedding_dtype!r}")
    out = folders.check_out(out, list(paths), overwrite=overwrite, known=MODEL_DIR_ENTRIES, error=AverageError)
    dirs, rule = load_members(paths)
    dataset = (dirs[0].metadata.get("dataset") or {}).get("name")
    model = build_average_model([md.model for md in dirs], embedding_dtype)
    print_fn(f"scoring {len(dirs)} members and their average on the validation examples of {dataset} ...")
    scores = validation_scores(members_of(model), dataset, rule, data_dir, manual_dir)  # the members as stored
    for md, acc in zip(dirs, scores["members"]):
        print_fn(f"  {md.path}: {acc:.2%}")
    print_fn(f"  average: {scores['accuracy']:.2%} ({scores['examples']:,} examples)")
    members = [_member_record(md, acc) for md, acc in zip(dirs, scores["members"])]
    metadata = {
        "dataset": dirs[0].metadata.get("dataset"),
        "train_label_counts": dirs[0].metadata.get("train_label_counts"),  # the majority baseline's
        "held_out_rule": {"validation_fraction": rule[0], "train_limit": rule[1]},
        "members": members,
        "validation": {"examples": scores["examples"], "accuracy": scores["accuracy"]},
        "metrics": {}, "test_scored_by_training": False,  # chosen on validation; `textgen evaluate` scores test once
        # The members' own training, and (in the card) the language models they started from.
        "training_time_s": round(sum(m["training_time_s"] or 0.0 for m in members), 3),
        "seed": [m["seed"] for m in members],
        **provenance(),
    }
    config = AverageConfig(members=tuple(md.config for md in dirs), embedding_dtype=embedding_dtype)
    folders.build_and_publish(out, lambda staged: save_model_dir(staged, model, config, metadata), "model",
                              MODEL_DIR_ENTRIES)
    return out


def check_command(argv: Sequence[str], model_dir: Path, config, metadata: dict) -> list[str]:
    """What keeps `textgen <argv>` (an `average ...` command) from rebuilding this average: other
    members, another order or another embedding dtype. [] when it rebuilds it."""
    args = parse_command(argv)
    problems = []
    recorded = [m.get("path") for m in metadata.get("members") or []]
    if [os.path.normpath(p) for p in args.members] != [os.path.normpath(str(p)) for p in recorded]:
        problems.append(f"members: the model averages {recorded}, the command {args.members}")
    if args.embedding_dtype != getattr(config, "embedding_dtype", None):
        problems.append(f"embedding dtype: model {getattr(config, 'embedding_dtype', None)!r}, "
                        f"command {args.embedding_dtype!r}")
    return problems
