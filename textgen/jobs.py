"""Background training jobs: a queue on disk, run one at a time as `textgen train` subprocesses.

The app's Train page submits jobs here and reads their state; nothing trains inside a Streamlit
script thread. Everything lives under `TEXTGEN_HOME` (default `~/.textgen`):

    jobs/<id>/job.json     the job: name, command, run directory, state, pid, times
    jobs/<id>/log.txt      the command's output
    models/<name>/         the run directory (`--out`), where the model appears when done
    uploads/<name>/        text the user uploaded or pasted for it

A job's state is derived from what is on disk and whether its process lives, so a reloaded page, a
second browser or a restarted server sees the same thing: `queued` -> `running` -> `done` |
`stopped` (Stop pressed: finished with the best weights so far) | `failed` (the command's last
line says why) | `interrupted` (the process vanished, e.g. the server restarted: `resume` reruns
the same command, which continues from the last completed epoch) | `cancelled` (removed while queued).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Sequence

from textgen.atomic import replacing
from textgen.errors import TextgenError
from textgen.folders import pid_alive

ACTIVE = ("queued", "running")


class JobError(TextgenError, ValueError):
    """A job cannot be submitted, stopped or resumed as asked."""


def textgen_home() -> Path:
    """`$TEXTGEN_HOME` or `~/.textgen`."""
    return Path(os.environ.get("TEXTGEN_HOME") or "~/.textgen").expanduser()


@dataclasses.dataclass
class Job:
    """One training job (the fields of job.json)."""

    id: str
    name: str  # the model's name: the run directory is models/<name>
    command: list[str]  # argv of the `textgen train ...` command
    out: str  # the run directory
    created: float
    state: str = "queued"
    pid: int | None = None
    started: float | None = None
    ended: float | None = None
    returncode: int | None = None
    folder: Path | None = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def log_path(self) -> Path:
        return self.folder / "log.txt"

    def shell_command(self) -> str:
        """The command as a user would type it in a terminal (`textgen train ...`)."""
        argv = list(self.command)
        if argv[:3] == [sys.executable, "-m", "textgen"]:
            argv = ["textgen"] + argv[3:]
        return shlex.join(argv)

    def progress(self) -> list[dict]:
        """The run's progress records (textgen.train.Progress), oldest first."""
        from textgen.runs import PROGRESS_FILE, STATE_DIR

        live = Path(self.out) / STATE_DIR / PROGRESS_FILE  # while the run is unfinished
        path = live if live.is_file() else Path(self.out) / PROGRESS_FILE
        records = []
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            return records
        for line in lines:
            try:
                records.append(json.loads(line))
            except ValueError:
                continue  # a line being written right now
        return records

    def log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(max(0, f.seek(0, os.SEEK_END) - 64_000))
                text = f.read().decode("utf-8", errors="replace")
        except OSError:
            return ""
        kept = [line for line in text.replace("\r", "\n").splitlines()
                if line.strip() and not line.startswith(("I0000", "W0000", "E0000", "WARNING: All log"))]
        return "\n".join(kept[-lines:])

    def error_line(self) -> str | None:
        """The `textgen: error: ...` line of a failed job, if it printed one."""
        for line in reversed(self.log_tail(200).splitlines()):
            if line.startswith("textgen: error:"):
                return line[len("textgen: error:"):].strip()
        return None

    def finished_run(self) -> bool:
        from textgen.runs import RunDir

        return RunDir(Path(self.out)).finished


