"""Reads weights files into arrays per layer: Keras 3 .weights.h5, Keras 2 .h5, TF checkpoints, SavedModels.

What a file holds, not what it means: each reader returns `StoredLayer`s (a path in the file and
its arrays by role), and `textgen.importer` matches them to an architecture. h5py and TensorFlow
are imported when a reader runs.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path

import numpy as np

from textgen.errors import TextgenError


# Defined here, the lowest module of the import, so the readers raise the same error that
# `textgen.importer` raises (and re-exports).
class ImportModelError(TextgenError, ValueError):
    """The model or its vocabulary cannot be imported."""


# Keras 3 stores a layer's variables as `<path>/vars/0, 1, ...` in the order the layer creates
# them, without their names; these layers create (embeddings), (kernel, bias) and
# (kernel, recurrent_kernel, bias).
POSITIONAL_ROLES = {1: ("embeddings",), 2: ("kernel", "bias"), 3: ("kernel", "recurrent_kernel", "bias")}


@dataclasses.dataclass
class StoredLayer:
    """The variables of one layer (or RNN cell) as a weights file holds them."""

    path: str  # where in the file, e.g. "gru/cell" or "model/embedding"
    arrays: dict[str, np.ndarray]  # role ("embeddings", "kernel", "recurrent_kernel", "bias") -> values

    def describe(self) -> str:
        shapes = ", ".join(f"{role} {_shape(a)}" for role, a in self.arrays.items())
        return f"{self.path or '(root)'} [{shapes}]"


def _shape(array: np.ndarray) -> tuple[int, ...]:
    return tuple(int(d) for d in array.shape)


def _natural(path: str) -> list:
    """Sort key that puts gru_2 before gru_10."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]


def read_h5_weights(path: str | os.PathLike) -> tuple[str, list[StoredLayer]]:
    """(format name, layers) of a Keras 3 `.weights.h5` or a Keras 2 weights `.h5`."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if "layer_names" in f.attrs:
                return "Keras 2 weights (.h5)", _keras2_h5(f)
            groups = []
            f.visititems(lambda name, obj: groups.append(name) if isinstance(obj, h5py.Group)
                         and name.rsplit("/", 1)[-1] == "vars" else None)
            stored = []
            for name in groups:
                owner = name[: -len("vars")].rstrip("/")
                if owner.split("/", 1)[0] == "optimizer":  # the optimizer's state (Adam's moments)
                    continue
                found = f[name]
                if sorted(found.keys(), key=int) != [str(i) for i in range(len(found))]:
                    raise ImportModelError(f"{path}: {name} holds {sorted(found.keys())}, not variables 0..n")
                values = [np.asarray(found[str(i)]) for i in range(len(found))]
                roles = POSITIONAL_ROLES.get(len(values), tuple(str(i) for i in range(len(values))))
                stored.append(StoredLayer(owner, dict(zip(roles, values))))
    except (OSError, KeyError, ValueError, RuntimeError) as err:  # a truncated file, a dataset that is no array
        if isinstance(err, ImportModelError):
            raise
        raise ImportModelError(f"cannot read {path} as a Keras weights file: {str(err).splitlines()[0]}") from err
    if not groups:
        raise ImportModelError(f"{path} is an HDF5 file but not Keras weights (no layer_names attribute and no "
                               "vars groups)")
    return "Keras 3 weights (.weights.h5)", sorted(stored, key=lambda s: _natural(s.path))


def _keras2_h5(f) -> list[StoredLayer]:
    """Keras 2's layout: attribute layer_names (model.layers order); per layer, attribute
    weight_names such as "my_model/gru/gru_cell/kernel:0", each a dataset at that path."""
    def text(value) -> str:
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    stored = []
    for name in map(text, f.attrs["layer_names"]):
        group = f[name]
        names = [text(w) for w in group.attrs.get("weight_names", [])]
        stored.append(StoredLayer(name, {w.rsplit("/", 1)[-1].split(":")[0]: np.asarray(group[w]) for w in names}))
    return stored


def checkpoint_prefix(path: Path) -> Path | None:
    """The TF checkpoint prefix that `path` names (the prefix, its .index or .data-* file, a folder
    whose `checkpoint` file names the latest, or a SavedModel folder), or None when `path` is no
    checkpoint."""
    if path.is_dir():
        import tensorflow as tf

        saved = path / "variables" / "variables"
        if (path / "saved_model.pb").is_file() and Path(f"{saved}.index").is_file():
            return saved  # a SavedModel (the tutorial's one_step export) keeps its variables as a checkpoint
        latest = tf.train.latest_checkpoint(str(path))
        if latest is None:
            raise ImportModelError(f"{path} is a folder with neither a TF checkpoint (a 'checkpoint' file naming "
                                   "one) nor a SavedModel; give a .keras file, a .weights.h5 file or a checkpoint "
                                   "prefix")
        return Path(latest)
    match = re.fullmatch(r"(.+)\.(index|data-\d+-of-\d+)", path.name)
    if match and path.is_file():
        return path.with_name(match.group(1))
    if not path.exists() and Path(f"{path}.index").is_file():
        return path
    return None


def read_checkpoint(prefix: str | os.PathLike) -> list[StoredLayer]:
    """The model layers of a TF2 object-based checkpoint, in the checkpoint's object order.

    The checkpoint's object graph is walked from its root, past any optimizer (its moments are
    not the model). The keys themselves cannot be trusted for names: a variable that the model and
    the optimizer share is keyed by whichever path TF found first, e.g.
    `optimizer/_trainable_variables/1/...` for the GRU kernel of
    `tf.train.Checkpoint(model=m, optimizer=m.optimizer)` under Keras 3.
    """
    import tensorflow as tf
    from google.protobuf.message import DecodeError
    from tensorflow.core.protobuf import trackable_object_graph_pb2

    try:
        reader = tf.train.load_checkpoint(str(prefix))
        if not reader.has_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"):
            raise ImportModelError(f"{prefix} is a name-based (TF1) checkpoint without an object graph; "
                                   "only TF2 checkpoints can be imported")
        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        graph.ParseFromString(reader.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))

        def value_key(node) -> str | None:
            return next((a.checkpoint_key for a in node.attributes if a.name == "VARIABLE_VALUE"), None)

        def is_optimizer(name: str, node) -> bool:  # Keras 3 / Keras 2 optimizers count steps in these
            return name == "optimizer" or any(c.local_name in ("_iterations", "iter") for c in node.children)

        stored, seen, queue = [], {0}, [(0, "")]
        while queue:  # breadth first: a layer gets its shortest path (the attribute name)
            node_id, path = queue.pop(0)
            arrays = {}
            for child in graph.nodes[node_id].children:
                node = graph.nodes[child.node_id]
                if child.node_id in seen or is_optimizer(child.local_name, node):
                    continue
                seen.add(child.node_id)
                key = value_key(node)
                if key is not None:  # Keras 3 names some variables _kernel, _embeddings
                    arrays[child.local_name.lstrip("_")] = np.asarray(reader.get_tensor(key))
                else:
                    queue.append((child.node_id, f"{path}/{child.local_name}".lstrip("/")))
            if arrays:
                stored.append(StoredLayer(path, arrays))
    except (tf.errors.OpError, ValueError, IndexError, RuntimeError, DecodeError) as err:  # a truncated file
        if isinstance(err, ImportModelError):
            raise
        raise ImportModelError(f"cannot read the TF checkpoint {prefix}: {str(err).splitlines()[0]}") from err
    return stored

