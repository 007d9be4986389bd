"""AppTest smoke and behaviour tests of every page, on tiny model folders."""

from __future__ import annotations

import json

import pytest
from streamlit.testing.v1 import AppTest

from tests.app_models import make_app_models
from tests.conftest import REPO

APP = str(REPO / "apps" / "streamlit_app.py")
TIMEOUT = 120  # TensorFlow's import alone takes longer than AppTest's default 3 s


@pytest.fixture(scope="module")
def model_root(tmp_path_factory):
    return make_app_models(tmp_path_factory.mktemp("app_models"))


@pytest.fixture
def app(model_root, monkeypatch):
    monkeypatch.setenv("TEXTGEN_MODEL_DIRS", str(model_root))
    return AppTest.from_file(APP, default_timeout=TIMEOUT)


def _page(app, name):
    app.run()
    app.switch_page(f"app_pages/{name}.py")
    return app.run()


def _no_exception(at):
    assert not at.exception, [e.value for e in at.exception]


def test_inside_page_traces_text_and_shows_gates(app):
    at = _page(app, "inside")
    _no_exception(at)
    assert at.selectbox(key="inside_model").options[:2] == ["tiny_gru", "tiny_lstm"]  # then the shipped ones
    at.selectbox(key="inside_model").select("tiny_lstm").run()
    _no_exception(at)
    assert at.radio(key="inside_view").options == ["hidden a⟨t⟩", "update gate", "forget gate", "output gate", "cell state c⟨t⟩"]
    at.text_area(key="inside_text").input("Hi 😀 there").run()
    _no_exception(at)
    assert any("[UNK]" in i.value and "😀" in i.value for i in at.info)
    at.radio(key="inside_view").set_value("forget gate").run()
    at.number_input(key="inside_unit").set_value(3).run()
    _no_exception(at)
    frame = at.dataframe[0].value
    assert list(frame["char"]) == ["H", "i", "␣", "😀", "␣", "t", "h", "e", "r", "e"]
    assert {"guess 1", "guess 5", "P(actual next)"} <= set(frame.columns)


def test_inside_page_empty_and_long_text(app):
    at = _page(app, "inside")
    at.text_area(key="inside_text").input("").run()
    _no_exception(at)
    assert any("Type some text" in i.value for i in at.info)
    at.text_area(key="inside_text").input("ab" * 400).run()
    _no_exception(at)
    assert any("Only the first 400" in w.value for w in at.warning)


def test_models_page_shows_cards_and_metrics(app):
    at = _page(app, "models")
    _no_exception(at)
    at.selectbox(key="models_pick").select("tiny_sentiment").run()
    _no_exception(at)
    assert any("Tiny sentiment" in m.value for m in at.markdown)
    table = at.dataframe[0].value  # the model next to its baseline, numbers from metadata.json
    assert table["reader"].tolist() == ["this model", "majority"]
    assert table["accuracy"].tolist() == [0.5, 0.55] and table["valence MAE"].tolist()[0] == 2.1
    at.selectbox(key="models_pick").select("tiny_lstm").run()
    _no_exception(at)
    table = at.dataframe[0].value
    assert table["reader"].tolist() == ["this model", "unigram"] and table["bits/char"].tolist() == [6.06, 4.76]


def test_generate_page_streams_and_is_repeatable(app):
    at = _page(app, "generate")
    _no_exception(at)
    assert at.selectbox(key="gen_model").options[:2] == ["tiny_gru", "tiny_lstm"]  # then the shipped ones
    at.text_area(key="gen_prompt").input("To be 😀")
    at.slider(key="gen_length").set_value(40)
    at.number_input(key="gen_samples").set_value(2)
    at.button[0].click().run()  # the form's submit button
    _no_exception(at)
    codes = [c.value for c in at.code]
    assert len(codes) == 2 and all(c.startswith("To be 😀") and len(c) == len("To be 😀") + 40 for c in codes)
    generated = [c[len("To be 😀"):] for c in codes]
    assert "😀" not in "".join(generated)  # [UNK] is never sampled
    assert any("chars/s" in m.value for m in at.markdown)
    at.button[0].click().run()  # same seed -> same text
    assert [c.value for c in at.code] == codes
    assert at.session_state["gen_result"]["texts"] == generated


def test_generate_page_int8_weights(app):
    at = _page(app, "generate")
    at.slider(key="gen_length").set_value(50)
    at.selectbox(key="gen_precision").select("int8")
    at.button[0].click().run()
    _no_exception(at)
    result = at.session_state["gen_result"]
    assert result["precision"] == "int8" and len(result["texts"][0]) == 50
    assert any("int8 weights" in m.value for m in at.markdown)
    at.button[0].click().run()  # the same seed repeats within one precision
    assert at.session_state["gen_result"]["texts"] == result["texts"]


