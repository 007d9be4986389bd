"""`textgen train TASK`, `textgen evaluate MODEL_DIR` and `textgen average MODEL_DIR...`: train a model directory,
score it on held-out text, average sentiment models."""

from __future__ import annotations

import argparse
import json
import sys

from textgen.commands import UserError, print_json


def add_train_commands(sub: argparse._SubParsersAction) -> None:
    from textgen import train_flags

    train_flags.add_train_parsers(sub, _run_train)


def _train_verbosity(quiet: bool) -> int:
    """Keras verbosity: 0 quiet; 1 the live progress bar on a terminal; 2 one line per epoch when
    output goes to a file (a progress bar there is megabytes of redrawn lines in `nohup` logs)."""
    if quiet:
        return 0
    return 1 if sys.stdout.isatty() else 2


def _prepare_text_file(args) -> None:
    """`train charlm --text-file PATH...`: prepares the files as a text corpus (named by --dataset when
    given, else after the first file) and points --dataset at it. The run directory is checked first,
    and the corpus must be long enough for one batch, so a bad request writes nothing."""
    from textgen import corpus, runs, train_flags

    _, train_cfg, out = train_flags.train_configs(args)  # names the corpus: --dataset, else after the first file
    name = args.dataset
    runs.check_run_out(out, [args.data_dir, args.manual_dir, *args.text_file], args.overwrite)
    need = corpus.min_characters(train_cfg.seq_len, train_cfg.batch_size, corpus.DEFAULT_SPLIT)
    info = corpus.prepare_text_corpus(name, args.text_file, encoding=args.encoding, data_dir=args.data_dir,
                                      min_characters=need)
    state = "already prepared" if info["status"] == "unchanged" else "prepared"
    print(f"text corpus {name} {state}: {info['characters']:,} characters from {info['files']} file(s) "
          f"in {info['path']}", file=sys.stderr)


def _run_train(args) -> int:
    from textgen import train, train_flags

    if getattr(args, "text_file", None):
        _prepare_text_file(args)
    model_cfg, train_cfg, out = train_flags.train_configs(args)
    train.train(args.task, args.dataset, out, model_cfg, train_cfg, data_dir=args.data_dir,
                manual_dir=args.manual_dir, overwrite=args.overwrite, verbose=_train_verbosity(args.quiet))
    return 0


def add_evaluate_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="held-out metrics (and baselines) of a model directory")
    p.add_argument("model_dir", help="a model directory written by `textgen train`")
    p.add_argument("--dataset", default=None, help="corpus to evaluate on (default: the one the model was trained on)")
    p.add_argument("--split", default="test", help="split name: train | validation | test (default: test)")
    p.add_argument("--text-file", default=None, help="character models: evaluate on this UTF-8 file instead (default: none)")
    p.add_argument("--limit", type=int, default=0,
                   help="evaluate only the first N examples (sentiment) or characters (charlm); 0 = all (default: 0)")
    p.add_argument("--baselines", action="store_true",
                   help="sentiment: add majority class, VADER and TF-IDF+logistic regression on the same examples")
    p.add_argument("--baseline-train-limit", type=int, default=0,
                   help="fit the TF-IDF baseline on the first N training examples; 0 = all (default: 0)")
    p.add_argument("--baseline-train-dataset", default=None, metavar="DATASET",
                   help="fit the TF-IDF and majority baselines on this dataset's train split, e.g. the one the model "
                        "trained on when --dataset is a domain it never saw (default: --dataset)")
    p.add_argument("--streams", type=int, default=64,
                   help="character models: parallel contiguous streams the text is cut into (default: 64)")
    p.add_argument("--data-dir", default=None, help="TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    p.add_argument("--manual-dir", default=None, help="folder with manually downloaded source files (offline preparation)")
    p.add_argument("--json", action="store_true", help="print one JSON object (default: readable lines)")
    p.set_defaults(func=_run_evaluate)


def _run_evaluate(args) -> int:
    from textgen import evaluate

    if args.limit < 0 or args.streams < 1 or args.baseline_train_limit < 0:
        raise UserError("--limit and --baseline-train-limit must be >= 0 and --streams >= 1")
    result = evaluate.evaluate_model_dir(
        args.model_dir, dataset=args.dataset, split=args.split, text_file=args.text_file, limit=args.limit,
        baselines=args.baselines, baseline_train_limit=args.baseline_train_limit,
        baseline_train_dataset=args.baseline_train_dataset, streams=args.streams,
        data_dir=args.data_dir, manual_dir=args.manual_dir)
    if args.json:
        print_json(result)
    else:
        for key, value in result.items():
            print(f"{key}: {json.dumps(value, default=str) if isinstance(value, (dict, list)) else value}")
    return 0


def add_average_commands(sub: argparse._SubParsersAction) -> None:
    from textgen import average

    p = sub.add_parser(average.COMMAND, help="one sentiment model whose P(positive) is the mean of several trained ones'")
    average.add_flags(p)
    p.set_defaults(func=_run_average)


def _run_average(args) -> int:
    from textgen import average

    out = average.average_model_dirs(args.members, args.out, embedding_dtype=args.embedding_dtype,
                                     overwrite=args.overwrite, data_dir=args.data_dir, manual_dir=args.manual_dir,
                                     print_fn=lambda line: print(line, file=sys.stderr))
    print_json({"out": str(out)})
    return 0
