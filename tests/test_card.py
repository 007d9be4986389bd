"""Model cards: written from metadata.json with a checked train command, refused without one, and
verified row by row (a hand edit is caught)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from textgen import card, cli
from textgen.artifacts import load_model_dir
from textgen.evaluate import classification_metrics, valence_metrics


def tiny_train_argv(data_dir: Path, out: Path) -> list[str]:
    """A real `textgen train` run of 2 epochs x 3 steps (deterministic=false: op determinism is
    process-wide and would outlive the test)."""
    return ["train", "charlm", "--cell", "gru", "--units", "16", "--embedding-dim", "8", "--epochs", "2",
            "--steps-per-epoch", "3", "--validation-steps", "2", "--batch-size", "8", "--seq-len", "32",
            "--seed", "3", "--data-dir", str(data_dir), "--out", str(out), "--quiet", "--set", "deterministic=false"]


@pytest.fixture(scope="module")
def run(shakespeare_data_dir, tmp_path_factory):
    """(model dir, its train command) of a finished tiny run, never carded."""
    out = tmp_path_factory.mktemp("card") / "tiny"
    argv = tiny_train_argv(shakespeare_data_dir, out)
    assert cli.main(argv) == 0
    return out, "textgen " + " ".join(argv)


@pytest.fixture
def model_dir(run, tmp_path):
    """A fresh copy of the run for tests that write into it."""
    copy = tmp_path / "tiny"
    shutil.copytree(run[0], copy)
    return copy


def test_card_refuses_without_a_command_and_writes_nothing(model_dir, capsys):
    assert cli.main(["card", str(model_dir)]) == 2
    err = capsys.readouterr().err
    assert "records no train command" in err and "--command" in err
    assert not (model_dir / "README.md").exists()


@pytest.mark.parametrize("change, message", [
    (lambda a: a.replace("--units 16", "--units 32"), "model config rnn.units: model 16, command 32"),
    (lambda a: a.replace("--seed 3", "--seed 4"), "seed: model 3, command 4"),
    (lambda a: a.replace("--seed 3 ", ""), "seed: model 3, command None"),
    (lambda a: a + " --dataset vader_sentiment/all", "dataset"),
    (lambda a: a.replace("textgen train", "python train.py"), "must start with `textgen train`"),
    (lambda a: a + " --units", "does not parse"),
])
def test_card_refuses_a_command_that_would_not_reproduce_the_model(run, model_dir, change, message):
    with pytest.raises(card.CardError, match=None) as info:
        card.write_card(model_dir, command=change(run[1]))
    assert message in str(info.value)
    assert not (model_dir / "README.md").exists()


def test_card_numbers_come_from_metadata(run, model_dir):
    path = card.write_card(model_dir, command=run[1].replace("textgen", ".venv/bin/textgen", 1))
    text = path.read_text()
    meta = json.loads((model_dir / "metadata.json").read_text())
    m = meta["metrics"]
    row = (f"| tiny_shakespeare test | {m['characters']:,} | {m['loss_nats']:.4f} | {m['bits_per_char']:.4f} | "
           f"{m['perplexity']:.3f} | {m['baseline_unigram']['loss_nats']:.4f} |")
    assert row in text
    assert f"| **this model** (TFDS test split) | {m['loss_nats']:.4f} | {m['bits_per_char']:.4f} |" in text
    assert "| nanoGPT, its CPU configuration (validation) | 1.88 | 2.71 |" in text
    assert f"| parameters | {load_model_dir(model_dir).model.count_params():,} |" in text
    assert f"| training time | {meta['training_time_s']:.1f} s" in text
    hw = meta["hardware"]  # the training time is stated with the machine it was measured on
    assert hw["cpu_cores"] >= 1 and hw["cpu"] and f"| trained on | {hw['cpu_cores']} CPU core(s), {hw['cpu']}; " in text
    assert f"| seed | {meta['seed']} |" in text
    assert f"| source commit | {meta['git_commit']} |" in text
    assert f"- Target (test loss <= 1.47 nats/char): not met, {m['loss_nats'] - 1.47:.4f} nats/char above it." in text
    assert "```bash\n" + run[1] + "\n```" in text  # normalised to `textgen train ...`
    assert "![training curve](training_curve.png)" in text and "## Limitations" in text


def test_card_samples_come_again_from_their_seed(run, model_dir):
    card.write_card(model_dir, command=run[1], sample_seed=7, sample_length=120)
    text = (model_dir / "README.md").read_text()
    samples = card.card_samples(text)
    assert [(t, s) for t, s, _ in samples] == [(0.5, 7), (0.8, 7), (1.0, 7)]
    vocab = set(load_model_dir(model_dir).metadata["vocabulary"])
    for _, _, body in samples:
        assert len(body) == 120 and set(body) <= vocab
    assert card.verify_card(model_dir, regenerate_samples=True) == []


@pytest.mark.parametrize("tamper, found", [
    (lambda t, m: t.replace(f"{m['metrics']['loss_nats']:.4f}", f"{m['metrics']['loss_nats'] - 0.5:.4f}", 1),
     "card row not from metadata.json"),
    (lambda t, m: t.replace("| nanoGPT, its CPU configuration (validation) | 1.88 |",
                            "| nanoGPT, its CPU configuration (validation) | 1.28 |"), "card row not from"),
    (lambda t, m: t.replace("--units 16", "--units 17"), "would not reproduce"),
    (lambda t, m: t.replace("**temperature 1.0**", "**temperature 2.0**"), "temperatures"),
    (lambda t, m: "\n".join(line for line in t.splitlines() if not line.startswith("| seed |")), "lacks the row"),
    (lambda t, m: t.replace("needs no textgen", "needs textgen"), "\"Load it elsewhere\" differs"),
    (lambda t, m: t.replace("## Load it elsewhere", "## Loading"), "\"Load it elsewhere\" differs"),
])
def test_verify_catches_a_tampered_card(run, model_dir, tamper, found, capsys):
    card.write_card(model_dir, command=run[1], sample_length=40)
    assert cli.main(["card", str(model_dir), "--check"]) == 0
    meta = json.loads((model_dir / "metadata.json").read_text())
    path = model_dir / "README.md"
    tampered = tamper(path.read_text(), meta)
    assert tampered != path.read_text()
    path.write_text(tampered)
    problems = card.verify_card(model_dir)
    assert any(found in p for p in problems), problems
    capsys.readouterr()
    assert cli.main(["card", str(model_dir), "--check"]) == 1
    assert "differs from metadata.json" in capsys.readouterr().out


def test_verify_catches_metadata_changed_after_carding(run, model_dir):
    card.write_card(model_dir, command=run[1], sample_length=40)
    meta_path = model_dir / "metadata.json"
    meta = json.loads(meta_path.read_text())
    meta["training_time_s"] += 100
    meta_path.write_text(json.dumps(meta))
    assert any("training time" in p for p in card.verify_card(model_dir))


def test_recorded_evaluation_shows_in_the_card(run, model_dir, shakespeare_data_dir, tmp_path, capsys):
    assert cli.main(["evaluate", str(model_dir), "--limit", "3000", "--streams", "4", "--json",
                     "--data-dir", str(shakespeare_data_dir)]) == 0
    evaluation = tmp_path / "eval.json"
    evaluation.write_text(capsys.readouterr().out)
    assert cli.main(["card", str(model_dir), "--command", run[1], "--evaluation", str(evaluation),
                     "--sample-length", "40"]) == 0
    meta = json.loads((model_dir / "metadata.json").read_text())
    recorded = meta["evaluations"]["tiny_shakespeare:test"]
    assert recorded["characters"] == 2999
    assert f"| tiny_shakespeare test, re-evaluated | 2,999 | {recorded['loss_nats']:.4f} |" in \
        (model_dir / "README.md").read_text()
    assert card.verify_card(model_dir) == []
    other = json.loads(evaluation.read_text()) | {"model_dir": str(tmp_path / "elsewhere")}
    with pytest.raises(card.CardError, match="not of"):
        card.record_evaluation(model_dir, other)


def test_card_cli_bad_evaluation_file_exits_2(run, model_dir, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert cli.main(["card", str(model_dir), "--command", run[1], "--evaluation", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert not (model_dir / "README.md").exists()


# --------------------------------------------------------------------------------------------
# Sentiment tables and verdicts, from metadata shaped by textgen.evaluate's own functions.


def _result(dataset, labels, scores, tfidf_scores, valence=None, pred_valence=None):
    labels = np.asarray(labels)
    model = classification_metrics(labels, np.asarray(scores), 0.5)
    if valence is not None:
        model["valence"] = valence_metrics(np.asarray(valence), np.asarray(pred_valence))
    return {"dataset": dataset, "split": "test", "model": model,
            "baseline_tfidf_logreg": classification_metrics(labels, np.asarray(tfidf_scores), 0.5),
            "baseline_majority": classification_metrics(labels, np.ones(len(labels)), 0.5)}


def test_vader_verdicts_and_anchor_rows():
    from textgen.config import SentimentConfig

    labels = [1, 0, 1, 0, 1]
    good, worse = [0.9, 0.1, 0.8, 0.2, 0.7], [0.9, 0.9, 0.8, 0.2, 0.2]  # accuracy 1.0 and 0.6
    evals = {f"vader_sentiment/{d}:test": _result(f"vader_sentiment/{d}", labels, good, worse,
                                                  [2.0, -1.0, 1.5, -2.5, 0.5], [1.8, -0.5, 1.0, -2.0, 0.0])
             for d in ("movies", "tweets", "amazon")}
    evals["vader_sentiment/nyt:test"] = _result("vader_sentiment/nyt", labels, worse, good)
    meta = {"task": "sentiment", "dataset": {"name": "vader_sentiment/all"}, "evaluations": evals,
            "metrics": _result("vader_sentiment/all", labels, good, worse)}
    f = card.Facts("vader_sentiment", meta, SentimentConfig(), 1000, 10, 20, False)
    assert card.verdicts(f) == ["Beats TF-IDF + logistic regression on: movies, tweets, amazon; not on: nyt.",
                                "Target (>= 80% on movie snippets): met."]
    rows = [row for _, t in card.sentiment_tables(f) for row in t.rows]
    assert ("**this model** (vader_sentiment/movies test)", "100.00 %") in rows
    assert ("Kim 2014 CNN", "81.50 %") in rows
    movies = next(r for r in rows if r[0] == "vader_sentiment/movies test, re-evaluated" and len(r) == 7)
    assert movies[2] == "100.00 %" and movies[5] == f"{np.mean([0.2, 0.5, 0.5, 0.5, 0.5]):.3f}"


def test_held_out_evaluations_are_checked_recorded_and_shown(tmp_path):
    from textgen.config import SentimentConfig

    labels = [1, 0, 1, 0, 1]
    (tmp_path / "metadata.json").write_text(json.dumps({"task": "sentiment", "dataset": {"name": "vader_sentiment/all"}}))

    def held(dataset, trained_on, scores, lexicon):
        r = _result(dataset, labels, scores, [0.5] * 5)
        r.update(task="sentiment", model_dir=f"runs/holdout/{trained_on}", trained_on=trained_on,
                 baselines_trained_on=trained_on,
                 baseline_vader=classification_metrics(np.asarray(labels), np.asarray(lexicon), 0.5))
        return r

    good, worse = [0.9, 0.1, 0.8, 0.2, 0.7], [0.9, 0.9, 0.8, 0.2, 0.2]  # accuracy 1.0 and 0.6
    meta = card.record_held_out(tmp_path, held("vader_sentiment/nyt", "vader_sentiment/all_but_nyt", good, worse))
    meta = card.record_held_out(tmp_path, held("vader_sentiment/tweets", "vader_sentiment/all_but_tweets", worse, good))
    assert set(meta["held_out"]) == {"vader_sentiment/nyt:test", "vader_sentiment/tweets:test"}
    # not held out: the model trained on every domain, or on the very domain it is measured on
    for trained_on in ("vader_sentiment/all", "vader_sentiment/all_but_nyt"):
        with pytest.raises(card.CardError, match="not held out"):
            card.record_held_out(tmp_path, held("vader_sentiment/amazon" if trained_on.endswith("nyt") else
                                                "vader_sentiment/nyt", trained_on, good, good))
    with pytest.raises(card.CardError, match="not held out"):
        card.record_held_out(tmp_path, held("vader_sentiment/movies", "vader_sentiment/all_but_nyt", good, good))
    f = card.Facts("vader_sentiment", meta, SentimentConfig(), 1000, 10, 20, False)
    assert card.verdicts(f)[-1] == ("On text it never trained on, beats the VADER lexicon on: vader_sentiment/nyt "
                                    "(+40.00 points); not on: vader_sentiment/tweets (-40.00 points).")
    table = dict(card.sentiment_tables(f))["On text it never trained on (accuracy)"]
    assert table.rows[0] == ("vader_sentiment/nyt test", "`runs/holdout/vader_sentiment/all_but_nyt` "
                             "(vader_sentiment/all_but_nyt)", "5", "100.00 %", "60.00 %", "40.00 %", "60.00 %")


def test_anchor_sets_follow_task_dataset_and_name(run):
    md = load_model_dir(run[0])
    assert card.anchor_set("charlm", "tiny_shakespeare", "shakespeare_char") == "shakespeare"
    assert card.anchor_set("sentiment", "aclimdb") == card.anchor_set("sentiment", "imdb_reviews") == "imdb"
    assert card.anchor_set("sentiment", "vader_sentiment/all") == "vader"
    assert card.anchor_set("charlm", "some_text") is None
    labels = {}
    for name in ("shakespeare_char", "zoo_gru"):
        f = card.Facts(name, md.metadata, md.config, 1, 1, 1, False)
        labels[name] = [row[0] for _, t in card.charlm_tables(f) for row in t.rows]
        assert "nanoGPT, its CPU configuration (validation)" in labels[name]
    # The zoo models have a shared budget, not the shipped model's target.
    assert "target for this model (TFDS test split)" in labels["shakespeare_char"]
    assert "target for this model (TFDS test split)" not in labels["zoo_gru"]
    assert card.verdicts(card.Facts("zoo_gru", md.metadata, md.config, 1, 1, 1, False)) == []


def test_notes_are_recorded_shown_and_checked(run, model_dir, tmp_path, capsys):
    notes = tmp_path / "notes.md"
    notes.write_text("Tried a 1-layer LSTM first: 1.62 nats.\n\n| run | nats |\n| --- | --- |\n| 1 | 1.62 |\n\n"
                     "### Next\n\nTrain longer.\n")
    assert cli.main(["card", str(model_dir), "--command", run[1], "--notes", str(notes), "--sample-length", "40"]) == 0
    text = (model_dir / "README.md").read_text()
    assert "## Notes\n\nTried a 1-layer LSTM first: 1.62 nats.\n\n| run | nats |" in text
    assert "### Next\n\nTrain longer.\n\n## " in text
    assert json.loads((model_dir / "metadata.json").read_text())["card_notes"].startswith("Tried a 1-layer")
    assert card.verify_card(model_dir) == []
    # Rewriting the card without --notes keeps them; a hand edit of them is caught.
    card.write_card(model_dir, command=run[1], sample_length=40)
    assert "Tried a 1-layer LSTM first" in (model_dir / "README.md").read_text()
    (model_dir / "README.md").write_text(text.replace("| 1 | 1.62 |", "| 1 | 1.42 |"))  # a table in the notes
    assert "the card's notes differ from metadata.json's card_notes" in card.verify_card(model_dir)
    notes.write_text("## Results\n")
    capsys.readouterr()
    assert cli.main(["card", str(model_dir), "--command", run[1], "--notes", str(notes)]) == 2
    assert "level-2 headings" in capsys.readouterr().err
    assert cli.main(["card", str(model_dir), "--command", run[1], "--notes", str(tmp_path / "none.md")]) == 2


def test_verdicts_say_how_far_a_target_is_and_transfer_is_described():
    from textgen.config import SentimentConfig

    labels = [1, 0, 1, 0, 1]
    meta = {"task": "sentiment", "dataset": {"name": "aclimdb"},
            "metrics": _result("aclimdb", labels, [0.9, 0.1, 0.8, 0.2, 0.2], [0.5] * 5),  # accuracy 0.8
            "init_from": {"path": "saved_models/imdb_sentiment", "dataset": "aclimdb",
                          "layers_copied": ["embedding", "bi_rnn_0"]}}
    f = card.Facts("imdb_sentiment", meta, SentimentConfig(pooling="max_mean"), 1000, 10, 20, False)
    assert card.verdicts(f) == ["Target (>= 92% test accuracy): not met, 12.00 percentage points short."]
    text = card.describe(f)
    assert "max and mean of its outputs over the words" in text and "into words (" in text
    assert "started from `saved_models/imdb_sentiment` (trained on `aclimdb`)" in text
    assert "weights of embedding, bi_rnn_0" in text
    # No recorded training time for the source (an older run): no rows about it.
    assert not [r for r in card.model_table(f).rows if "started from" in r[0]]
    # A fine-tuned model's cost includes its pretraining, forward and backward.
    meta.update(training_time_s=600.0, init_from={**meta["init_from"], "path": "runs/lm_fwd", "training_time_s": 6444.0,
                                                  "backward_path": "runs/lm_bwd", "backward_training_time_s": 5000.0})
    rows = dict(card.model_table(f).rows)
    assert rows["training time of `runs/lm_fwd` (started from)"] == "6444.0 s (1.79 h)"
    assert rows["training time of `runs/lm_bwd` (started from)"] == "5000.0 s (1.39 h)"
    assert rows["training time, the models it started from included"] == "12044.0 s (3.35 h)"
    lm = card.Facts("shakespeare_char", {"task": "charlm", "dataset": {"name": "tiny_shakespeare"},
                                         "metrics": {"loss_nats": 1.5}}, None, 1, 1, 1, False)
    assert card.verdicts(lm) == ["Target (test loss <= 1.47 nats/char): not met, 0.0300 nats/char above it."]


def test_an_average_card_counts_each_members_pretraining_once_and_says_when_it_is_not_recorded():
    from textgen.config import AverageConfig, RNNConfig, SentimentConfig

    lm = {"path": "runs/imdb_wordlm_fwd", "training_time_s": 6000.0}
    members = [{"path": "runs/a", "training_time_s": 100.0, "validation_accuracy": 0.8, "seed": 1,
                "init_from": {"path": "saved_models/imdb_sentiment"}},  # an older run: its source's time unknown
               {"path": "runs/b", "training_time_s": 200.0, "validation_accuracy": 0.7, "seed": 1, "init_from": lm},
               {"path": "runs/c", "training_time_s": 300.0, "validation_accuracy": 0.7, "seed": 2, "init_from": lm},
               {"path": "runs/d", "training_time_s": 50.0, "validation_accuracy": 0.6, "seed": 3, "init_from": {}}]
    cfg = SentimentConfig(rnn=RNNConfig(cell="gru", units=4))
    meta = {"task": "average", "dataset": {"name": "aclimdb"}, "members": members,
            "validation": {"examples": 10, "accuracy": 0.9}, "metrics": {}}
    f = card.Facts("avg", meta, AverageConfig(members=(cfg,) * 4), 1000, 10, 20, False)
    tables = dict(card.card_tables(f))
    pretraining = [row[6] for row in tables["Members"].rows]
    assert pretraining == ["not recorded", "6000.0 s (1.67 h)", "6000.0 s (1.67 h)", "-"]
    rows = dict(tables["Model and training"].rows)
    assert rows["training time of the members"] == "650.0 s (10.8 min)"
    assert rows["training time, the language models they started from included"] == "6650.0 s (1.85 h)"  # LM once
    assert rows["parameters"] == "1,000" and "source commit" in rows


# --------------------------------------------------------------------------------------------
# "Load it elsewhere": written from what model.keras names, and its code runs in a fresh process.

CHARS = list("\n :EMORabc")  # holds "ROMEO:", the cards' example prompt
REVIEWS = ["a wonderful moving film", "terrible and boring", "I loved it", "the worst, a waste"]


def _char_dir(root: Path, cell: str) -> Path:
    from textgen.artifacts import save_model_dir
    from textgen.config import CharLMConfig, RNNConfig
    from textgen.models import build_char_lm

    cfg = CharLMConfig(rnn=RNNConfig(cell=cell, units=4), embedding_dim=3)
    return save_model_dir(root / f"char_{cell}", build_char_lm(cfg, CHARS), cfg, {})


def _sentiment_dir(root: Path, pooling: str, valence_head: bool) -> Path:
    from textgen.artifacts import save_model_dir
    from textgen.config import RNNConfig, SentimentConfig
    from textgen.models import adapt_word_vocabulary, build_sentiment_model

    cfg = SentimentConfig(rnn=RNNConfig(cell="gru", units=4, bidirectional=True), max_tokens=30, sequence_length=8,
                          embedding_dim=3, pooling=pooling, valence_head=valence_head)
    model = build_sentiment_model(cfg, adapt_word_vocabulary(cfg, REVIEWS))
    return save_model_dir(root / f"sentiment_{pooling}_{valence_head}", model, cfg, {})


def _facts(path: Path) -> card.Facts:
    md = load_model_dir(path)
    return card.facts_of(path, md.model, md.config, md.metadata)


@pytest.mark.parametrize("cell, expected", [
    ("simple_rnn", ()), ("gru", ()), ("lstm", ()),
    ("minimal_gru", ("textgen>MinimalGRUCell",)), ("peephole_lstm", ("textgen>PeepholeLSTMCell",)),
])
def test_registered_classes_are_read_from_the_keras_file(tmp_path, cell, expected):
    assert card.registered_classes(_char_dir(tmp_path, cell) / "model.keras") == expected


def test_registered_classes_and_heads_of_sentiment_models(tmp_path):
    pooled = _facts(_sentiment_dir(tmp_path, "max_mean", False))
    assert pooled.registered == ("textgen>MaskedMaxMeanPooling",) and pooled.outputs == ("polarity",)
    last = _facts(_sentiment_dir(tmp_path, "last", True))
    assert last.registered == () and last.outputs == ("polarity", "valence")
    (tmp_path / "broken.keras").write_bytes(b"PK not really")
    with pytest.raises(card.CardError, match="cannot read the saved config"):
        card.registered_classes(tmp_path / "broken.keras")


def test_example_prompt_is_made_of_the_vocabulary():
    lm = lambda vocab, counts=None: card.Facts("m", {"vocabulary": vocab, "unigram_counts": counts or {}},  # noqa: E731
                                               None, 1, 1, 1, False)
    assert card.example_prompt(lm(CHARS)) == "ROMEO:"
    assert card.example_prompt(lm(list("\n，。之不人"), {"之": 9, "人": 7, "不": 3, "，": 99})) == "之人"
    assert card.example_prompt(lm(list("\n 01"))) == "0"


def _python_blocks(lines: list[str]) -> list[str]:
    import re

    return re.findall(r"```python\n(.*?)\n```", "\n".join(lines), re.DOTALL)


# Runs each code block in turn in one fresh Python, each in a namespace of its own, as a user pasting
# the card's blocks into a new interpreter one after the other would (one process: each fresh
# TensorFlow import costs seconds). Per block: {"textgen": imported so far, "out": output shapes} or
# {"error": the exception's text}; a block's outputs are `out` (a dict) or else `logits`.
_FRESH_RUNNER = """
import json, sys, traceback
for code in json.loads(sys.argv[1]):
    ns = {"__name__": "__main__"}
    try:
        exec(compile(code, "<card>", "exec"), ns)
        r = ns.get("out")
        r = r if isinstance(r, dict) else {"logits": ns["logits"]}
        print(json.dumps({"textgen": "textgen" in sys.modules,
                          "out": {k: [int(d) for d in v.shape] for k, v in r.items()}}))
    except Exception:
        print(json.dumps({"error": traceback.format_exc()}))
    sys.stdout.flush()
