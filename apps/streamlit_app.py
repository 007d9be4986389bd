"""textgen's Streamlit app: router and shared sidebar. Pages live in app_pages/, one per file."""

import sys
from pathlib import Path

import streamlit as st

# Run from a checkout (`make app`): make `textgen` and `apps` importable without installation too.
_REPO = Path(__file__).resolve().parents[1]
for _p in (str(_REPO), str(_REPO / "apps")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

st.set_page_config(page_title="textgen — RNNs made real", page_icon=":material/cycle:", layout="wide")

pages = [
    st.Page("app_pages/generate.py", title="Generate", icon=":material/edit_note:", url_path="generate", default=True),
    st.Page("app_pages/sentiment.py", title="Sentiment", icon=":material/sentiment_satisfied:", url_path="sentiment"),
    st.Page("app_pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("app_pages/inside.py", title="Inside the RNN", icon=":material/biotech:", url_path="inside"),
    st.Page("app_pages/models.py", title="Models", icon=":material/inventory_2:", url_path="models"),
]
page = st.navigation(pages)

with st.sidebar:
    st.markdown("### textgen")
    st.caption(
        "Character-level text generation and sentiment with SimpleRNN, GRU, LSTM, "
        "a minimal GRU and a peephole LSTM, trained on TensorFlow Datasets corpora."
    )

page.run()
