"""Held-out metrics and baselines for both tasks.

Character models: the loss of every character of a text given everything before it, with the RNN
state carried across the whole text (never reset per window), in nats, bits per character and
perplexity, next to a unigram baseline on the very same characters. For speed the text is cut
into B contiguous streams run as one batch; each stream after the first is primed (state burn-in,
not counted) on the characters just before it, so every character still sees a long context.

Sentiment models: accuracy, F1, ROC AUC and the confusion matrix of the polarity head, MAE and
Pearson r of the valence head where the corpus has valence; optional baselines on exactly the same
examples (majority class, VADER's lexicon rule, TF-IDF 1-2-grams + logistic regression).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Mapping, Sequence

import keras
import numpy as np
import tensorflow as tf

from textgen.errors import TextgenError
from textgen.vocab import CharCodec, vocabulary_of


class EvaluationError(TextgenError):
    """The requested evaluation cannot run (empty text, wrong task, missing data)."""


def _loss_summary(total_nats: float, count: int) -> dict:
    mean = total_nats / count
    # exp overflows past ~709 nats (a badly diverged model): report no perplexity rather than crash.
    return {"loss_nats": mean, "bits_per_char": mean / math.log(2), "perplexity": math.exp(mean) if mean < 700 else None}


# --------------------------------------------------------------------------------------------
# Character models


class StepScorer:
    """Runs a character model's step model over (rows, time) id blocks and returns per-position
    losses in nats, carrying the states between calls (one compiled function for every shape)."""

    def __init__(self, model: keras.Model, chunk: int = 256):
        from textgen.models import build_step_model, initial_states

        self.model, self.chunk = model, chunk
        self.initial_states = initial_states
        step = build_step_model(model)

        @tf.function(reduce_retracing=True)
        def run(x, y, states):
            out = step([x, *states], training=False)
            logp = tf.nn.log_softmax(tf.cast(out[0], tf.float32), axis=-1)  # (rows, time, vocab)
            return -tf.gather(logp, y, batch_dims=2), list(out[1:])  # (rows, time) nats

        self._run = run

    def zeros(self, rows: int) -> list:
        return [tf.constant(s) for s in self.initial_states(self.model, rows)]

    def score(self, x: np.ndarray, y: np.ndarray | None, states: list) -> tuple[np.ndarray, list]:
        """x, y: (rows, time) int32 ids; y None = only advance the states. Returns ((rows, time) nats, states)."""
        pieces = []
        for s in range(0, x.shape[1], self.chunk):  # chunks carry the states: they never reset them
            xs = x[:, s:s + self.chunk]
            ys = y[:, s:s + self.chunk] if y is not None else np.zeros_like(xs)
            nats, states = self._run(tf.constant(xs), tf.constant(ys), states)
            if y is not None:
                pieces.append(nats.numpy().astype(np.float64))
        return (np.concatenate(pieces, axis=1) if pieces else np.zeros((x.shape[0], 0))), states


def stream_count(n: int, streams: int) -> int:
    """B of `carried_nats` for n predicted characters: at most `streams`, each at least 64 characters."""
    return max(1, min(streams, n // 64))


def carried_nats(model: keras.Model, ids: np.ndarray, streams: int = 64, burn_in: int = 256,
                 scorer: StepScorer | None = None) -> np.ndarray:
    """(n-1,) loss in nats of characters 2..n of `ids` with the state carried across the text.

    The text is cut into B contiguous streams run side by side in one batch (B = `stream_count`);
    each stream after the first is primed on the `burn_in` characters before it (not scored), so
    it starts with a warm state as if the text had been read from the start; the tail that does not
    fill the streams continues the last one. Every character 2..n is scored exactly once.
    `scorer` reuses one compiled step function across calls (None: a new one).

    Raises:
        EvaluationError: fewer than two characters.
    """
    n = len(ids) - 1
    if n < 1:
        raise EvaluationError("the text needs at least two characters to evaluate")
    scorer = scorer or StepScorer(model)
    b = stream_count(n, streams)
    t = n // b
    states = scorer.zeros(b)
    w = min(burn_in, t)
    if b > 1 and w > 0:  # stream 0 starts cold; streams 1.. are warmed on what precedes them
        primer = np.stack([ids[i * t - w: i * t] for i in range(1, b)])
        _, primed = scorer.score(primer, None, scorer.zeros(b - 1))
        states = [tf.concat([tf.zeros_like(p[:1]), p], axis=0) for p in primed]
    # stream i reads ids[i*t : (i+1)*t] and predicts the next character of each
    nats, states = scorer.score(ids[: b * t].reshape(b, t), ids[1: b * t + 1].reshape(b, t), states)
    out = [nats.reshape(-1)]
    if n - b * t:
        tail, _ = scorer.score(ids[b * t: n][None, :], ids[b * t + 1: n + 1][None, :], [s[-1:] for s in states])
        out.append(tail.reshape(-1))
    return np.concatenate(out)


def charlm_loss(model: keras.Model, text: str, streams: int = 64, chunk: int = 256, burn_in: int = 256) -> dict:
    """Per-character loss of `model` on `text` with state carried across the text (`carried_nats`).

    Args:
        model: a character model (`textgen.models.build_char_lm`).
        text: the text; characters 2..n are predicted (the first has no context).
        streams: B, the number of contiguous pieces run in parallel (fewer for short texts).
        chunk: characters per call of the step model.
        burn_in: characters before each stream (after the first) used only to warm its state.
    Returns:
        {"characters", "loss_nats", "bits_per_char", "perplexity", "unknown_characters", "streams"}
    """
    ids = np.asarray(CharCodec(vocabulary_of(model)).encode(text), dtype=np.int32)
    nats = carried_nats(model, ids, streams, burn_in, StepScorer(model, chunk))
    n = len(nats)
    return {"characters": int(n), **_loss_summary(float(nats.sum()), n), "unknown_characters": int(np.sum(ids[1:] == 0)),
            "streams": stream_count(n, streams)}


def unigram_loss(text: str, vocabulary: Sequence[str], counts: Mapping[str, int]) -> dict:
    """Loss of predicting each character (2..n of `text`) by its training-split frequency.

    Add-one smoothing over the vocabulary plus `[UNK]`, so unseen characters have a finite cost.
    """
    codec = CharCodec(vocabulary)
    freq = np.ones(codec.size, dtype=np.float64)
    for ch, c in counts.items():
        freq[codec.encode(ch)[0]] += c
    logp = np.log(freq / freq.sum())
    ids = np.asarray(codec.encode(text[1:]), dtype=np.int64)
    if len(ids) == 0:
        raise EvaluationError("the text needs at least two characters to evaluate")
    return {"characters": int(len(ids)), **_loss_summary(float(-logp[ids].sum()), len(ids))}


def evaluate_charlm_text(model: keras.Model, text: str, unigram_counts: Mapping[str, int] | None,
                         streams: int = 64) -> dict:
    """`charlm_loss` plus the unigram baseline (when counts are known) on the same characters."""
    result = charlm_loss(model, text, streams=streams)
    if unigram_counts:
        result["baseline_unigram"] = unigram_loss(text, vocabulary_of(model), unigram_counts)
    return result


def evaluate_charlm_split(model, dataset: str, split: str, *, data_dir=None, manual_dir=None,
                          unigram_counts=None, streams: int = 64) -> dict:
    """`evaluate_charlm_text` on a split of a prepared text corpus."""
    from textgen import data

    text = data.read_text(dataset, split, data_dir=data_dir, manual_dir=manual_dir)
    return {"dataset": dataset, "split": split, **evaluate_charlm_text(model, text, unigram_counts, streams)}


# --------------------------------------------------------------------------------------------
# Sentiment models


def classification_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """Accuracy, F1 (positive class), ROC AUC and confusion matrix [[tn, fp], [fn, tp]]."""
    from sklearn import metrics

    labels = np.asarray(labels).astype(int)
    pred = (np.asarray(scores) > threshold).astype(int)
    auc = float(metrics.roc_auc_score(labels, scores)) if len(np.unique(labels)) == 2 else None
    return {
        "examples": int(len(labels)),
        "accuracy": float(metrics.accuracy_score(labels, pred)),
        "f1": float(metrics.f1_score(labels, pred, zero_division=0)),
        "roc_auc": auc,
        "confusion_matrix": metrics.confusion_matrix(labels, pred, labels=[0, 1]).tolist(),
    }


def valence_metrics(true: np.ndarray, pred: np.ndarray) -> dict | None:
    """MAE and Pearson r where the true valence is known (not NaN); None when there is none."""
    true, pred = np.asarray(true, dtype=np.float64), np.asarray(pred, dtype=np.float64)
    known = np.isfinite(true)
    if known.sum() < 2:
        return None
    t, p = true[known], pred[known]
    r = float(np.corrcoef(t, p)[0, 1]) if t.std() > 0 and p.std() > 0 else None
    return {"examples": int(known.sum()), "mae": float(np.mean(np.abs(t - p))), "pearson_r": r}


def _examples(dataset: str, split: str, limit: int, data_dir, manual_dir,
              held_out: tuple[float, int] | None = None) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(texts, labels, valence) of a split. With `held_out` (validation_fraction, train_limit):
    "validation" and "train_without_validation" are training's two parts of train."""
    from textgen import data

    if held_out and split in ("validation", "train_without_validation"):
        train, val, _, _ = data.sentiment_train_validation(dataset, *held_out, data_dir=data_dir, manual_dir=manual_dir)
        ds = val if split == "validation" else train
    else:
        ds = data.load_sentiment_corpus(dataset, split, data_dir=data_dir, manual_dir=manual_dir)
    if limit:
        ds = ds.take(limit)
    texts, labels, valence = [], [], []
    for ex in ds.as_numpy_iterator():
        texts.append(ex["text"].decode("utf-8"))
        labels.append(int(ex["label"]))
        valence.append(float(ex["valence"]))
    if not texts:
        raise EvaluationError(f"{dataset} split {split!r} has no examples")
    return texts, np.array(labels), np.array(valence)


