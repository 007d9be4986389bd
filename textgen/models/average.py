"""An average of sentiment models: raw strings in, the mean of the members' outputs out.

text (batch,) string -> member_0, member_1, ... (each a whole sentiment model with its own
vectorizer, vocabulary and recurrent stack) -> {"polarity": (batch, 1)} each -> mean ->
{"polarity": (batch, 1)} and, when every member has a valence head, {"valence": (batch, 1)}.

ULMFiT averages the P(positive) of a forward and a backward classifier; any sentiment models that
err on different texts gain from it. Only built-in Keras layers are added (`Average`), so the
`.keras` file loads wherever the members' own layers load.
"""

from __future__ import annotations

from typing import Sequence

import keras
import numpy as np

MEMBER_PREFIX = "member_"


def _with_embedding_dtype(member: keras.Model, dtype: str) -> keras.Model:
    """A copy of `member` whose `embedding` table is stored in `dtype` (the rest unchanged).

    The embedding then outputs `dtype` vectors; the next layer casts them to its own float32
    compute dtype (Keras autocasting), so only the table's storage and rounding change.
    """
    config = member.get_config()
    for layer in config["layers"]:
        if layer["name"] == "embedding":
            layer["config"]["dtype"] = dtype
    copy = keras.Model.from_config(config)
    for theirs, ours in zip(member.layers, copy.layers):
        ours.set_weights([np.asarray(w).astype(v.dtype) for w, v in zip(theirs.get_weights(), ours.weights)])
    return copy


def build_average_model(members: Sequence[keras.Model], embedding_dtype: str = "float32") -> keras.Model:
    """One model whose outputs are the mean of `members`' (textgen sentiment models).

    The members are renamed `member_0`, `member_1`, ... (nested models need unique names); their
    layers and weights are theirs. `embedding_dtype="float16"` stores their embedding tables in half.
    """
    if len(members) < 2:
        raise ValueError(f"an average needs two or more members; got {len(members)}")
    text = keras.Input(shape=(), dtype="string", name="text")  # (batch,)
    outs = []
    for i, member in enumerate(members):
        if embedding_dtype != "float32":
            member = _with_embedding_dtype(member, embedding_dtype)
        member.name = f"{MEMBER_PREFIX}{i}"
        outs.append(member(text))  # {"polarity": (batch, 1), "valence"?: (batch, 1)}
    outputs = {"polarity": keras.layers.Average(name="polarity")([o["polarity"] for o in outs])}
    if all("valence" in o for o in outs):
        outputs["valence"] = keras.layers.Average(name="valence")([o["valence"] for o in outs])
    return keras.Model(text, outputs, name="average")


def members_of(model: keras.Model) -> list[keras.Model]:
    """The member models of an average built by `build_average_model`, in order ([] for any other model)."""
    found = [layer for layer in model.layers
             if isinstance(layer, keras.Model) and layer.name.startswith(MEMBER_PREFIX)]
    return sorted(found, key=lambda m: int(m.name[len(MEMBER_PREFIX):]))
