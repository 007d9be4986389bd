"""The compiled generation loop: parity with the Keras step model, rigged logits, seeds, streaming, CLI."""

from __future__ import annotations

import dataclasses
import json

import keras
import numpy as np
import pytest

from tests.conftest import load_bench
from textgen import cli
from textgen.artifacts import ModelDirError, save_model_dir
from textgen.config import CharLMConfig, RNNConfig, SentimentConfig
from textgen.models import build_char_lm, build_sentiment_model, build_step_model, initial_states
from textgen.sampling import CharLMCore, Sampler, SamplingError, SamplingParams, load_sampler

KINDS = ("simple_rnn", "gru", "lstm", "minimal_gru", "peephole_lstm")
RIG_VOCAB = list("abcdefgh")  # no "\n": an empty prompt starts from zero states


def rigged_model(unk_bias: float = 0.0, other_bias: float = 0.0, cycle: int = 8) -> keras.Model:
    """A SimpleRNN model whose greedy next character is a fixed function of the current one.

    Embedding = identity, kernel = 5·I, no recurrence: h = tanh(5·onehot(id)). The Dense maps id i
    to f(i) = i % 8 + 1 (a -> b -> ... -> h -> a) with logit 10·tanh(5); [UNK] (id 0) -> "c".
    With `cycle` = 4 the first four close their own loop (a -> b -> c -> d -> a).
    """
    size = len(RIG_VOCAB) + 1
    config = CharLMConfig(rnn=RNNConfig(cell="simple_rnn", units=size), embedding_dim=size)
    model = build_char_lm(config, RIG_VOCAB)
    model.get_layer("embedding").set_weights([np.eye(size, dtype="float32")])
    model.get_layer("rnn_0").set_weights([5 * np.eye(size, dtype="float32"), np.zeros((size, size), "float32"),
                                          np.zeros(size, "float32")])
    dense = np.zeros((size, size), "float32")
    for i in range(1, size):
        dense[i, (i % cycle if i <= cycle else i % (size - 1)) + 1] = 10.0
    dense[0, 3] = 10.0
    bias = np.full(size, other_bias, "float32")
    bias[0] = unk_bias
    model.get_layer("logits").set_weights([dense, bias])
    return model


