"""Sentiment: raw text in, P(positive) (and valence on -4..4 where the corpus has it) out."""

from __future__ import annotations

import argparse

from textgen import config as config_lib
from textgen.catalog import VADER_DOMAINS
from textgen.cardkit import HELD_OUT_KEY, Facts, Table, evaluated, num, pct, short_of, stack, test_result
from textgen.config import STANDARDIZE_CHOICES, ConfigError, SentimentConfig, TrainConfig, WordLMConfig
from textgen.tasks import Task, TaskData, register

# Fields a transfer source may differ in: they carry no weights.
# max_tokens: room for new words; standardize: a word the source's standardisation gives is still a word
# (keeping emoticons only adds tokens, which --extend-vocabulary brings in).
_TRANSFER_FREE = {"sequence_length", "valence_head", "rnn.dropout", "max_tokens", "standardize"}

# Anchors: published or measured reference numbers, printed on the card beside ours.
# The target: above NBSVM and TF-IDF + logistic regression on the same reviews, as the literature's
# language-model-pretrained RNNs are (Dai & Le 2015: 92.76 %).
IMDB_TARGET_ACCURACY = 0.92
IMDB_ANCHORS = (  # (reference, test accuracy on the 25,000 IMDB test reviews)
    ("target for this model", IMDB_TARGET_ACCURACY),
    ("keras-io bidirectional LSTM", 0.843),
    ("LSTM in TextAttack", 0.883),
    ("NBSVM (Wang & Manning 2012)", 0.912),
    ("LSTM pretrained as a language model (Dai & Le 2015)", 0.9276),
    ("ULMFiT (Howard & Ruder 2018)", 0.954),
)
VADER_MOVIES_TARGET_ACCURACY = 0.80
VADER_MOVIES_ANCHORS = (  # (reference, accuracy on VADER's movie snippets)
    ("target for this model", 0.80),
    ("tutorial-style RNN", 0.718),
    ("TF-IDF + logistic regression", 0.793),
    ("VADER lexicon", 0.664),
    ("Kim 2014 CNN", 0.815),
)
EXAMPLE_TEXT = "A superb, moving film."  # the card's examples


