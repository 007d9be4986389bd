"""`textgen average`: one sentiment model whose outputs are the mean of its members', on two tiny
IMDB models of different shapes trained here (the first 200 train reviews, 20 of them held out)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from textgen import card, cli, train
from textgen.artifacts import load_model_dir
from textgen.config import RNNConfig, SentimentConfig
from textgen.inference import SentimentPredictor
from textgen.models.average import members_of

pytestmark = pytest.mark.slow

TEXTS = ["A wonderful, moving film.", "Dull and far too long; I left early.", "", "not good, not bad"]


@pytest.fixture(scope="module")
def members(prepared_data_dir, tmp_path_factory) -> tuple[Path, Path]:
    """Two sentiment runs on the same 200 IMDB reviews (20 held out): a BiGRU reading word pairs and
    a one-way LSTM with max-and-mean pooling."""
    root = tmp_path_factory.mktemp("members")
    shapes = (SentimentConfig(rnn=RNNConfig(cell="gru", units=4, bidirectional=True), max_tokens=300, sequence_length=24,
                              embedding_dim=3, valence_head=False, ngrams=2),
              SentimentConfig(rnn=RNNConfig(cell="lstm", units=5), max_tokens=250, sequence_length=16, embedding_dim=4,
                              valence_head=False, pooling="max_mean"))
    outs = []
    for i, model_cfg in enumerate(shapes):
        cfg = train.TrainConfig(epochs=1, batch_size=16, train_limit=200, seed=i + 1, score_test=False)
        out = root / f"m{i}"
        train.train("sentiment", "aclimdb", out, model_cfg, cfg, data_dir=prepared_data_dir, verbose=0,
                    print_fn=lambda s: None)
        outs.append(out)
    return tuple(outs)


@pytest.fixture(scope="module")
def averaged(members, prepared_data_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("avg") / "imdb_average"
    assert cli.main(["average", *map(str, members), "--out", str(out), "--data-dir", str(prepared_data_dir)]) == 0
    return out


def test_the_average_is_the_mean_of_its_members(members, averaged):
    md = load_model_dir(averaged)
    assert md.task == "average" and [m.name for m in members_of(md.model)] == ["member_0", "member_1"]
    loaded = [load_model_dir(m).model for m in members]
    x = tf.constant(TEXTS)
    want = np.mean([m(x)["polarity"].numpy() for m in loaded], axis=0)  # (4, 1)
    np.testing.assert_allclose(md.model(x)["polarity"].numpy(), want, atol=1e-6)
    assert "valence" not in md.model.output  # no member has the head
    # the compiled predictor runs each member on its own cut path, then the mean
    got = SentimentPredictor(md.model).scores(TEXTS)["p_positive"]
    each = [SentimentPredictor(m).scores(TEXTS)["p_positive"] for m in loaded]
    np.testing.assert_allclose(got, np.mean(each, axis=0), atol=1e-5)
    np.testing.assert_allclose(got, want[:, 0], atol=1e-4)


def test_validation_is_scored_on_the_held_out_reviews_and_evaluate_reads_them_again(members, averaged,
                                                                                      prepared_data_dir, capsys):
    from textgen import evaluate

    meta = load_model_dir(averaged).metadata
    texts, labels, _ = evaluate._examples("aclimdb", "validation", 0, prepared_data_dir, None, held_out=(0.1, 200))
    p = [SentimentPredictor(load_model_dir(m).model).scores(texts)["p_positive"] for m in members]
    assert meta["validation"]["examples"] == 20
    assert meta["validation"]["accuracy"] == pytest.approx((((p[0] + p[1]) / 2 >= 0.5) == labels).mean())
    assert [m["validation_accuracy"] for m in meta["members"]] == pytest.approx([((q >= 0.5) == labels).mean() for q in p])
    assert meta["metrics"] == {} and meta["test_scored_by_training"] is False  # test unread
    assert meta["seed"] == [1, 2] and meta["training_time_s"] == pytest.approx(
        sum(load_model_dir(m).metadata["training_time_s"] for m in members), abs=1e-2)
    # `textgen evaluate --split validation` reads the same held-out reviews (no train_config.json here)
    assert cli.main(["evaluate", str(averaged), "--split", "validation", "--baselines",
                     "--data-dir", str(prepared_data_dir), "--json"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["task"] == "average" and ev["model"]["examples"] == 20
    assert ev["model"]["accuracy"] == pytest.approx(meta["validation"]["accuracy"])
    assert ev["baseline_tfidf_logreg"]["train_examples"] == 180


def test_every_smaller_choice_of_members_is_scored(members, averaged, prepared_data_dir):
    """validation_scores (and so bench.average) scores the mean of every choice of two or more of the
    models given: here the first member given twice, so that choices with known answers exist."""
    from textgen import evaluate
    from textgen.average import validation_scores

    meta = load_model_dir(averaged).metadata
    models = [load_model_dir(m).model for m in members]
    scores = validation_scores([models[0], models[1], models[0]], "aclimdb", (0.1, 200), prepared_data_dir)
    assert sorted(scores["subsets"]) == [(0, 1), (0, 1, 2), (0, 2), (1, 2)]
    assert scores["subsets"][(0, 2)] == pytest.approx(meta["members"][0]["validation_accuracy"])  # a model with itself
    assert scores["subsets"][(0, 1)] == scores["subsets"][(1, 2)] == pytest.approx(meta["validation"]["accuracy"])
    texts, labels, _ = evaluate._examples("aclimdb", "validation", 0, prepared_data_dir, None, held_out=(0.1, 200))
    p = [SentimentPredictor(m).scores(texts)["p_positive"] for m in models]
    assert scores["accuracy"] == scores["subsets"][(0, 1, 2)] == pytest.approx(
        (((2 * p[0] + p[1]) / 3 >= 0.5) == labels).mean())


def test_bench_scores_the_average_on_other_validation_splits_too(members, averaged, prepared_data_dir):
    """bench.average --on DATASET: the same scoring on another dataset's validation split (here the VADER
    tweets, which these IMDB models never read), equal to an independent computation."""
    from tests.conftest import load_bench
    from textgen import evaluate

    validation_average = load_bench("average").validation_average

    dirs = [str(m) for m in members]
    result = validation_average(dirs, data_dir=prepared_data_dir, on=["vader_sentiment/tweets"])
    assert result["dataset"] == "aclimdb" and result["examples"] == 20
    assert result["average"] == pytest.approx(load_model_dir(averaged).metadata["validation"]["accuracy"])
    tweets = result["on"]["vader_sentiment/tweets"]
    texts, labels, _ = evaluate._examples("vader_sentiment/tweets", "validation", 0, prepared_data_dir, None)
    p = [SentimentPredictor(load_model_dir(m).model).scores(texts)["p_positive"] for m in members]
    assert tweets["examples"] == len(texts) > 100
    assert [tweets["models"][d] for d in dirs] == pytest.approx([((q >= 0.5) == labels).mean() for q in p])
    assert tweets["average"] == pytest.approx((((p[0] + p[1]) / 2 >= 0.5) == labels).mean())


def test_card_export_and_the_app_take_the_average(members, averaged, prepared_data_dir, tmp_path, capsys):
    # the card: written from the recorded `textgen average` command, checked, and a changed command is caught
    assert cli.main(["evaluate", str(averaged), "--limit", "40", "--data-dir", str(prepared_data_dir), "--json"]) == 0
    ev = tmp_path / "ev.json"
    ev.write_text(capsys.readouterr().out)
    command = f"textgen average {members[0]} {members[1]} --out {averaged}"
    assert cli.main(["card", str(averaged), "--evaluation", str(ev), "--command", command]) == 0
    text = (averaged / "README.md").read_text()
    assert "## Members" in text and "textgen average" in text and "member_0" not in text
    assert card.verify_card(averaged) == []
    tampered = text.replace("textgen average", "textgen average --embedding-dtype float16", 1)
    (averaged / "README.md").write_text(tampered)
    assert any("embedding dtype" in p for p in card.verify_card(averaged))
    (averaged / "README.md").write_text(text)
    # the SavedModel's classify signature gives the averaged P(positive)
    out = tmp_path / "export"
    assert cli.main(["export", str(averaged), "--out", str(out)]) == 0
    exported = tf.saved_model.load(str(out))
    got = exported.signatures["classify"](text=tf.constant(TEXTS))["p_positive"].numpy()
    want = load_model_dir(averaged).model(tf.constant(TEXTS))["polarity"].numpy()[:, 0]
    np.testing.assert_allclose(got, want, atol=1e-6)
    # the app's Sentiment page lists models of tasks that extend sentiment
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "apps"))
    import os

    old = os.environ.get("TEXTGEN_MODEL_DIRS")
    os.environ["TEXTGEN_MODEL_DIRS"] = str(averaged.parent)
    try:
        import resources

        assert resources.list_models("sentiment")["imdb_average"] == str(averaged)
        assert "imdb_average" not in resources.list_models("charlm")
    finally:
        os.environ.pop("TEXTGEN_MODEL_DIRS") if old is None else os.environ.update(TEXTGEN_MODEL_DIRS=old)


def test_float16_embeddings_halve_the_tables_and_keep_the_predictions(members, averaged, prepared_data_dir, tmp_path):
    out = tmp_path / "half"
    assert cli.main(["average", *map(str, members), "--out", str(out), "--embedding-dtype", "float16",
                     "--data-dir", str(prepared_data_dir)]) == 0
    half, full = load_model_dir(out), load_model_dir(averaged)
    assert half.config.embedding_dtype == "float16"
    tables = sum(m.get_layer("embedding").embeddings.shape.num_elements() for m in members_of(full.model))
    saved = (averaged / "model.keras").stat().st_size - (out / "model.keras").stat().st_size
    assert saved == pytest.approx(2 * tables, rel=0.1)  # 2 bytes a number fewer (zip overhead aside)
    x = tf.constant(TEXTS)
    np.testing.assert_allclose(half.model(x)["polarity"].numpy(), full.model(x)["polarity"].numpy(), atol=2e-3)
    assert half.metadata["validation"]["examples"] == 20


def test_refusals_leave_every_folder_as_it_was(members, averaged, prepared_data_dir, tmp_path, capsys):
    a, b = map(str, members)
    data = ["--data-dir", str(prepared_data_dir)]

    def refused(argv, words):
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert words in err, err

    refused(["average", a, "--out", str(tmp_path / "x"), *data], "two or more")
    refused(["average", a, str(Path(a) / "." ), "--out", str(tmp_path / "x"), *data], "given twice")
    refused(["average", a, b, "--out", a, *data], "--out")
    refused(["average", a, str(averaged), "--out", str(tmp_path / "x"), *data], "members are sentiment models")
    no_config = tmp_path / "no_config"
    shutil.copytree(b, no_config)
    (no_config / "train_config.json").unlink()
    refused(["average", a, str(no_config), "--out", str(tmp_path / "x"), *data], "train_config.json")
    other_rule = tmp_path / "other_rule"
    shutil.copytree(b, other_rule)
    cfg = json.loads((other_rule / "train_config.json").read_text())
    cfg["config"]["train_limit"] = 300
    (other_rule / "train_config.json").write_text(json.dumps(cfg))
    refused(["average", a, str(other_rule), "--out", str(tmp_path / "x"), *data], "different data or validation splits")
    assert not (tmp_path / "x").exists()
    # a folder of the user's is never replaced, with or without --overwrite
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    refused(["average", a, b, "--out", str(mine), *data], "not empty")
    refused(["average", a, b, "--out", str(mine), "--overwrite", *data], "textgen did not write")
    assert sorted(p.name for p in mine.iterdir()) == ["notes.txt"] and (mine / "notes.txt").read_text() == "keep me"
    # an average textgen wrote is replaced only with --overwrite
    before = (averaged / "model.keras").read_bytes()
    refused(["average", a, b, "--out", str(averaged), *data], "--overwrite")
    assert (averaged / "model.keras").read_bytes() == before
    # and `textgen train average` does not exist: averages are made, not trained
    with pytest.raises(SystemExit) as exc:
        cli.main(["train", "average", "--out", str(tmp_path / "y")])
    assert exc.value.code == 2
    from textgen import tasks
    from textgen.config import AverageConfig, ConfigError

    assert "average" in tasks.names() and "average" not in tasks.trainable()
    with pytest.raises(ConfigError, match="are not trained"):
        train.train("average", "aclimdb", tmp_path / "y", AverageConfig(members=(SentimentConfig(),) * 2),
                    train.TrainConfig(), data_dir=prepared_data_dir)
    assert not (tmp_path / "y").exists()