def random_model(kind: str, vocab=tuple("abcdefg \n"), layers: int = 2, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    config = CharLMConfig(rnn=RNNConfig(cell=kind, units=8, layers=layers), embedding_dim=4)
    model = build_char_lm(config, list(vocab))
    # Larger weights than the initialisers give, so the greedy path is not one repeated character.
    for w in model.weights:
        w.assign(w.numpy() * 3.0)
    return model


@pytest.fixture(scope="module")
def rigged():
    return Sampler(rigged_model())


@pytest.fixture(scope="module")
def gru_sampler():
    return Sampler(random_model("gru"), chunk_size=16)


def step_model_greedy(model: keras.Model, prompt: str, length: int):
    """Reference: the plain one-call-per-character loop on `build_step_model` (masking [UNK]).

    Returns the text and, per generated character, (logits before it, states before it).
    """
    from textgen.vocab import CharCodec, vocabulary_of

    codec = CharCodec(vocabulary_of(model))
    step = build_step_model(model)
    out = step([np.array([codec.encode(prompt)], "int32"), *initial_states(model, 1)])
    logits, states = np.asarray(out[0])[:, -1], [np.asarray(s) for s in out[1:]]
    ids, trace = [], []
    for _ in range(length):
        trace.append((logits[0].copy(), states))
        masked = logits[0].copy()
        masked[0] = -np.inf
        ids.append(int(np.argmax(masked)))
        out = step([np.array([[ids[-1]]], "int32"), *states])
        logits, states = np.asarray(out[0])[:, -1], [np.asarray(s) for s in out[1:]]
    return codec.decode(ids), trace


@pytest.mark.parametrize("kind", KINDS)
def test_greedy_equals_step_model(kind):
    model = random_model(kind)
    prompt = "ab\u00e9c d"  # "é" is outside the vocabulary: read as [UNK] by both
    expected, trace = step_model_greedy(model, prompt, 24)
    sampler = Sampler(model, chunk_size=16)
    assert sampler.generate(prompt, SamplingParams(length=24, temperature=0.0)) == [expected]
    # One hand-written step from the Keras states gives the Keras step model's next logits.
    ids = sampler.codec.encode(expected)
    logits, _, _ = sampler.start([prompt])
    np.testing.assert_allclose(logits.numpy()[0], trace[0][0], atol=1e-5, rtol=1e-5)
    for t in range(len(ids) - 1):
        logits, _ = sampler.core.step(np.array([ids[t]], "int32"), tuple(trace[t][1]))
        np.testing.assert_allclose(logits.numpy()[0], trace[t + 1][0], atol=1e-5, rtol=1e-5)


def test_rigged_greedy_follows_the_rule(rigged):
    assert rigged.generate("a", SamplingParams(length=10, temperature=0)) == ["bcdefghabc"]
    assert rigged.generate("xyz\u4e2d", SamplingParams(length=3, temperature=0)) == ["cde"]  # [UNK] -> c
    # Empty prompt without "\n" in the vocabulary: zero states and a uniform first character,
    # which greedy resolves to the first vocabulary character.
    assert rigged.generate("", SamplingParams(length=4, temperature=0)) == ["abcd"]


def test_unk_is_never_sampled():
    sampler = Sampler(rigged_model(unk_bias=100.0))  # [UNK] has by far the largest logit
    assert sampler.generate("a", SamplingParams(length=9, temperature=0)) == ["bcdefghab"]
    for ids in sampler.stream_ids(["a", "\u00e9"], SamplingParams(length=64, temperature=50.0, seed=3)):
        assert (ids > 0).all() and (ids < 9).all()


def test_top_k_one_and_tiny_top_p_equal_greedy(gru_sampler):
    greedy = gru_sampler.generate("ab", SamplingParams(length=30, temperature=0))
    for seed in (0, 1, 2):
        assert gru_sampler.generate("ab", SamplingParams(length=30, temperature=1.5, top_k=1, seed=seed)) == greedy
        assert gru_sampler.generate("ab", SamplingParams(length=30, temperature=1.5, top_p=1e-6, seed=seed)) == greedy
    # A top_p that rounds to 0 in float32 still keeps the most likely character (found by hypothesis).
    assert gru_sampler.generate("ab", SamplingParams(length=30, temperature=1.0, top_p=1e-100, seed=0)) == greedy


def test_seed_reproducible_and_streaming_equals_one_call(gru_sampler):
    params = SamplingParams(length=48, temperature=1.2, top_k=5, top_p=0.9, num_samples=3, seed=123)
    first = gru_sampler.generate("ab", params)
    assert first == gru_sampler.generate("ab", params)
    assert len(first) == 3 and all(len(s) == 48 for s in first)
    assert len(set(first)) > 1  # three different samples from one prompt
    assert gru_sampler.generate("ab", dataclasses.replace(params, seed=124)) != first
    chunks = list(gru_sampler.stream("ab", params, chunk_size=32))
    assert [len(c[0]) for c in chunks] == [32, 16]
    assert ["".join(c[i] for c in chunks) for i in range(3)] == first
    # A shorter request is a prefix of a longer one with the same seed.
    assert gru_sampler.generate("ab", dataclasses.replace(params, length=16)) == [s[:16] for s in first]


def test_prompts_of_different_lengths_prime_independently(gru_sampler):
    params = SamplingParams(length=12, temperature=0)
    prompts = ["ab", "abcdefg gfedcba", "", "\U0001f600"]
    together = [gru_sampler.codec.decode(row) for row in next(gru_sampler.stream_ids(prompts, params))]
    alone = [gru_sampler.generate(p, params)[0] for p in prompts]
    assert together == alone


def test_long_prompt_is_primed_in_windows(gru_sampler):
    model_prompt = ("abc defg\n" * 40)[:300]  # longer than one priming window (256)
    expected, _ = step_model_greedy(random_model("gru"), model_prompt, 10)
    assert gru_sampler.generate(model_prompt, SamplingParams(length=10, temperature=0)) == [expected]


def test_warm_up_compiles_the_request_shapes_and_changes_no_output():
    params = SamplingParams(length=300, temperature=0.8, seed=9)
    cold = Sampler(random_model("gru"))
    expected = ["".join(c[0] for c in cold.stream("ROMEO:\n", params, chunk_size=32))]

    warm = Sampler(random_model("gru"))
    prime, sample = warm._functions(1)
    warm.warm_up("ROMEO:\n", 300, 32)
    traced = (prime.experimental_get_tracing_count(), sample.experimental_get_tracing_count())
    assert traced == (1, 2)  # one prompt bucket (8); chunks of 32 and the last 12 in a bucket of 16
    # A request of the same shape (other prompt and parameters) compiles nothing more ...
    assert ["".join(c[0] for c in warm.stream("JULIET:", params, chunk_size=32))] != expected
    assert (prime.experimental_get_tracing_count(), sample.experimental_get_tracing_count()) == traced
    # ... and the warm-up left nothing behind: the same request gives the cold sampler's text.
    assert ["".join(c[0] for c in warm.stream("ROMEO:\n", params, chunk_size=32))] == expected


def test_empty_prompt_starts_from_newline(gru_sampler):
    params = SamplingParams(length=20, temperature=0.9, seed=5)
    assert gru_sampler.generate("", params) == gru_sampler.generate("\n", params)


def test_repetition_penalty_avoids_seen_characters():
    # a -> b -> c -> d -> a; the rule's choice has logit 10·tanh(5) + 1 ≈ 11, every other 1.
    sampler = Sampler(rigged_model(other_bias=1.0, cycle=4))
    assert sampler.generate("a", SamplingParams(length=8, temperature=0)) == ["bcdabcda"]
    # Penalty 20: after "abcd", "a" scores 11/20 < 1, so the first unseen character "e" wins; its
    # rule leads on through f, g, h; then every character is seen and the rule wins again.
    assert sampler.generate("a", SamplingParams(length=8, temperature=0, repetition_penalty=20.0)) == ["bcdefgha"]


def test_bfloat16_weights_keep_rigged_greedy_output():
    sampler = Sampler(rigged_model(), precision="bfloat16")
    assert sampler.generate("a", SamplingParams(length=10, temperature=0)) == ["bcdefghabc"]


@pytest.mark.parametrize("kwargs", [
    {"length": -1}, {"length": 10**9}, {"length": 2.5}, {"temperature": -0.1}, {"temperature": float("nan")},
    {"temperature": float("inf")}, {"top_k": -1}, {"top_p": 0.0}, {"top_p": 1.5}, {"top_p": float("nan")},
    {"repetition_penalty": 0.0}, {"num_samples": 0}, {"num_samples": 5000}, {"seed": -1}, {"seed": 2**64},
    {"length": True}, {"temperature": "hot"},
])
def test_bad_parameters_raise_clear_errors(kwargs):
    with pytest.raises(SamplingError) as info:
        SamplingParams(**kwargs)
    assert next(iter(kwargs)) in str(info.value) and "\n" not in str(info.value)


def test_extreme_temperatures_stay_finite(rigged):
    for temperature in (1e-30, 1e-12, 1e12, 3e38):
        out = rigged.generate("a", SamplingParams(length=8, temperature=temperature, seed=1))[0]
        assert len(out) == 8 and set(out) <= set(RIG_VOCAB)
    assert rigged.generate("a", SamplingParams(length=8, temperature=1e-30, seed=1)) == ["bcdefgha"]


def test_not_a_character_model_is_refused(tmp_path):
    config = SentimentConfig(rnn=RNNConfig(cell="gru", units=4), max_tokens=20, sequence_length=4, embedding_dim=4)
    save_model_dir(tmp_path / "sent", build_sentiment_model(config, ["", "[UNK]", "good"]), config, {})
    with pytest.raises(SamplingError, match="sentiment"):
        load_sampler(tmp_path / "sent")
    with pytest.raises(ModelDirError):
        load_sampler(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelDirError):
        load_sampler(tmp_path / "empty")
    with pytest.raises(SamplingError):
        CharLMCore(build_sentiment_model(config, ["", "[UNK]", "good"]))


@pytest.fixture(scope="module")
def rigged_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("rigged") / "model"
    model = rigged_model()
    size = len(RIG_VOCAB) + 1
    save_model_dir(path, model, CharLMConfig(rnn=RNNConfig(cell="simple_rnn", units=size), embedding_dim=size), {})
    return path


def test_cli_generate_json_and_stream(rigged_dir, capsys):
    assert cli.main(["generate", str(rigged_dir), "--prompt", "a", "--length", "5", "--temperature", "0",
                     "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["samples"] == ["bcdef"] and result["prompt"] == "a"
    assert isinstance(result["seed"], int)
    assert cli.main(["generate", str(rigged_dir), "--prompt", "a", "--length", "100", "--temperature", "0"]) == 0
    assert capsys.readouterr().out == "a" + ("bcdefgha" * 13)[:100] + "\n"
    assert cli.main(["generate", str(rigged_dir), "--prompt", "a", "--length", "9", "--num-samples", "2",
                     "--seed", "4", "--top-k", "2", "--top-p", "0.5", "--repetition-penalty", "1.2", "--json"]) == 0
    samples = json.loads(capsys.readouterr().out)["samples"]
    assert len(samples) == 2 and all(len(s) == 9 for s in samples)


@pytest.mark.parametrize("flags, message", [
    (["--length", "-3"], "length"), (["--temperature", "-1"], "temperature"), (["--top-p", "0"], "top_p"),
    (["--top-p", "1.5"], "top_p"), (["--top-k", "-2"], "top_k"), (["--seed", "-1"], "seed"),
])
def test_cli_generate_bad_values_exit_2(rigged_dir, capsys, flags, message):
    assert cli.main(["generate", str(rigged_dir), *flags]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_cli_generate_bad_model_dirs_exit_2(tmp_path, capsys):
    assert cli.main(["generate", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["generate", str(tmp_path)]) == 2
    assert "missing" in capsys.readouterr().err


def test_xla_and_plain_graphs_agree(gru_sampler):
    """jit_compile="auto" uses XLA below XLA_MAX_BATCH and plain graphs from it on; both agree."""
    from textgen.sampling import XLA_MAX_BATCH

    greedy = gru_sampler.generate("ab", SamplingParams(length=20, temperature=0))[0]
    wide = gru_sampler.generate("ab", SamplingParams(length=20, temperature=0, num_samples=XLA_MAX_BATCH))
    assert wide == [greedy] * XLA_MAX_BATCH
    plain = Sampler(random_model("gru"), jit_compile=False, chunk_size=16)
    params = SamplingParams(length=20, temperature=1.1, top_k=4, seed=9, num_samples=2)
    assert plain.generate("ab", params) == gru_sampler.generate("ab", params)
    with pytest.raises(SamplingError, match="jit_compile"):
        Sampler(random_model("gru"), jit_compile="yes")


@pytest.mark.slow
def test_generation_benchmark_runs_small(rigged_dir, tmp_path, capsys):
    """bench/generation.py on a small model prints one JSON line, measuring saved character models too."""
    import shutil

    generation = load_bench("generation")
    shutil.copytree(rigged_dir, tmp_path / "rigged")
    config = SentimentConfig(rnn=RNNConfig(cell="gru", units=4), max_tokens=20, sequence_length=4, embedding_dim=4)
    save_model_dir(tmp_path / "sent", build_sentiment_model(config, ["", "[UNK]", "good"]), config, {})
    (tmp_path / "text.txt").write_text("zzzz" + "abcdefgh" * 30, encoding="utf-8")
    assert generation.main(["--json", "--length", "8", "--batch", "2", "--units", "8", "--embedding-dim", "4",
                            "--saved-models", str(tmp_path), "--quality-text", str(tmp_path / "text.txt"),
                            "--quality-chars", "100"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["tutorial_b1_chars_per_s"] > 0 and result["ours_b1_chars_per_s"] > 0
    assert result["ours_b2_over_tutorial_b1"] > 0
    assert result["ours_int8_b1_chars_per_s"] > 0 and result["ours_int8_b2_over_tutorial_b1"] > 0
    rigged = result["saved_models"]["rigged"]
    assert rigged["b1_chars_per_s"] > 0 and rigged["int8_b2_chars_per_s"] > 0
    # The rigged model predicts "abcdefgh" cyclically: the last 100 characters score low, and
    # its weights (under 1,024 elements each) are not quantised, so int8 scores the same.
    assert rigged["quality_chars"] == 100 and rigged["float32_nats_per_char"] < 0.5
    assert rigged["int8_nats_per_char"] == rigged["float32_nats_per_char"]
    with pytest.raises(SystemExit) as exit_info:  # argparse: message and exit 2 before any work
        generation.main(["--json", "--quality-text", str(tmp_path / "missing.txt")])
    assert exit_info.value.code == 2 and "missing.txt: no such file" in capsys.readouterr().err
    assert set(result["saved_models"]) == {"rigged"}  # sentiment models are not generators: not listed


def test_huge_top_k_keeps_every_character(rigged, rigged_dir, capsys):
    """top_k beyond the vocabulary (even beyond int64) means "all": the same text as top_k=0."""
    base = rigged.generate("a", SamplingParams(length=30, temperature=1.5, seed=9))
    for k in (len(RIG_VOCAB) + 1, 2**31, 10**20):
        assert rigged.generate("a", SamplingParams(length=30, temperature=1.5, top_k=k, seed=9)) == base
    assert cli.main(["generate", str(rigged_dir), "--prompt", "a", "--length", "30", "--temperature", "1.5",
                     "--seed", "9", "--top-k", str(10**20), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["samples"] == base


def test_python_api_wrong_types_raise_textgens_errors(rigged):
    from textgen.errors import TextgenError

    for bad in (None, 123, 1.5, b"dir", ""):
        with pytest.raises(ModelDirError, match="path"):
            load_sampler(bad)
    with pytest.raises(SamplingError, match="SamplingParams"):
        rigged.generate("a", {"length": 3})
    with pytest.raises(SamplingError, match="prompt must be a string"):
        rigged.generate(None, SamplingParams(length=3))
    with pytest.raises(SamplingError, match="SamplingParams"):
        next(rigged.stream("a", None))
    with pytest.raises(SamplingError, match="list of strings"):
        next(rigged.stream_ids("ab", SamplingParams(length=3)))
    assert issubclass(SamplingError, TextgenError) and issubclass(ModelDirError, TextgenError)


@pytest.mark.parametrize("kind", ["gru", "peephole_lstm"])
def test_load_weights_reuses_the_traced_loops_and_equals_a_new_sampler(kind):
    """What the per-epoch training sample does: one Sampler, each epoch's weights loaded into it."""
    first, second = random_model(kind, seed=1), random_model(kind, seed=2)
    params = SamplingParams(length=40, temperature=0.8, seed=7)
    sampler = Sampler(first, jit_compile=False)
    before = sampler.generate("ab", params)[0]
    traces = sampler._compiled[False][1].experimental_get_tracing_count()
    sampler.load_weights(second)
    after = sampler.generate("ab", params)[0]
    assert after == Sampler(second, jit_compile=False).generate("ab", params)[0] and after != before
    assert sampler._compiled[False][1].experimental_get_tracing_count() == traces  # no new trace
    with pytest.raises(SamplingError, match="same kinds, sizes and vocabulary"):
        sampler.load_weights(random_model(kind, vocab=tuple("xyz")))
    with pytest.raises(SamplingError, match="cannot take new weights"):
        Sampler(first, precision="int8").load_weights(second)
