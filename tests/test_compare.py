"""Cell-kind comparison: parameter formulas against Keras, matched units, the context probe against
independent computations, the written report and the CLI."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from textgen import cli, compare, evaluate
from textgen.artifacts import save_model_dir
from textgen.config import CELL_KINDS, CharLMConfig, ConfigError, RNNConfig
from textgen.models import build_char_lm
from textgen.vocab import build_vocabulary

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("layers", [1, 2])
def test_parameter_formula_matches_keras(kind, layers):
    cfg = CharLMConfig(rnn=RNNConfig(cell=kind, units=7, layers=layers), embedding_dim=5)
    model = build_char_lm(cfg, list("abcdef"))  # vocab_size 7 with [UNK]
    assert compare.char_lm_params(kind, 7, 7, 5, layers) == model.count_params()


@pytest.mark.parametrize("kind", CELL_KINDS)
@pytest.mark.parametrize("target", [50_000, 400_000, 3_000_000])
def test_matched_units_hit_the_target_and_are_the_closest(kind, target):
    units = compare.matched_units(kind, target, 66, 32, 1)
    count = lambda u: compare.char_lm_params(kind, u, 66, 32, 1)  # noqa: E731
    assert abs(count(units) / target - 1) < 0.01
    assert abs(count(units) - target) <= min(abs(count(units - 1) - target), abs(count(units + 1) - target))


def test_matched_units_refuses_bad_arguments():
    with pytest.raises(ConfigError, match="unknown cell kind"):
        compare.matched_units("transformer", 10_000, 66, 32, 1)
    with pytest.raises(ConfigError, match="below the smallest"):
        compare.matched_units("lstm", 100, 66, 32, 1)
    with pytest.raises(ConfigError, match="positive integer"):
        compare.matched_units("gru", 0, 66, 32, 1)


def test_makefile_zoo_units_are_matched():
    """The units the Makefile trains the zoo with are matched_units of its own target."""
    text = (REPO / "Makefile").read_text()
    var = dict(re.findall(r"^(ZOO_\w+)\s*:?=\s*(\S+)", text, re.MULTILINE))
    for kind in CELL_KINDS:
        want = compare.matched_units(kind, int(var["ZOO_PARAMS"]), int(var["ZOO_VOCAB_SIZE"]),
                                     int(var["ZOO_EMBEDDING"]), int(var["ZOO_LAYERS"]))
        assert int(var[f"ZOO_UNITS_{kind}"]) == want, kind


# --------------------------------------------------------------------------------------------
# The probe, on the real test text, with untrained models of every kind (the probe's arithmetic
# does not depend on training; trained models only change the numbers).


@pytest.fixture(scope="module")
def shakespeare(shakespeare_data_dir):
    from textgen import data

    train = data.read_text("tiny_shakespeare", "train", data_dir=shakespeare_data_dir)
    test = data.read_text("tiny_shakespeare", "test", data_dir=shakespeare_data_dir)
    return build_vocabulary(train), test


def _model(kind: str, vocabulary, seed: int = 0):
    import keras

    keras.utils.set_random_seed(seed)
    return build_char_lm(CharLMConfig(rnn=RNNConfig(cell=kind, units=24), embedding_dim=8), vocabulary)


@pytest.mark.parametrize("kind", ["gru", "peephole_lstm"])
def test_carried_loss_equals_evaluate(shakespeare, kind):
    vocabulary, test = shakespeare
    model = _model(kind, vocabulary)
    text = test[:3001]
    nats = compare.carried_nats(model, compare.encode(model, text), streams=8)
    assert nats.shape == (3000,)
    assert nats.mean() == pytest.approx(evaluate.charlm_loss(model, text, streams=8)["loss_nats"], rel=1e-6)


def test_reset_loss_equals_the_full_model_on_each_block(shakespeare):
    """reset k == the training graph run on each k-block from zero states (a last short block too)."""
    import tensorflow as tf

    vocabulary, test = shakespeare
    model = _model("lstm", vocabulary)
    text, k = test[:1 + 7 * 40 + 3], 7
    ids = compare.encode(model, text)
    got = compare.reset_nats(model, ids, k)
    want = []
    for s in range(0, len(ids) - 1, k):
        block = list(text[s: min(s + k, len(ids) - 1)])
        logits = model(np.array([block]), training=False)[0]  # (time, vocab)
        logp = tf.nn.log_softmax(logits, axis=-1).numpy()
        want += [-logp[j, ids[s + j + 1]] for j in range(len(block))]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_reset_longer_than_the_text_is_one_carried_stream(shakespeare):
    vocabulary, test = shakespeare
    model = _model("minimal_gru", vocabulary)
    ids = compare.encode(model, test[:501])
    np.testing.assert_allclose(compare.reset_nats(model, ids, 10_000), compare.carried_nats(model, ids, streams=1),
                               rtol=1e-5)


def test_windows_score_the_same_characters_as_a_primed_stream(shakespeare):
    vocabulary, test = shakespeare
    model = _model("simple_rnn", vocabulary)
    ids = compare.encode(model, test[:2000])
    w = compare.window_nats(model, ids, [300, 1000], length=200, burn_in=300)
    # window at 300 with burn-in 300 reads from the start: the same as the carried single stream.
    np.testing.assert_allclose(w[0], compare.carried_nats(model, ids[:501], streams=1)[300:], rtol=1e-5)
    with pytest.raises(compare.CompareError, match="do not fit"):
        compare.window_nats(model, ids, [100], length=50, burn_in=300)


def test_newline_distance_and_bins():
    text = "ab\ncde\nf"
    # input positions 0..6 predict characters 1..7
    assert compare.newline_distance(text).tolist() == [10**9 + 1, 10**9 + 2, 0, 1, 2, 3, 0]  # no newline yet: far
    nats = np.array([1.0, 1.0, 2.0, 2.0, 2.0, 4.0, 2.0]) * math.log(2)
    bins = compare.binned_bpc(nats, compare.newline_distance(text), edges=(0, 2, 100))
    assert bins == {"0-1": pytest.approx(2.0), "2-99": pytest.approx(3.0), "100+": pytest.approx(1.0)}


def test_probe_reports_gains_against_carried(shakespeare):
    vocabulary, test = shakespeare
    model = _model("gru", vocabulary)
    result = compare.probe(model, test[:2001], resets=(5, 50), streams=4)
    assert result["characters"] == 2000
    for k in (5, 50):
        assert result["gain_bpc"][k] == pytest.approx(result["reset_bpc"][k] - result["carried_bpc"])
    with pytest.raises(compare.CompareError, match="at least"):
        compare.probe(model, test[:150], resets=(100,))


# --------------------------------------------------------------------------------------------
# Model directories -> docs files, and the CLI


@pytest.fixture(scope="module")
def zoo(shakespeare, tmp_path_factory):
    vocabulary, _ = shakespeare
    root = tmp_path_factory.mktemp("zoo")
    dirs = []
    for i, kind in enumerate(CELL_KINDS):
        units = compare.matched_units(kind, 6000, len(vocabulary) + 1, 8, 1)
        cfg = CharLMConfig(rnn=RNNConfig(cell=kind, units=units), embedding_dim=8)
        import keras

        keras.utils.set_random_seed(i)
        model = build_char_lm(cfg, vocabulary)
        meta = {"dataset": {"name": "tiny_shakespeare"}, "training_time_s": 60.0 * (i + 1),
                "metrics": {"split": "test", "bits_per_char": 6.0 + i / 10}}
        dirs.append(save_model_dir(root / f"zoo_{kind}", model, cfg, meta))
    return dirs


def test_compare_writes_the_table_and_plot(zoo, shakespeare_data_dir, tmp_path):
    result = compare.compare_dirs(zoo, data_dir=shakespeare_data_dir, limit_chars=1200, resets=(5, 20), streams=4)
    md, png = compare.write_comparison(result, tmp_path / "docs")
    text = md.read_text()
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert result["characters"] == 1199 and len(result["rows"]) == len(CELL_KINDS)
    for row in result["rows"]:
        line = next(line for line in text.splitlines() if line.startswith(f"| {row['name']} | {row['cell']} |"))
        assert f"| {row['params']:,} |" in line
        assert f"| {row['test_bpc']:.3f} | {row['carried_bpc']:.3f} | {row['reset_bpc'][5]:.3f} |" in line
    params = [r["params"] for r in result["rows"]]
    assert (max(params) - min(params)) / min(params) < 0.05  # matched_units kept the counts together
    assert "differ by at most" in text and "not parameter-matched" not in text


def test_compare_cli(zoo, shakespeare_data_dir, tmp_path, capsys):
    out = tmp_path / "docs"
    code = cli.main(["compare", *map(str, zoo[:2]), "--out", str(out), "--data-dir", str(shakespeare_data_dir),
                     "--limit-chars", "600", "--resets", "5,20", "--streams", "2"])
    assert code == 0
    assert (out / "cell_comparison.md").is_file() and (out / "cell_comparison.png").is_file()


@pytest.mark.parametrize("args, message", [
    (["--resets", "5,x"], "--resets must be"),
    (["--resets", "0"], "reset interval"),
    (["--limit-chars", "100"], "at least 201"),
    (["--text-file", "/nonexistent/t.txt"], "cannot read --text-file"),
])
def test_compare_cli_bad_input_exits_2(zoo, shakespeare_data_dir, tmp_path, capsys, args, message):
    out = tmp_path / "docs"
    code = cli.main(["compare", str(zoo[0]), "--out", str(out), "--data-dir", str(shakespeare_data_dir), *args])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_compare_refuses_a_missing_directory(tmp_path, capsys):
    assert cli.main(["compare", str(tmp_path / "nope"), "--out", str(tmp_path / "docs")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_match_units_cli(capsys):
    assert cli.main(["match-units", "--target-params", "400000", "--embedding-dim", "32"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(CELL_KINDS)
    assert lines[2].split()[:3] == ["lstm", "units", str(compare.matched_units("lstm", 400_000, 66, 32, 1))]
    assert cli.main(["match-units", "--target-params", "10"]) == 2
    assert "below the smallest" in capsys.readouterr().err
