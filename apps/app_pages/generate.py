"""Generate: sample text from a character model; it streams in as the compiled loop produces it."""

import time

import streamlit as st

import components as ui
import resources

st.title("Generate")
st.caption(
    "A character-level RNN continues your prompt one character at a time. The sampling loop runs "
    "compiled (one `tf.while_loop`), shared by everyone using the app: requests made at the same time "
    "run side by side in one batch. Text appears chunk by chunk as it is produced."
)

models = resources.models_or_stop("charlm")

with st.form("gen_form", border=False):
    left, right = st.columns([3, 2])
    with left:
        name = st.selectbox("Character model", list(models), key="gen_model")
        prompt = st.text_area("Prompt", value=ui.DEFAULT_PROMPT, height=100, key="gen_prompt",
                              help="Any text; characters the model does not know are read as [UNK].")
    with right:
        length = st.slider("Length (characters)", 10, ui.MAX_GENERATE_CHARS, ui.DEFAULT_LENGTH, step=10, key="gen_length")
        temperature = st.slider("Temperature", 0.0, 2.0, 0.8, step=0.05, key="gen_temperature",
                                help="0 = always the most likely character (greedy)")
        c1, c2, c3 = st.columns(3)
        top_k = c1.number_input("Top-k (0 = off)", 0, 500, 0, key="gen_top_k")
        top_p = c2.number_input("Top-p", 0.01, 1.0, 1.0, step=0.05, key="gen_top_p")
        samples = c3.number_input("Samples", 1, 8, 1, key="gen_samples")
        c4, c5 = st.columns(2)
        seed = c4.number_input("Seed", 0, 2**31 - 1, 42, key="gen_seed", help="the same seed gives the same text")
        precision = c5.selectbox(
            "Weights", ["float32", "int8"], key="gen_precision",
            help="int8: the same sampling loop with int8 weights in TFLite, about 3-4x faster for large "
                 "models on CPU, slightly different text (the same seed repeats within one choice)",
        )
    submitted = st.form_submit_button("Generate", type="primary")

if submitted:
    prompt, cut = ui.truncate(prompt, ui.MAX_TEXT_CHARS)
    if cut:
        st.warning(f"The prompt was cut to its first {ui.MAX_TEXT_CHARS:,} characters.")
    from textgen.errors import TextgenError
    from textgen.sampling import SamplingParams

    try:
        params = SamplingParams(length=int(length), temperature=float(temperature), top_k=int(top_k),
                                top_p=float(top_p), num_samples=int(samples), seed=int(seed))
        sampler = resources.load_or_stop(resources.sampler, models[name], precision)
        # Per-user state (the RNN states, the texts so far) lives in this request and these locals,
        # never in the cached sampler, which every session shares (its rows join one running batch).
        boxes = [st.empty() for _ in range(params.num_samples)]
        texts = [""] * params.num_samples
        start = time.perf_counter()
        for chunks in sampler.stream(prompt, params):
            for i, chunk in enumerate(chunks):
                texts[i] += chunk
                boxes[i].code(prompt + texts[i], language=None, wrap_lines=True)
        seconds = time.perf_counter() - start
    except TextgenError as err:
        st.error(str(err))
        st.stop()
    st.session_state["gen_result"] = {
        "prompt": prompt, "texts": texts, "model": name, "precision": precision,
        "chars_per_s": sum(map(len, texts)) / max(seconds, 1e-9), "seconds": seconds,
    }
    st.rerun()

result = st.session_state.get("gen_result")
if result:
    st.markdown(
        f"**{len(result['texts'])} sample(s)** from {ui.plain(result['model'])} ({result['precision']} weights) — "
        f"{result['chars_per_s']:,.0f} chars/s ({result['seconds']:.2f} s)"
    )
    for i, text in enumerate(result["texts"]):
        st.code(result["prompt"] + text, language=None, wrap_lines=True)
    joined = "\n\n---\n\n".join(result["prompt"] + t for t in result["texts"])
    st.download_button("Download text", joined, file_name="generated.txt", mime="text/plain", key="gen_download")
