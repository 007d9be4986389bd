"""What a generation request may ask: `SamplingParams`, their limits and checks, and `SamplingError`.

Plain Python and NumPy, no TensorFlow: a request is checked on the caller's values before anything
is traced, and `textgen.serving` checks its own settings with the same helpers.
"""

from __future__ import annotations

import dataclasses
import math
import random

import numpy as np

from textgen.errors import TextgenError

MAX_LENGTH = 100_000  # characters generated per sample in one request
MAX_SAMPLES = 1024  # samples generated side by side (the batch)
MAX_PROMPT_CHARS = 1_000_000  # longest prompt primed
MAX_SEED = 2**63 - 1


class SamplingError(TextgenError, ValueError):
    """A generation parameter is out of range, or the model cannot generate."""


@dataclasses.dataclass(frozen=True)
class SamplingParams:
    """How to sample; every value is checked on construction (a bad one raises SamplingError)."""

    length: int = 200  # characters to generate per sample (the prompt is not counted), 0..MAX_LENGTH
    temperature: float = 1.0  # divides the logits; 0 = greedy (argmax), must be finite and >= 0
    top_k: int = 0  # keep only the k most likely characters; 0 = off; k >= the vocabulary keeps all
    top_p: float = 1.0  # keep the smallest set whose probability reaches p, in (0, 1]; 1 = off
    repetition_penalty: float = 1.0  # > 0; logits of characters already seen are divided (>0) or
    # multiplied (<0) by it (CTRL / Hugging Face rule); 1 = off, > 1 discourages repeats
    num_samples: int = 1  # samples generated side by side from the same prompt, 1..MAX_SAMPLES
    seed: int | None = None  # 0..2**63-1; same seed -> same text; None = a fresh random seed

    def __post_init__(self):
        _check_int("length", self.length, 0, MAX_LENGTH)
        _check_float("temperature", self.temperature, 0.0, None, "a finite number >= 0 (0 = greedy)")
        _check_int("top_k", self.top_k, 0, None)
        _check_float("top_p", self.top_p, None, 1.0, "in (0, 1] (1 = off)")
        if self.top_p <= 0:
            raise SamplingError(f"top_p must be in (0, 1] (1 = off); got {self.top_p!r}")
        _check_float("repetition_penalty", self.repetition_penalty, None, None, "a finite number > 0 (1 = off)")
        if self.repetition_penalty <= 0:
            raise SamplingError(
                f"repetition_penalty must be a finite number > 0 (1 = off); got {self.repetition_penalty!r}"
            )
        _check_int("num_samples", self.num_samples, 1, MAX_SAMPLES)
        if self.seed is not None:
            _check_int("seed", self.seed, 0, MAX_SEED)

    def with_seed(self) -> "SamplingParams":
        """A copy whose seed is fixed (drawn at random when it was None), so it can be reported."""
        if self.seed is not None:
            return self
        return dataclasses.replace(self, seed=random.SystemRandom().randrange(0, 2**31))


def _check_int(name: str, value, low: int, high: int | None) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SamplingError(f"{name} must be an integer; got {value!r}")
    if value < low or (high is not None and value > high):
        raise SamplingError(f"{name} must be in [{low}, {high if high is not None else 'inf'}]; got {value!r}")


def _check_params(params) -> None:
    if not isinstance(params, SamplingParams):
        raise SamplingError(f"params must be a textgen.sampling.SamplingParams (e.g. SamplingParams(length=3)); "
                            f"got {type(params).__name__}")


def _check_prompt(prompt) -> None:
    if not isinstance(prompt, str):
        raise SamplingError(f"prompt must be a string; got {type(prompt).__name__}")


def _check_float(name: str, value, low: float | None, high: float | None, allowed: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SamplingError(f"{name} must be {allowed}; got {value!r}")
    if not math.isfinite(value) or (low is not None and value < low) or (high is not None and value > high):
        raise SamplingError(f"{name} must be {allowed}; got {value!r}")
