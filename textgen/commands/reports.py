"""`textgen card | compare | match-units`: write or check a model card, compare cell kinds, match their sizes."""

from __future__ import annotations

import argparse
import os

from textgen.commands import UserError, print_json


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
    p.add_argument("--held-out", action="append", default=[], metavar="FILE",
                   help="a `textgen evaluate --json` output on data the evaluated model never trained on (this model, or "
                        "this recipe trained without that domain) to record and show; repeatable (default: none)")
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
    evaluations, held_out = [], []
    for flag, names, into in (("--evaluation", args.evaluation, evaluations), ("--held-out", args.held_out, held_out)):
        for name in names:
            if not os.path.isfile(name):
                raise UserError(f"{flag} {name} is not a file")
            into.append(read_json(name))
    notes = None
    if args.notes is not None:
        if not os.path.isfile(args.notes):
            raise UserError(f"--notes {args.notes} is not a file")
        with open(args.notes, encoding="utf-8") as f:
            notes = f.read()
    path = card.write_card(args.model_dir, command=args.command, title=args.title, evaluations=evaluations,
                           held_out=held_out,
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
        print_json(result)
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
