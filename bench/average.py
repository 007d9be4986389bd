"""Validation accuracy of sentiment models and of their average, on the examples their training held out.

    python -m bench.average MODEL_DIR MODEL_DIR [...] [--on DATASET ...] [--manual-dir DIR] [--data-dir DIR]

Averaging the P(positive) of models that read reviews differently (ULMFiT averages a forward and a
backward classifier; here e.g. the word-pair BiGRU and the classifier fine-tuned from the IMDB
language model) is measured on validation before any such average is built or shipped, so the test
reviews stay unread. Every model must have been trained on the same dataset with the same held-out
validation rule (train_config.json's validation_fraction and train_limit); the examples are the
ones `textgen evaluate MODEL --split validation` reads. Prints one JSON line:
{"dataset", "examples", "models": {dir: accuracy}, "average": accuracy}, and with three or more
models "smaller_averages": {"dir + dir": accuracy} for every smaller choice of two or more of them; with
`--on DATASET` the same for that dataset's validation split under "on".
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def validation_average(model_dirs: list[str], data_dir=None, manual_dir=None, on: list[str] = ()) -> dict:
    """Each model's validation accuracy and that of the mean of their P(positive), threshold 0.5
    (the checks and the scoring of `textgen average`, which writes such an average as one model).
    `on`: more datasets whose validation splits to score the same way (a domain of the corpus, such as
    vader_sentiment/tweets for models trained on vader_sentiment/all): {"on": {dataset: {...}}}."""
    from textgen.average import load_members, validation_scores

    dirs, rule = load_members(model_dirs)  # each model directory is loaded once
    models = [md.model for md in dirs]

    def scored(dataset: str) -> dict:
        scores = validation_scores(models, dataset, rule, data_dir, manual_dir)
        result = {"examples": scores["examples"], "models": dict(zip(model_dirs, scores["members"])),
                  "average": scores["accuracy"]}
        if len(model_dirs) > 2:  # which members earn their place: the average of every smaller choice of them
            result["smaller_averages"] = {" + ".join(model_dirs[i] for i in subset): accuracy
                                          for subset, accuracy in scores["subsets"].items() if len(subset) < len(model_dirs)}
        return result

    dataset = (dirs[0].metadata.get("dataset") or {}).get("name")
    result = {"dataset": dataset, **scored(dataset)}
    if on:
        result["on"] = {name: scored(name) for name in on}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dirs", nargs="+", metavar="MODEL_DIR")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--manual-dir", default=None)
    p.add_argument("--on", action="append", default=[], metavar="DATASET",
                   help="also score on this dataset's validation split (repeatable), e.g. one domain of the corpus")
    args = p.parse_args(argv)
    from textgen.errors import TextgenError

    try:
        print(json.dumps(validation_average(args.model_dirs, args.data_dir, args.manual_dir, args.on)))
    except TextgenError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