class SentimentTask(Task):
    name = "sentiment"
    config_class = SentimentConfig
    help = "sentiment model (polarity + valence heads)"
    default_dataset = "imdb_reviews"
    datasets_help = "imdb_reviews | aclimdb | vader_sentiment/{movies,tweets,amazon,nyt,all,all_but_<domain>}"
    token = "word"
    models = "sentiment models"
    monitors = ("val_loss", "val_accuracy")
    transfer = True
    adversarial = True
    predicts = True

    def add_flags(self, p: argparse.ArgumentParser) -> None:
        p.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=True,
                       help="read texts both ways (default: on)")
        p.add_argument("--max-tokens", type=int, default=20000, help="word vocabulary size incl. pad and OOV (default: 20000)")
        p.add_argument("--sequence-length", type=int, default=256, help="words kept per text (default: 256)")
        p.add_argument("--valence-head", action=argparse.BooleanOptionalAction, default=True,
                       help="add the valence output, trained where the corpus has valence (default: on)")
        p.add_argument("--monitor", choices=self.monitors, default="val_loss",
                       help="what picks the kept epoch and drives early stopping (default: val_loss)")
        p.add_argument("--init-from", default="", metavar="MODEL_DIR",
                       help="start from this sentiment model's vocabulary and weights (transfer; the model shape must "
                            "match, sequence length and valence head may differ), or from a word language model's "
                            "vocabulary, embedding and recurrent layers (`textgen train wordlm`: pretraining) "
                            "(default: from scratch)")
        t = TrainConfig()
        p.add_argument("--discriminative", type=float, default=t.discriminative,
                       help="fine-tuning: each layer group down from the heads learns this many times slower "
                            f"(ULMFiT: 2.6); 1 = one rate (default: {t.discriminative})")
        p.add_argument("--unfreeze", type=int, default=t.unfreeze,
                       help="fine-tuning: unfreeze one more layer group, from the heads down, every N epochs "
                            f"(ULMFiT: 1); 0 = all train from the start (default: {t.unfreeze})")
        p.add_argument("--init-from-backward", default="", metavar="LM_DIR",
                       help="with --init-from a forward word language model: a backward one (train wordlm "
                            "--backward) that starts the backward direction of each bidirectional layer "
                            "(default: both directions from --init-from)")
        p.add_argument("--adversarial", type=float, default=t.adversarial, metavar="EPSILON",
                       help="adversarial training (Miyato et al. 2017): also train on each text with its embedded "
                            "words moved by EPSILON (L2) the way that raises the loss most; 0 = off (default: 0)")
        p.add_argument("--extend-vocabulary", type=int, default=t.extend_vocabulary, metavar="N",
                       help="with --init-from: add up to N of this corpus's most frequent tokens that the source's "
                            "vocabulary lacks; 0 = they read as [UNK] (default: 0)")
        p.add_argument("--ngrams", type=int, default=1,
                       help="1 = read the words; 2 = the words, then the word pairs (bigrams); they share "
                            "--max-tokens and --sequence-length (default: 1)")
        p.add_argument("--standardize", choices=STANDARDIZE_CHOICES, default=SentimentConfig.standardize,
                       help="how text becomes words: lower_keep_emoticons keeps \":)\" and \"<3\" as tokens "
                            f"(textgen/standardize.py) (default: {SentimentConfig.standardize})")
        p.add_argument("--backward", action=argparse.BooleanOptionalAction, default=False,
                       help="a one-way model that reads each text's kept words last first (the backward classifier "
                            "of a forward + backward pair; --init-from a backward language model needs it) "
                            "(default: forward)")
        p.add_argument("--pooling", choices=("last", "max_mean"), default="last",
                       help="read the last recurrent layer as its final state, or as the max and mean of its "
                            "outputs over the words (default: last)")

    def flag_values(self, args: argparse.Namespace) -> tuple[dict, dict]:
        return ({"rnn.bidirectional": args.bidirectional, "max_tokens": args.max_tokens,
                 "sequence_length": args.sequence_length, "valence_head": args.valence_head,
                 "pooling": args.pooling, "ngrams": args.ngrams, "standardize": args.standardize,
                 "backward": args.backward},
                {"init_from": args.init_from, "monitor": args.monitor, "discriminative": args.discriminative,
                 "unfreeze": args.unfreeze, "extend_vocabulary": args.extend_vocabulary,
                 "init_from_backward": args.init_from_backward, "adversarial": args.adversarial})

    def data(self, dataset: str, model_cfg, cfg, data_dir, manual_dir, seed: int) -> TaskData:
        import numpy as np
        import tensorflow as tf

        from textgen import data
        from textgen.models import adapt_word_vocabulary

        # fail before loading data
        source = transfer_source(cfg.init_from, model_cfg, cfg.init_from_backward) if cfg.init_from else None

        # (a corpus without a validation split: its last validation_fraction of train, held out)
        train, val, n_train, val_name = data.sentiment_train_validation(
            dataset, cfg.validation_fraction, cfg.train_limit, data_dir=data_dir, manual_dir=manual_dir)
        splits = {"validation": val_name, "train": f"train ({n_train} examples)", "test": "test"}
        # A transfer run keeps its source's vocabulary (the copied embedding rows stay aligned with
        # their words), extended with this corpus's most frequent new tokens when asked.
        if source and cfg.extend_vocabulary:
            own = adapt_word_vocabulary(model_cfg, train.map(lambda ex: ex["text"]))
            source = extend_vocabulary(source, own, cfg.extend_vocabulary, model_cfg.max_tokens)
        vocabulary = source[0] if source else adapt_word_vocabulary(model_cfg, train.map(lambda ex: ex["text"]))
        labels = np.array([int(ex["label"]) for ex in train.as_numpy_iterator()])
        to_xyw = targets(model_cfg.valence_head)
        train = train.cache()

        def train_fn(batch_size: int, repeat: bool) -> tf.data.Dataset:
            ds = train.shuffle(min(n_train, 20000), seed=seed, reshuffle_each_iteration=True)
            ds = ds.repeat() if repeat else ds
            return ds.batch(batch_size, drop_remainder=repeat).map(to_xyw).prefetch(tf.data.AUTOTUNE)

        def val_fn(batch_size: int) -> tf.data.Dataset:
            return val.batch(batch_size).map(to_xyw).prefetch(tf.data.AUTOTUNE)

        return TaskData(
            vocabulary=vocabulary, train_fn=train_fn, val_fn=val_fn,
            steps_per_epoch=max(1, n_train // cfg.batch_size), splits=splits,
            extra_metadata={"train_label_counts": {str(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True))},
                            **({"init_from": source[2]} if source else {})},
            init_weights=source[1] if source else None,
        )

    def build(self, model_cfg, vocabulary):
        from textgen.models import build_sentiment_model

        return build_sentiment_model(model_cfg, vocabulary)

    def training_model(self, model_cfg, cfg, vocabulary):
        """With `cfg.adversarial` > 0: the adversarial trainer (`textgen.adversarial`) around the model."""
        if not cfg.adversarial:
            return self.build(model_cfg, vocabulary)
        from textgen.adversarial import AdversarialTrainer
        from textgen.models import build_sentiment_model

        return AdversarialTrainer(build_sentiment_model(model_cfg, vocabulary, perturbation=True), cfg.adversarial)

    def compile(self, model, cfg, optimizer) -> None:
        """Binary cross-entropy on polarity, Huber on valence (weighted by cfg.valence_weight); Keras
        casts bfloat16/float16 predictions to float32 before reducing."""
        import keras

        losses = {"polarity": keras.losses.BinaryCrossentropy()}
        weights = {"polarity": 1.0}
        if any(layer.name == "valence" for layer in model.layers):  # (also an adversarial trainer's)
            losses["valence"], weights["valence"] = keras.losses.Huber(), cfg.valence_weight
        model.compile(optimizer=optimizer, loss=losses, loss_weights=weights,
                      weighted_metrics={"polarity": [keras.metrics.BinaryAccuracy(name="accuracy")]},
                      jit_compile=cfg.jit_compile)

    def evaluate(self, model, dataset, split, *, metadata, data_dir=None, manual_dir=None, limit=0, text_file=None,
                 baselines=False, baseline_train_limit=0, baseline_train_dataset=None, streams=64,
                 train_config=None) -> dict:
        """Accuracy, F1 (and valence MAE / r) on a split, next to the majority class of the training
        labels and, with `baselines`, the VADER lexicon and TF-IDF + logistic regression (fit on the
        train split of `baseline_train_dataset`, default `dataset`). The validation split of a corpus
        that has none is the one training held out of train (`train_config`'s fraction and limit)."""
        from textgen import evaluate

        if text_file:
            raise evaluate.EvaluationError("--text-file is for character models; sentiment models take --dataset NAME --split S")
        if not dataset:
            raise evaluate.EvaluationError("give --dataset (the model's metadata names no dataset)")
        return evaluate.evaluate_sentiment_split(model, dataset, split, data_dir=data_dir, manual_dir=manual_dir,
                                                 limit=limit, majority=metadata.get("train_label_counts"),
                                                 baselines=baselines, baseline_train_limit=baseline_train_limit,
                                                 baseline_train_dataset=baseline_train_dataset,
                                                 held_out=train_config)

    def export(self, model, out, fmt: str, batch_size: int) -> None:
        """SavedModel: signatures classify (= serving_default) with p_positive, valence, label."""
        from textgen import export

        export.export_sentiment_savedmodel(model, out)

    # ---- the model card

    card_limitations = {
        "imdb": (
            "English movie reviews from IMDB only, positive or negative (no neutral class); reviews are cut "
            "to the configured number of words, so a verdict at the end of a long review can be missed. "
            "Sarcasm, negation across sentences and other domains (products, tweets) are weak spots. "
            "Trained without a valence head: IMDB has no valence ratings."),
        "vader": (
            "Trained on about 19,000 short English texts (movie snippets, tweets, Amazon reviews, New York "
            "Times opinion sentences) rated by people on -4..4; sentences rated exactly 0 were dropped, so it "
            "always answers positive or negative. Valence is the mean of about ten raters and is noisy; long "
            "documents and other domains are outside what it has seen."),
    }

    def card_anchor_set(self, dataset: str, name: str) -> str | None:
        if dataset in ("imdb_reviews", "aclimdb"):
            return "imdb"
        if dataset.startswith("vader_sentiment"):
            return "vader"
        return None

    def card_describe(self, f: Facts) -> str:
        c = f.config
        heads = "polarity (sigmoid) and valence (linear, -4..4)" if c.valence_head else "polarity (sigmoid)"
        reading = (" -> max and mean of its outputs over the words" if c.pooling == "max_mean"
                   else " (its final state)")
        tokens = "words" if c.ngrams == 1 else f"words, then word {'pairs' if c.ngrams == 2 else f'n-grams up to {c.ngrams}'}"
        order = " -> the kept tokens last first (a backward reader)" if c.backward else ""
        text = (f"A sentiment model on raw text: vectorisation into {tokens} ({c.max_tokens} tokens, the first "
                f"{c.sequence_length} kept){order} -> {c.embedding_dim}-dimensional embedding -> {stack(c.rnn)}{reading} -> {heads}.")
        source = f.metadata.get("init_from")
        if source:
            copied = ", ".join(source.get("layers_copied") or []) or "no layer"
            text += (f" Training started from `{source.get('path')}` (trained on `{source.get('dataset')}`): its "
                     f"vocabulary and the weights of {copied}; the rest started fresh.")
        return text

    def card_tables(self, f: Facts) -> list[tuple[str, Table]]:
        return sentiment_tables(f)

    def card_verdicts(self, f: Facts) -> list[str]:
        kind = self.card_anchor_set(f.dataset or "", f.name)
        metrics = test_result(f)  # training's, or (--no-test) the one `textgen evaluate` recorded
        if kind == "imdb" and (metrics.get("model") or {}).get("accuracy") is not None:
            return [f"Target (>= {IMDB_TARGET_ACCURACY:.0%} test accuracy): "
                    f"{short_of(metrics['model']['accuracy'], IMDB_TARGET_ACCURACY)}."] + held_out_verdict(f)
        if kind == "vader":
            beaten, lost, missing = beats_tfidf(f)
            movies = ((f.metadata.get("evaluations") or {}).get("vader_sentiment/movies:test") or {}).get("model") or {}
            out = [f"Beats TF-IDF + logistic regression on: {', '.join(beaten) or 'none'}"
                   + (f"; not on: {', '.join(lost)}" if lost else "")
                   + (f"; not evaluated with baselines: {', '.join(missing)}" if missing else "") + "."]
            if movies.get("accuracy") is not None:
                target = f"Target (>= {VADER_MOVIES_TARGET_ACCURACY:.0%} on movie snippets)"
                out.append(f"{target}: {short_of(movies['accuracy'], VADER_MOVIES_TARGET_ACCURACY)}.")
            return out + held_out_verdict(f)
        return held_out_verdict(f)

    def card_use(self, f: Facts, q) -> tuple[list[str], list[str]]:
        meaning = {"polarity": " P(positive)", "valence": " on -4..4"}
        heads = ", ".join(f'"{o}": (batch, 1){meaning.get(o, "")}' for o in f.outputs)
        keras_lines = [f"out = model(tf.constant([{q(EXAMPLE_TEXT)}]))  # raw text (batch,) -> {{{heads}}}"]
        valence = "valence" in f.outputs
        saved_lines = [f'out = exported.signatures["classify"](text=tf.constant([{q(EXAMPLE_TEXT)}]))', "```", "",
                       "`classify` and `serving_default` take `text` (batch,) and return "
                       + ("`p_positive`, `valence` and `label`. This model has a valence head: `valence` is its "
                          "rating on -4..4." if valence else
                          "`p_positive` and `label`. This model has no valence head, so there is no `valence`."), ""]
        return keras_lines, saved_lines


