"""The shipped models in saved_models/: each loads, its card agrees with its metadata.json, a quick
evaluation on its test split agrees with the recorded metric, character models generate text from
their own vocabulary, and the size limits hold.

The same checks run on a tiny model directory trained here (2 epochs x 3 steps) and carded, so
they are exercised even while saved_models/ is empty, and they are shown to catch a tampered
card, a wrong recorded metric and an oversized directory.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from textgen import card, cli, compare
from textgen.artifacts import load_model_dir
from textgen.cardkit import recorded_test

from tests.conftest import require

REPO = Path(__file__).resolve().parents[1]
SAVED = REPO / "saved_models"
SHIPPED_NAMES = ("shakespeare_char", "zoo_simple_rnn", "zoo_gru", "zoo_lstm", "zoo_minimal_gru",
                 "zoo_peephole_lstm", "imdb_sentiment", "imdb_average", "vader_sentiment", "classical_chinese_char")
MAX_DIR_BYTES = 50 * 1024**2
MAX_TOTAL_BYTES = 150 * 1024**2
PRESENT = sorted(p.name for p in SAVED.iterdir() if p.is_dir()) if SAVED.is_dir() else []


# --------------------------------------------------------------------------------------------
# The checks (used on the shipped directories and on the tiny one).


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def size_problems(root: Path, names) -> list[str]:
    problems = [f"{n}: {dir_bytes(root / n) / 1e6:.1f} MB > 50 MiB"
                for n in names if dir_bytes(root / n) > MAX_DIR_BYTES]
    total = sum(dir_bytes(root / n) for n in names)
    if total > MAX_TOTAL_BYTES:
        problems.append(f"all models together: {total / 1e6:.1f} MB > 150 MiB")
    return problems


def quick_charlm_check(model, text: str, recorded_nats: float, windows: int = 16,
                       length: int = 400) -> tuple[float, float]:
    """(mean loss of `windows` spread-out windows, tolerance); asserts |mean - recorded| <= tolerance.

    The windows (each primed on the 256 characters before it, as in the recorded evaluation) are
    a systematic sample of the split, so their mean estimates the split's loss with standard
    error ~ std(window means) / sqrt(windows). Four standard errors (t with 15 degrees of freedom:
    a false alarm about 1 time in 1000) plus 0.01 nats for the few cold characters at the start of
    the recorded run's first stream is the tolerance.
    """
    ids = compare.encode(model, text)
    starts = np.linspace(256, len(ids) - length - 1, windows).astype(int)
    means = compare.window_nats(model, ids, starts, length, burn_in=256).mean(axis=1)  # (windows,)
    tolerance = 4 * means.std(ddof=1) / math.sqrt(windows) + 0.01
    assert abs(means.mean() - recorded_nats) <= tolerance, (means.mean(), recorded_nats, tolerance)
    return float(means.mean()), float(tolerance)


def quick_sentiment_check(model, dataset: str, recorded_accuracy: float, n: int, data_dir, manual_dir=None) -> None:
    """Accuracy on the first `n` test examples vs the accuracy recorded on the whole split.

    The first n of TFDS's shuffled split are a random sample without replacement, so the slice's
    accuracy has standard error sqrt(p(1-p)/n) (times the finite-population factor, <= 1); the
    tolerance is four of those plus one example's worth (1/n).
    """
    from textgen.evaluate import evaluate_sentiment_split

    got = evaluate_sentiment_split(model, dataset, "test", data_dir=data_dir, manual_dir=manual_dir, limit=n)
    p = recorded_accuracy
    tolerance = 4 * math.sqrt(max(p * (1 - p), 1e-4) / n) + 1 / n
    assert abs(got["model"]["accuracy"] - p) <= tolerance, (got["model"]["accuracy"], p, tolerance)


def generation_check(model, vocabulary) -> None:
    from textgen.sampling import Sampler, SamplingParams

    for temperature in (0.5, 1.0):
        (text,) = Sampler(model).generate("", SamplingParams(length=200, temperature=temperature, seed=11))
        assert len(text) == 200 and set(text) <= set(vocabulary), set(text) - set(vocabulary)


# --------------------------------------------------------------------------------------------
# The shipped directories (whatever saved_models/ holds now).


def test_saved_models_holds_only_the_shipped_names():
    assert set(PRESENT) <= set(SHIPPED_NAMES), sorted(set(PRESENT) - set(SHIPPED_NAMES))
    assert size_problems(SAVED, PRESENT) == []


def test_makefile_trains_every_shipped_model_with_a_seed():
    """`make models` has one train command per shipped name; each parses, sets --seed and --out."""
    require(shutil.which("make") is not None, "GNU make is not installed")
    listed = subprocess.run(["make", "-s", "--no-print-directory", "print-train-commands"], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    commands = dict(line.split("\t", 1) for line in listed.stdout.splitlines())
    assert tuple(commands) == SHIPPED_NAMES
    members = subprocess.run(["make", "-s", "--no-print-directory", "print-member-commands"], cwd=REPO,
                             capture_output=True, text=True, timeout=60)
    assert members.returncode == 0, members.stderr
    member_commands = dict(line.split("\t", 1) for line in members.stdout.splitlines())
    for path, command in member_commands.items():  # runs that averages hold, trained like any model
        model_cfg, train_cfg, out = cli.train_configs(cli.build_parser().parse_args(card.normalise_command(command)))
        assert train_cfg.seed is not None and out == path, path
    for name, command in commands.items():
        args = cli.build_parser().parse_args(card.normalise_command(command))
        if args.command == "average":  # made from trained members, each of them made by a command here
            assert Path(args.out).name == name and len(args.members) >= 2
            for member in args.members:
                assert member in member_commands or (Path(member).parent.name == "saved_models"
                                                     and Path(member).name in commands), member
            continue
        model_cfg, train_cfg, out = cli.train_configs(args)
        assert train_cfg.seed is not None and Path(out).name == name, name
        assert (args.task == "charlm") == (name in ("shakespeare_char", "classical_chinese_char")
                                           or name.startswith("zoo_"))


@pytest.mark.slow
@pytest.mark.parametrize("name", PRESENT or [pytest.param(
    None, marks=pytest.mark.skip(reason="saved_models/ holds no models yet: `make models` trains them"))])
def test_shipped_model(name, request):
    path = SAVED / name
    md = load_model_dir(path)
    meta = md.metadata
    averaged = bool(meta.get("members"))  # an average was not trained: its members were, each with a seed
    assert (path / "README.md").is_file() and (averaged or (path / "training_curve.png").is_file())
    assert card.verify_card(path) == []
    assert meta["seed"] is not None and meta["training_time_s"] > 0 and meta["versions"]
    if averaged:
        assert all(m["seed"] is not None and m["training_time_s"] > 0 for m in meta["members"])
    if md.task == "charlm":
        from textgen import data

        fixture = "shakespeare_data_dir" if meta["dataset"]["name"] == "tiny_shakespeare" else "fortunes_zh_data_dir"
        data_dir = request.getfixturevalue(fixture)
        text = data.read_text(meta["dataset"]["name"], "test", data_dir=data_dir)
        quick_charlm_check(md.model, text, meta["metrics"]["loss_nats"])
        generation_check(md.model, meta["vocabulary"])
    else:
        data_dir = request.getfixturevalue("prepared_data_dir")
        # Training's test figure, or under --no-test the one `textgen evaluate` recorded (as the card reads it).
        recorded = recorded_test(meta)
        quick_sentiment_check(md.model, meta["dataset"]["name"], recorded["model"]["accuracy"], 1000, data_dir)


# --------------------------------------------------------------------------------------------
# The same checks on a tiny model directory made here.


@pytest.fixture(scope="module")
def tiny_saved(shakespeare_data_dir, tmp_path_factory) -> Path:
    """tmp/saved_models/shakespeare_char: trained 2 epochs x 3 steps with the CLI, then carded."""
    root = tmp_path_factory.mktemp("saved_models")
    out = root / "shakespeare_char"
    argv = ["train", "charlm", "--cell", "lstm", "--units", "24", "--embedding-dim", "8", "--epochs", "2",
            "--steps-per-epoch", "3", "--validation-steps", "2", "--batch-size", "8", "--seq-len", "32", "--seed", "5",
            "--data-dir", str(shakespeare_data_dir), "--out", str(out), "--quiet", "--set", "deterministic=false"]
    assert cli.main(argv) == 0
    assert cli.main(["card", str(out), "--command", "textgen " + " ".join(argv), "--sample-length", "60"]) == 0
    return root


def test_tiny_directory_passes_every_check(tiny_saved, shakespeare_data_dir):
    from textgen import data

    path = tiny_saved / "shakespeare_char"
    md = load_model_dir(path)
    assert card.verify_card(path) == []
    text = data.read_text("tiny_shakespeare", "test", data_dir=shakespeare_data_dir)
    quick_charlm_check(md.model, text, md.metadata["metrics"]["loss_nats"])
    generation_check(md.model, md.metadata["vocabulary"])
    assert size_problems(tiny_saved, ["shakespeare_char"]) == []


def test_checks_catch_a_tampered_card(tiny_saved, tmp_path):
    path = tmp_path / "shakespeare_char"
    shutil.copytree(tiny_saved / "shakespeare_char", path)
    meta = json.loads((path / "metadata.json").read_text())
    readme = path / "README.md"
    bpc = f"{meta['metrics']['bits_per_char']:.4f}"
    readme.write_text(readme.read_text().replace(bpc, f"{float(bpc) - 1:.4f}"))
    assert any("not from metadata.json" in p for p in card.verify_card(path))


def test_quick_evaluation_catches_a_wrong_recorded_metric(tiny_saved, shakespeare_data_dir):
    from textgen import data

    md = load_model_dir(tiny_saved / "shakespeare_char")
    text = data.read_text("tiny_shakespeare", "test", data_dir=shakespeare_data_dir)
    _, tolerance = quick_charlm_check(md.model, text, md.metadata["metrics"]["loss_nats"])
    assert tolerance < 0.1  # tight enough to mean something
    with pytest.raises(AssertionError):
        quick_charlm_check(md.model, text, md.metadata["metrics"]["loss_nats"] - 0.2)


def test_size_limits_are_enforced(tmp_path):
    for name, mb in (("a", 40), ("b", 60), ("c", 45), ("d", 45)):
        (tmp_path / name).mkdir()
        with open(tmp_path / name / "model.keras", "wb") as f:  # sparse: no real disk use
            f.truncate(mb * 1024**2)
    assert size_problems(tmp_path, ["a"]) == []
    assert size_problems(tmp_path, ["b"]) == ["b: 62.9 MB > 50 MiB"]
    assert size_problems(tmp_path, ["a", "c", "d"]) == []  # 130 MiB together: within 150 MiB
    problems = size_problems(tmp_path, ["a", "b", "c", "d"])
    assert "b: 62.9 MB > 50 MiB" in problems and any(p.startswith("all models together") for p in problems)
