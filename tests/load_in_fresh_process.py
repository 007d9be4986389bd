"""Loads saved models in a fresh Python process, as another program would (run as a script).

    python tests/load_in_fresh_process.py MANIFEST.json           # .keras files (tests/test_models.py)
    python tests/load_in_fresh_process.py --exports SPEC.json     # exports (tests/test_export.py)

MANIFEST mode: the manifest lists models written by `tests/test_models.py`: {"models": [{"path",
"custom", "inputs", "expected"}]}, `expected` naming an `.npz` of outputs. Models of built-in
layers only are loaded first with plain `keras.models.load_model` (safe mode) and textgen must not
be imported by then; a model with a custom cell must fail to load before `import textgen` and load
after it. Prints one JSON line: {"max_abs_diff": {path: float}, "textgen_imported_early": bool,
"custom_failed_without_textgen": bool}.

--exports mode: before TensorFlow is imported, `textgen`, `keras` and `tf_keras` are made
unimportable (`BlockImports`: importing them raises ModuleNotFoundError, as where they are not
installed), so every call below proves that the exports need TensorFlow alone. It calls every
signature of the character SavedModel and of the sentiment SavedModels, the character model's
Python attributes, and the TFLite step (TensorFlow's interpreter), and prints one JSON line of
their outputs (see `exports`).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import sys

import numpy as np

BLOCKED = ("textgen", "keras", "tf_keras")


class BlockImports(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """A `sys.meta_path` finder that makes the BLOCKED packages unimportable.

    `importlib.util.find_spec` gets a spec without an origin (TensorFlow's lazy `tf.keras` loader
    then treats the package as absent); `import` raises ModuleNotFoundError. Every attempt is kept
    in `attempts`."""

    def __init__(self):
        self.attempts: list[str] = []

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec):
        self.attempts.append(spec.name)
        raise ModuleNotFoundError(f"No module named {spec.name!r} (blocked: exports must load without it)",
                                  name=spec.name)

    def exec_module(self, module):  # never reached: create_module raises
        raise ModuleNotFoundError(module.__name__)


def outputs(model, inputs: list) -> dict[str, np.ndarray]:
    import tensorflow as tf

    out = model(tf.constant(inputs))
    if isinstance(out, dict):
        return {k: np.asarray(v) for k, v in out.items()}
    return {"output": np.asarray(out)}


def max_diff(model, entry: dict) -> float:
    got = outputs(model, entry["inputs"])
    expected = dict(np.load(entry["expected"]))
    if set(got) != set(expected):
        raise AssertionError(f"{entry['path']}: outputs {sorted(got)} != expected {sorted(expected)}")
    return max(float(np.max(np.abs(got[k] - expected[k]))) for k in got)


def keras_models(manifest_path: str) -> dict:
    import keras

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
    return {"max_abs_diff": diffs, "textgen_imported_early": textgen_imported_early,
            "custom_failed_without_textgen": custom_failed}


def _listed(value) -> list:
    """A tensor's values as JSON: strings decoded, floats as floats."""
    value = np.asarray(value)
    if value.dtype == object:
        return [v.decode("utf-8") for v in value.reshape(-1)] if value.ndim else value.item().decode("utf-8")
    return value.tolist()


