"""Loads saved `.keras` models in a fresh Python process and compares their outputs (run as a script).

    python tests/load_in_fresh_process.py MANIFEST.json

The manifest lists models written by `tests/test_models.py`: {"models": [{"path", "custom",
"inputs", "expected"}]}, `expected` naming an `.npz` of outputs. Models of built-in layers only
are loaded first with plain `keras.models.load_model` (safe mode) and textgen must not be imported
by then; a model with a custom cell must fail to load before `import textgen` and load after it.
Prints one JSON line: {"max_abs_diff": {path: float}, "textgen_imported_early": bool,
"custom_failed_without_textgen": bool}.
"""

from __future__ import annotations

import json
import sys

import keras
import numpy as np
import tensorflow as tf


def outputs(model: keras.Model, inputs: list) -> dict[str, np.ndarray]:
    out = model(tf.constant(inputs))
    if isinstance(out, dict):
        return {k: np.asarray(v) for k, v in out.items()}
    return {"output": np.asarray(out)}


def max_diff(model: keras.Model, entry: dict) -> float:
    got = outputs(model, entry["inputs"])
    expected = dict(np.load(entry["expected"]))
    if set(got) != set(expected):
        raise AssertionError(f"{entry['path']}: outputs {sorted(got)} != expected {sorted(expected)}")
    return max(float(np.max(np.abs(got[k] - expected[k]))) for k in got)


def main(manifest_path: str) -> None:
    with open(manifest_path, encoding="utf-8") as f:
        entries = json.load(f)["models"]
    diffs = {}
    for entry in (e for e in entries if not e["custom"]):
        diffs[entry["path"]] = max_diff(keras.models.load_model(entry["path"], safe_mode=True), entry)
    textgen_imported_early = any(name == "textgen" or name.startswith("textgen.") for name in sys.modules)
    custom = [e for e in entries if e["custom"]]
    try:
        keras.models.load_model(custom[0]["path"])
        custom_failed = False
    except Exception:  # Keras raises TypeError for an unknown registered class
        custom_failed = True
    import textgen  # noqa: F401  (registers the custom cells and MaskedMaxMeanPooling)

    for entry in custom:
        diffs[entry["path"]] = max_diff(keras.models.load_model(entry["path"], safe_mode=True), entry)
    print(json.dumps({"max_abs_diff": diffs, "textgen_imported_early": textgen_imported_early,
                      "custom_failed_without_textgen": custom_failed}))


if __name__ == "__main__":
    main(sys.argv[1])
