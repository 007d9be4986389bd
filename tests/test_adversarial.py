"""Adversarial training on the embedded words (textgen.adversarial, Miyato et al. 2017)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from textgen import cli, tasks
from textgen.config import RNNConfig, SentimentConfig, TrainConfig

VOCAB = ["", "[UNK]", "good", "bad", "film", "plot", "dull", "great"]
TEXTS = tf.constant(["good film", "a dull bad plot", "great", "bad bad film plot dull"])
LABELS = {"polarity": tf.constant([[1.0], [0.0], [1.0], [0.0]])}


def _trainer(epsilon: float):
    keras.utils.set_random_seed(4)
    cfg = SentimentConfig(rnn=RNNConfig(cell="gru", units=4, bidirectional=True), embedding_dim=3, sequence_length=6,
                          valence_head=False, pooling="max_mean")
    task = tasks.get("sentiment")
    trainer = task.training_model(cfg, TrainConfig(adversarial=epsilon), VOCAB)
    task.compile(trainer, TrainConfig(), keras.optimizers.Adam(0.01))
    return task, cfg, trainer


def test_the_perturbation_has_radius_epsilon_per_text_spares_padding_and_raises_the_loss():
    _, _, trainer = _trainer(0.05)
    loss, _, grads, r = trainer.clean_pass(TEXTS, LABELS, None)
    r = np.asarray(r)  # (4 texts, 6 words, 3)
    np.testing.assert_allclose(np.sqrt((r ** 2).sum(axis=(1, 2))), 0.05, rtol=1e-4)
    ids = np.asarray(trainer.get_layer("vectorize")(TEXTS))
    assert np.all(r[ids == 0] == 0)  # padding does not move: it never reaches the output
    assert len(grads) == len(trainer.trainable_weights)

    def loss_at(shift):
        pred = trainer.inner([TEXTS, tf.constant(shift, tf.float32)], training=False)
        return float(keras.losses.BinaryCrossentropy()(LABELS["polarity"], pred["polarity"]))

    rng = np.random.default_rng(0)
    randoms = []
    for _ in range(20):  # random directions of the same radius on the same words
        noise = rng.normal(size=r.shape) * (ids != 0)[..., None]
        randoms.append(loss_at(0.05 * noise / np.sqrt((noise ** 2).sum(axis=(1, 2), keepdims=True))))
    assert loss_at(r) > loss_at(np.zeros_like(r))
    assert loss_at(r) > max(randoms)  # the steepest direction, to first order


def test_the_trainer_has_the_plain_models_weights_and_is_what_fit_trains(tmp_path):
    task, cfg, trainer = _trainer(1.0)
    plain = task.build(cfg, VOCAB)
    assert [w.path for w in trainer.weights] == [w.path for w in plain.weights]
    before = [np.array(w) for w in trainer.get_weights()]
    history = trainer.fit(TEXTS, LABELS, epochs=2, batch_size=2, verbose=0).history
    assert np.all(np.isfinite(history["loss"])) and "accuracy" in history
    assert any(not np.array_equal(a, b) for a, b in zip(before, trainer.get_weights()))
    plain.set_weights(trainer.get_weights())
    np.testing.assert_allclose(plain(TEXTS)["polarity"], trainer(TEXTS)["polarity"], rtol=1e-6)
    trainer.save_weights(tmp_path / "w.weights.h5")  # the resume checkpoint
    again = task.training_model(cfg, TrainConfig(adversarial=1.0), VOCAB)
    again.load_weights(tmp_path / "w.weights.h5")
    np.testing.assert_allclose(again(TEXTS)["polarity"], trainer(TEXTS)["polarity"], rtol=1e-6)


def test_the_logged_loss_is_the_clean_loss_plus_the_adversarial_one():
    _, _, trainer = _trainer(0.5)
    clean, _, _, r = trainer.clean_pass(TEXTS, LABELS, None)  # at the weights before the one step below
    adversarial = trainer.compute_loss(TEXTS, LABELS, trainer.inner([TEXTS, r], training=True))
    history = trainer.fit(TEXTS, LABELS, epochs=1, batch_size=4, shuffle=False, verbose=0).history  # one batch
    assert float(adversarial) > float(clean) > 0
    np.testing.assert_allclose(history["loss"][0], float(clean) + float(adversarial), rtol=1e-5)


@pytest.mark.slow
def test_train_sentiment_adversarial_saves_the_plain_model(prepared_data_dir, tmp_path, capsys):
    from textgen.artifacts import load_model_dir

    out = tmp_path / "adv"
    argv = ["train", "sentiment", "--dataset", "vader_sentiment/movies", "--data-dir", str(prepared_data_dir),
            "--out", str(out), "--cell", "gru", "--units", "4", "--embedding-dim", "3", "--max-tokens", "300",
            "--sequence-length", "16", "--epochs", "2", "--steps-per-epoch", "3", "--validation-steps", "1",
            "--batch-size", "8", "--adversarial", "2.0", "--seed", "3", "--quiet", "--set", "train_limit=200"]
    assert cli.main(argv) == 0
    md = load_model_dir(out)
    assert [i.name for i in md.model.inputs] == ["text"] and md.model.get_layer("embedding")  # no perturbation input
    assert json.loads((out / "train_config.json").read_text())["config"]["adversarial"] == 2.0
    assert md.metadata["metrics"]["model"]["examples"] > 0
    assert cli.main(["card", str(out), "--command", "textgen " + " ".join(argv)]) == 0
    capsys.readouterr()
    bad = ["train", "charlm", "--data-dir", str(prepared_data_dir), "--out", str(tmp_path / "c"), "--set",
           "adversarial=1.0", "--epochs", "1"]
    assert cli.main(bad) == 2
    assert "adversarial training is for sentiment models" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
