"""Inside the RNN: hidden units, gates and next-character guesses for a text the user types."""

import numpy as np
import pandas as pd
import streamlit as st

import components as ui
import resources

st.title("Inside the RNN")
st.caption(
    "Type a text and see what each recurrent layer does at every character: its hidden units a⟨t⟩, "
    "and for gated cells the gates of the source documents (LSTM: update, forget and output gates and "
    "the cell state c⟨t⟩; GRU and minimal GRU: the update gate Γᵤ). Under each character: the model's "
    "five best guesses for the next one."
)

models = resources.models_or_stop("charlm")

name = st.selectbox("Character model", list(models), key="inside_model")
text = st.text_area(
    "Text to read",
    value="ROMEO:\nBut, soft! what light through yonder window breaks?",
    height=110,
    key="inside_text",
)
if not text:
    st.info("Type some text above to look inside the model.")
    st.stop()
text, cut = ui.truncate(text, ui.MAX_INSIDE_CHARS)
if cut:
    st.warning(f"Only the first {ui.MAX_INSIDE_CHARS} characters are traced.")

from textgen.introspect import trace  # noqa: E402  (after the cheap checks: imports TensorFlow)

bundle = resources.load_or_stop(resources.load_model_dir, models[name])
result = trace(bundle.model, text)
unknown = [c for c, k in zip(result.chars, result.known) if not k]
if unknown:
    st.info(
        "Characters outside this model's vocabulary are read as [UNK] (dashed outline): "
        + " ".join(sorted({ui.visible_char(c) for c in unknown}))
    )

layer_names = [f"{layer.name} ({layer.kind})" for layer in result.layers]
col_a, col_b = st.columns([2, 3])
layer_ix = col_a.selectbox("Layer", range(len(layer_names)), format_func=lambda i: layer_names[i], key="inside_layer")
layer = result.layers[layer_ix]
units = layer.hidden.shape[1]
views = ["hidden a⟨t⟩"] + [f"{g} gate" for g in layer.gates] + (["cell state c⟨t⟩"] if layer.cell is not None else [])
view = col_b.radio("Show", views, horizontal=True, key="inside_view")
if view == "hidden a⟨t⟩":
    matrix, domain, scheme = layer.hidden, (-1.0, 1.0), "redblue"
elif view == "cell state c⟨t⟩":
    bound = float(np.abs(layer.cell).max()) or 1.0
    matrix, domain, scheme = layer.cell, (-bound, bound), "redblue"
else:
    matrix, domain, scheme = layer.gates[view.split()[0]], (0.0, 1.0), "viridis"

shown_units = min(units, 64)
if units > shown_units:
    first = st.slider("First unit shown", 0, units - shown_units, 0, key="inside_first_unit")
else:
    first = 0
st.altair_chart(
    ui.heatmap(matrix[:, first : first + shown_units], result.chars, f"{view}: units {first}–{first + shown_units - 1}",
               domain=domain, scheme=scheme),
    use_container_width=False,
)
st.caption(f"Showing the {view} of {layer_names[layer_ix]}, {len(result.chars)} characters × {shown_units} units.")

st.subheader("Colour the text by one unit")
unit = st.number_input("Unit", min_value=0, max_value=units - 1, value=0, step=1, key="inside_unit")
tips = [
    f"{ui.visible_char(c)} → " + ", ".join(f"{ui.visible_char(g)} {p:.0%}" for g, p in top[:5])
    for c, top in zip(result.chars, result.top)
]
st.markdown(
    ui.coloured_text_html(result.chars, matrix[:, int(unit)], result.known, tips,
                          vmax=None if scheme == "redblue" else 1.0),
    unsafe_allow_html=True,
)
st.caption("Hover a character for the model's top-5 guesses of the next one.")

st.subheader("Next-character guesses")
rows = []
for t, (c, top) in enumerate(zip(result.chars, result.top)):
    row = {"position": t, "char": ui.visible_char(c)}
    for k, (g, p) in enumerate(top, start=1):
        row[f"guess {k}"] = f"{ui.visible_char(g)}  {p:.1%}"
    row["P(actual next)"] = float(result.next_char_prob[t]) if t < len(result.next_char_prob) else None
    rows.append(row)
st.dataframe(pd.DataFrame(rows), hide_index=True, use_container_width=True)
