"""The `textgen` command: argparse subcommands that parse, build a config and call one function.

No ML logic lives here. User errors (bad flags, bad config, missing data) print one clear line
to stderr and exit with code 2; they never show a stack trace.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Callable, Sequence

# Quiet TensorFlow's C++ start-up logging before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

EXIT_USAGE = 2


from textgen.errors import TextgenError


class UserError(TextgenError):
    """A bad combination of flags found by the CLI itself."""


def _print_json(obj) -> None:
    print(json.dumps(obj, indent=None, sort_keys=False, default=str))


# --------------------------------------------------------------------------------------------
# textgen data prepare | describe


def add_data_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="prepare and describe the corpora (TFDS)")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="{prepare,describe}")
    names = ("tiny_shakespeare | imdb_reviews | aclimdb | vader_sentiment/{movies,tweets,amazon,nyt,all} | "
             "text (your own files: --name NAME PATH...) | the NAME of a corpus of yours")
    for name, help_text in (("prepare", "download or read the source files and build the TFDS dataset"),
                            ("describe", "count examples, characters and labels per split")):
        p = data_sub.add_parser(name, help=help_text)
        if name == "describe":
            p.add_argument("name", help=f"dataset name: {names}")
        else:  # one positional list, so that PATHs may follow options: `prepare text --name X a.txt b/`
            p.add_argument("items", nargs="+", metavar="NAME [PATH ...]",
                           help=f"dataset name: {names}; with `text`, then text files or folders read recursively "
                                "for *.txt")
        p.add_argument("--data-dir", default=None,
                       help="TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
        p.add_argument("--manual-dir", default=None,
                       help="folder holding manually downloaded source files for offline preparation: input.txt "
                            "(tiny_shakespeare; default: the copy inside textgen), aclImdb_v1.tar.gz (imdb_reviews, "
                            "aclimdb), vaderSentiment-3.3.2.tar.gz (vader_sentiment); see docs/datasets.md "
                            "(default: none)")
        if name == "describe":
            p.add_argument("--json", action="store_true",
                           help="print one JSON object instead of one line per split (default: off)")
        else:
            p.add_argument("--name", dest="corpus_name", default=None,
                           help="with `text`: the corpus name, lower-case letters, digits, _ - . "
                                "(default: from the first file's name)")
            p.add_argument("--split", default="90,5,5",
                           help="with `text`: train,validation,test percentages of the text, cut in order "
                                "(default: 90,5,5, like tiny_shakespeare)")
            p.add_argument("--encoding", default="utf-8",
                           help="with `text`: the files' encoding, a Python codec name such as latin-1, cp1252 or "
                                "gb18030 (default: utf-8; a UTF-8 byte-order mark is dropped)")
            p.add_argument("--overwrite", action="store_true",
                           help="with `text`: replace a corpus of the same name prepared from other files "
                                "(default: refuse)")
        p.set_defaults(func=_run_data_prepare if name == "prepare" else _run_data_describe)


def _run_data_prepare(args) -> int:
    from textgen import data

    args.name, args.paths = args.items[0], args.items[1:]
    if args.name == "text":
        from textgen import corpus

        if not args.paths:
            raise UserError("`textgen data prepare text` needs the text: give one or more files or folders")
        name = args.corpus_name or corpus.name_from_file(args.paths[0])
        info = corpus.prepare_text_corpus(name, args.paths, split=args.split, encoding=args.encoding,
                                          data_dir=args.data_dir, overwrite=args.overwrite)
        verb = "already prepared (same files)" if info["status"] == "unchanged" else "prepared"
        print(f"{verb} text corpus {info['name']}: {info['files']} file(s), {info['characters']:,} characters "
              f"(train {info['splits']['train']:,} / validation {info['splits']['validation']:,} / "
              f"test {info['splits']['test']:,}) in {info['path']}")
        return 0
    if args.paths or args.corpus_name:
        raise UserError(f"PATH and --name are for `textgen data prepare text`; {args.name} reads its own source files")
    info = data.prepare(args.name, data_dir=args.data_dir, manual_dir=args.manual_dir)
    print(f"prepared {info['name']} in {info['data_dir']}")
    return 0


def _run_data_describe(args) -> int:
    from textgen import data

    summary = data.describe(args.name, data_dir=args.data_dir, manual_dir=args.manual_dir)
    if args.json:
        _print_json(summary)
    else:
        def flat(stats: dict) -> str:  # {"examples": 4, "labels": {"neg": 2}} -> "examples 4, neg 2"
            return ", ".join(flat(v) if isinstance(v, dict) else f"{k} {v}" for k, v in stats.items())

        print(summary["name"])
        for split, stats in summary["splits"].items():
            print(f"  {split}: {flat(stats)}")
        if "dropped_neutral" in summary:
            print(f"  dropped (valence exactly 0): {flat(summary['dropped_neutral'])}")
        for source in summary.get("sources", []):
            print(f"  source: {source['path']} ({source['bytes']:,} bytes, sha256 {source['sha256']})")
    return 0


# --------------------------------------------------------------------------------------------
# textgen bench NAME [args...]: runs bench/NAME.py (each prints one JSON line)

BENCHMARKS = {
    "generation": "tutorial loop vs compiled sampler, chars/s at batch 1 and 64",
    "sentiment": "predict latency p50 at batch 1 and texts/s at batch 256",
    "training": "tutorial model.fit vs our training path, chars/s",
    "presets": "the Train page's tiny and small presets: seconds to the first epoch sample and to the model",
    "prepare": "own-text corpus preparation MB/s and peak RSS (200 MB generated), training peak RSS",
    "serving": "N concurrent clients: batched sampler vs one request at a time, p50/p95 latency and chars/s",
}


def add_bench_commands(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="run a benchmark from bench/ (prints one JSON line)")
    bench.add_argument("name", choices=sorted(BENCHMARKS), help="; ".join(f"{k}: {v}" for k, v in BENCHMARKS.items()))
    bench.add_argument("bench_args", nargs=argparse.REMAINDER, help="passed to the benchmark (e.g. --json)")
    bench.set_defaults(func=_run_bench)


def _run_bench(args) -> int:
    import importlib
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    if not (repo / "bench" / f"{args.name}.py").is_file():
        raise UserError(f"bench/{args.name}.py not found: benchmarks run from a source checkout")
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    module = importlib.import_module(f"bench.{args.name}")
    return int(module.main(args.bench_args) or 0)


# --------------------------------------------------------------------------------------------
# textgen train charlm | sentiment ; textgen evaluate MODEL_DIR


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
    from textgen import corpus, runs

    _, train_cfg, out = train_configs(args)  # names the corpus: --dataset, else after the first file
    name = args.dataset
    runs.check_run_out(out, [args.data_dir, args.manual_dir, *args.text_file], args.overwrite)
    need = corpus.min_characters(train_cfg.seq_len, train_cfg.batch_size, corpus.DEFAULT_SPLIT)
    info = corpus.prepare_text_corpus(name, args.text_file, encoding=args.encoding, data_dir=args.data_dir,
                                      min_characters=need)
    state = "already prepared" if info["status"] == "unchanged" else "prepared"
    print(f"text corpus {name} {state}: {info['characters']:,} characters from {info['files']} file(s) "
          f"in {info['path']}", file=sys.stderr)


def train_configs(args) -> tuple:
    """(model config, TrainConfig, out dir) that `textgen train` builds from parsed flags."""
    from textgen import train_flags

    return train_flags.train_configs(args)


def _run_train(args) -> int:
    from textgen import train

    if getattr(args, "text_file", None):
        _prepare_text_file(args)
    model_cfg, train_cfg, out = train_configs(args)
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
        baselines=args.baselines, baseline_train_limit=args.baseline_train_limit, streams=args.streams,
        data_dir=args.data_dir, manual_dir=args.manual_dir)
    if args.json:
        _print_json(result)
    else:
        for key, value in result.items():
            print(f"{key}: {json.dumps(value, default=str) if isinstance(value, (dict, list)) else value}")
    return 0


# --------------------------------------------------------------------------------------------
# textgen generate | predict | export | import


def add_generate_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("generate", help="generate text with a character model (compiled sampling loop)")
    p.add_argument("model_dir", help="character model directory (model.keras + config.json + metadata.json)")
    p.add_argument("--prompt", default="", help="text to start from, any Unicode; unknown characters read as "
                   "[UNK] (default: empty = start from a newline, or zero states if the model has none)")
    p.add_argument("--length", type=int, default=200, help="characters to generate per sample, 0..100000 (default 200)")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling temperature >= 0; 0 = greedy (default 1.0)")
    p.add_argument("--top-k", type=int, default=0, help="keep the k most likely characters; 0 = off (default 0)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass in (0, 1]; 1 = off (default 1.0)")
    p.add_argument("--repetition-penalty", type=float, default=1.0,
                   help="> 0; divides logits of characters already seen; 1 = off (default 1.0)")
    p.add_argument("--num-samples", type=int, default=1, help="samples generated side by side, 1..1024 (default 1)")
    p.add_argument("--seed", type=int, default=None,
                   help="integer 0..2**63-1; the same seed gives the same text (default: random, shown with --json)")
    p.add_argument("--precision", choices=("float32", "bfloat16", "int8"), default="float32",
                   help="weights of the compiled loop: float32 | bfloat16 | int8 (the loop converted to TFLite, "
                        "about 3x faster at batch 1 on CPU, text of int8 weights) (default float32)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of streaming the text")
    p.set_defaults(func=_run_generate)


def _run_generate(args) -> int:
    from textgen.sampling import SamplingParams, load_sampler

    params = SamplingParams(
        length=args.length, temperature=args.temperature, top_k=args.top_k, top_p=args.top_p,
        repetition_penalty=args.repetition_penalty, num_samples=args.num_samples, seed=args.seed,
    ).with_seed()
    sampler = load_sampler(args.model_dir, precision=args.precision)
    if args.json:
        samples = sampler.generate(args.prompt, params)
        _print_json({"prompt": args.prompt, "samples": samples, "seed": params.seed, "length": params.length,
                     "temperature": params.temperature, "top_k": params.top_k, "top_p": params.top_p,
                     "repetition_penalty": params.repetition_penalty})
        return 0
    if params.num_samples == 1:  # stream the text as the compiled loop produces it
        sys.stdout.write(args.prompt)
        for pieces in sampler.stream(args.prompt, params, chunk_size=64):
            sys.stdout.write(pieces[0])
            sys.stdout.flush()
        sys.stdout.write("\n")
        return 0
    for i, sample in enumerate(sampler.generate(args.prompt, params)):
        print(f"--- sample {i + 1} (seed {params.seed}) ---")
        print(args.prompt + sample)
    return 0


def add_predict_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="sentiment of texts with a sentiment model (compiled call)")
    p.add_argument("model_dir", help="sentiment model directory (model.keras + config.json + metadata.json)")
    p.add_argument("texts", nargs="*", default=[], help="texts to score (default: none; use --file)")
    p.add_argument("--file", default=None, help="text file with one text per line, '-' = stdin (default: none)")
    p.add_argument("--encoding", default="utf-8",
                   help="encoding of --file, a Python codec name such as latin-1 or cp1252; a file that does not "
                        "decode is refused with the byte offset (default: utf-8)")
    p.add_argument("--json", action="store_true",
                   help='print a JSON list of {"text", "p_positive", "label", "valence"?} (default: a table)')
    p.set_defaults(func=_run_predict)


def _run_predict(args) -> int:
    from textgen.inference import load_predictor, read_texts

    texts = list(args.texts) + (read_texts(args.file, args.encoding) if args.file else [])
    if not texts:
        raise UserError("no texts to score: give TEXT arguments or --file F")
    rows = load_predictor(args.model_dir).predict(texts)
    if args.json:
        _print_json(rows)
        return 0
    for row in rows:
        valence = f"  valence {row['valence']:+.2f}" if "valence" in row else ""
        text = row["text"].replace("\n", " ")
        print(f"{row['label']:<8} p_positive {row['p_positive']:.3f}{valence}  {text[:70]}")
    return 0


def add_export_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a model directory as a TensorFlow SavedModel or TFLite model")
    p.add_argument("model_dir", help="character or sentiment model directory")
    p.add_argument("--format", choices=("savedmodel", "tflite"), default="savedmodel",
                   help="savedmodel (needs no textgen to load) | tflite (character step, builtins only); "
                        "default savedmodel")
    p.add_argument("--out", default=None, help="output folder; must not exist or be empty unless --overwrite "
                   "(default: MODEL_DIR-savedmodel or MODEL_DIR-tflite beside the model directory)")
    p.add_argument("--batch-size", type=int, default=1, help="fixed batch of the TFLite step, 1..65536 (default 1)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a non-empty --out folder that textgen wrote (never another folder) (default: refuse)")
    p.set_defaults(func=_run_export)


def _run_export(args) -> int:
    from textgen.export import export_model_dir

    out_dir = args.out or f"{os.path.normpath(args.model_dir)}-{args.format}"
    out = export_model_dir(args.model_dir, out_dir, fmt=args.format, batch_size=args.batch_size,
                           overwrite=args.overwrite)
    print(f"exported {args.model_dir} as {args.format} to {out}")
    return 0


def add_import_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import", help="turn your own Keras character model, or its saved weights, into a textgen "
                       "model directory")
    p.add_argument("path", help="a .keras file (ids -> Embedding -> SimpleRNN/GRU/LSTM ... -> Dense); or the weights "
                   "of such a model, e.g. the TF tutorial's subclassed MyModel: a .weights.h5 (model.save_weights "
                   "or ModelCheckpoint), a Keras 2 .h5, a TF checkpoint (its prefix, PREFIX.index, or its "
                   "folder), or a SavedModel folder such as the tutorial's one_step; weights need --cell, --units "
                   "and --embedding-dim")
    p.add_argument("--task", choices=("charlm",), default="charlm", help="kind of model: charlm (default charlm)")
    p.add_argument("--vocab", default=None, help="vocabulary file: a JSON list of characters, or one character "
                   "per line with JSON escapes (\\n, \\t); a leading [UNK] is dropped; id i+1 = entry i "
                   "(default: vocab.json beside PATH)")
    p.add_argument("--out", default=None, help="model directory to write; must not exist or be empty unless "
                   "--overwrite (default: beside PATH, PATH without .keras, .weights.h5 or .h5; a checkpoint's "
                   "prefix as a folder name; for a folder PATH, PATH-textgen)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a non-empty --out folder that textgen wrote (never another folder) (default: refuse)")
    arch = p.add_argument_group("architecture of a weights file (a .keras file records its own)")
    # The three built-in kinds a tutorial model is made of (textgen.importer.WEIGHT_CELLS; not
    # imported here, which would load Keras for every command).
    arch.add_argument("--cell", choices=("simple_rnn", "gru", "lstm"), default=None,
                      help="recurrent layer kind: simple_rnn | gru | lstm (default: none; required for weights)")
    arch.add_argument("--units", type=int, default=None,
                      help="units of each recurrent layer, the tutorial's rnn_units (default: none; required for "
                           "weights)")
    arch.add_argument("--embedding-dim", type=int, default=None,
                      help="size of each character embedding, the tutorial's embedding_dim (default: none; "
                           "required for weights)")
    arch.add_argument("--layers", type=int, default=None,
                      help="number of stacked recurrent layers, 1..16 (default: 1 for weights)")
    p.set_defaults(func=_run_import)


def _run_import(args) -> int:
    from textgen.importer import import_char_model

    out = import_char_model(args.path, args.vocab, args.out, overwrite=args.overwrite, cell=args.cell,
                            units=args.units, embedding_dim=args.embedding_dim, layers=args.layers)
    print(f"imported {args.path} into {out}")
    return 0


# --------------------------------------------------------------------------------------------
# textgen card MODEL_DIR ; textgen compare ZOO_DIR... ; textgen match-units


def add_card_commands(sub: argparse._SubParsersAction) -> None:
    from textgen.card import SAMPLE_LENGTH, SAMPLE_SEED

    p = sub.add_parser("card", help="write MODEL_DIR/README.md, the model card, from metadata.json")
    p.add_argument("model_dir", help="a model directory written by `textgen train`")
    p.add_argument("--command", default=None,
                   help="the exact `textgen train ...` command that made the model (quoted); checked against "
                        "config.json/train_config.json (default: the command in metadata.json; refused if none)")
    p.add_argument("--title", default=None, help="heading of the card (default: the directory name)")
    p.add_argument("--evaluation", action="append", default=[], metavar="FILE",
                   help="a `textgen evaluate --json` output of this model to record in metadata.json and show; "
                        "repeatable (default: none)")
    p.add_argument("--sample-seed", type=int, default=SAMPLE_SEED,
                   help=f"seed of the character models' samples, >= 0 (default {SAMPLE_SEED})")
    p.add_argument("--sample-length", type=int, default=SAMPLE_LENGTH,
                   help=f"characters per sample, >= 1 (default {SAMPLE_LENGTH})")
    p.add_argument("--prompt", default="", help="prompt of the samples (default: empty = start after a newline)")
    p.add_argument("--notes", default=None, metavar="FILE",
                   help="Markdown file shown under '## Notes' (what was tried, how far from a target), recorded in "
                        "metadata.json (default: keep the recorded notes)")
    p.add_argument("--check", action="store_true",
                   help="write nothing: compare the existing card with metadata.json, print each difference, "
                        "exit 1 if any (default: off)")
    p.set_defaults(func=_run_card)


def _run_card(args) -> int:
    from textgen import card
    from textgen.artifacts import read_json

    if args.check:
        problems = card.verify_card(args.model_dir, prompt=args.prompt)
        for problem in problems:
            print(problem)
        print(f"{args.model_dir}: card {'differs from' if problems else 'agrees with'} metadata.json")
        return 1 if problems else 0
    evaluations = []
    for name in args.evaluation:
        if not os.path.isfile(name):
            raise UserError(f"--evaluation {name} is not a file")
        evaluations.append(read_json(name))
    notes = None
    if args.notes is not None:
        if not os.path.isfile(args.notes):
            raise UserError(f"--notes {args.notes} is not a file")
        with open(args.notes, encoding="utf-8") as f:
            notes = f.read()
    path = card.write_card(args.model_dir, command=args.command, title=args.title, evaluations=evaluations,
                           sample_seed=args.sample_seed, sample_length=args.sample_length, prompt=args.prompt,
                           notes=notes)
    print(f"wrote {path}")
    return 0


def add_compare_commands(sub: argparse._SubParsersAction) -> None:
    from textgen.compare import RESETS

    p = sub.add_parser("compare", help="compare character models of different cell kinds (bits/char, context probe)")
    p.add_argument("model_dirs", nargs="+", help="character model directories, e.g. saved_models/zoo_*")
    p.add_argument("--out", default="docs", help="folder for cell_comparison.md and cell_comparison.png (default: docs)")
    p.add_argument("--dataset", default=None, help="corpus of the probe text (default: the first model's dataset)")
    p.add_argument("--split", default="test", help="split of the probe text: train | validation | test (default: test)")
    p.add_argument("--text-file", default=None, help="probe on this UTF-8 file instead of a dataset split (default: none)")
    p.add_argument("--limit-chars", type=int, default=20000,
                   help="probe only the first N characters; 0 = the whole text (default: 20000)")
    p.add_argument("--resets", default=",".join(map(str, RESETS)),
                   help=f"comma-separated reset intervals k in characters, each >= 1 (default: {','.join(map(str, RESETS))})")
    p.add_argument("--streams", type=int, default=64, help="parallel streams of the carried-state run, >= 1 (default: 64)")
    p.add_argument("--data-dir", default=None, help="TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)")
    p.add_argument("--manual-dir", default=None,
                   help="folder with manually downloaded source files for offline preparation (default: none)")
    p.add_argument("--json", action="store_true", help="also print the numbers as one JSON object (default: off)")
    p.set_defaults(func=_run_compare)

    p = sub.add_parser("match-units", help="units per cell kind so that character models have the same parameter count")
    p.add_argument("--target-params", type=int, default=400_000,
                   help="parameter count to match, >= 1 (default: 400000, the zoo's target)")
    p.add_argument("--vocab-size", type=int, default=66,
                   help="output classes incl. [UNK] (default: 66, tiny_shakespeare's 65 characters + 1)")
    p.add_argument("--embedding-dim", type=int, default=64, help="embedding size per character (default: 64)")
    p.add_argument("--layers", type=int, default=1, help="stacked recurrent layers (default: 1)")
    p.set_defaults(func=_run_match_units)


def _run_compare(args) -> int:
    from textgen import compare

    try:
        resets = [int(k) for k in args.resets.split(",") if k.strip()]
    except ValueError as err:
        raise UserError(f"--resets must be comma-separated integers; got {args.resets!r}") from err
    compare.check_comparison_out(args.out, args.model_dirs)  # before the probe, which takes minutes
    text = None
    if args.text_file:
        try:
            with open(args.text_file, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as err:
            raise UserError(f"cannot read --text-file {args.text_file}: {err}") from err
    result = compare.compare_dirs(args.model_dirs, text=text, dataset=args.dataset, split=args.split,
                                  limit_chars=args.limit_chars, resets=resets, streams=args.streams,
                                  data_dir=args.data_dir, manual_dir=args.manual_dir)
    md, png = compare.write_comparison(result, args.out, inputs=args.model_dirs)
    if args.json:
        _print_json(result)
    print(f"wrote {md} and {png}")
    return 0


def _run_match_units(args) -> int:
    from textgen.compare import char_lm_params, matched_units
    from textgen.config import CELL_KINDS

    for kind in CELL_KINDS:
        units = matched_units(kind, args.target_params, args.vocab_size, args.embedding_dim, args.layers)
        params = char_lm_params(kind, units, args.vocab_size, args.embedding_dim, args.layers)
        print(f"{kind:<14} units {units:>5}  params {params:>10,}  ({params / args.target_params - 1:+.2%})")
    return 0


# --------------------------------------------------------------------------------------------
# Router

# One entry per section above; a new concern adds its section and its entry here.
COMMAND_GROUPS: list[Callable[[argparse._SubParsersAction], None]] = [
    add_data_commands,
    add_train_commands,
    add_evaluate_commands,
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
