"""Sentiment: probability of positive, valence, VADER beside it, the word-by-word trajectory, batch mode."""

import io

import pandas as pd
import streamlit as st

import components as ui
import resources

st.title("Sentiment")
st.caption(
    "A many-to-one RNN reads the whole text and gives P(positive) and, for models trained on VADER's "
    "corpora, a valence on −4 (very negative) … +4 (very positive). The VADER lexicon rule is shown beside it."
)

models = resources.models_or_stop("sentiment")

EXAMPLES = {
    "Rave": "An absolute triumph: the acting is superb and the story moved me to tears.",
    "Pan": "Dull, predictable and far too long. I wanted my two hours back.",
    "Mixed": "The first half is wonderful, but the ending is a mess and ruins it.",
}
name = st.selectbox("Sentiment model", list(models), key="sent_model")
buttons = st.columns(len(EXAMPLES) + 3)
for col, (label, example) in zip(buttons, EXAMPLES.items()):
    if col.button(label, key=f"sent_example_{label}"):
        st.session_state["sent_text"] = example

single, batch = st.tabs(["One text", "Batch (CSV or text file)"])

with single:
    text = st.text_area("Text", key="sent_text", height=120, placeholder="Type a review, a tweet, a sentence…")
    if not text.strip():
        st.info("Type a text above, or pick an example.")
    else:
        text, cut = ui.truncate(text, ui.MAX_TEXT_CHARS)
        if cut:
            st.warning(f"The text was cut to its first {ui.MAX_TEXT_CHARS:,} characters.")
        predictor = resources.load_or_stop(resources.predictor, models[name])
        result = predictor.predict([text])[0]
        vader = resources.vader_analyzer().polarity_scores(text)["compound"]
        cols = st.columns(3)
        cols[0].metric("P(positive)", f"{result['p_positive']:.1%}", help="the model's polarity head")
        cols[0].markdown(f"**{result['label']}**")
        if result.get("valence") is not None:
            cols[1].metric("Valence (−4 … +4)", f"{result['valence']:+.2f}", help="the model's valence head")
        cols[2].metric("VADER compound (−1 … +1)", f"{vader:+.3f}", help="vaderSentiment's lexicon rule; > 0 means positive")
        cols[2].markdown(f"VADER says **{'pos' if vader > 0 else 'neg'}**")

        words = text.split()
        if len(words) > 1:
            shown = words[: ui.MAX_TRAJECTORY_WORDS]
            prefixes = [" ".join(shown[: i + 1]) for i in range(len(shown))]
            trajectory = predictor.predict(prefixes)
            st.subheader("How the reading evolves, word by word")
            if len(words) > len(shown):
                st.caption(f"The first {ui.MAX_TRAJECTORY_WORDS} words are shown.")
            st.altair_chart(ui.trajectory_chart(shown, [r["p_positive"] for r in trajectory]), width="stretch")

with batch:
    st.caption(
        f"A CSV with a `text` column (or one column), or a .txt file with one text per line. "
        f"At most {ui.MAX_UPLOAD_BYTES // 1_000_000} MB and {ui.MAX_BATCH_ROWS:,} texts."
    )
    upload = st.file_uploader("File", type=["csv", "txt"], key="sent_upload")
    if upload is not None:
        texts, problem = ui.read_uploaded_texts(upload.name, upload.getvalue())
        if problem:
            st.error(problem)
        else:
            predictor = resources.load_or_stop(resources.predictor, models[name])
            rows = predictor.predict(texts)
            analyzer = resources.vader_analyzer()
            table = pd.DataFrame(rows)
            table["vader_compound"] = [analyzer.polarity_scores(t)["compound"] for t in texts]
            st.success(f"Predicted {len(table):,} texts.")
            st.dataframe(table, hide_index=True, use_container_width=True)
            buffer = io.StringIO()
            table.to_csv(buffer, index=False)
            st.download_button("Download CSV", buffer.getvalue(), file_name="predictions.csv", mime="text/csv",
                               key="sent_download")
