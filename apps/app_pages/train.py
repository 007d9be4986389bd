"""Train: a character model of your own text, trained by a background `textgen train` job."""

import pandas as pd
import streamlit as st

import components as ui
import resources

st.title("Train")
st.caption(
    "Upload or paste your text (any language), pick a cell and a size, and train a character-level RNN "
    "on it. Training runs as a background `textgen train` job: you may close or reload this page, the "
    "job goes on, and the finished model appears on the other pages."
)

from textgen import jobs  # noqa: E402
from textgen.config import CELL_KINDS  # noqa: E402
from textgen.errors import TextgenError  # noqa: E402

queue = resources.job_queue()

# The job this browser follows: from the URL (survives a reload) or this session.
job_id = st.query_params.get("job") or st.session_state.get("train_job")


@st.fragment(run_every=1.0)
def live_job(job_id: str) -> None:
    """The job's live panel; only this fragment reruns each second, so other pages stay responsive."""
    job = queue.get(job_id)
    if job is None:
        st.warning("That training job is gone (its folder was removed).")
        return
    st.subheader(f"Job: {job.name}")
    st.caption("The same command, to rerun it from a terminal:")
    st.code(job.shell_command(), language="bash", wrap_lines=True)
    records = job.progress()
    epochs = [r for r in records if r.get("event") == "epoch"]
    last = records[-1] if records else None
    if job.state == "queued":
        st.info(f"Queued: place {queue.place(job.id)} in line. One job trains at a time on this server.")
    elif job.state == "running":
        total = last.get("epochs") if last and "epochs" in last else None
        if last and last.get("event") == "batch":
            done = (last["epoch"] - 1 + last["step"] / max(last["steps"], 1))
            total = total or (epochs[-1]["epochs"] if epochs else None)
            label = f"Epoch {last['epoch']}, step {last['step']}/{last['steps']} — loss {last['loss']:.3f}"
        elif epochs:
            done, label = epochs[-1]["epoch"], f"Epoch {epochs[-1]['epoch']} done"
        else:
            done, label = 0, "Preparing the text and building the model…"
        total = total or _epochs_of(job)
        st.progress(min(done / total, 1.0) if total else 0.0, text=label)
        if st.button("Stop (keep the best weights so far)", key="train_stop"):
            queue.stop(job.id)
            st.toast("Stopping after this step's validation…")
    elif job.state in ("done", "stopped"):
        how = "finished" if job.state == "done" else "stopped; it kept the best weights so far"
        st.success(f"Training {how}. The model {ui.plain(job.name)} is on the Generate, Inside the RNN and "
                   "Models pages.")
        st.page_link("app_pages/generate.py", label="Generate with it", icon=":material/edit_note:")
    elif job.state == "interrupted":
        st.warning("The job was interrupted (the server stopped while it trained). Resume continues it from "
                   "its last completed epoch.")
        if st.button("Resume", key="train_resume"):
            queue.resume(job.id)
            st.rerun()
    elif job.state == "failed":
        st.error(f"Training failed: {ui.plain(job.error_line() or 'see the log below')}")
        if st.button("Resume", key="train_resume"):
            queue.resume(job.id)
            st.rerun()
    else:
        st.info(f"The job was {job.state}.")
    if epochs:
        curve = pd.DataFrame({"train loss": [r.get("loss") for r in epochs],
                              "validation loss": [r.get("val_loss") for r in epochs]},
                             index=pd.Index([r["epoch"] for r in epochs], name="epoch"))
        left, right = st.columns([3, 2])
        with left:
            st.markdown("**Loss per epoch (nats per character)**")
            st.line_chart(curve, x_label="epoch", y_label="loss (nats)")
        with right:
            sample = next((r["sample"] for r in reversed(epochs) if r.get("sample")), None)
            if sample is not None:
                st.markdown(f"**Sample after epoch {epochs[-1]['epoch']}**")
                st.code(sample, language=None, wrap_lines=True)
    with st.expander("Log"):
        st.code(job.log_tail(30) or "(no output yet)", language=None)


