"""Import a user's own Keras character model (trained the tutorial's way) as a textgen model directory.

Two kinds of input, told apart by their content:

- A whole model: a `.keras` file (or a Keras 2 full-model `.h5`), loaded with
  `keras.models.load_model` in safe mode. Accepted graph (functional or Sequential):
  ids (batch, time) int -> Embedding -> one or more SimpleRNN | GRU | LSTM (return_sequences, all
  the same kind and size; Dropout between them is allowed) -> Dense (vocab logits).
- Weights only, for a subclassed model such as the TensorFlow tutorial's `MyModel`, which Keras 3
  cannot save as `.keras` (its `__init__` arguments are not serialisable): a Keras 3 `.weights.h5`
  (`model.save_weights`, or `ModelCheckpoint(save_weights_only=True)`, which under Keras 3 writes
  nothing else), a Keras 2 weights `.h5`, or a TensorFlow checkpoint (`tf.train.Checkpoint(model=m)`
  `.write`/`.save`, the `ckpt_N` prefixes Keras 2's `ModelCheckpoint` wrote, or the variables of a
  SavedModel such as the tutorial's `one_step` export). These files hold arrays, not how the
  layers connect, so the caller names the architecture (cell kind, units, embedding size, layers:
  Embedding -> that many recurrent layers -> Dense, as in the tutorial) and every stored shape is
  checked against it. Stacked recurrent layers are taken in the order of their names in a
  `.weights.h5` (Keras's default names `gru`, `gru_1`, ... follow creation order), in layer order
  in a Keras 2 `.h5`, and in the checkpoint's own object order in a checkpoint.

The vocabulary file lists the characters in id order, as the tutorial's `ids_from_chars` does:
id 0 is `[UNK]` (a leading "[UNK]" entry is dropped), id i is entry i - 1. The weights are copied
into `build_char_lm`'s graph, which holds the vocabulary in its `char_to_id` layer, so the result
works with `generate`, `export` and the app. Anything else raises `ImportModelError`.

Reading the weights files themselves is `textgen.weight_files`; this module checks what they hold
against the architecture and writes the model directory.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import keras
import numpy as np

from textgen import folders
from textgen.cell_kinds import REGISTRY
from textgen.config import CharLMConfig, RNNConfig
from textgen.vocab import UNK, check_vocabulary
from textgen.weight_files import (  # noqa: F401  (re-exported: the readers are part of the import's API)
    POSITIONAL_ROLES, ImportModelError, StoredLayer, _shape, checkpoint_prefix, read_checkpoint, read_h5_weights,
)

# The Keras built-in layer classes a whole model may use -> cell kind (SimpleRNN, GRU, LSTM).
KINDS = {spec.layer_class: name for name, spec in REGISTRY.items() if spec.builtin}
SKIPPED = (keras.layers.InputLayer, keras.layers.Dropout)  # no weights, identity at inference


def read_vocabulary(path: str | os.PathLike) -> list[str]:
    """Characters in id order (without `[UNK]`) from a JSON list or a one-entry-per-line text file.

    Lines of a text file may use JSON escapes (`\\n`, `\\t`, `\\\\`, `\\u00e9`) so that newline and
    tab can be listed; a line holding a single space is the space character.
    """
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ImportModelError(f"cannot read vocabulary file {path}: {err}") from err
    if raw.lstrip().startswith("["):
        try:
            entries = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ImportModelError(f"{path} is not a valid JSON list: {err}") from err
        if not isinstance(entries, list):
            raise ImportModelError(f"{path} must hold a JSON list of characters")
    else:
        entries = []
        for n, line in enumerate(raw.split("\n"), 1):
            if line == "":
                continue
            try:
                entries.append(json.loads('"' + line.replace('"', '\\"') + '"') if "\\" in line else line)
            except json.JSONDecodeError as err:
                raise ImportModelError(f"{path}:{n}: bad escape in {line!r}") from err
    if entries and entries[0] == UNK:
        entries = entries[1:]
    try:
        return check_vocabulary(entries)
    except ValueError as err:
        raise ImportModelError(f"{path}: {err}") from err


def _layers(model: keras.Model) -> tuple[keras.layers.Layer, list[keras.layers.Layer], keras.layers.Layer]:
    """(embedding, recurrent layers, dense) of a supported graph, in order."""
    layers = [layer for layer in model.layers if not isinstance(layer, SKIPPED)]
    if len(layers) < 3:
        raise ImportModelError("expected Embedding -> SimpleRNN/GRU/LSTM ... -> Dense; the model has too few layers")
    embedding, *rnns, dense = layers
    if not isinstance(embedding, keras.layers.Embedding):
        raise ImportModelError(f"the first layer must be an Embedding; got {type(embedding).__name__}")
    if not isinstance(dense, keras.layers.Dense):
        raise ImportModelError(f"the last layer must be a Dense over the vocabulary; got {type(dense).__name__}")
    for layer in rnns:
        if type(layer) not in KINDS:
            raise ImportModelError(
                f"unsupported layer {layer.name!r} ({type(layer).__name__}); supported: SimpleRNN, GRU, LSTM, Dropout"
            )
        if not layer.return_sequences:
            raise ImportModelError(
                f"layer {layer.name!r} must have return_sequences=True (one prediction per character)"
            )
    if len({type(layer) for layer in rnns}) > 1 or len({layer.units for layer in rnns}) > 1:
        raise ImportModelError("all recurrent layers must be of one kind and size (textgen's config has one of each)")
    if dense.activation not in (keras.activations.linear, None) or not dense.use_bias:
        raise ImportModelError("the Dense layer must output logits (linear activation with bias)")
    return embedding, rnns, dense


def convert(model: keras.Model, vocabulary: list[str]) -> tuple[keras.Model, CharLMConfig]:
    """Builds textgen's char LM for `vocabulary` and copies `model`'s weights into it."""
    from textgen.sampling import SamplingError, cell_kind

    embedding, rnns, dense = _layers(model)
    size = len(vocabulary) + 1  # + [UNK] at id 0
    if embedding.input_dim != size:
        raise ImportModelError(f"vocabulary has {len(vocabulary)} characters + [UNK] = {size} ids, but the "
                               f"Embedding has input_dim {embedding.input_dim}")
    if dense.units != size:
        raise ImportModelError(f"vocabulary has {size} ids (with [UNK]) but the Dense layer has {dense.units} units")
    for layer in rnns:
        try:
            cell_kind(layer)  # the activations the generator implements (GRU: reset_after=True)
        except SamplingError as err:
            raise ImportModelError(str(err)) from err
    config = CharLMConfig(rnn=RNNConfig(cell=KINDS[type(rnns[0])], units=int(rnns[0].units), layers=len(rnns)),
                          embedding_dim=int(embedding.output_dim))
    ours = _build(config, vocabulary, embedding.get_weights(), [layer.get_weights() for layer in rnns],
                  dense.get_weights())
    return ours, config


def _build(config: CharLMConfig, vocabulary: list[str], embedding: list, rnns: list[list], dense: list) -> keras.Model:
    """`build_char_lm(config, vocabulary)` with the given weights: [embeddings (vocab, dim)], per
    recurrent layer [kernel, recurrent_kernel, bias], and [kernel (units, vocab), bias (vocab,)]."""
    from textgen.models import build_char_lm

    ours = build_char_lm(config, vocabulary)
    ours.get_layer("embedding").set_weights(embedding)
    for i, weights in enumerate(rnns):
        ours.get_layer(f"rnn_{i}").set_weights(weights)
    ours.get_layer("logits").set_weights(dense)
    return ours


# --------------------------------------------------------------------------------------------
# Weights files (read by textgen.weight_files) matched to the architecture the flags name

WEIGHT_CELLS = tuple(KINDS.values())  # the built-in layers a tutorial model is made of
GATES = {kind: REGISTRY[kind].blocks for kind in WEIGHT_CELLS}  # kernels are (inputs, gates * units)
LAYER_ROLES = {frozenset({"embeddings"}): "embedding", frozenset({"kernel", "bias"}): "dense",
               frozenset({"kernel", "recurrent_kernel", "bias"}): "recurrent"}


def _is_weight(array: np.ndarray) -> bool:
    """Float arrays are weights; integer ones (seed states, step counters) and scalars are not."""
    return np.issubdtype(array.dtype, np.floating) and array.ndim > 0


def convert_weights(stored: list[StoredLayer], config: CharLMConfig, vocabulary: list[str], source: str,
                    checkpoint: bool = False) -> keras.Model:
    """Builds textgen's char LM for `config` and `vocabulary` from the layers of a weights file.

    Raises ImportModelError, naming `source`, when the file holds other layers, another number of
    recurrent layers, or a shape that `config` does not give (expected vs found). `checkpoint`:
    the layers come from a TF checkpoint (explains recurrent layers that are missing).
    """
    cell, units, dim, count = config.rnn.cell, config.rnn.units, config.embedding_dim, config.rnn.layers
    flags = f"--cell {cell} --units {units} --embedding-dim {dim} --layers {count}"
    found: dict[str, list[StoredLayer]] = {"embedding": [], "recurrent": [], "dense": []}
    for layer in stored:
        if not any(_is_weight(a) for a in layer.arrays.values()):
            continue
        kind = LAYER_ROLES.get(frozenset(layer.arrays))
        if kind is None or not all(_is_weight(a) for a in layer.arrays.values()):
            raise ImportModelError(f"{source} holds weights that are no Embedding, SimpleRNN/GRU/LSTM or Dense "
                                   f"layer: {layer.describe()}")
        found[kind].append(layer)
    for kind, name in (("embedding", "Embedding"), ("dense", "Dense")):
        if len(found[kind]) != 1:
            listed = "; ".join(layer.describe() for layer in found[kind]) or "none"
            raise ImportModelError(f"{source} must hold one {name} layer; found {len(found[kind])}: {listed}")
    (embedding,), recurrent, (dense,) = found["embedding"], found["recurrent"], found["dense"]
    if len(recurrent) != count:
        note = ("; Keras 3 leaves layers kept in a Python list out of a TF checkpoint's model graph: "
                "save with model.save_weights('NAME.weights.h5')") if checkpoint and len(recurrent) < count else ""
        raise ImportModelError(f"{source} holds {len(recurrent)} recurrent layer(s) "
                               f"({', '.join(r.path for r in recurrent) or 'none'}) but --layers is {count}{note}")
    size = len(vocabulary) + 1  # + [UNK] at id 0
    rows = embedding.arrays["embeddings"].shape[0]
    if rows != size:
        raise ImportModelError(f"vocabulary has {len(vocabulary)} characters + [UNK] = {size} ids, but the "
                               f"Embedding {embedding.path!r} in {source} has {rows} rows")
    expected = [(embedding, "embeddings", (size, dim))]
    for i, layer in enumerate(recurrent):
        shapes = REGISTRY[cell].weight_shapes(dim if i == 0 else units, units)  # GRU reset_after: bias (2, 3u)
        expected += [(layer, role, shapes[role]) for role in ("kernel", "recurrent_kernel", "bias")]
    expected += [(dense, "kernel", (units, size)), (dense, "bias", (size,))]
    for layer, role, shape in expected:
        if _shape(layer.arrays[role]) != shape:
            raise ImportModelError(f"{source}: {layer.path}/{role} has shape {_shape(layer.arrays[role])}, but "
                                   f"{flags} with {size} ids expects {shape}{_looks_like(embedding, recurrent, flags)}")
    arrays = [[layer.arrays[role].astype("float32") for role in ("kernel", "recurrent_kernel", "bias")]
              for layer in recurrent]
    return _build(config, vocabulary, [embedding.arrays["embeddings"].astype("float32")], arrays,
                  [dense.arrays["kernel"].astype("float32"), dense.arrays["bias"].astype("float32")])


def _looks_like(embedding: StoredLayer, recurrent: list[StoredLayer], flags: str) -> str:
    """A hint with the flags that the stored shapes fit, e.g. "; the file fits --cell gru --units 32 ..."."""
    kernel, bias = recurrent[0].arrays["recurrent_kernel"], recurrent[0].arrays["bias"]
    if kernel.ndim != 2 or not kernel.shape[0] or kernel.shape[1] % kernel.shape[0]:
        return ""
    units, gates = kernel.shape[0], kernel.shape[1] // kernel.shape[0]
    kind = {gates: kind for kind, gates in GATES.items()}.get(gates)
    if kind is None:
        return ""
    if REGISTRY[kind].recurrent_bias and bias.ndim == 1:
        return "; the file holds a GRU with reset_after=False, which textgen does not implement"
    fits = (f"--cell {kind} --units {units} --embedding-dim {embedding.arrays['embeddings'].shape[-1]} "
            f"--layers {len(recurrent)}")
    return "" if fits == flags else f"; the file fits {fits}"


def architecture(cell=None, units=None, embedding_dim=None, layers=None) -> CharLMConfig:
    """The config that `--cell/--units/--embedding-dim/--layers` give a weights file (layers: 1)."""
    missing = [flag for flag, value in (("--cell", cell), ("--units", units), ("--embedding-dim", embedding_dim))
               if value is None]
    if missing:
        raise ImportModelError(f"a weights file does not record its architecture: give {', '.join(missing)} "
                               "(the tutorial's MyModel: --cell gru --units 1024 --embedding-dim 256)")
    if cell not in WEIGHT_CELLS:
        raise ImportModelError(f"--cell must be one of {', '.join(WEIGHT_CELLS)}; got {cell!r}")
    layers = 1 if layers is None else layers
    limits = (("--units", units, None), ("--embedding-dim", embedding_dim, None), ("--layers", layers, 16))
    for flag, value, top in limits:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1 or (top and value > top):
            raise ImportModelError(f"{flag} must be an integer in [1, {top or 'inf'}]; got {value!r}")
    return CharLMConfig(rnn=RNNConfig(cell=cell, units=units, layers=layers), embedding_dim=embedding_dim)


# --------------------------------------------------------------------------------------------
# The command


def _source(path: Path) -> tuple[str, Path]:
    """("model" | "h5" | "checkpoint", the file or checkpoint prefix) for what lies at `path`."""
    import h5py

    prefix = checkpoint_prefix(path)
    if prefix is not None:
        return "checkpoint", prefix
    if not path.is_file():
        raise ImportModelError(f"model file {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise ImportModelError(f"{path} is empty (0 bytes), as model.save() leaves a file when it fails, e.g. for "
                               "the tutorial's subclassed MyModel: save model.save_weights('NAME.weights.h5') and "
                               "import that with --cell, --units and --embedding-dim")
    if zipfile.is_zipfile(path):
        return "model", path
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as f:
            whole = "model_config" in f.attrs  # model.save("x.h5"), not save_weights
        return ("model" if whole else "h5"), path
    raise ImportModelError(f"{path} is neither a .keras model, a Keras weights file (.weights.h5, .h5) nor a TF "
                           "checkpoint (PREFIX.index + PREFIX.data-*)")


def default_out(path: str | os.PathLike) -> Path:
    """Where `textgen import PATH` writes without --out: beside PATH, PATH less .keras, .weights.h5
    or .h5; a checkpoint's prefix (ckpt_5 -> folder ckpt_5); for a folder, FOLDER-textgen."""
    path = Path(path)
    if path.is_dir():
        return path.with_name(f"{path.name}-textgen")
    prefix = checkpoint_prefix(path)
    if prefix is not None:
        return prefix
    for suffix in (".weights.h5", ".h5", ".keras"):
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            return path.with_name(path.name[: -len(suffix)])
    return path.with_suffix("")