def exports(spec_path: str) -> dict:
    """Every signature of the exports in SPEC (paths and inputs, see tests/test_export.py) ->
    {"signatures": {export: {name: {"inputs"|"outputs": {tensor: [dtype, shape]}}}}, one entry of
    outputs per call, "errors": {input: message}, "loaded_blocked" (blocked modules in
    sys.modules: none), "textgen_blocked" (a final `import textgen` failed), "blocked_imports"
    (what TensorFlow or the calls tried to import and could not)}."""
    blocker = BlockImports()
    sys.meta_path.insert(0, blocker)
    import tensorflow as tf

    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    out: dict = {"signatures": {}}

    def contract(loaded) -> dict:
        def named(specs) -> dict:
            return {n: [s.dtype.name, [-1 if d is None else d for d in s.shape.as_list()]] for n, s in specs.items()}

        return {name: {"inputs": named(fn.structured_input_signature[1]), "outputs": named(fn.structured_outputs)}
                for name, fn in loaded.signatures.items()}

    char = tf.saved_model.load(spec["char"])
    out["signatures"]["char"] = contract(char)
    rows, n = spec["rows"], tf.constant(spec["num_chars"])
    prompts = tf.constant(spec["prompts"])
    per_row = {"temperature": tf.constant(rows["temperature"], tf.float32), "seed": tf.constant(rows["seed"], tf.int64)}
    full = {"top_k": tf.constant(rows["top_k"], tf.int32), "top_p": tf.constant(rows["top_p"], tf.float32),
            "repetition_penalty": tf.constant(rows["repetition_penalty"], tf.float32)}
    for name in ("generate", "serving_default"):
        out[name] = _listed(char.signatures[name](prompt=prompts, num_chars=n, **per_row)["text"])
    reversed_rows = {k: tf.reverse(v, [0]) for k, v in per_row.items()}
    out["generate_reversed"] = _listed(char.signatures["generate"](prompt=tf.reverse(prompts, [0]), num_chars=n,
                                                                   **reversed_rows)["text"])
    out["generate_full"] = _listed(char.signatures["generate_full"](prompt=prompts, num_chars=n, **per_row,
                                                                    **full)["text"])
    errors = {
        "seed": dict(per_row, seed=tf.constant([-1] * len(spec["prompts"]), tf.int64)),
        "temperature": dict(per_row, temperature=tf.constant([1.0], tf.float32)),  # one value, several prompts
        "num_chars": dict(per_row, num_chars=tf.constant(-1)),
        "top_p": {**per_row, **full, "top_p": tf.zeros(len(spec["prompts"]), tf.float32)},
    }
    out["errors"] = {}
    for key, inputs in errors.items():
        name = "generate_full" if "top_p" in inputs else "generate"
        inputs = {"num_chars": n, **inputs}
        try:
            char.signatures[name](prompt=prompts, **inputs)
            out["errors"][key] = None
        except tf.errors.InvalidArgumentError as err:
            lines = [line.strip() for line in str(err).splitlines() if "assertion failed" in line]
            out["errors"][key] = lines[0] if lines else str(err)  # any other error fails the test, shown
    # The Python attributes (the earlier API): scalar temperature and seed, then per-row vectors.
    scalar = spec["scalar"]
    out["attribute_scalar"] = _listed(char.generate(prompts, spec["num_chars"], scalar["temperature"], scalar["seed"]))
    out["attribute_scalar_tensors"] = _listed(char.generate(prompts, tf.constant(spec["num_chars"]),
                                                            tf.constant(scalar["temperature"]),
                                                            tf.constant(scalar["seed"], tf.int32)))
    out["attribute_rows"] = _listed(char.generate(prompts, spec["num_chars"], rows["temperature"], rows["seed"]))
    out["attribute_batch_sizes"] = [int(char.generate(tf.constant(["ab"] * k), 4, 1.0, 1).shape[0]) for k in (1, 5)]
    out["attribute_vocabulary"] = _listed(char.vocabulary())

    ids = tf.constant(spec["ids"], tf.int32)  # (batch, time)
    zeros = char.signatures["zero_states"](batch=tf.shape(ids)[0])
    out["zero_states"] = {k: [list(v.shape), float(tf.reduce_max(tf.abs(v)))] for k, v in zeros.items()}
    stepped = char.signatures["step"](ids=ids, **zeros)
    out["step_logits"] = stepped["logits"].numpy().tolist()
    # Two calls, the first call's state outputs fed back by name as the second call's inputs.
    first = char.signatures["step"](ids=ids[:, :2], **zeros)
    second = char.signatures["step"](ids=ids[:, 2:], **{k: v for k, v in first.items() if k != "logits"})
    out["step_split_logits"] = tf.concat([first["logits"], second["logits"]], axis=1).numpy().tolist()
    out["step_states_equal"] = all(bool(tf.reduce_all(stepped[k] == second[k])) for k in zeros)
    logits, _ = char.step(ids, char.zero_states(tf.shape(ids)[0]))
    out["attribute_step_logits"] = logits.numpy().tolist()
    out["vocabulary"] = _listed(char.signatures["vocabulary"]()["vocabulary"])

    interp = tf.lite.Interpreter(model_path=spec["tflite"])
    runner = interp.get_signature_runner()
    with open(spec["tflite_signature"], encoding="utf-8") as f:
        sig = json.load(f)
    states = {f"state_{i}": np.zeros((len(spec["ids"]), k), np.float32) for i, k in enumerate(sig["state_sizes"])}
    tfl = []
    for t in range(ids.shape[1]):
        res = runner(ids=np.array(spec["ids"], np.int32)[:, t], **states)
        tfl.append(res["logits"].tolist())
        states = {f"state_{i}": res[f"new_state_{i}"] for i in range(len(sig["state_sizes"]))}
    out["tflite_logits"] = tfl

    out["sentiment"] = {}
    for key, path in spec["sentiment"].items():
        sent = tf.saved_model.load(path)
        out["signatures"][f"sentiment_{key}"] = contract(sent)
        texts = tf.constant(spec["texts"])
        out["sentiment"][key] = {name: {k: _listed(v) for k, v in sent.signatures[name](text=texts).items()}
                                 for name in ("classify", "serving_default")}
    out["loaded_blocked"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    try:  # proves the blocker was in place: textgen is installed in the environment running this
        import textgen  # noqa: F401

        out["textgen_blocked"] = False
    except ModuleNotFoundError:
        out["textgen_blocked"] = True
    out["blocked_imports"] = sorted(set(blocker.attempts))
    return out


def main(argv: list[str]) -> None:
    if argv[:1] == ["--exports"]:
        print(json.dumps(exports(argv[1]), ensure_ascii=False))
    else:
        print(json.dumps(keras_models(argv[0])))


if __name__ == "__main__":
    main(sys.argv[1:])