def _sentiment_row(label: str, r: dict) -> tuple[str, ...]:
    m = r.get("model") or {}
    v = m.get("valence") or {}
    return (label, f"{m.get('examples', 0):,}", pct(m.get("accuracy")), num(m.get("f1"), 3),
            num(m.get("roc_auc"), 3), num(v.get("mae"), 3), num(v.get("pearson_r"), 3))


def _baseline_row(label: str, r: dict) -> tuple[str, ...]:
    acc = lambda key: pct((r.get(key) or {}).get("accuracy"))  # noqa: E731
    return (label, pct((r.get("model") or {}).get("accuracy")), acc("baseline_tfidf_logreg"), acc("baseline_vader"),
            acc("baseline_majority"))


def beats_tfidf(f: Facts) -> tuple[list[str], list[str], list[str]]:
    """VADER domains whose test split was evaluated: (beaten, not beaten, not evaluated with baselines)."""
    evals = f.metadata.get("evaluations") or {}
    beaten, lost, missing = [], [], []
    for domain in VADER_DOMAINS:
        r = evals.get(f"vader_sentiment/{domain}:test") or {}
        ours, theirs = (r.get("model") or {}).get("accuracy"), (r.get("baseline_tfidf_logreg") or {}).get("accuracy")
        if ours is None or theirs is None:
            missing.append(domain)
        else:
            (beaten if ours > theirs else lost).append(domain)
    return beaten, lost, missing