"""


def _run_fresh(codes: list[str], cwd: Path) -> list[dict]:
    """Runs the code blocks, in order, in one fresh Python; returns one result per block (see above)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _FRESH_RUNNER, json.dumps(codes)], cwd=cwd, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(results) == len(codes), done.stdout[-3000:]
    return results


@pytest.mark.slow
def test_load_section_keras_code_runs_with_textgen_only_where_needed(tmp_path):
    plain, custom = _char_dir(tmp_path, "gru"), _char_dir(tmp_path, "minimal_gru")
    pooled = _sentiment_dir(tmp_path, "max_mean", False)
    code = _python_blocks(card.load_section(_facts(plain), str(plain)))[0]
    assert "import textgen" not in code
    needs = [_python_blocks(card.load_section(_facts(p), str(p)))[0] for p in (custom, pooled)]
    assert all("import textgen  # registers" in c for c in needs)
    without = ["\n".join(line for line in c.splitlines() if not line.startswith("import textgen")) for c in needs]
    # Blocks without textgen first: nothing has imported it when they run.
    results = _run_fresh([code, *without, *needs], tmp_path)
    assert results[0] == {"textgen": False, "out": {"logits": [1, 6, len(CHARS) + 1]}}, results[0]
    for failed in results[1:3]:
        assert "could not be deserialized" in failed.get("error", ""), failed  # the card's warning is real
    assert results[3] == {"textgen": True, "out": {"logits": [1, 6, len(CHARS) + 1]}}, results[3]
    assert results[4] == {"textgen": True, "out": {"polarity": [1, 1]}}, results[4]


@pytest.mark.slow
def test_load_section_savedmodel_code_runs_without_textgen(tmp_path):
    from textgen.export import export_model_dir

    paths = {"char": _char_dir(tmp_path, "minimal_gru"), "sentiment_valence": _sentiment_dir(tmp_path, "max_mean", True),
             "sentiment_no_valence": _sentiment_dir(tmp_path, "max_mean", False)}
    blocks = []
    for kind, path in paths.items():
        f = _facts(path)
        lines = card.load_section(f, str(path))
        text = "\n".join(lines)
        export_model_dir(path, tmp_path / f"{f.name}-savedmodel")  # what the card's `textgen export` line does
        assert f"textgen export {path} --out {f.name}-savedmodel" in text
        assert ("has a valence head" in text) == (kind == "sentiment_valence")
        blocks.append(_python_blocks(lines)[1])
    char, valence, no_valence = _run_fresh(blocks, tmp_path)
    assert all(r.get("textgen") is False for r in (char, valence, no_valence)), (char, valence, no_valence)
    assert char["out"] == {"text": [1]}  # one continuation for the one prompt
    assert set(valence["out"]) == {"p_positive", "label", "valence"}
    assert set(no_valence["out"]) == {"p_positive", "label"}
