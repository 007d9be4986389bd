"""Strict configs: unknown keys, wrong types and out-of-range values fail loudly; JSON round trip."""

from __future__ import annotations

import dataclasses
import json

import pytest

from textgen.config import (
    CELL_KINDS,
    CharLMConfig,
    ConfigError,
    RNNConfig,
    SentimentConfig,
    apply_overrides,
    from_dict,
    load_config,
    parse_override,
    save_config,
    to_dict,
)
from textgen.errors import TextgenError


@dataclasses.dataclass(frozen=True)
class TwoStacks:
    """Two nested configs sharing field names, to exercise ambiguous bare keys."""

    encoder: RNNConfig = RNNConfig()
    decoder: RNNConfig = RNNConfig(cell="gru")


def test_config_error_is_a_user_error():
    assert issubclass(ConfigError, TextgenError) and issubclass(ConfigError, ValueError)


@pytest.mark.parametrize(
    "cls, data, message",
    [
        (RNNConfig, {"unit": 8}, r"unknown RNNConfig key\(s\): unit \(known: bidirectional, cell"),
        (CharLMConfig, {"rnn": {"cells": "gru"}}, r"unknown RNNConfig key\(s\): cells"),
        (RNNConfig, {"units": "8"}, r"RNNConfig.units must be an integer; got '8'"),
        (RNNConfig, {"units": 8.0}, r"RNNConfig.units must be an integer"),
        (RNNConfig, {"units": True}, r"RNNConfig.units must be an integer; got True"),  # bool is not an int
        (RNNConfig, {"layers": False}, r"RNNConfig.layers must be an integer"),
        (RNNConfig, {"dropout": "0.1"}, r"RNNConfig.dropout must be a number"),
        (RNNConfig, {"dropout": True}, r"RNNConfig.dropout must be a number"),
        (RNNConfig, {"bidirectional": 1}, r"RNNConfig.bidirectional must be true or false"),
        (RNNConfig, {"bidirectional": "true"}, r"must be true or false"),
        (RNNConfig, {"cell": "transformer"}, r"cell must be one of simple_rnn, gru, lstm, minimal_gru, peephole_lstm"),
        (RNNConfig, {"cell": 3}, r"RNNConfig.cell must be a string"),
        (RNNConfig, {"units": 0}, r"units must be in \[1, inf\]; got 0"),
        (RNNConfig, {"layers": 17}, r"layers must be in \[1, 16\]"),
        (RNNConfig, {"dropout": 0.96}, r"dropout must be in \[0.0, 0.95\]"),
        (RNNConfig, {"dropout": -0.1}, r"dropout must be in"),
        (RNNConfig, {"dropout": float("nan")}, r"dropout must be a number; got nan"),
        (CharLMConfig, {"rnn": 3}, r"CharLMConfig.rnn must be an object; got int"),
        (CharLMConfig, {"embedding_dim": 0}, r"embedding_dim must be in \[1, inf\]"),
        (CharLMConfig, {"rnn": {"bidirectional": True}}, r"bidirectional character language model"),
        (SentimentConfig, {"max_tokens": 2}, r"max_tokens must be in \[3, inf\]"),
        (SentimentConfig, {"sequence_length": 0}, r"sequence_length must be in"),
        (SentimentConfig, {"standardize": "none"}, r"standardize must be one of"),
        (SentimentConfig, {"valence_head": "yes"}, r"valence_head must be true or false"),
        (SentimentConfig, [], r"SentimentConfig must be a JSON object; got list"),
    ],
)
def test_from_dict_is_strict(cls, data, message):
    with pytest.raises(ConfigError, match=message):
        from_dict(cls, data)


def test_direct_construction_is_checked_too():
    with pytest.raises(ConfigError, match="RNNConfig.units must be an integer; got '8'"):
        RNNConfig(units="8")
    with pytest.raises(ConfigError, match="bidirectional character language model"):
        CharLMConfig(rnn=RNNConfig(bidirectional=True))
    assert RNNConfig(dropout=0).dropout == 0.0 and isinstance(RNNConfig(dropout=0).dropout, float)


def test_from_dict_accepts_valid_values_and_converts_ints_to_floats():
    cfg = from_dict(CharLMConfig, {"rnn": {"cell": "peephole_lstm", "units": 8, "dropout": 0}, "embedding_dim": 4})
    assert cfg == CharLMConfig(rnn=RNNConfig(cell="peephole_lstm", units=8, dropout=0.0), embedding_dim=4)
    assert isinstance(cfg.rnn.dropout, float)
    for kind in CELL_KINDS:
        assert from_dict(RNNConfig, {"cell": kind}).cell == kind


def test_partial_nested_object_keeps_the_fields_own_defaults():
    # SentimentConfig's rnn defaults to 64 bidirectional units, not RNNConfig's 256 one-way.
    cfg = from_dict(SentimentConfig, {"rnn": {"cell": "gru"}})
    assert cfg.rnn == RNNConfig(cell="gru", units=64, bidirectional=True)
    assert from_dict(SentimentConfig, {}) == SentimentConfig()


