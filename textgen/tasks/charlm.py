"""The character language model: windows of characters in, the next character's logits out."""

from __future__ import annotations

import argparse
import collections
import math

from textgen.cardkit import Facts, Table, evaluated, num, stack, test_result
from textgen.config import CharLMConfig, TrainConfig
from textgen.errors import TextgenError
from textgen.tasks import LanguageModelTask, TaskData, register

# Anchors: published or measured reference numbers, printed on the card beside ours.
SHAKESPEARE_TARGET_NATS = 1.47
SHAKESPEARE_ANCHORS = (  # (reference, loss in nats/char)
    ("nanoGPT, 10.7 M-parameter transformer on an A100 (validation)", 1.47),
    ("nanoGPT, its CPU configuration (validation)", 1.88),
    ("1-layer LSTM-512 trained 20 minutes here (other held-out plays)", 1.54),
    ("unigram baseline", 3.31),
)
EXAMPLE_PROMPT = "ROMEO:"  # the card's examples


class CharLMTask(LanguageModelTask):
    name = "charlm"
    config_class = CharLMConfig
    help = "character language model"
    default_dataset = "tiny_shakespeare"
    datasets_help = "tiny_shakespeare"
    token = "character"
    models = "character models"
    generates = True

    def add_flags(self, p: argparse.ArgumentParser) -> None:
        t = TrainConfig()
        p.add_argument("--seq-len", type=int, default=t.seq_len, help=f"characters per training window (default: {t.seq_len})")
        p.add_argument("--text-file", nargs="+", default=None, metavar="PATH",
                       help="train on your own text: files, or folders read recursively for *.txt; prepared first as "
                            "the TFDS corpus named by --dataset, or after the first file (default: none, use --dataset)")
        p.add_argument("--encoding", default="utf-8",
                       help="with --text-file: the files' encoding, a Python codec name such as latin-1 or gb18030 "
                            "(default: utf-8)")
        p.add_argument("--max-vocab", type=int, default=t.max_vocab,
                       help="keep the N most frequent characters of the training split; the rest read as [UNK]; "
                            f"0 = all (default: {t.max_vocab})")
        p.add_argument("--sample-chars", type=int, default=t.sample_chars,
                       help="characters to sample from the weights after each epoch into DIR/progress.jsonl "
                            f"(what the app's Train page shows); 0 = none (default: {t.sample_chars})")
        p.add_argument("--min-count", type=int, default=t.min_count,
                       help=f"keep characters seen at least this often in the training split (default: {t.min_count})")

    def flag_values(self, args: argparse.Namespace) -> tuple[dict, dict]:
        return {}, {"seq_len": args.seq_len, "max_vocab": args.max_vocab, "min_count": args.min_count,
                    "sample_chars": args.sample_chars}

    def data(self, dataset: str, model_cfg, cfg, data_dir, manual_dir, seed: int) -> TaskData:
        """Character windows streamed from the TFDS split's pieces (a 200 MB corpus is never one string).

        One pass over the training pieces counts characters (vocabulary, unigram baseline, windows) and
        one over the validation pieces counts its windows; training then streams the pieces again.
        """
        import tensorflow as tf

        from textgen import data
        from textgen.vocab import select_vocabulary

        span = cfg.seq_len + 1

        def pieces(split: str) -> tf.data.Dataset:
            return data.load_text_corpus(dataset, split, data_dir=data_dir, manual_dir=manual_dir)

        counts: collections.Counter = collections.Counter()
        train_chars = windows = 0
        kept: list[str] = []  # the pieces themselves, only under --set train_limit (a small prefix)
        for raw in pieces("train").as_numpy_iterator():
            piece = raw.decode("utf-8")
            if cfg.train_limit:
                piece = piece[: cfg.train_limit - train_chars]
                kept.append(piece)
            counts.update(piece)
            train_chars += len(piece)
            windows += len(piece) // span  # piece_windows drops each piece's last partial window
            if cfg.train_limit and train_chars >= cfg.train_limit:
                break
        val_chars = val_windows = 0
        for raw in pieces("validation").as_numpy_iterator():
            n = len(raw.decode("utf-8"))
            val_chars += n
            val_windows += n // span
        if windows < cfg.batch_size or val_windows < 1:
            raise TextgenError(
                f"the training split has {train_chars:,} characters and the validation split {val_chars:,}: one batch "
                f"needs {cfg.batch_size * span:,} training characters ({cfg.batch_size} windows of --seq-len "
                f"{cfg.seq_len} + 1) and validation at least {span}; lower --batch-size or --seq-len or give more text")
        vocabulary = select_vocabulary(counts, cfg.max_vocab, cfg.min_count)
        if not vocabulary:
            raise TextgenError(f"no character of the training split is seen --min-count {cfg.min_count} times")
        train_pieces = (lambda: tf.data.Dataset.from_tensor_slices(tf.constant(kept, tf.string))) if cfg.train_limit \
            else (lambda: pieces("train"))

        def train_fn(batch_size: int, repeat: bool) -> tf.data.Dataset:
            ds = data.piece_windows(train_pieces(), vocabulary, cfg.seq_len, batch_size, shuffle=True, seed=seed,
                                    drop_remainder=True, repeat=repeat)
            # flat_map hides the length; Keras needs it to end an epoch without a warning
            return ds if repeat else ds.apply(tf.data.experimental.assert_cardinality(windows // batch_size))

        def val_fn(batch_size: int) -> tf.data.Dataset:
            # A small validation split (a user's short text) keeps its last partial batch.
            full = val_windows >= batch_size
            ds = data.piece_windows(pieces("validation"), vocabulary, cfg.seq_len, batch_size, shuffle=False,
                                    drop_remainder=full, repeat=False)
            return ds.apply(tf.data.experimental.assert_cardinality(
                val_windows // batch_size if full else -(-val_windows // batch_size)))

        return TaskData(
            vocabulary=vocabulary, train_fn=train_fn, val_fn=val_fn, steps_per_epoch=windows // cfg.batch_size,
            splits={"train": f"train ({train_chars} characters)", "validation": f"validation ({val_chars} characters)",
                    "test": "test"},
            extra_metadata={"unigram_counts": dict(counts)},  # the unigram baseline's character frequencies
        )

    def build(self, model_cfg, vocabulary):
        from textgen.models import build_char_lm

        return build_char_lm(model_cfg, vocabulary)

    def epoch_sampler(self, model_cfg, vocabulary, length: int, export):
        """`length` characters sampled (temperature 0.8, seed = epoch) from a float32 copy of the weights."""

        built = []  # one Sampler for the run: later epochs load their weights into its traced loops

        def sample(trained, epoch: int) -> str:
            from textgen.sampling import Sampler, SamplingParams

            if built:
                built[0].load_weights(export(trained))
            else:
                built.append(Sampler(export(trained), jit_compile=False))
            return built[0].generate("", SamplingParams(length=length, temperature=0.8, seed=epoch))[0]

        return sample

    def evaluate(self, model, dataset, split, *, metadata, data_dir=None, manual_dir=None, limit=0, text_file=None,
                 baselines=False, baseline_train_limit=0, baseline_train_dataset=None, streams=64,
                 train_config=None) -> dict:
        """Loss in nats and bits per character on a split (or a UTF-8 text file), next to the unigram
        baseline of the training characters; every character scored with state carried over."""
        from pathlib import Path

        from textgen import data, evaluate

        counts = metadata.get("unigram_counts")
        if text_file:
            try:
                text = Path(text_file).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as err:
                raise evaluate.EvaluationError(f"cannot read --text-file {text_file}: {err}") from err
            where = {"text_file": str(text_file)}
        else:
            if not dataset:
                raise evaluate.EvaluationError("give --dataset or --text-file (the model's metadata names no dataset)")
            text = data.read_text(dataset, split, data_dir=data_dir, manual_dir=manual_dir)
            where = {"dataset": dataset, "split": split}
        return {**where, **evaluate.evaluate_charlm_text(model, text[:limit] if limit else text, counts, streams)}

    export_formats = ("savedmodel", "tflite")

    def export(self, model, out, fmt: str, batch_size: int) -> None:
        """SavedModel: signatures generate / step / zero_states / vocabulary; TFLite: the one-character
        step at a fixed batch (textgen.export)."""
        from textgen import export

        if fmt == "savedmodel":
            export.export_char_savedmodel(model, out)
        else:
            export.export_char_tflite(model, out, batch_size=batch_size)

    def saved_metadata(self, model) -> dict:
        from textgen.vocab import vocabulary_of

        return {"vocabulary": vocabulary_of(model)}

    def check_loaded(self, model, metadata: dict) -> str | None:
        if "vocabulary" not in metadata:
            return None
        from textgen.vocab import vocabulary_of

        if vocabulary_of(model) != metadata["vocabulary"]:
            return "the vocabulary in metadata.json differs from the one inside model.keras"
        return None

    # ---- the model card

    card_limitations = {
        "shakespeare": (
            "Trained on about one megabyte of Early Modern English plays, character by character: it "
            "imitates spelling, verse layout and speaker headings, not meaning, and its text drifts after a "
            "few lines. The test split is the end of The Tempest, a play it never saw. Characters outside its "
            "vocabulary read as [UNK]. It has no knowledge of facts and must not be used as a source of any."),
        "zoo": (
            "One of five models trained with the same small budget and nearly the same parameter count to "
            "compare cell kinds (docs/cell_comparison.md); none is tuned, and one run per kind cannot separate "
            "small differences from run-to-run noise. For generation use shakespeare_char."),
    }

    def card_anchor_set(self, dataset: str, name: str) -> str | None:
        if dataset == "tiny_shakespeare":
            return "zoo" if name.startswith("zoo_") else "shakespeare"
        return None

    def card_describe(self, f: Facts) -> str:
        vocab = len(f.metadata.get("vocabulary") or [])
        return (f"A character-level language model: {vocab} characters (+ [UNK]) -> {f.config.embedding_dim}-dimensional "
                f"embedding -> {stack(f.config.rnn)} -> next-character logits. It reads and writes text one character at a time.")

    def card_tables(self, f: Facts) -> list[tuple[str, Table]]:
        return charlm_tables(f)

    def card_verdicts(self, f: Facts) -> list[str]:
        metrics = test_result(f)
        if self.card_anchor_set(f.dataset, f.name) == "shakespeare" and metrics.get("loss_nats") is not None:
            gap = metrics["loss_nats"] - SHAKESPEARE_TARGET_NATS
            how = "met" if gap <= 0 else f"not met, {gap:.4f} nats/char above it"
            return [f"Target (test loss <= {SHAKESPEARE_TARGET_NATS} nats/char): {how}."]
        return []

    def card_use(self, f: Facts, q) -> tuple[list[str], list[str]]:
        from textgen.vocab import CHAR_TO_ID

        prompt = example_prompt(f)
        vocab = len(f.metadata.get("vocabulary") or []) + 1  # + [UNK]
        keras_lines = [f"logits = model(tf.constant([list({q(prompt)})]))  "
                       f"# characters (batch, time) -> logits (batch, time, {vocab})",
                       f"vocabulary = model.get_layer({q(CHAR_TO_ID)}).get_vocabulary()  "
                       "# logit i is vocabulary[i]; 0 is [UNK]"]
        saved_lines = [f'out = exported.signatures["generate"](prompt=tf.constant([{q(prompt)}]), '
                       "num_chars=tf.constant(200),",
                       "                                      temperature=tf.constant([0.8]), "
                       'seed=tf.constant([1], tf.int64))  # out["text"]: (batch,)',
                       "```", "",
                       "Its signatures (`saved_model_cli show --all --dir PATH` lists them): `generate`, also "
                       "`serving_default` (prompt, num_chars, and per row temperature and seed -> text); "
                       "`generate_full` (adds per-row top_k, top_p, repetition_penalty); `step` (ids, state_0.. "
                       "-> logits, state_0..); `zero_states` (batch -> state_0..); `vocabulary` (-> vocabulary, "
                       "id 0 is [UNK]).", ""]
        return keras_lines, saved_lines


def _charlm_row(label: str, r: dict) -> tuple[str, ...]:
    base = (r.get("baseline_unigram") or {}).get("loss_nats")
    return (label, f"{r.get('characters', 0):,}", num(r.get("loss_nats")), num(r.get("bits_per_char")),
            num(r.get("perplexity"), 3), num(base))


def charlm_tables(f: Facts) -> list[tuple[str, Table]]:
    """The card's metrics table (test split and every re-evaluation, next to the unigram baseline)
    and, for tiny_shakespeare, the anchors."""
    metrics = test_result(f)
    rows = [_charlm_row(label, r) for label, r in evaluated(f)]
    tables = [("Metrics", Table(("split", "characters", "loss (nats/char)", "bits/char", "perplexity",
                                 "unigram baseline, same characters (nats/char)"), rows))]
    kind = TASK.card_anchor_set(f.dataset, f.name)
    if kind in ("shakespeare", "zoo"):
        ours = metrics.get("loss_nats")
        anchors = [("**this model** (TFDS test split)", num(ours), num(metrics.get("bits_per_char")))]
        if kind == "shakespeare":  # the zoo has a budget, not a target
            anchors.append(("target for this model (TFDS test split)", num(SHAKESPEARE_TARGET_NATS, 2),
                            num(SHAKESPEARE_TARGET_NATS / math.log(2), 2)))
        anchors += [(ref, num(nats, 2), num(nats / math.log(2), 2)) for ref, nats in SHAKESPEARE_ANCHORS]
        tables.append(("Next to the anchors", Table(("model", "loss (nats/char)", "bits/char"), anchors)))
    return tables


def example_prompt(f: Facts) -> str:
    """A prompt for the card's examples: EXAMPLE_PROMPT when the vocabulary holds all its
    characters, else the vocabulary's two most frequent letters (metadata.json's unigram counts)."""
    vocab = f.metadata.get("vocabulary") or []
    if set(EXAMPLE_PROMPT) <= set(vocab):
        return EXAMPLE_PROMPT
    counts = f.metadata.get("unigram_counts") or {}
    letters = sorted((c for c in vocab if c.isalpha()), key=lambda c: -counts.get(c, 0))  # stable: ties keep order
    return "".join(letters[:2]) or "".join(c for c in vocab if not c.isspace())[:1]


TASK = register(CharLMTask())
