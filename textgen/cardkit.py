"""What model-card rows are built from: a model's facts, a Markdown table, number formats.

`textgen.card` writes the card; each task (`textgen.tasks`) contributes its own tables, verdicts and
examples from these pieces.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass
class Table:
    header: tuple[str, ...]
    rows: list[tuple[str, ...]]

    def markdown(self) -> list[str]:
        cells = lambda row: "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"  # noqa: E731
        return [cells(self.header), "| " + " | ".join("---" for _ in self.header) + " |", *map(cells, self.rows)]


@dataclasses.dataclass
class Facts:
    """What the tables are built from: metadata.json, config.json, the weights and the files."""

    name: str
    metadata: dict
    config: Any
    params: int
    model_bytes: int
    dir_bytes: int
    has_curve: bool
    registered: tuple[str, ...] = ()  # "package>Class" names model.keras needs registered (card.registered_classes)
    outputs: tuple[str, ...] = ()  # the Keras model's output names: ("logits",) or ("polarity"[, "valence"])

    @property
    def task(self) -> str:
        return self.metadata.get("task", "")

    @property
    def dataset(self) -> str | None:
        return (self.metadata.get("dataset") or {}).get("name")


def source_times(init_from: dict) -> dict:
    """{path: training seconds} of the models a transfer run started from (its forward source and, for a
    bidirectional layer, its backward one), as metadata.json's init_from records them; a source whose
    time was not recorded (a run from before textgen recorded it) is left out."""
    pairs = ((init_from.get("path"), init_from.get("training_time_s")),
             (init_from.get("backward_path"), init_from.get("backward_training_time_s")))
    return {path: seconds for path, seconds in pairs if seconds is not None}


def stack(rnn, backward: bool = False) -> str:
    """A recurrent stack in words, from its RNNConfig: "2-layer bidirectional gru (64 units)"."""
    way = "bidirectional " if rnn.bidirectional else "backward " if backward else ""
    return f"{rnn.layers}-layer {way}{rnn.cell} ({rnn.units} units)"


def num(value, digits: int = 4) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.2f} %"


def duration(seconds) -> str:
    if seconds is None:
        return "n/a"
    human = f"{seconds / 3600:.2f} h" if seconds >= 3600 else f"{seconds / 60:.1f} min"
    return f"{seconds:.1f} s ({human})"


def short_of(accuracy: float, target: float) -> str:
    """'met' or how many percentage points are missing."""
    return "met" if accuracy >= target else f"not met, {100 * (target - accuracy):.2f} percentage points short"


HELD_OUT_KEY = "held_out"  # metadata.json: evaluations on data the measured model never trained on


def recorded_test(metadata: dict) -> dict:
    """A model directory's result on its dataset's test split, from its metadata.json: training's, or
    under --no-test the one `textgen evaluate` recorded ({} when neither)."""
    dataset = (metadata.get("dataset") or {}).get("name")
    return metadata.get("metrics") or (metadata.get("evaluations") or {}).get(f"{dataset}:test") or {}


def test_result(f: Facts) -> dict:
    """The card's view of `recorded_test`."""
    return recorded_test(f.metadata)


def evaluated(f: Facts) -> list[tuple[str, dict]]:
    """(label, result) for the test metrics of training (none under --no-test) and every recorded evaluation."""
    metrics = f.metadata.get("metrics") or {}
    out = [(f"{metrics.get('dataset')} {metrics.get('split')}", metrics)] if metrics else []  # {}: --no-test
    for key, r in sorted((f.metadata.get("evaluations") or {}).items()):
        out.append((f"{r.get('dataset')} {r.get('split')}, re-evaluated", r))
    return out
