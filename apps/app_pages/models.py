"""Models: model cards, test metrics next to baselines, training curves, the cell-kind comparison."""

from pathlib import Path

import pandas as pd
import streamlit as st

import components as ui
import resources
from textgen.card import metric_rows

st.title("Models")

comparison_md = resources.read_text_file(str(resources.DOCS / "cell_comparison.md"))
models = resources.list_models()
if not models and comparison_md is None:
    st.info("No models found yet. Train one with `textgen train …`; `make models` rebuilds the shipped set.")
    st.stop()

tab_names = ["Model cards"] + (["Cell-kind comparison"] if comparison_md else [])
tabs = st.tabs(tab_names)

with tabs[0]:
    if not models:
        st.info("No model folders found.")
    else:
        name = st.selectbox("Model", list(models), key="models_pick")
        folder = Path(models[name])
        meta = resources.read_json_file(str(folder / "metadata.json")) or {}
        config = resources.read_json_file(str(folder / "config.json")) or {}
        left, right = st.columns([3, 2])
        with right:
            st.markdown("**Test metrics, next to baselines on the same examples**")
            rows = metric_rows(meta)
            if rows:
                table = pd.DataFrame(rows).dropna(axis=1, how="all")
                st.dataframe(table, hide_index=True, use_container_width=True)
            else:
                st.caption("No metrics recorded in metadata.json.")
            curve = next(iter(sorted(folder.glob("*.png"))), None)
            if curve is not None:
                st.image(str(curve), caption="Training curve")
            with st.expander("config.json"):
                st.json(config)
        with left:
            card = resources.read_text_file(str(folder / "README.md"))
            if card:
                st.markdown(ui.demote_headings(card))
            else:
                st.caption(f"{folder} has no model card (README.md).")

if comparison_md:
    with tabs[1]:
        st.markdown(ui.demote_headings(comparison_md))
        plot = resources.DOCS / "cell_comparison.png"
        if plot.is_file():
            st.image(str(plot))