def _epochs_of(job) -> int | None:
    argv = job.command
    return int(argv[argv.index("--epochs") + 1]) if "--epochs" in argv else None


if job_id:
    live_job(job_id)
    if st.button("Train another model", key="train_new"):
        st.session_state.pop("train_job", None)
        st.query_params.clear()
        st.rerun()
    st.stop()

running = queue.running()
if running is not None:
    st.info(f"{ui.plain(running.name)} is training now; a new job waits in line behind it "
            f"({sum(j.state == 'queued' for j in queue.jobs())} queued).")

source = st.radio("Text", ["Upload files", "Paste text", "A prepared corpus"], horizontal=True, key="train_source")
with st.form("train_form", border=False):
    uploads, pasted, corpus = [], "", None
    if source == "Upload files":
        uploads = st.file_uploader(f"Text files (.txt, UTF-8, at most {jobs.MAX_UPLOAD_BYTES // 1_000_000} MB in all)",
                                   type=["txt"], accept_multiple_files=True, key="train_upload")
    elif source == "Paste text":
        pasted = st.text_area("Your text", height=200, key="train_paste",
                              help="At least a few thousand characters; the more, the better the model.")
    else:
        names = jobs.prepared_corpora()
        if not names:
            st.info("No corpus prepared yet: `textgen data prepare text --name NAME FILES…`, or upload files.")
        corpus = st.selectbox("Corpus", names, key="train_corpus")
    name = st.text_input("Model name", key="train_name", max_chars=64,
                         help="lower-case letters, digits, _ - . (the model's folder and its corpus's name)")
    left, right = st.columns(2)
    cell = left.selectbox("Cell", list(CELL_KINDS), index=list(CELL_KINDS).index("gru"), key="train_cell")
    labels = {k: f"{k} — {p.units} units, {p.estimate} on a 2-core CPU" for k, p in jobs.PRESETS.items()}
    labels["custom"] = "custom — units, layers and epochs of your choice (full passes over the text)"
    preset = right.radio("Size", list(labels), format_func=labels.get, key="train_preset")
    c1, c2, c3 = st.columns(3)
    units = c1.number_input("Units (custom)", 8, 1024, 128, step=8, key="train_units")
    layers = c2.number_input("Layers (custom)", 1, 4, 1, key="train_layers")
    epochs = c3.number_input("Epochs (custom)", 1, 100, 5, key="train_epochs")
    submitted = st.form_submit_button("Train", type="primary")

if submitted:
    try:
        if not name:
            raise jobs.JobError("give the model a name")
        text_files = []
        if source == "Upload files":
            text_files = jobs.save_upload(queue, name, [(f.name, f.getvalue()) for f in uploads or []])
        elif source == "Paste text":
            text_files = jobs.save_upload(queue, name, [("pasted.txt", pasted.encode("utf-8"))] if pasted else [])
        elif not corpus:
            raise jobs.JobError("pick a prepared corpus")
        argv = jobs.train_command(cell=cell, preset=preset, text_files=text_files, corpus=corpus, name=name,
                                  units=int(units), layers=int(layers), epochs=int(epochs))
        job = queue.submit(name, argv)
    except TextgenError as err:
        st.error(ui.plain(err))
        st.stop()
    queue.tick()  # start it now when nothing else runs
    st.session_state["train_job"] = job.id
    st.query_params["job"] = job.id
    st.rerun()

recent = [j for j in reversed(queue.jobs())][:8]
if recent:
    st.subheader("Recent jobs")
    st.dataframe(pd.DataFrame([{"model": j.name, "state": j.state, "job": j.id} for j in recent]), hide_index=True)
    pick = st.selectbox("Follow a job", [j.id for j in recent], format_func=lambda i: next(
        f"{j.name} ({j.state})" for j in recent if j.id == i), key="train_follow")
    if st.button("Follow", key="train_follow_go"):
        st.session_state["train_job"] = pick
        st.query_params["job"] = pick
        st.rerun()