def evaluate_sentiment(model: keras.Model, texts: list[str], labels: np.ndarray, valence: np.ndarray) -> dict:
    """Metrics of both heads of a sentiment model on the given examples."""
    ds = tf.data.Dataset.from_tensor_slices(tf.constant(texts, dtype=tf.string)).batch(256)
    out = model.predict(ds, verbose=0)
    result = {"model": classification_metrics(labels, out["polarity"][:, 0], 0.5)}
    if "valence" in out:
        v = valence_metrics(valence, out["valence"][:, 0])
        if v is not None:
            result["model"]["valence"] = v
    return result


def majority_baseline(labels: np.ndarray, train_label_counts: Mapping[str, int]) -> dict:
    """Always predicts the most frequent class of the training split."""
    majority = int(max(train_label_counts, key=lambda k: train_label_counts[k]))
    return {"predicts": majority, **classification_metrics(labels, np.full(len(labels), float(majority)), 0.5)}


def vader_baseline(texts: list[str], labels: np.ndarray, valence: np.ndarray) -> dict:
    """VADER's lexicon rule: compound > 0 -> positive (Hutto & Gilbert 2014)."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    analyzer = SentimentIntensityAnalyzer()
    compound = np.array([analyzer.polarity_scores(t)["compound"] for t in texts])
    result = classification_metrics(labels, compound, 0.0)
    v = valence_metrics(valence, compound)
    if v is not None:  # compound is on −1..1, not −4..4: only the correlation is comparable
        result["valence_pearson_r"] = v["pearson_r"]
    return result


def tfidf_baseline(train_texts: list[str], train_labels: np.ndarray, texts: list[str], labels: np.ndarray) -> dict:
    """TF-IDF of word 1-2-grams + logistic regression, C chosen by 5-fold CV on the training texts."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegressionCV

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    x_train = vectorizer.fit_transform(train_texts)
    folds = int(min(5, np.bincount(train_labels).min()))
    if folds < 2:
        raise EvaluationError("the TF-IDF baseline needs at least two training examples of each class")
    # l1_ratios=(0,) is plain L2; use_legacy_attributes=False: C_ is one number (scikit-learn >= 1.8 API).
    clf = LogisticRegressionCV(Cs=[0.1, 1.0, 10.0, 100.0], cv=folds, max_iter=2000, scoring="accuracy",
                               l1_ratios=(0.0,), use_legacy_attributes=False)
    clf.fit(x_train, train_labels)
    scores = clf.predict_proba(vectorizer.transform(texts))[:, 1]
    return {"C": float(np.ravel(clf.C_)[0]), "train_examples": int(len(train_texts)), **classification_metrics(labels, scores, 0.5)}


