"""The word-level language model: pretraining on unlabelled text for the sentiment task.

Trains on every split of the corpus except `test` (for IMDB: the 25,000 train and the 50,000
unsupervised reviews, never the test reviews), read as one stream of words cut into windows of
`seq_len + 1` words: the model reads words 1..n of a window and predicts words 2..n+1. The texts are
shuffled (seeded) before each pass, so windows mix reviews. Validation is the corpus's
`validation` split when it has one, else the last `validation_fraction` of the texts of its last
split (IMDB: the last 5,000 unsupervised reviews), held out before the vocabulary is counted.
"""

from __future__ import annotations

import argparse

from textgen.cardkit import Facts, Table, evaluated, num, stack
from textgen.config import STANDARDIZE_CHOICES, TrainConfig, WordLMConfig
from textgen.errors import TextgenError
from textgen.tasks import LanguageModelTask, TaskData, register

EVAL_WINDOW = 100  # words per evaluated window (state reset per window, as in training)


class WordLMTask(LanguageModelTask):
    name = "wordlm"
    config_class = WordLMConfig
    help = "word-level language model (pretraining for sentiment)"
    default_dataset = "aclimdb"
    datasets_help = "aclimdb | imdb_reviews (every split but test) or a text corpus"
    token = "word"
    models = "word language models"

    def add_flags(self, p: argparse.ArgumentParser) -> None:
        t, m = TrainConfig(), WordLMConfig()
        p.add_argument("--seq-len", type=int, default=t.seq_len, help=f"words per training window (default: {t.seq_len})")
        p.add_argument("--max-tokens", type=int, default=m.max_tokens,
                       help=f"vocabulary size incl. padding and [UNK] (default: {m.max_tokens})")
        p.add_argument("--backward", action=argparse.BooleanOptionalAction, default=False,
                       help="read every text backwards (the backward model of a pair) (default: forward)")
        p.add_argument("--standardize", choices=STANDARDIZE_CHOICES, default=m.standardize,
                       help="how text becomes words; a sentiment model started from this one uses the same "
                            f"(textgen/standardize.py) (default: {m.standardize})")

    def flag_values(self, args: argparse.Namespace) -> tuple[dict, dict]:
        return ({"max_tokens": args.max_tokens, "backward": args.backward, "standardize": args.standardize},
                {"seq_len": args.seq_len})

    # ---- data

    def data(self, dataset: str, model_cfg, cfg, data_dir, manual_dir, seed: int) -> TaskData:
        import numpy as np
        import tensorflow as tf

        from textgen import data
        from textgen.models.word_lm import adapt_vocabulary, word_lookup

        kw = dict(data_dir=data_dir, manual_dir=manual_dir)
        splits = [s for s in data.split_names(dataset, **kw) if s != "test"]
        texts = lambda split: _texts(dataset, split, kw)  # noqa: E731
        train_splits = [s for s in splits if s != "validation"]
        if not train_splits:
            raise TextgenError(f"{dataset} has no split to train a language model on (only {', '.join(splits)})")
        parts = [texts(s) for s in train_splits]
        # Split sizes come from the prepared dataset's info: counting IMDB's 50,000 unsupervised
        # reviews by reading them took seconds on every run.
        sizes = [data.split_size(dataset, s, **kw) for s in train_splits]
        if "validation" in splits:
            val, used = texts("validation"), {"validation": "validation"}
        else:  # hold out the end of the last split (IMDB: of the unsupervised reviews)
            n_val = max(1, int(sizes[-1] * cfg.validation_fraction))
            sizes[-1] -= n_val
            val, parts[-1] = parts[-1].skip(sizes[-1]), parts[-1].take(sizes[-1])
            used = {"validation": f"last {n_val} texts of {train_splits[-1]}"}
        train = parts[0]
        for part in parts[1:]:
            train = train.concatenate(part)
        n_texts = sum(sizes)
        if cfg.train_limit:
            train, n_texts = train.take(cfg.train_limit), min(n_texts, cfg.train_limit)
        train = train.cache()
        vocabulary = adapt_vocabulary(train, model_cfg.max_tokens, model_cfg.standardize)
        lookup = word_lookup(vocabulary)
        span = cfg.seq_len + 1

        def stream(texts_ds: tf.data.Dataset) -> tf.data.Dataset:
            """texts -> one stream of words (each text backwards with `backward`)."""
            return _word_stream(texts_ds, model_cfg.standardize, model_cfg.backward)

        def windows(texts_ds: tf.data.Dataset) -> tf.data.Dataset:
            w = stream(texts_ds).batch(span, drop_remainder=True)  # (span,) words
            return w.map(lambda w: (w[:-1], lookup(w[1:])), num_parallel_calls=tf.data.AUTOTUNE)  # x words, y ids

        # One pass counts the training words: the windows of an epoch and the unigram baseline.
        counts = np.zeros(len(vocabulary), np.int64)
        for ids in stream(train).batch(65536).map(lookup).as_numpy_iterator():
            counts += np.bincount(ids, minlength=len(vocabulary))
        n_words = int(counts.sum())
        steps = (n_words // span) // cfg.batch_size
        if steps < 1:
            raise TextgenError(f"the training texts hold {n_words:,} words: one batch needs {cfg.batch_size * span:,} "
                               f"({cfg.batch_size} windows of --seq-len {cfg.seq_len} + 1); lower --batch-size or --seq-len")

        def train_fn(batch_size: int, repeat: bool) -> tf.data.Dataset:
            ds = train.shuffle(min(n_texts, 100_000), seed=seed, reshuffle_each_iteration=True)
            ds = windows(ds).shuffle(4096, seed=seed)
            ds = ds.repeat() if repeat else ds.take((n_words // span) // batch_size * batch_size)
            ds = ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
            return ds if repeat else ds.apply(tf.data.experimental.assert_cardinality((n_words // span) // batch_size))

        def val_fn(batch_size: int) -> tf.data.Dataset:
            return windows(val).batch(batch_size).prefetch(tf.data.AUTOTUNE)

        # The logits' bias starts at the log frequencies (add-one smoothed): the first steps need not
        # build the unigram distribution out of the recurrent state, which saturated it (every unit at
        # ±1 whatever the context) in runs that started the bias at zero. Tied: OutputBias's one weight;
        # untied: the Dense layer's bias (its kernel keeps its initialiser).
        log_unigram = np.log((counts + 1) / (counts.sum() + len(counts))).astype(np.float32)  # (vocab,)
        return TaskData(
            init_weights={"logits": [log_unigram] if model_cfg.tie_embeddings else [None, log_unigram]},
            vocabulary=vocabulary, train_fn=train_fn, val_fn=val_fn, steps_per_epoch=steps,
            splits={"train": f"{' + '.join(train_splits)} ({n_texts} texts, {n_words} words)", **used, "test": "test"},
            # the unigram baseline's word frequencies, aligned with the vocabulary
            extra_metadata={"word_counts": counts.tolist(), "backward": model_cfg.backward,
                            "standardize": model_cfg.standardize},
        )

    # ---- model

    def build(self, model_cfg, vocabulary):
        from textgen.models.word_lm import build_word_lm

        return build_word_lm(model_cfg, vocabulary)

    def evaluate(self, model, dataset, split, *, metadata, data_dir=None, manual_dir=None, limit=0, text_file=None,
                 baselines=False, baseline_train_limit=0, baseline_train_dataset=None, streams=64,
                 train_config=None) -> dict:
        """Loss in nats per word over windows of EVAL_WINDOW + 1 words of `split` (state reset per
        window, as in training), next to the unigram baseline of the training words."""
        import math

        import numpy as np
        import tensorflow as tf

        from textgen import evaluate
        from textgen.models.word_lm import vocabulary_of, word_lookup

        if text_file:
            raise evaluate.EvaluationError("--text-file is for character models; word language models take --dataset NAME --split S")
        if not dataset:
            raise evaluate.EvaluationError("give --dataset (the model's metadata names no dataset)")
        texts = _texts(dataset, split, dict(data_dir=data_dir, manual_dir=manual_dir))
        if limit:
            texts = texts.take(limit)
        vocabulary = vocabulary_of(model)
        lookup = word_lookup(vocabulary)
        standardize = metadata.get("standardize", "lower_and_strip_punctuation")
        wins = _word_stream(texts, standardize, metadata.get("backward", False)).batch(EVAL_WINDOW + 1,
                                                                                       drop_remainder=True)

        @tf.function(reduce_retracing=True)
        def nats(w):
            logits = tf.cast(model(w[:, :-1], training=False), tf.float32)  # (batch, time, vocab)
            y = lookup(w[:, 1:])
            return tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits), axis=-1), y

        total, n, unknown = 0.0, 0, 0
        counts = np.asarray(metadata.get("word_counts") or [], np.float64)
        base_total = 0.0
        logp = np.log((counts + 1) / (counts + 1).sum()) if len(counts) == len(vocabulary) else None
        for batch in wins.batch(64):
            per_window, y = nats(batch)
            y = y.numpy()
            total += float(tf.reduce_sum(tf.cast(per_window, tf.float64)))
            n += y.size
            unknown += int((y == 1).sum())
            if logp is not None:
                base_total -= float(logp[y].sum())
        if n == 0:
            raise evaluate.EvaluationError(f"{dataset} {split} has fewer than {EVAL_WINDOW + 1} words")
        result = {"dataset": dataset, "split": split, "words": n, "loss_nats": total / n,
                  "perplexity": math.exp(total / n), "unknown_words": unknown, "window": EVAL_WINDOW}
        if logp is not None:
            result["baseline_unigram"] = {"words": n, "loss_nats": base_total / n, "perplexity": math.exp(base_total / n)}
        return result

    def export(self, model, out, fmt: str, batch_size: int) -> None:
        """SavedModel with `serve`: words (batch, time) string -> next-word logits (batch, time, vocab)."""
        model.export(str(out), verbose=False)

    # ---- the model directory and its card

    def saved_metadata(self, model) -> dict:
        from textgen.models.word_lm import vocabulary_of

        return {"vocabulary_size": len(vocabulary_of(model))}

    def card_describe(self, f: Facts) -> str:
        c = f.config
        direction = "backwards (last word first)" if c.backward else "forwards"
        return (f"A word-level language model reading texts {direction}: {c.max_tokens:,} words at most "
                f"(\"\" and [UNK] included) -> {c.embedding_dim}-dimensional embedding -> {stack(c.rnn)} -> next-word "
                "logits. It is the pretraining for sentiment models (`textgen train sentiment --init-from`).")

    def card_tables(self, f: Facts) -> list[tuple[str, Table]]:
        rows = []
        for label, r in evaluated(f):
            base = (r.get("baseline_unigram") or {}).get("loss_nats")
            rows.append((label, f"{r.get('words', 0):,}", num(r.get("loss_nats")), num(r.get("perplexity"), 1), num(base)))
        return [("Metrics", Table(("split", "words", "loss (nats/word)", "perplexity",
                                   "unigram baseline, same words (nats/word)"), rows))]

    def card_use(self, f: Facts, q) -> tuple[list[str], list[str]]:
        keras_lines = ['logits = model(tf.constant([["this", "movie", "was"]]))  # words (batch, time) -> '
                       "next-word logits (batch, time, vocab)",
                       'vocabulary = model.get_layer("word_to_id").get_vocabulary()  # logit i is vocabulary[i]']
        saved_lines = ['logits = exported.serve(tf.constant([["this", "movie", "was"]]))', "```", ""]
        return keras_lines, saved_lines


def _word_stream(texts, standardize: str, backward: bool):
    """A dataset of texts -> one word per element, each text's words in order (reversed with `backward`)."""
    import tensorflow as tf

    from textgen.models.word_lm import words

    def one(text):  # () string -> (words,) string
        w = words(text[None], standardize)[0]
        return tf.reverse(w, axis=[0]) if backward else w

    return texts.map(one, num_parallel_calls=tf.data.AUTOTUNE).unbatch()


def _texts(dataset: str, split: str, kw: dict):
    """The split's texts as a dataset of strings: a sentiment corpus's texts, or a text corpus's pieces."""
    from textgen import data

    if data.spec(dataset).kind == "sentiment":
        return data.load_sentiment_corpus(dataset, split, **kw).map(lambda ex: ex["text"])
    return data.load_text_corpus(dataset, split, **kw)


TASK = register(WordLMTask())