def test_generate_page_greedy_temperature_zero(app):
    at = _page(app, "generate")
    at.slider(key="gen_length").set_value(20)
    at.slider(key="gen_temperature").set_value(0.0)
    at.number_input(key="gen_samples").set_value(3)
    at.button[0].click().run()
    _no_exception(at)
    codes = [c.value for c in at.code]
    assert len(codes) == 3 and len(set(codes)) == 1  # greedy: every sample is the same


def test_sentiment_page_single_text_trajectory_and_examples(app):
    at = _page(app, "sentiment")
    _no_exception(at)
    assert any("Type a text" in i.value for i in at.info)  # empty text -> a friendly message
    at.button(key="sent_example_Rave").click().run()
    _no_exception(at)
    assert at.text_area(key="sent_text").value.startswith("An absolute triumph")
    labels = [m.label for m in at.metric]
    assert labels == ["P(positive)", "Valence (−4 … +4)", "VADER compound (−1 … +1)"]
    p = float(at.metric[0].value.rstrip("%")) / 100
    assert 0.0 <= p <= 1.0
    vader = float(at.metric[2].value)
    assert vader > 0.5  # the lexicon finds "triumph", "superb" positive
    assert any("How the reading evolves" in s.value for s in at.subheader)
    # The chart on the page labels its x-axis with the example's words, not word numbers.
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert _x_labels(spec) == dict(enumerate(at.text_area(key="sent_text").value.split(), start=1))


def _x_labels(spec: dict) -> dict[int, str]:
    """{tick value: label} of a trajectory chart's x-axis: its `labelExpr` (`[words...][datum.value - 1]`)
    evaluated at each of its `values`."""
    axis = spec["layer"][0]["encoding"]["x"]["axis"]
    words, index = axis["labelExpr"].rsplit("[", 1)
    assert index == "datum.value - 1]"
    words = json.loads(words)  # JSON string escapes are the Vega expression's own
    return {v: words[v - 1] for v in axis["values"]}


@pytest.mark.parametrize("count", [2, 14, 40, 41, 120])
def test_trajectory_axis_shows_the_words(count, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "apps"))
    import components

    odd = ["it's", 'a "quote"', "back\\slash", "😀", "日本語", "line\u2028sep", "x" * 60]
    words = [odd[i % len(odd)] + str(i) for i in range(count)]
    spec = components.trajectory_chart(words, [i / count for i in range(count)]).to_dict()
    labels = _x_labels(spec)
    assert labels == {i: words[i - 1] for i in labels}  # each tick is labelled with the word at that position
    assert 1 in labels and len(labels) <= components.MAX_TRAJECTORY_LABELS
    assert len(labels) == count if count <= components.MAX_TRAJECTORY_LABELS else len(labels) >= count // 3
    if count >= len(odd):  # 60 characters of "x" among them: too long to lie flat
        assert spec["layer"][0]["encoding"]["x"]["axis"]["labelAngle"] == -45
    assert "word" in [t if isinstance(t, str) else t["field"] for t in spec["layer"][0]["encoding"]["tooltip"]]
    assert all(ord(c) < 128 for c in spec["layer"][0]["encoding"]["x"]["axis"]["labelExpr"])


def test_short_trajectory_labels_stay_flat(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "apps"))
    import components

    words = "Dull, predictable and far too long.".split()
    spec = components.trajectory_chart(words, [0.4, 0.3, 0.3, 0.2, 0.2, 0.1]).to_dict()
    assert _x_labels(spec) == dict(enumerate(words, start=1))
    assert spec["layer"][0]["encoding"]["x"]["axis"]["labelAngle"] == 0


def test_sentiment_page_odd_text_and_long_text(app):
    at = _page(app, "sentiment")
    at.text_area(key="sent_text").input("😀😀 \x07 日本語のテキスト مرحبا").run()
    _no_exception(at)
    assert len(at.metric) == 3
    at.text_area(key="sent_text").input("good " * 1200).run()
    _no_exception(at)
    assert any("cut to its first 5,000" in w.value for w in at.warning)