def evaluate_sentiment_split(model, dataset: str, split: str, *, data_dir=None, manual_dir=None, limit: int = 0,
                             majority: Mapping[str, int] | None = None, baselines: bool = False,
                             baseline_train_limit: int = 0, baseline_train_dataset: str | None = None,
                             held_out=None) -> dict:
    """Sentiment metrics on a split (first `limit` examples when > 0), with optional baselines.

    The TF-IDF baseline (and, without `majority`, the majority class) is fit on the train split of
    `baseline_train_dataset` (default: `dataset`); a model measured on a domain it never trained on
    is compared with a baseline fit on the same texts as the model, not on that domain's.
    `split="validation"` of a corpus without one is the part of train that training held out, by
    `held_out` (the model's TrainConfig: validation_fraction, train_limit); the TF-IDF baseline is
    then fit on the rest of train, as the model was."""
    from textgen import data

    val_rule = None
    if split == "validation" and "validation" not in data.split_names(dataset, data_dir=data_dir, manual_dir=manual_dir):
        if held_out is None:
            raise EvaluationError(f"{dataset} has no validation split, and the model directory has no train_config.json "
                                  "saying which train examples its training held out")
        val_rule = (held_out.validation_fraction, held_out.train_limit)
    texts, labels, valence = _examples(dataset, split, limit, data_dir, manual_dir, val_rule)
    result = {"dataset": dataset, "split": split, **evaluate_sentiment(model, texts, labels, valence)}
    train_on = baseline_train_dataset or dataset
    if baselines and baseline_train_dataset:
        result["baselines_trained_on"] = train_on
    train = None
    # on the held-out validation examples, the baselines learn from the rest of train only
    train_split = "train_without_validation" if val_rule and train_on == dataset else "train"
    if baselines and majority is None:
        train = _examples(train_on, train_split, baseline_train_limit, data_dir, manual_dir, val_rule)
        values, counts = np.unique(train[1], return_counts=True)
        majority = {str(v): int(c) for v, c in zip(values, counts)}
    if majority:
        result["baseline_majority"] = majority_baseline(labels, majority)
    if baselines:
        if train is None:
            train = _examples(train_on, train_split, baseline_train_limit, data_dir, manual_dir, val_rule)
        result["baseline_vader"] = vader_baseline(texts, labels, valence)
        result["baseline_tfidf_logreg"] = tfidf_baseline(train[0], train[1], texts, labels)
    return result


