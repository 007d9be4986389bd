"""A card's "Load it elsewhere" section: which registered classes model.keras names, and how to load it.

Written from the model itself: the "package>Class" names read from the archive's own config.json
decide whether plain Keras needs `import textgen`, and the task gives the use of its outputs.
"""

from __future__ import annotations

import json
import os
import shlex
import zipfile

from textgen.card_command import CardError
from textgen.cardkit import Facts

LOAD_HEADING = "## Load it elsewhere"


def registered_classes(keras_file: str | os.PathLike) -> tuple[str, ...]:
    """The "package>Class" names a `.keras` file needs registered before `keras.models.load_model`.

    Read from the archive's config.json, not from the Python objects: Keras writes
    `"registered_name": "textgen>MinimalGRUCell"` for a class registered with
    `keras.saving.register_keras_serializable(package="textgen")`, `"config": "textgen>name"` (with
    `"registered_name": "function"`) for a registered function, and None or the bare class name
    for its own classes. Sorted, each once.

    Raises:
        CardError: the file is not a `.keras` archive with a config.json.
    """
    try:
        with zipfile.ZipFile(keras_file) as archive:
            saved = json.loads(archive.read("config.json"))
    except (OSError, KeyError, zipfile.BadZipFile, ValueError) as err:
        raise CardError(f"cannot read the saved config inside {keras_file}: {err}") from err
    found = set()
    stack = [saved]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            name = node.get("registered_name")
            if isinstance(name, str) and ">" in name:
                found.add(name)
            elif name == "function" and isinstance(node.get("config"), str) and ">" in node["config"]:
                found.add(node["config"])  # a registered function, e.g. textgen>lower_keep_emoticons
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return tuple(sorted(found))


def load_section(f: Facts, model_dir: str) -> list[str]:
    """Lines of "## Load it elsewhere": plain Keras (with `import textgen` only when model.keras names
    textgen's registered classes), or the SavedModel that `textgen export` writes (TensorFlow only).

    Args:
        f: the model's facts (`registered` and `outputs` are read from the model itself).
        model_dir: the model directory as the train command names it (its `--out`).
    """
    from textgen import tasks

    q = lambda text: json.dumps(text, ensure_ascii=False)  # noqa: E731  (a Python string literal)
    keras_file = f"{model_dir.rstrip('/')}/model.keras"
    exported = f"{f.name}-savedmodel"
    ours = [n.split(">", 1)[1] for n in f.registered if n.split(">", 1)[0] == "textgen"]
    foreign = [n for n in f.registered if n.split(">", 1)[0] != "textgen"]
    lines = [LOAD_HEADING, "", "**Keras**, with the versions in the table above:", ""]
    if not f.registered:
        lines += ["Every class in `model.keras` is Keras's own: `keras.models.load_model` needs no textgen.", ""]
    if ours:
        lines += [f"`model.keras` names textgen's registered class{'es' if len(ours) > 1 else ''} "
                  f"{', '.join(f'`textgen>{n}`' for n in ours)}: `keras.models.load_model` rebuilds "
                  f"{'them' if len(ours) > 1 else 'it'} only after `import textgen` (this repository, "
                  "`pip install -e .`), and fails without it.", ""]
    if foreign:
        lines += [f"`model.keras` also names {', '.join(f'`{n}`' for n in foreign)}, registered by another "
                  "package: import that package before loading.", ""]
    code = ["```python", "import keras", "import tensorflow as tf"]
    if ours:
        code.append(f"import textgen  # registers {', '.join(ours)}")
    code += ["", f"model = keras.models.load_model({q(keras_file)})"]
    keras_use, saved_use = tasks.get(f.task).card_use(f, q)
    code += keras_use
    lines += code + ["```", ""]
    lines += ["**SavedModel, no textgen at all**: export once with textgen, then load the folder anywhere "
              "with TensorFlow alone (the custom layers are traced into plain TensorFlow ops).", "",
              "```bash", f"textgen export {shlex.quote(model_dir)} --out {shlex.quote(exported)}", "```", ""]
    lines += ["```python", "import tensorflow as tf", "", f"exported = tf.saved_model.load({q(exported)})"]
    lines += saved_use
    return lines
