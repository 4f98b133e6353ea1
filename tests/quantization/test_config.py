"""Quantizer configs: per-kind sections, the flat keys of older configs, the registry of kinds."""

import json
from pathlib import Path

import pytest
import torch

from audiocodec.errors import ConfigError
from audiocodec.quantization import (KINDS, EMAConfig, GumbelConfig, QuantizerConfig, QuantizerLevel,
                                     ResidualVectorQuantizer, build_quantizer)
from audiocodec.quantization.config import SECTIONS

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / "audiocodec" / "pretrained" / "default" / "config.json"


def test_every_registered_kind_is_a_level_with_a_config_section():
    assert set(KINDS) == set(SECTIONS)
    for kind, level in KINDS.items():
        assert issubclass(level, QuantizerLevel)
        q = build_quantizer(6, QuantizerConfig(kind=kind, n_q=2, bins=1000))  # (fsq's default grid: 8 x 5 x 5 x 5)
        assert all(isinstance(built, level) for built in q.levels)


def test_flat_keys_of_older_configs_load_into_their_sections():
    stored = json.loads(DEFAULT_CONFIG.read_text())["config"]["quantizer"]  # written before the sections
    assert "decay" in stored and "ema" not in stored
    config = QuantizerConfig.from_dict(stored)
    assert config.ema == EMAConfig(decay=0.99, epsilon=1e-5, expire_every=20, expire_min_usage=10, threshold=0.1,
                                   commitment_weight=0.25)
    assert config.gumbel == GumbelConfig(commitment_weight=0.25)
    assert config.dropout_levels == [2, 4, 8, 16] and config.n_q == 16
    assert config.identity() == {"kind": "ema", "n_q": 16, "bins": 1024}  # what a model id hashes, as before


def test_sections_round_trip_and_only_the_kinds_own_section_is_written_unless_changed():
    config = QuantizerConfig(n_q=3, bins=16, ema=EMAConfig(decay=0.9))
    stored = config.to_dict()
    assert stored["ema"]["decay"] == 0.9 and "gumbel" not in stored
    assert QuantizerConfig.from_dict(stored) == config
    changed = config.replace(gumbel=GumbelConfig(diversity_weight=0.5))
    assert changed.to_dict()["gumbel"]["diversity_weight"] == 0.5
    assert QuantizerConfig.from_dict(changed.to_dict()) == changed


def test_flat_keys_still_work_in_replace_and_the_quantizer_constructor():
    assert QuantizerConfig().replace(expire_every=7, seed=3).ema.expire_every == 7
    q = ResidualVectorQuantizer(4, 2, 8, decay=0.5, temperature_start=3.0, ema={"threshold": 0.2})
    assert (q.config.ema.decay, q.config.ema.threshold, q.config.gumbel.temperature_start) == (0.5, 0.2, 3.0)
    assert q.levels[0].decay == 0.5 and q.levels[0].threshold == 0.2


def test_a_key_given_flat_and_in_its_section_or_an_unknown_section_key_is_refused():
    with pytest.raises(ConfigError, match="'decay' is given both flat and in its 'ema' section"):
        QuantizerConfig.from_dict({"decay": 0.9, "ema": {"decay": 0.8}})
    with pytest.raises(ConfigError, match="unknown config key in 'quantizer.ema': decai"):
        QuantizerConfig.from_dict({"ema": {"decai": 0.9}}, where="quantizer")
    with pytest.raises(ConfigError, match="quantizer ema decay must be in"):
        QuantizerConfig.from_dict({"decay": 1.5})
    with pytest.raises(ConfigError, match="quantizer gumbel"):
        QuantizerConfig(gumbel={"temperature_end": 5.0})
    with pytest.raises(ConfigError, match="quantizer ema must be a mapping"):
        QuantizerConfig(ema=3)


def test_training_options_do_not_change_a_models_id():
    from audiocodec import Codec, CodecConfig

    torch.manual_seed(0)
    base = CodecConfig(n_filters=4, ratios=(2, 2), dimension=8, lstm=0, quantizer=QuantizerConfig(n_q=2, bins=8))
    codec = Codec(base)
    retrained = Codec(base.replace(quantizer=base.quantizer.replace(ema=EMAConfig(decay=0.5), seed=4)))
    retrained.load_state_dict(codec.state_dict())
    assert retrained.model_id() == codec.model_id()
