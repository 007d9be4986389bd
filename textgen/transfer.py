"""Starting a run from another model's weights (`--init-from`): copy what fits, by layer name."""

from __future__ import annotations

import keras
import numpy as np


def start_from(model: keras.Model, weights: dict[str, list[np.ndarray]], apply: bool = True) -> list[str]:
    """Copies `weights` into the layers of `model` with the same name and shapes; returns their names.

    `apply=False` only names them (a resumed run has its own checkpoint already).
    """
    copied = []
    for layer in model.layers:
        source = weights.get(layer.name)
        if source and [tuple(w.shape) for w in layer.get_weights()] == [tuple(w.shape) for w in source]:
            if apply:
                layer.set_weights(source)
            copied.append(layer.name)
    return copied