# --------------------------------------------------------------------------------------------
# The `textgen evaluate` entry point.


def evaluate_model_dir(path: str | Path, *, dataset: str | None = None, split: str = "test",
                       text_file: str | None = None, limit: int = 0, baselines: bool = False,
                       baseline_train_limit: int = 0, baseline_train_dataset: str | None = None, streams: int = 64,
                       data_dir=None, manual_dir=None) -> dict:
    """Evaluates a model directory; returns one JSON-ready dict."""
    from textgen import config as config_lib, tasks
    from textgen.artifacts import load_model_dir
    from textgen.config import TRAIN_CONFIG_FILE

    md = load_model_dir(path)
    dataset = dataset or (md.metadata.get("dataset") or {}).get("name")
    trained_on = (md.metadata.get("dataset") or {}).get("name")
    result: dict = {"model_dir": str(path), "task": md.task, **({"trained_on": trained_on} if trained_on else {})}
    # How training split its data (a held-out validation part of train), when the model was trained
    # on this dataset and its train_config.json is there.
    train_file = Path(path) / TRAIN_CONFIG_FILE
    train_config = config_lib.load_config(train_file) if dataset == trained_on and train_file.is_file() else None
    # The task reads its own flags: --text-file (character models), --baselines (sentiment), ...
    result.update(tasks.for_config(md.config).evaluate(
        md.model, dataset, split, metadata=md.metadata, data_dir=data_dir, manual_dir=manual_dir, limit=limit,
        text_file=text_file, baselines=baselines, baseline_train_limit=baseline_train_limit,
        baseline_train_dataset=baseline_train_dataset, streams=streams, train_config=train_config))
    return result
