"""No data lost: outputs never overlap inputs, --overwrite replaces only textgen's own folders, bad
paths are one-line errors, and a killed export leaves the old or the new export at its target.

Every data-loss case is a real folder with a sentinel file that must survive.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import keras
import pytest

from textgen import cli, folders
from textgen.artifacts import save_model_dir
from textgen.compare import MARKDOWN_FILE
from textgen.config import CharLMConfig, RNNConfig
from textgen.models import build_char_lm

VOCAB = list("abcde \n")
SENTINEL = "sentinel.txt"


@pytest.fixture(scope="module")
def model_source(tmp_path_factory) -> Path:
    """A tiny character model directory, copied into each test's own folder."""
    keras.utils.set_random_seed(1)
    cfg = CharLMConfig(rnn=RNNConfig(cell="gru", units=4), embedding_dim=3)
    root = tmp_path_factory.mktemp("folders_src")
    save_model_dir(root / "model", build_char_lm(cfg, VOCAB), cfg, {"dataset": {"name": "none"}})
    keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(len(VOCAB) + 1, 3),
                      keras.layers.GRU(4, return_sequences=True), keras.layers.Dense(len(VOCAB) + 1)]
                     ).save(root / "user_model.keras")  # the tutorial's shape: ids -> Embedding -> GRU -> Dense
    (root / "probe.txt").write_text("abc de\n" * 60, encoding="utf-8")
    (root / "vocab.json").write_text('["[UNK]", "a", "b", "c", "d", "e", " ", "\\n"]', encoding="utf-8")
    return root


def _copy_model(src: Path, dest: Path) -> Path:
    shutil.copytree(src / "model", dest)
    return dest


def _snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative path -> bytes)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _run(args, capsys) -> tuple[int, str]:
    code = cli.main([str(a) for a in args])
    err = capsys.readouterr().err
    return code, err


def _one_line_error(code: int, err: str) -> None:
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("textgen: error:"), err
    assert "Traceback" not in err


# --------------------------------------------------------------------------------------------
# 1. Outputs that overlap an input, and folders textgen did not write


def test_export_into_the_folder_holding_the_model_is_refused(model_source, tmp_path, capsys):
    """The reported data loss: `export MODEL --out PARENT --overwrite` deleted the model and its siblings."""
    models = tmp_path / "models"
    model = _copy_model(model_source, models / "mymodel")
    (models / "other.txt").write_text("notes", encoding="utf-8")
    before = _snapshot(tmp_path)
    for out in (models, model, model / "inside", tmp_path):
        code, err = _run(["export", model, "--out", out, "--overwrite"], capsys)
        _one_line_error(code, err)
        assert "input" in err
    assert _snapshot(tmp_path) == before


def test_export_through_a_symlink_to_the_model_is_refused(model_source, tmp_path, capsys):
    model = _copy_model(model_source, tmp_path / "mymodel")
    (tmp_path / "link").symlink_to(model, target_is_directory=True)
    (tmp_path / "parent_link").symlink_to(tmp_path, target_is_directory=True)
    before = _snapshot(model)
    for out in (tmp_path / "link", tmp_path / "parent_link"):
        code, err = _run(["export", model, "--out", out, "--overwrite"], capsys)
        _one_line_error(code, err)
    code, err = _run(["export", tmp_path / "link", "--out", tmp_path, "--overwrite"], capsys)
    _one_line_error(code, err)
    assert _snapshot(model) == before


def test_overwrite_never_replaces_a_users_folder(model_source, tmp_path, capsys):
    model = _copy_model(model_source, tmp_path / "mymodel")
    users = tmp_path / "my_documents"
    users.mkdir()
    (users / SENTINEL).write_text("keep me", encoding="utf-8")
    code, err = _run(["export", model, "--out", users, "--overwrite"], capsys)
    _one_line_error(code, err)
    assert "did not write" in err and (users / SENTINEL).read_text(encoding="utf-8") == "keep me"
    # A textgen export with a file of the user's added inside is not replaced either.
    target = tmp_path / "exported"
    assert _run(["export", model, "--format", "tflite", "--out", target], capsys)[0] == 0
    (target / SENTINEL).write_text("mine", encoding="utf-8")
    code, err = _run(["export", model, "--format", "tflite", "--out", target, "--overwrite"], capsys)
    _one_line_error(code, err)
    assert SENTINEL in err and (target / SENTINEL).read_text(encoding="utf-8") == "mine"
    (target / SENTINEL).unlink()
    assert _run(["export", model, "--format", "tflite", "--out", target, "--overwrite"], capsys)[0] == 0