@pytest.mark.parametrize(
    "name, data, message",
    [
        ("reviews.csv", b"text,stars\ngreat film,5\nawful,1\n", None),
        ("reviews.txt", "great film\n\nawful 😀\n".encode(), None),
        ("one_column.csv", b"text\ngreat, film\n\"awful\"\n", None),
        ("bad.csv", b"a,b\n1,2\n", "none is called `text`"),
        ("bad.txt", b"\xff\xfe\x00bad", "not UTF-8"),
        ("big.txt", b"x" * 2_000_001, "at most 2 MB"),
        ("empty.txt", b"\n\n", "holds no texts"),
    ],
)
def test_uploaded_texts_are_read_or_refused_with_a_message(name, data, message):
    import sys

    sys.path.insert(0, str(REPO / "apps"))
    from components import read_uploaded_texts

    texts, problem = read_uploaded_texts(name, data)
    if message is None:
        expected = {"reviews.csv": ["great film", "awful"], "reviews.txt": ["great film", "awful 😀"],
                    "one_column.csv": ["great, film", "awful"]}[name]
        assert problem is None and texts == expected
    else:
        assert texts == [] and message in problem


def test_pages_without_models_say_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "apps"))
    import resources  # the module the pages import: point its shipped and user folders elsewhere

    monkeypatch.setenv("TEXTGEN_MODEL_DIRS", str(tmp_path))
    monkeypatch.setattr(resources, "SHIPPED", tmp_path / "none")
    monkeypatch.setattr(resources, "USER_MODELS", tmp_path / "none")
    for page, message in (("generate", "No character models"), ("sentiment", "No sentiment models"),
                          ("inside", "No character models")):
        at = _page(AppTest.from_file(APP, default_timeout=TIMEOUT), page)
        _no_exception(at)
        assert any(message in i.value and "textgen train" in i.value for i in at.info), page


def test_broken_model_folders_show_a_message_not_a_traceback(model_root, tmp_path, monkeypatch):
    import shutil

    for name in ("tiny_lstm", "tiny_sentiment"):
        shutil.copytree(model_root / name, tmp_path / name)
        data = (tmp_path / name / "model.keras").read_bytes()
        (tmp_path / name / "model.keras").write_bytes(data[: len(data) // 2])  # truncated download
    monkeypatch.setenv("TEXTGEN_MODEL_DIRS", str(tmp_path))
    for page, key in (("inside", "inside_model"), ("sentiment", "sent_model"), ("generate", "gen_model")):
        at = _page(AppTest.from_file(APP, default_timeout=TIMEOUT), page)
        at.selectbox(key=key).select("tiny_lstm" if page != "sentiment" else "tiny_sentiment").run()
        if page == "sentiment":
            at.button(key="sent_example_Rave").click().run()
        if page == "generate":
            at.button[0].click().run()
        _no_exception(at)
        assert any("This model cannot be used" in e.value for e in at.error), page


def test_generate_result_line_shows_a_folder_name_as_plain_text(model_root, tmp_path, monkeypatch):
    """A model folder named with Markdown characters (a backtick, stars, brackets) shows literally."""
    import shutil

    name = "my`model *x* [a](b)"
    shutil.copytree(model_root / "tiny_gru", tmp_path / name)
    monkeypatch.setenv("TEXTGEN_MODEL_DIRS", str(tmp_path))
    at = _page(AppTest.from_file(APP, default_timeout=TIMEOUT), "generate")
    at.selectbox(key="gen_model").select(name).run()
    at.slider(key="gen_length").set_value(10)
    at.button[0].click().run()
    _no_exception(at)
    line = next(m.value for m in at.markdown if "chars/s" in m.value)
    assert r"my\`model \*x\* \[a\]\(b\)" in line  # every Markdown character escaped: shown as typed


def test_train_page_refuses_bad_requests_with_a_message(model_root, tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTGEN_MODEL_DIRS", str(model_root))
    monkeypatch.setenv("TEXTGEN_HOME", str(tmp_path / "home"))
    at = _page(AppTest.from_file(APP, default_timeout=TIMEOUT), "train")
    _no_exception(at)
    assert [o.split(" — ")[0] for o in at.radio(key="train_preset").options] == ["tiny", "small", "custom"]
    at.radio(key="train_source").set_value("Paste text").run()
    at.text_area(key="train_paste").input("To be, or not to be " * 200)
    at.text_input(key="train_name").input("Not A Name!")
    at.button[0].click().run()
    _no_exception(at)
    assert any("not a valid model name" in e.value for e in at.error)
    at.text_input(key="train_name").input("")
    at.button[0].click().run()
    assert any("give the model a name" in e.value for e in at.error)
    at.text_area(key="train_paste").input("")
    at.text_input(key="train_name").input("fine_name")
    at.button[0].click().run()
    assert any("no text" in e.value for e in at.error)
    assert not (tmp_path / "home" / "jobs").exists() or not any((tmp_path / "home" / "jobs").glob("*/job.json"))
