"""Validation accuracy of sentiment models and of their average, on the examples their training held out.

    python -m bench.average MODEL_DIR MODEL_DIR [...] [--manual-dir DIR] [--data-dir DIR]

Averaging the P(positive) of models that read reviews differently (ULMFiT averages a forward and a
backward classifier; here e.g. the word-pair BiGRU and the classifier fine-tuned from the IMDB
language model) is measured on validation before any such average is built or shipped, so the test
reviews stay unread. Every model must have been trained on the same dataset with the same held-out
validation rule (train_config.json's validation_fraction and train_limit); the examples are the
ones `textgen evaluate MODEL --split validation` reads. Prints one JSON line:
{"dataset", "examples", "models": {dir: accuracy}, "average": accuracy}.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def validation_average(model_dirs: list[str], data_dir=None, manual_dir=None) -> dict:
    """Each model's validation accuracy and that of the mean of their P(positive), threshold 0.5."""
    from textgen import config as config_lib
    from textgen.artifacts import load_model_dir
    from textgen.evaluate import EvaluationError, _examples, classification_metrics
    from textgen.inference import SentimentPredictor
    from textgen.runs import TRAIN_CONFIG_FILE

    if len(model_dirs) < 2:
        raise EvaluationError("give two or more model directories to average")
    rules, datasets = set(), set()
    for path in model_dirs:
        train_file = Path(path) / TRAIN_CONFIG_FILE
        if not train_file.is_file():
            raise EvaluationError(f"{path}: no {TRAIN_CONFIG_FILE}, so nothing says which examples it held out")
        cfg = config_lib.load_config(train_file)
        rules.add((cfg.validation_fraction, cfg.train_limit))
        datasets.add((load_model_dir(path).metadata.get("dataset") or {}).get("name"))
    if len(rules) != 1 or len(datasets) != 1:
        raise EvaluationError(f"the models were trained on different data or validation splits: {sorted(map(str, datasets))}, "
                              f"(validation fraction, train limit) {sorted(rules)}")
    (dataset,), (rule,) = datasets, rules
    texts, labels, _ = _examples(dataset, "validation", 0, data_dir, manual_dir, held_out=rule)
    probs = {path: SentimentPredictor(load_model_dir(path).model).scores(texts)["p_positive"] for path in model_dirs}
    mean = np.mean(list(probs.values()), axis=0)  # (examples,)
    acc = lambda p: classification_metrics(labels, p, 0.5)["accuracy"]  # noqa: E731
    return {"dataset": dataset, "examples": len(texts), "models": {k: acc(p) for k, p in probs.items()},
            "average": acc(mean)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dirs", nargs="+", metavar="MODEL_DIR")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--manual-dir", default=None)
    args = p.parse_args(argv)
    from textgen.errors import TextgenError

    try:
        print(json.dumps(validation_average(args.model_dirs, args.data_dir, args.manual_dir)))
    except TextgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