def test_import_refuses_overlaps_and_users_folders(model_source, tmp_path, capsys):
    src = tmp_path / "src"
    shutil.copytree(model_source, src)
    users = tmp_path / "mine"
    users.mkdir()
    (users / SENTINEL).write_text("keep", encoding="utf-8")
    before = _snapshot(tmp_path)
    for out in (src, users, tmp_path):
        code, err = _run(["import", src / "user_model.keras", "--vocab", src / "vocab.json", "--out", out,
                          "--overwrite"], capsys)
        _one_line_error(code, err)
    assert _snapshot(tmp_path) == before
    out = tmp_path / "imported"
    args = ["import", src / "user_model.keras", "--vocab", src / "vocab.json", "--out", out]
    assert _run(args, capsys)[0] == 0 and folders.read_marker(out)["kind"] == "model"
    assert _run(args + ["--overwrite"], capsys)[0] == 0  # its own folder: replaced


def test_train_refuses_users_folder_and_its_inputs(model_source, tmp_path, capsys):
    users = tmp_path / "mine"
    users.mkdir()
    (users / SENTINEL).write_text("keep", encoding="utf-8")
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "input.txt").write_text("abc", encoding="utf-8")
    before = _snapshot(tmp_path)
    cases = [
        ["--out", users, "--overwrite"],
        ["--out", manual, "--manual-dir", manual, "--overwrite"],
        ["--out", tmp_path, "--manual-dir", manual, "--overwrite"],
    ]
    for extra in cases:
        code, err = _run(["train", "charlm", "--units", "4", "--epochs", "1", "--quiet", *extra], capsys)
        _one_line_error(code, err)
    code, err = _run(["train", "sentiment", "--init-from", users, "--out", users / "sub", "--quiet"], capsys)
    _one_line_error(code, err)
    assert _snapshot(tmp_path) == before


def test_compare_never_replaces_a_users_file_or_writes_into_a_model(model_source, tmp_path, capsys):
    model = _copy_model(model_source, tmp_path / "m")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / MARKDOWN_FILE).write_text("# my own notes\n", encoding="utf-8")
    before = _snapshot(tmp_path)
    for out in (docs, model, tmp_path):
        code, err = _run(["compare", model, "--out", out, "--text-file", model / "config.json"], capsys)
        _one_line_error(code, err)
    assert _snapshot(tmp_path) == before


# --------------------------------------------------------------------------------------------
# 2. Bad --out paths: one line, exit 2


@pytest.mark.parametrize("bad", ["under_a_file", "/proc/textgen_x", "/sys/textgen_x"])
def test_bad_out_paths_are_one_line_errors(model_source, tmp_path, capsys, bad):
    model = _copy_model(model_source, tmp_path / "m")
    (tmp_path / "a_file").write_text("x", encoding="utf-8")
    out = tmp_path / "a_file" / "x" if bad == "under_a_file" else Path(bad)
    for args in (["export", model, "--out", out],
                 ["export", model, "--format", "tflite", "--out", out, "--overwrite"],
                 ["import", model_source / "user_model.keras", "--vocab", model_source / "vocab.json", "--out", out],
                 ["compare", model, "--out", out, "--text-file", model / "config.json"],
                 ["train", "charlm", "--units", "4", "--epochs", "1", "--quiet", "--out", out]):
        code, err = _run(args, capsys)
        _one_line_error(code, err)
    assert not Path("/proc/textgen_x").exists() and not Path("/sys/textgen_x").exists()


# --------------------------------------------------------------------------------------------
# 7. Publishing: the target always holds the old or the new folder; leftovers are recovered


def _complete_export(path: Path) -> str | None:
    """The marker's creation id of a complete export at `path`, or None."""
    marker = folders.read_marker(path)
    return None if marker is None or not (path / "model.tflite").is_file() else marker["created"] + str(
        (path / "model.tflite").stat().st_mtime_ns)


def test_recover_restores_a_target_renamed_aside_and_removes_dead_leftovers(tmp_path):
    out = tmp_path / "exp"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()  # a pid that has exited
    # The moment between the two renames of the portable swap: the target is missing.
    old = tmp_path / f".exp.textgen-old-{dead}"
    old.mkdir()
    (old / "model.tflite").write_bytes(b"old")
    half = tmp_path / f".exp.textgen-tmp-{dead}-abc"
    half.mkdir()
    (half / "partial").write_bytes(b"x")
    said = []
    done = folders.recover(out, said.append)
    assert (out / "model.tflite").read_bytes() == b"old"
    assert len(done) == 2 and any("restored" in line for line in done) and said == done
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp"]
    # A leftover of a live process (this one) is never touched: it may be publishing right now.
    live = tmp_path / f".exp.textgen-tmp-{os.getpid()}-xyz"
    live.mkdir()
    assert folders.recover(out) == [] and live.is_dir()


