"""`textgen data prepare | describe`: prepare the corpora (TFDS) and count what they hold."""

from __future__ import annotations

import argparse

from textgen.commands import UserError, print_json


def add_data_commands(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="prepare and describe the corpora (TFDS)")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="{prepare,describe}")
    names = ("tiny_shakespeare | imdb_reviews | aclimdb | vader_sentiment/{movies,tweets,amazon,nyt,all,all_but_<domain>} | "
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
        print_json(summary)
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
