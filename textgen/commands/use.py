"""`textgen generate | predict | export | import`: use a model directory, export it, or make one from a Keras model."""

from __future__ import annotations

import argparse
import os
import sys

from textgen.commands import UserError, print_json


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
        print_json({"prompt": args.prompt, "samples": samples, "seed": params.seed, "length": params.length,
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
        print_json(rows)
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