def test_publish_swaps_in_place(tmp_path):
    out = tmp_path / "target"
    for content in (b"first", b"second"):
        staged = folders.staging_folder(out)
        (staged / "f").write_bytes(content)
        folders.publish(staged, out)
        assert (out / "f").read_bytes() == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["target"]


@pytest.mark.slow
def test_kill_9_during_export_leaves_old_or_new_and_no_leftovers(model_source, tmp_path):
    """kill -9 of `textgen export --overwrite` at moments spread over its run (as the training one does)."""
    model = _copy_model(model_source, tmp_path / "m")
    target = tmp_path / "out"
    command = [sys.executable, "-m", "textgen", "export", str(model), "--format", "tflite", "--out", str(target),
               "--overwrite"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=env, timeout=300)
    duration = time.perf_counter() - start
    seen = {_complete_export(target)}
    assert None not in seen
    # Start-up (imports) is most of a run; the staging and the swap fall in its last quarter.
    for fraction in (0.85, 0.93, 0.98):
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        time.sleep(duration * fraction)
        proc.kill()
        proc.wait()
        now = _complete_export(target)
        assert now is not None, f"target missing or incomplete after a kill at {fraction:.0%}"
        seen.add(now)
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "out"]  # no .out.textgen-* leftovers
    assert _complete_export(target) is not None


# --------------------------------------------------------------------------------------------
# The property: any --out against any input -> exit 0 or 2, never a traceback, never a lost file

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

PLACES = ["model", "model/sub", "model_link", "parent", "parent/new", "parent/new/deeper", "a_file",
          "a_file/x", "user", "user/x", "readonly", "readonly/x", "dangling_link", "exported", "missing/a/b", "."]


def _layout(root: Path, model_source: Path) -> None:
    parent = root / "parent"
    _copy_model(model_source, root / "model")
    parent.mkdir()
    (root / "model" / SENTINEL).write_text("model's", encoding="utf-8")
    (root / "model_link").symlink_to(root / "model", target_is_directory=True)
    (root / "a_file").write_text("file", encoding="utf-8")
    (root / "user").mkdir()
    (root / "user" / SENTINEL).write_text("user's", encoding="utf-8")
    (root / "readonly").mkdir()
    (root / "readonly" / SENTINEL).write_text("ro", encoding="utf-8")
    (root / "readonly").chmod(0o555)
    (root / "dangling_link").symlink_to(root / "nowhere")
    (root / "exported").mkdir()
    folders.write_marker(root / "exported", "export", [])


@pytest.mark.slow
@settings(max_examples=40, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(command=st.sampled_from(["export", "import", "compare"]), place=st.sampled_from(PLACES),
       source=st.sampled_from(["model", "model_link"]), overwrite=st.booleans())
def test_any_out_path_exits_0_or_2_and_loses_no_file(model_source, tmp_path_factory, command, place, source,
                                                     overwrite):
    root = tmp_path_factory.mktemp("prop")
    _layout(root, model_source)
    sentinels = {p: p.read_bytes() for p in root.rglob(SENTINEL)}
    model_files = _snapshot(root / "model")
    out = root / place
    src = root / source
    if command == "export":
        args = ["export", src, "--format", "tflite", "--out", out]
    elif command == "import":
        args = ["import", model_source / "user_model.keras", "--vocab", model_source / "vocab.json", "--out", out]
    else:
        args = ["compare", src, "--out", out, "--text-file", model_source / "probe.txt", "--resets", "4,16"]
    if overwrite and command != "compare":
        args.append("--overwrite")
    try:
        code = cli.main([str(a) for a in args])  # any exception here would be a traceback for a user
    finally:
        (root / "readonly").chmod(0o755)
    assert code in (0, 2)
    for path, content in sentinels.items():
        assert path.read_bytes() == content, f"{path} lost by {args}"
    after = _snapshot(root / "model")
    assert all(after.get(name) == content for name, content in model_files.items())  # nothing lost or changed
    assert not [p for p in root.rglob(".*textgen-*")], "leftovers beside the target"


def test_written_files_and_published_folders_take_the_umask_not_owner_only(tmp_path):
    # mkstemp and mkdtemp create 0600 files and 0700 folders; a model written by one user (a CI job, a
    # training account) must stay readable by the server or colleague that loads it, as any new file would.
    from textgen import atomic

    old = os.umask(0o022)
    try:
        atomic.write_text(tmp_path / "a.json", "{}")
        out = tmp_path / "published"
        folders.build_and_publish(out, lambda staged: atomic.write_text(staged / "x.txt", "x"), "export")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (out / "x.txt").stat().st_mode & 0o777 == 0o644
    assert out.stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in out.iterdir()) == [folders.MARKER, "x.txt"]
