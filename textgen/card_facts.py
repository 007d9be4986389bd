"""What a card states, from metadata.json and the model directory: its `Facts`, tables, verdicts and limitations.

Every number comes from metadata.json (metrics, training time, seed, versions), from the model
itself (parameter count) or from the files (size on disk); each task adds its own tables and
verdicts. Both writing a card (`textgen.card`) and checking one (`textgen.card_check`) build them here.
"""

from __future__ import annotations

from pathlib import Path

from textgen.config import TRAIN_CONFIG_FILE
from textgen.card_load import registered_classes
from textgen.cardkit import Facts, Table, duration as _duration, num as _num, pct as _pct, source_times

CARD_FILE = "README.md"
CURVE_FILE = "training_curve.png"
SAMPLE_TEMPERATURES = (0.5, 0.8, 1.0)
SAMPLE_SEED = 1234  # default sampling seed, printed in the card
SAMPLE_LENGTH = 300  # characters per sample
NOTES_KEY = "card_notes"  # metadata.json: free Markdown from `textgen card --notes FILE` (what was tried, ...)

# Limitations of a model whose task names no anchor set for its dataset (a user's own corpus).
DEFAULT_LIMITATION = ("Evaluated only on the split named above; behaviour on other text is unknown. Check the metrics "
                      "before relying on it.")


def anchor_set(task: str, dataset: str | None, name: str = "") -> str | None:
    """Which anchors and limitations fit ("shakespeare" | "zoo" | "imdb" | "vader" | None): the task's call."""
    from textgen import tasks

    return tasks.get(task).card_anchor_set(dataset or "", name) if task in tasks.names() else None


def limitations(f: Facts) -> str:
    from textgen import tasks

    kind = anchor_set(f.task, f.dataset, f.name)
    return tasks.get(f.task).card_limitations[kind] if kind is not None else DEFAULT_LIMITATION


SIZED_FILES = ("model.keras", "config.json", "metadata.json", TRAIN_CONFIG_FILE, "history.json", CURVE_FILE)


def _dir_bytes(path: Path) -> int:
    """Bytes of the model's own files (`SIZED_FILES` present). Not the card, and not TensorBoard
    logs/, which a repository may leave out: the size must read the same after a clone."""
    return sum((path / name).stat().st_size for name in SIZED_FILES if (path / name).is_file())


def facts_of(model_dir: Path, model, config, metadata: dict) -> Facts:
    params = int(model.count_params())
    return Facts(name=model_dir.name, metadata=metadata, config=config, params=params,
                 model_bytes=(model_dir / "model.keras").stat().st_size, dir_bytes=_dir_bytes(model_dir),
                 has_curve=(model_dir / CURVE_FILE).is_file(),
                 registered=registered_classes(model_dir / "model.keras"), outputs=tuple(model.output_names))


def model_table(f: Facts, training: list[tuple[str, str]] | None = None) -> Table:
    """The card's "Model and training" table: what the model is and what it read, how it was trained
    (`training`: a task whose models are not trained by `textgen train`, such as an average, gives its
    own rows; default: this run's), and the software that made it."""
    m = f.metadata
    ds = m.get("dataset") or {}
    versions = m.get("versions") or {}
    rows = [
        ("parameters", f"{f.params:,}"),
        ("model.keras size", f"{f.model_bytes / 1e6:.2f} MB"),
        ("size on disk (model, configs, metadata, history, curve)", f"{f.dir_bytes / 1e6:.2f} MB"),
        ("dataset", f"{ds.get('name')} (TFDS version {ds.get('version')})"),
        *((f"split: {k}", str(v)) for k, v in sorted((ds.get("splits") or {}).items())),
        *((f"corpus file {i + 1}", f"{Path(s['path']).name}: {s['bytes']:,} bytes, {s['characters']:,} characters, "
           f"{s['encoding']}, sha256 {s['sha256']}") for i, s in enumerate((ds.get("corpus") or {}).get("sources", []))),
        *(training_rows(f) if training is None else training),
        ("source commit", str(m.get("git_commit"))),
        ("versions", ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))),
    ]
    return Table(("", "value"), rows)