def sentiment_tables(f: Facts) -> list[tuple[str, Table]]:
    """The card's metrics, the baselines on the same examples, and the anchors of IMDB or VADER."""
    results = evaluated(f)
    tables = [("Metrics", Table(("split", "examples", "accuracy", "F1", "ROC AUC", "valence MAE", "valence Pearson r"),
                                [_sentiment_row(label, r) for label, r in results]))]
    tables.append(("Baselines on the same examples (accuracy)",
                   Table(("split", "this model", "TF-IDF + logistic regression", "VADER lexicon", "majority class"),
                         [_baseline_row(label, r) for label, r in results])))
    kind = TASK.card_anchor_set(f.dataset or "", f.name)
    if kind == "imdb":
        rows = [(f"**this model** ({label})", pct((r.get("model") or {}).get("accuracy"))) for label, r in results]
        rows += [(ref, pct(acc)) for ref, acc in IMDB_ANCHORS]
        tables.append(("Next to the anchors (IMDB test accuracy)", Table(("model", "accuracy"), rows)))
    elif kind == "vader":
        movies = (f.metadata.get("evaluations") or {}).get("vader_sentiment/movies:test") or {}
        rows = [("**this model** (vader_sentiment/movies test)", pct((movies.get("model") or {}).get("accuracy")))]
        rows += [(ref, pct(acc)) for ref, acc in VADER_MOVIES_ANCHORS]
        tables.append(("Next to the anchors (movie snippets accuracy)", Table(("model", "accuracy"), rows)))
    held = held_out_rows(f)
    if held:
        tables.append(("On text it never trained on (accuracy)", Table(
            ("evaluated on", "model (trained on)", "examples", "model", "VADER lexicon",
             "TF-IDF + logistic regression (fit on the model's training texts)", "majority class"), held)))
    return tables