def test_apply_overrides_dotted_and_bare_keys():
    cfg = SentimentConfig()
    new = apply_overrides(cfg, {"rnn.cell": "minimal_gru", "units": 16, "sequence_length": 40, "dropout": 0.25})
    assert new.rnn == RNNConfig(cell="minimal_gru", units=16, dropout=0.25, bidirectional=True)
    assert new.sequence_length == 40
    assert cfg == SentimentConfig()  # the original is untouched (frozen, copied)
    lm = apply_overrides(CharLMConfig(), {"rnn.layers": 3, "embedding_dim": 7})
    assert (lm.rnn.layers, lm.embedding_dim) == (3, 7)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"unitz": 3}, r"unknown config key 'unitz' for CharLMConfig"),
        ({"rnn.unitz": 3}, r"unknown config key 'rnn.unitz'"),
        ({"rnn.units.x": 3}, r"unknown config key 'rnn.units.x'"),
        ({"embedding_dim.x": 3}, r"unknown config key 'embedding_dim.x'"),
        ({"units": "many"}, r"RNNConfig.units must be an integer"),
        ({"layers": 0}, r"layers must be in"),
        ({"bidirectional": True}, r"bidirectional character language model"),
        ({"rnn": 5}, r"CharLMConfig.rnn must be an object"),
    ],
)
def test_apply_overrides_is_strict(overrides, message):
    with pytest.raises(ConfigError, match=message):
        apply_overrides(CharLMConfig(), overrides)


def test_bare_key_shared_by_two_nested_configs_is_ambiguous():
    message = r"'units' is ambiguous for TwoStacks; use one of decoder.units, encoder.units"
    with pytest.raises(ConfigError, match=message):
        apply_overrides(TwoStacks(), {"units": 3})
    new = apply_overrides(TwoStacks(), {"decoder.units": 3})
    assert (new.encoder.units, new.decoder.units, new.decoder.cell) == (256, 3, "gru")


@pytest.mark.parametrize(
    "text, expected",
    [("units=64", ("units", 64)), ("rnn.dropout=0.5", ("rnn.dropout", 0.5)), ("cell=gru", ("cell", "gru")),
     ("bidirectional=true", ("bidirectional", True)), (" units =8", ("units", 8)), ("a=b=c", ("a", "b=c"))],
)
def test_parse_override(text, expected):
    assert parse_override(text) == expected


def test_parse_override_needs_an_equals_sign():
    with pytest.raises(ConfigError, match="key=value"):
        parse_override("units")


@pytest.mark.parametrize(
    "cfg",
    [CharLMConfig(), SentimentConfig(),
     CharLMConfig(rnn=RNNConfig(cell="minimal_gru", units=3, layers=2, dropout=0.1), embedding_dim=2),
     SentimentConfig(rnn=RNNConfig(cell="peephole_lstm", units=5, bidirectional=False), valence_head=False)],
)
def test_save_load_round_trip(tmp_path, cfg):
    path = tmp_path / "sub" / "config.json"
    save_config(cfg, path)
    assert load_config(path) == cfg
    assert load_config(path, expected=type(cfg)) == cfg
    payload = json.loads(path.read_text())
    assert payload == {"kind": type(cfg).__name__, "config": to_dict(cfg)}
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]  # no temporary files left


def test_save_overwrites_atomically(tmp_path):
    path = tmp_path / "config.json"
    save_config(CharLMConfig(), path)
    save_config(CharLMConfig(embedding_dim=3), path)
    assert load_config(path).embedding_dim == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_load_config_refuses_bad_files(tmp_path):
    path = tmp_path / "config.json"
    save_config(CharLMConfig(), path)
    with pytest.raises(ConfigError, match="holds a CharLMConfig, expected SentimentConfig"):
        load_config(path, expected=SentimentConfig)
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="is not valid JSON"):
        load_config(path)
    path.write_text(json.dumps({"config": {}}))
    with pytest.raises(ConfigError, match="needs 'kind' and 'config'"):
        load_config(path)
    path.write_text(json.dumps({"kind": "GPTConfig", "config": {}}))
    with pytest.raises(ConfigError, match="unknown config kind 'GPTConfig'"):
        load_config(path)
    path.write_text(json.dumps({"kind": "CharLMConfig", "config": {"rnn": {"units": -1}}}))
    with pytest.raises(ConfigError, match="units must be in"):
        load_config(path)


def test_zero_learning_rate_is_refused(capsys):
    from textgen import cli
    from textgen.config import TrainConfig

    with pytest.raises(ConfigError, match="learning_rate must be > 0"):
        TrainConfig(learning_rate=0.0)
    assert TrainConfig(learning_rate=1e-9).learning_rate == 1e-9
    assert cli.main(["train", "charlm", "--learning-rate", "0", "--out", "/nonexistent/never-written"]) == 2
    assert "learning_rate must be > 0" in capsys.readouterr().err