def training_rows(f: Facts) -> list[tuple[str, str]]:
    """How a `textgen train` run trained: time, hardware, epochs, the chosen epoch, seed, precision."""
    m = f.metadata
    val = m.get("validation") or {}
    return [
        ("training time", _duration(m.get("training_time_s"))),
        *_source_time_rows(m.get("init_from") or {}, m.get("training_time_s")),
        *([("trained on", _hardware(m["hardware"]))] if m.get("hardware") else []),
        ("epochs run", f"{m.get('epochs_run')} (best {val.get('best_epoch')}, stopped early: "
                       f"{'yes' if m.get('stopped_early') else 'no'}, resumes: {m.get('resumes', 0)})"),
        ("best validation loss", _num(val.get("best_loss"))),
        *([("best validation accuracy (picked the epoch)", _pct(val["best_accuracy"]))]
          if val.get("best_accuracy") is not None else []),
        *([("test split", "not read by training (--no-test): chosen on validation only, then scored once with "
                          "`textgen evaluate` (the re-evaluated rows)")] if m.get("test_scored_by_training") is False else []),
        ("seed", str(m.get("seed"))),
        ("precision / strategy", f"{m.get('precision')} / {m.get('strategy')} ({m.get('num_replicas')} replica(s))"),
    ]


def _source_time_rows(source: dict, own: float | None) -> list[tuple[str, str]]:
    """A transfer's cost includes the models it started from (a pretrained language model's hours):
    their training times, recorded in init_from, and the sum with this run's."""
    times = list(source_times(source).items())
    rows = [(f"training time of `{path}` (started from)", _duration(t)) for path, t in times]
    if times and own is not None:
        rows.append(("training time, the models it started from included", _duration(own + sum(t for _, t in times))))
    return rows


def card_tables(f: Facts) -> list[tuple[str, Table]]:
    from textgen import tasks

    task = tasks.get(f.task)
    return task.card_tables(f) + [("Model and training", task.card_model_table(f))]


def verdicts(f: Facts) -> list[str]:
    """Sentences comparing the metrics with the targets (computed, never typed): the task's call."""
    from textgen import tasks

    return tasks.get(f.task).card_verdicts(f) if f.task in tasks.names() else []


def _hardware(h: dict) -> str:
    gpus = h.get("gpus") or []
    return (f"{h.get('cpu_cores')} CPU core(s), {h.get('cpu')}; "
            + (f"{len(gpus)} GPU(s)" if gpus else "no GPU"))


def metric_rows(metadata: dict) -> list[dict]:
    """The test metrics and every recorded evaluation, each next to the baselines scored on the same
    examples, as flat rows for a table (the app's Models page). Numbers are metadata.json's own."""
    dataset = metadata.get("dataset")
    name = dataset.get("name", "?") if isinstance(dataset, dict) else str(dataset or "?")
    results = [(f"{name} test", metadata["metrics"])] if metadata.get("metrics") else []  # {}: --no-test
    results += [(f"{key.replace(':', ' ')}, re-evaluated", r) for key, r in sorted((metadata.get("evaluations") or {}).items())]
    rows = []
    for where, r in results:
        if not isinstance(r, dict):
            continue
        if "loss_nats" in r and "words" in r:  # word language model: per word
            readers = [("this model", r)] + [(k[len("baseline_"):], v) for k, v in sorted(r.items())
                                              if k.startswith("baseline_") and isinstance(v, dict)]
            rows += [{"evaluated on": where, "reader": name, "loss (nats/word)": v.get("loss_nats"),
                      "perplexity": v.get("perplexity"), "words": v.get("words")} for name, v in readers]
        elif "loss_nats" in r:  # character model: the result itself, then its baselines
            readers = [("this model", r)] + [(k[len("baseline_"):], v) for k, v in sorted(r.items())
                                              if k.startswith("baseline_") and isinstance(v, dict)]
            rows += [{"evaluated on": where, "reader": name, "loss (nats/char)": v.get("loss_nats"),
                      "bits/char": v.get("bits_per_char"), "characters": v.get("characters")} for name, v in readers]
        elif isinstance(r.get("model"), dict):  # sentiment: "model" and "baseline_*" entries
            readers = [("this model", r["model"])] + [(k[len("baseline_"):].replace("_", " "), v) for k, v in sorted(r.items())
                                                      if k.startswith("baseline_") and isinstance(v, dict)]
            for name, v in readers:
                valence = v.get("valence") or {}
                rows.append({"evaluated on": where, "reader": name, "accuracy": v.get("accuracy"), "F1": v.get("f1"),
                             "examples": v.get("examples"), "valence MAE": valence.get("mae"),
                             "valence r": valence.get("pearson_r")})
    return rows