def _held_out(f: Facts) -> list[tuple[str, dict]]:
    return sorted((f.metadata.get(HELD_OUT_KEY) or {}).items())


def held_out_rows(f: Facts) -> list[tuple[str, ...]]:
    """One row per recorded held-out evaluation (`textgen card --held-out`)."""
    rows = []
    for key, r in _held_out(f):
        acc = lambda k: pct((r.get(k) or {}).get("accuracy"))  # noqa: E731
        fit_on = r.get("baselines_trained_on") or r.get("dataset")
        tfidf = acc("baseline_tfidf_logreg") + ("" if fit_on == r.get("trained_on") else f" (fit on {fit_on})")
        rows.append((key.replace(":", " "), f"`{r.get('model_dir')}` ({r.get('trained_on')})",
                     f"{(r.get('model') or {}).get('examples', 0):,}", acc("model"), acc("baseline_vader"), tfidf,
                     acc("baseline_majority")))
    return rows


def held_out_verdict(f: Facts) -> list[str]:
    """Whether the model beats the VADER lexicon on text it never trained on, and by how much."""
    beaten, lost = [], []
    for key, r in _held_out(f):
        ours, lexicon = (r.get("model") or {}).get("accuracy"), (r.get("baseline_vader") or {}).get("accuracy")
        if ours is not None and lexicon is not None:
            (beaten if ours > lexicon else lost).append(f"{key.split(':')[0]} ({100 * (ours - lexicon):+.2f} points)")
    if not beaten and not lost:
        return []
    return [f"On text it never trained on, beats the VADER lexicon on: {', '.join(beaten) or 'none'}"
            + (f"; not on: {', '.join(lost)}" if lost else "") + "."]


