"""What metadata.json records of the software and machine that made a model (training, `textgen average`).

Its own module so that commands which write a model without training it need not load the training code.
"""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf


def versions() -> dict:
    import textgen

    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": np.__version__, "textgen": textgen.__version__}


def hardware() -> dict:
    """Where the run trained (its training time means little without it): CPU model, the cores this
    process may use, and the GPUs TensorFlow sees."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    return {"cpu": cpu, "cpu_cores": cores, "gpus": gpus}


def provenance() -> dict:
    """What metadata.json records of the software and machine that made a model."""
    return {"versions": versions(), "hardware": hardware(), "git_commit": git_commit()}


def git_commit() -> str | None:
    """The source checkout's commit (+ "-dirty" with uncommitted changes), or None."""
    repo = Path(__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None