class JobQueue:
    """The queue of one server (one instance per process; several instances agree through the disk).

    Args:
        home: the textgen home (default `textgen_home()`).
        python: the interpreter that runs `-m textgen` (default: this one).
    """

    def __init__(self, home: str | os.PathLike | None = None, python: str | None = None):
        self.home = Path(home) if home is not None else textgen_home()
        self.python = python or sys.executable
        self.jobs_dir = self.home / "jobs"
        self.models_dir = self.home / "models"
        self.uploads_dir = self.home / "uploads"
        self._children: dict[str, subprocess.Popen] = {}

    # ---------------------------------------------------------------- reading

    def jobs(self) -> list[Job]:
        """Every job, oldest first."""
        found = []
        if self.jobs_dir.is_dir():
            for folder in self.jobs_dir.iterdir():
                job = self._read(folder)
                if job is not None:
                    found.append(job)
        return sorted(found, key=lambda j: (j.created, j.id))

    def get(self, job_id: str) -> Job | None:
        if not isinstance(job_id, str) or not job_id.isalnum():
            return None
        return self._read(self.jobs_dir / job_id)

    def place(self, job_id: str) -> int | None:
        """1 for the next queued job, 2 for the one after it...; None if `job_id` is not queued."""
        queued = [j.id for j in self.jobs() if j.state == "queued"]
        return queued.index(job_id) + 1 if job_id in queued else None

    def running(self) -> Job | None:
        return next((j for j in self.jobs() if j.state == "running"), None)

    def _read(self, folder: Path) -> Job | None:
        try:
            data = json.loads((folder / "job.json").read_text(encoding="utf-8"))
            return Job(**data, folder=folder)
        except (OSError, ValueError, TypeError):
            return None

    def _write(self, job: Job) -> None:
        from textgen.config import atomic_write_text

        data = {k: v for k, v in dataclasses.asdict(job).items() if k != "folder"}
        atomic_write_text(job.folder / "job.json", json.dumps(data, indent=2) + "\n")

    # ---------------------------------------------------------------- changing

    def submit(self, name: str, command: Sequence[str]) -> Job:
        """Queues `textgen <command...>` (argv after `textgen`) for the model `name` in models/<name>."""
        from textgen.corpus import NAME_PATTERN, NAME_RULE

        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise JobError(f"{name!r} is not a valid model name ({NAME_RULE})")
        out = self.models_dir / name
        with self._lock():
            if any(j.name == name and j.state in ACTIVE for j in self.jobs()):
                raise JobError(f"a job for {name!r} is already queued or running")
            if out.exists() and any(out.iterdir()):
                raise JobError(f"a model named {name!r} already exists in {self.models_dir}; choose another name")
            job = Job(id=uuid.uuid4().hex[:12], name=name, out=str(out), created=time.time(),
                      command=[self.python, "-m", "textgen", *command, "--out", str(out)])
            job.folder = self.jobs_dir / job.id
            job.folder.mkdir(parents=True)
            self._write(job)
        return job

    def stop(self, job_id: str) -> Job:
        """A running job finishes its epoch and keeps its best weights; a queued one is cancelled."""
        from textgen.runs import STATE_DIR, STOP_FILE

        with self._lock():
            job = self.get(job_id)
            if job is None:
                raise JobError(f"no job {job_id!r}")
            if job.state == "queued":
                job.state, job.ended = "cancelled", time.time()
                self._write(job)
            elif job.state == "running":
                (job.folder / "stop-asked").touch()
                stop = Path(job.out) / STATE_DIR / STOP_FILE
                if stop.parent.is_dir():
                    stop.touch()
                elif job.pid:  # still preparing the data: nothing trained yet, so nothing to keep
                    os.killpg(job.pid, signal.SIGTERM)
            return job

    def resume(self, job_id: str) -> Job:
        """Queues an interrupted or failed job again with the same command (training resumes)."""
        with self._lock():
            job = self.get(job_id)
            if job is None or job.state not in ("interrupted", "failed"):
                raise JobError("only an interrupted or failed job can be resumed")
            if any(j.name == job.name and j.state in ACTIVE for j in self.jobs()):
                raise JobError(f"a job for {job.name!r} is already queued or running")
            job.state, job.pid, job.returncode, job.ended = "queued", None, None, None
            job.created = time.time()  # to the end of the queue
            self._write(job)
            return job

    def tick(self) -> None:
        """Brings every job's state up to date and starts the next queued job when none runs."""
        with self._lock():
            for job in self.jobs():
                if job.state == "running":
                    self._refresh(job)
            if self.running() is None:
                queued = [j for j in self.jobs() if j.state == "queued"]
                if queued:
                    self._start(queued[0])

    def _refresh(self, job: Job) -> None:
        child = self._children.get(job.id)
        code = child.poll() if child is not None else None
        if code is None and (child is not None or pid_alive(job.pid)):
            return  # still running
        self._children.pop(job.id, None)
        job.returncode, job.ended = code, time.time()
        if job.finished_run():
            job.state = "stopped" if (job.folder / "stop-asked").exists() else "done"
        elif code is None:
            job.state = "interrupted"  # not our child: the server restarted while it ran
        else:
            job.state = "failed" if code != -signal.SIGTERM else "cancelled"
        self._write(job)

    def _start(self, job: Job) -> None:
        log = open(job.log_path, "ab")
        env = dict(os.environ, PYTHONUNBUFFERED="1", TF_CPP_MIN_LOG_LEVEL="2")
        # A session of its own: the job outlives the page, and Stop can signal its whole group.
        child = subprocess.Popen(job.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=env, start_new_session=True)
        log.close()
        self._children[job.id] = child
        job.state, job.pid, job.started = "running", child.pid, time.time()
        self._write(job)

    def _lock(self):
        """An exclusive lock on the queue (fcntl), shared by every process using this home."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        return _FileLock(self.jobs_dir / ".lock")


class _FileLock:
    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.f = open(self.path, "a")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


# --------------------------------------------------------------------------------------------
# What the Train page asks for, as a `textgen train charlm` command

@dataclasses.dataclass(frozen=True)
class Preset:
    """A model size with its training budget and the time it took on a 2-core CPU."""

    label: str
    units: int
    layers: int
    embedding_dim: int
    epochs: int
    steps_per_epoch: int  # 0 = full passes over the training split
    batch_size: int
    seq_len: int
    estimate: str  # measured with a GRU on 1.1 MB of text, 2-core CPU (`textgen bench presets`, docs/performance.md)


PRESETS = {
    "tiny": Preset("tiny", units=64, layers=1, embedding_dim=32, epochs=3, steps_per_epoch=40, batch_size=32,
                   seq_len=64, estimate="≈ 30 seconds"),
    "small": Preset("small", units=256, layers=1, embedding_dim=64, epochs=8, steps_per_epoch=150, batch_size=64,
                    seq_len=100, estimate="≈ 7 minutes"),
}
EPOCH_SAMPLE_CHARS = 200  # the Train page shows this many characters sampled after each epoch
MAX_UPLOAD_BYTES = 20_000_000  # text a page may upload or paste for one job


def train_command(*, cell: str, preset: str, text_files: Sequence[str] = (), corpus: str | None = None,
                  name: str, units: int | None = None, layers: int | None = None, epochs: int | None = None,
                  seed: int = 1) -> list[str]:
    """argv after `textgen` for a Train-page request (JobQueue.submit adds --out).

    Args:
        cell: a cell kind (textgen.config.CELL_KINDS).
        preset: a key of PRESETS, or "custom" (then units, layers, epochs are required; full passes).
        text_files: uploaded or pasted text saved as files (prepared as the corpus `name`), or
        corpus: the name of a corpus prepared before.
    """
    from textgen.config import CELL_KINDS

    if cell not in CELL_KINDS:
        raise JobError(f"cell must be one of {', '.join(CELL_KINDS)}; got {cell!r}")
    if bool(text_files) == bool(corpus):
        raise JobError("give either text files or a prepared corpus")
    if preset == "custom":
        if not all(isinstance(v, int) and v >= 1 for v in (units, layers, epochs)):
            raise JobError("a custom size needs units, layers and epochs (each >= 1)")
        p = Preset("custom", units, layers, 64, epochs, 0, 64, 100, "")
    elif preset in PRESETS:
        p = PRESETS[preset]
    else:
        raise JobError(f"preset must be one of {', '.join(PRESETS)}, custom; got {preset!r}")
    argv = ["train", "charlm"]
    argv += ["--text-file", *text_files, "--dataset", name] if text_files else ["--dataset", corpus]
    argv += ["--cell", cell, "--units", str(p.units), "--layers", str(p.layers), "--embedding-dim",
             str(p.embedding_dim), "--epochs", str(p.epochs), "--steps-per-epoch", str(p.steps_per_epoch),
             "--batch-size", str(p.batch_size), "--seq-len", str(p.seq_len), "--patience", "0",
             "--learning-rate", "0.003", "--sample-chars", str(EPOCH_SAMPLE_CHARS), "--seed", str(seed)]
    return argv


def save_upload(queue: JobQueue, name: str, files: Sequence[tuple[str, bytes]]) -> list[str]:
    """Writes uploaded (file name, bytes) pairs under uploads/<name>/ after checking each decodes as
    UTF-8 text (TextFileError names the file and byte offset otherwise); returns their paths."""
    from textgen.textfiles import read_text

    total = sum(len(data) for _, data in files)
    if not files or total == 0:
        raise JobError("no text: upload a .txt file or paste some text")
    if total > MAX_UPLOAD_BYTES:
        raise JobError(f"{total / 1e6:.1f} MB of text; the Train page takes at most {MAX_UPLOAD_BYTES // 1_000_000} MB "
                       "(train on more from the terminal with `textgen train charlm --text-file`)")
    folder = queue.uploads_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (filename, data) in enumerate(files):
        stem = "".join(c if c.isalnum() or c in "._-" else "_" for c in Path(filename).stem)[:60] or "text"
        path = folder / f"{i:02d}-{stem}.txt"
        with replacing(path, suffix=".txt") as tmp:
            Path(tmp).write_bytes(data)
            try:
                read_text(tmp)  # refuse binary / non-UTF-8 before anything is queued
            except TextgenError as err:
                raise JobError(str(err).replace(str(tmp), filename)) from err
        paths.append(str(path))
    return paths


def prepared_corpora(data_dir=None) -> list[str]:
    """Names of the text corpora prepared in the TFDS data directory."""
    from textgen.corpus import BUILDER, VERSION
    from textgen.data import _data_dir

    root = _data_dir(data_dir) / BUILDER
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / VERSION / "dataset_info.json").is_file())