def targets(with_valence: bool):
    """{"text","label","valence"} -> (text, targets, sample weights); NaN valence -> weight 0, target 0."""
    import tensorflow as tf

    def fn(ex):
        label = tf.reshape(tf.cast(ex["label"], tf.float32), [-1, 1])  # (batch, 1)
        y, w = {"polarity": label}, {"polarity": tf.ones_like(label)[:, 0]}
        if with_valence:
            valence = tf.reshape(tf.cast(ex["valence"], tf.float32), [-1, 1])  # (batch, 1), NaN = absent
            known = tf.math.is_finite(valence)
            y["valence"] = tf.where(known, valence, tf.zeros_like(valence))
            w["valence"] = tf.cast(known, tf.float32)[:, 0]
        return ex["text"], y, w

    return fn


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


def transfer_source(path: str, model_cfg: SentimentConfig, backward: str = "") -> tuple[list[str], dict, dict]:
    """(vocabulary, layer name -> weights, metadata) of the model a transfer run starts from: a
    sentiment model of the same shape, or a word language model (`textgen train wordlm`, pretraining).

    Raises:
        ModelDirError: `path` is not a loadable model directory.
        ConfigError: it is neither, or its shape differs from `model_cfg`.
    """
    from textgen.artifacts import load_model_dir

    source = load_model_dir(path)
    info = {"path": str(path), "dataset": (source.metadata.get("dataset") or {}).get("name"),
            "weights_sha256": source.metadata.get("weights_sha256"), "metrics": source.metadata.get("metrics"),
            # the card adds it to this run's own: a fine-tuned model's cost includes its pretraining
            "training_time_s": source.metadata.get("training_time_s")}
    if isinstance(source.config, WordLMConfig):
        back = _backward_language_model(backward, source, model_cfg) if backward else None
        return (*_from_language_model(path, source, model_cfg, back),
                {**info, "task": "wordlm",
                 **({"backward_path": str(backward), "backward_training_time_s": back.metadata.get("training_time_s")}
                    if backward else {})})
    if backward:
        raise ConfigError(f"--init-from-backward goes with --init-from a forward word language model; {path} is a "
                          f"{source.task} model")
    if not isinstance(source.config, SentimentConfig):
        raise ConfigError(f"--init-from {path}: a {source.task} model; transfer needs a sentiment model "
                          "or a word language model")
    theirs, ours = _flat(config_lib.to_dict(source.config)), _flat(config_lib.to_dict(model_cfg))
    diff = sorted(k for k in set(theirs) | set(ours) if k not in _TRANSFER_FREE and theirs.get(k) != ours.get(k))
    if diff:
        raise ConfigError(
            f"--init-from {path}: the model shapes differ ("
            + ", ".join(f"{k}: {theirs.get(k)!r} there, {ours.get(k)!r} here" for k in diff)
            + "); give this run the same model flags (only the sequence length, valence head and dropout may differ)")
    vocabulary = source.model.get_layer("vectorize").get_vocabulary()
    weights = {layer.name: layer.get_weights() for layer in source.model.layers if layer.get_weights()}
    return vocabulary, weights, info


def extend_vocabulary(source: tuple, own: list[str], most: int, max_tokens: int) -> tuple:
    """`source` (vocabulary, weights, info) with up to `most` tokens of `own` (this corpus's
    vocabulary, most frequent first) that the source lacks appended; each new embedding row starts
    at the mean of the source's word rows (not "" or [UNK]). The new words are recorded in info."""
    import numpy as np

    vocabulary, weights, info = source
    known = set(vocabulary)
    new = [t for t in own[2:] if t not in known][:most]
    if len(vocabulary) + len(new) > max_tokens:
        raise ConfigError(f"--init-from keeps {len(vocabulary):,} tokens and --set extend_vocabulary adds "
                          f"{len(new):,}: raise --max-tokens to at least {len(vocabulary) + len(new):,}")
    table = weights["embedding"][0]  # (vocab, embedding_dim)
    rows = np.repeat(table[2:].mean(axis=0, keepdims=True), len(new), axis=0).astype(table.dtype)
    weights = {**weights, "embedding": [np.concatenate([table, rows]), *weights["embedding"][1:]]}
    return vocabulary + new, weights, {**info, "words_added": len(new), "first_words_added": new[:20]}


