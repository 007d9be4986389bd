"""Fine-tuning a model that starts from another one (ULMFiT, Howard & Ruder 2018): discriminative
learning rates and gradual unfreezing, as one scale per layer group on Adam's step.

The layers are grouped from the top of the network down (`layer_groups`): the heads (everything
that is neither recurrent nor the embedding), the last recurrent layer, ..., the first, the
embedding. Group g steps at `learning rate / discriminative**g`; with gradual unfreezing, group g
joins after `g * unfreeze` epochs and steps at scale 0 until then. A frozen group is held still by
that zero, not by `trainable=False`: Keras builds its train step and the optimizer's slots once,
for the variables trainable at compile time, so every group keeps its slots and nothing is rebuilt
when one joins (the frozen groups' gradients are still computed; they are simply not applied).
"""

from __future__ import annotations

import re

import keras
import numpy as np

_RECURRENT = re.compile(r"^(bi_)?rnn_(\d+)$")


def layer_groups(model: keras.Model) -> list[list[str]]:
    """Names of the layers with weights, grouped from the top: [heads], [rnn_{L-1}], ..., [rnn_0], [embedding]."""
    heads, recurrent, embedding = [], {}, []
    for layer in model.layers:
        if not layer.weights:
            continue
        match = _RECURRENT.match(layer.name)
        if match:
            recurrent[int(match.group(2))] = layer.name
        elif layer.name == "embedding":
            embedding.append(layer.name)
        else:
            heads.append(layer.name)
    return [g for g in [heads, *([recurrent[i]] for i in sorted(recurrent, reverse=True)), embedding] if g]


def group_scales(n_groups: int, epoch: int, discriminative: float, unfreeze: int) -> np.ndarray:
    """(n_groups,) step scales at 0-based `epoch`: 1/discriminative**g, 0 for groups not yet unfrozen."""
    scales = np.power(float(discriminative), -np.arange(n_groups, dtype=np.float64))
    if unfreeze:
        scales[np.arange(n_groups) > epoch // unfreeze] = 0.0
    return scales.astype(np.float32)


@keras.saving.register_keras_serializable(package="textgen")
class GroupAdam(keras.optimizers.Adam):
    """Adam whose step for each variable is scaled by its layer group's entry of `group_scales`.

    Args:
        groups: layer name -> group index (`layer_groups`); variables of other layers are group 0.
        n_groups: number of groups.
    """

    def __init__(self, groups: dict[str, int], n_groups: int, **kwargs):
        super().__init__(**kwargs)
        self.groups, self.n_groups = dict(groups), int(n_groups)

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        self.scales = self.add_variable(shape=(self.n_groups,), initializer="ones", name="group_scales")
        # per variable (in the optimizer's own order): the group of the top-level layer it belongs to
        self._group_of = [self.groups.get(v.path.split("/")[0], 0) for v in var_list]

    def update_step(self, gradient, variable, learning_rate):
        group = self._group_of[self._get_variable_index(variable)]
        return super().update_step(gradient, variable, learning_rate * self.scales[group])

    def get_config(self):
        return {**super().get_config(), "groups": self.groups, "n_groups": self.n_groups}


class GroupSchedule(keras.callbacks.Callback):
    """Sets the optimizer's group scales at the start of every epoch (a resumed run included)."""

    def __init__(self, discriminative: float, unfreeze: int):
        super().__init__()
        self.discriminative, self.unfreeze = discriminative, unfreeze

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        optimizer.scales.assign(group_scales(optimizer.n_groups, epoch, self.discriminative, self.unfreeze))