def import_char_model(path, vocab_file=None, out=None, overwrite: bool = False, *, cell=None, units=None,
                      embedding_dim=None, layers=None) -> Path:
    """Imports the character model or weights at `path` into the model directory `out`.

    Args:
        path: a `.keras` file (loaded with `keras.models.load_model`, safe mode); or a weights file:
            a `.weights.h5` (Keras 3 `save_weights`), a Keras 2 weights `.h5`, or a TF checkpoint
            (its prefix, its `.index` file, its folder, or a SavedModel folder).
        vocab_file: the vocabulary (see `read_vocabulary`); None: `vocab.json` beside `path`
            (beside the folder when `path` is one).
        out: model directory to write; must be absent or empty unless `overwrite`, and must not
            overlap `path` or `vocab_file`. None: `default_out(path)`.
        overwrite: replace a non-empty `out` that textgen wrote (never a folder of the user's); the
            old one stays at `out` until the new one is complete (textgen.folders).
        cell, units, embedding_dim, layers: the architecture of a weights file (`simple_rnn | gru |
            lstm`, sizes; layers defaults to 1); refused for a `.keras` file, which records its own.

    Example (the tutorial's MyModel after `model.save_weights("tutorial.weights.h5")`):
        >>> import_char_model("tutorial.weights.h5", "vocab.json", "tutorial_model",
        ...                   cell="gru", units=1024, embedding_dim=256)
    """
    from textgen.artifacts import MODEL_DIR_ENTRIES, save_model_dir

    for name, value, optional in (("model file", path, False), ("vocabulary file", vocab_file, True),
                                  ("--out", out, True)):
        if optional and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            raise ImportModelError(f"{name} must be a path (str or os.PathLike); got {value!r}")
    path = Path(path)
    kind, source = _source(path)
    flags = {"--cell": cell, "--units": units, "--embedding-dim": embedding_dim, "--layers": layers}
    if kind == "model":
        given = [flag for flag, value in flags.items() if value is not None]
        if given:
            raise ImportModelError(f"{path} is a whole model that records its architecture; {', '.join(given)} "
                                   "describe a weights file only: drop them")
        inputs = [path]
    else:
        config = architecture(cell, units, embedding_dim, layers)
        inputs = [Path(f"{source}.index"), *source.parent.glob(f"{source.name}.data-*")] if kind == "checkpoint" \
            else [path]
    vocab_file = path.with_name("vocab.json") if vocab_file is None else vocab_file
    out = folders.check_out(default_out(path) if out is None else out, [*inputs, vocab_file], overwrite=overwrite,
                            known=MODEL_DIR_ENTRIES, error=ImportModelError)
    vocabulary = read_vocabulary(vocab_file)
    if kind == "model":
        try:
            model = keras.models.load_model(path, compile=False, safe_mode=True)
        except Exception as err:  # a subclassed model, a lambda layer, a broken file
            raise ImportModelError(f"cannot load {path} in safe mode (save it as a functional or Sequential model, "
                                   "or import its weights: model.save_weights('NAME.weights.h5')): "
                                   f"{str(err).splitlines()[0]}") from err
        ours, config = convert(model, vocabulary)
        params, form = int(sum(np.prod(w.shape) for w in model.weights)), "Keras model"
    else:
        if kind == "checkpoint":
            saved_model = path.is_dir() and source == path / "variables" / "variables"
            form, stored = ("SavedModel variables" if saved_model else "TF checkpoint"), read_checkpoint(source)
        else:
            form, stored = read_h5_weights(source)
        ours = convert_weights(stored, config, vocabulary, str(source), checkpoint=kind == "checkpoint")
        params = int(sum(np.prod(w.shape) for w in ours.trainable_weights))
    metadata = {"imported_from": str(source.resolve()), "imported_format": form, "source_params": params}
    folders.build_and_publish(out, lambda staged: save_model_dir(staged, ours, config, metadata), "model",
                              MODEL_DIR_ENTRIES)
    return out