def _backward_language_model(path: str, forward, model_cfg: SentimentConfig):
    """The backward language model for the backward direction: a `--backward` word LM with the
    forward one's shape and vocabulary, for a bidirectional sentiment model."""
    from textgen.artifacts import load_model_dir
    from textgen.models.word_lm import vocabulary_of

    back = load_model_dir(path)
    if not isinstance(back.config, WordLMConfig) or not back.config.backward:
        raise ConfigError(f"--init-from-backward {path}: not a backward word language model (train wordlm --backward)")
    if forward.config.backward:
        raise ConfigError("--init-from with --init-from-backward must be a forward language model (this one reads backwards)")
    if not model_cfg.rnn.bidirectional:
        raise ConfigError("--init-from-backward starts the backward direction of a bidirectional model: add --bidirectional")
    ours = {k: v for k, v in config_lib.to_dict(forward.config).items() if k != "backward"}
    theirs = {k: v for k, v in config_lib.to_dict(back.config).items() if k != "backward"}
    if ours != theirs or vocabulary_of(back.model) != vocabulary_of(forward.model):
        raise ConfigError(f"--init-from-backward {path}: its shape or vocabulary differs from the forward model's; "
                          "train both on the same corpus with the same flags")
    return back


def _from_language_model(path, source, model_cfg: SentimentConfig, backward=None) -> tuple[list[str], dict]:
    """The vocabulary, embedding and recurrent layers of a word language model, named as the
    sentiment model names them. Its ids are the sentiment vectorizer's ids for the same vocabulary
    (`textgen.models.word_lm`), so embedding row i is word i in both. A bidirectional layer's
    forward direction starts from the language model's layer, its backward direction from the
    `backward` model's (which read the texts last word first, as that direction does) or, without
    one, from the forward reader's too (a warm start, not a backward model)."""
    from textgen.models.word_lm import vocabulary_of

    lm = source.config
    # The standardisation may differ as for a sentiment source (_TRANSFER_FREE): the emoticon-keeping one
    # only adds tokens, which --extend-vocabulary brings in; max_tokens may be larger (room for them).
    want = {"rnn.cell": (lm.rnn.cell, model_cfg.rnn.cell), "rnn.units": (lm.rnn.units, model_cfg.rnn.units),
            "rnn.layers": (lm.rnn.layers, model_cfg.rnn.layers),
            "embedding_dim": (lm.embedding_dim, model_cfg.embedding_dim), "ngrams": (1, model_cfg.ngrams)}
    diff = [f"{k}: {a!r} there, {b!r} here" for k, (a, b) in want.items() if a != b]
    if lm.backward != model_cfg.backward:
        raise ConfigError(f"--init-from {path}: a {'backward' if lm.backward else 'forward'} language model starts a "
                          f"classifier that reads the same way: {'add' if lm.backward else 'drop'} --backward"
                          + (" (a bidirectional model's backward direction starts from --init-from-backward)"
                             if lm.backward and model_cfg.rnn.bidirectional else ""))
    if model_cfg.max_tokens < lm.max_tokens:
        diff.append(f"max_tokens: {lm.max_tokens!r} there, {model_cfg.max_tokens!r} here (at least theirs)")
    if diff:
        raise ConfigError(f"--init-from {path}: the language model and this sentiment model differ ({', '.join(diff)}); "
                          "give this run the language model's --cell, --units, --layers and --embedding-dim, "
                          "--ngrams 1 and at least its --max-tokens")
    model = source.model
    weights = {"embedding": model.get_layer("embedding").get_weights()}  # (vocab, embedding_dim)
    for i in range(lm.rnn.layers):
        w = model.get_layer(f"rnn_{i}").get_weights()
        if model_cfg.rnn.bidirectional:  # Bidirectional's weights: the forward layer's, then the backward one's
            weights[f"bi_rnn_{i}"] = w + (backward.model.get_layer(f"rnn_{i}").get_weights() if backward else w)
        else:
            weights[f"rnn_{i}"] = w
    return vocabulary_of(model), weights


TASK = register(SentimentTask())
