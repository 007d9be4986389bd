"""Starting a run from another model's weights (`--init-from`): copy what fits, by layer name."""

from __future__ import annotations

import keras
import numpy as np


def start_from(model: keras.Model, weights: dict[str, list[np.ndarray | None]], apply: bool = True) -> list[str]:
    """Copies `weights` into the layers of `model` with the same name and shapes; returns their names.

    `apply=False` only names them (a resumed run has its own checkpoint already). A None in a layer's
    list keeps that weight as it is (e.g. a Dense layer's kernel, when only its bias is given).
    """
    copied = []
    for layer in model.layers:
        source = weights.get(layer.name)
        if not source:
            continue
        current = layer.get_weights()
        if len(current) == len(source) and all(s is None or tuple(s.shape) == tuple(c.shape)
                                               for s, c in zip(source, current)):
            if apply:
                layer.set_weights([c if s is None else s for s, c in zip(source, current)])
            copied.append(layer.name)
    return copied
