import dataclasses

import pytest

from audiocodec.config import Config
from audiocodec.errors import ConfigError


@dataclasses.dataclass
class Inner(Config):
    size: int = 4


@dataclasses.dataclass
class Outer(Config):
    name: str = "x"
    ratios: tuple = (2, 4)
    inner: Inner = dataclasses.field(default_factory=Inner)
    maybe: Inner | None = None


def test_round_trip_with_nested_configs():
    config = Outer(name="y", inner=Inner(size=7), maybe=Inner(size=3))
    data = config.to_dict()
    assert data == {"name": "y", "ratios": [2, 4], "inner": {"size": 7}, "maybe": {"size": 3}}
    rebuilt = Outer.from_dict(data)
    assert rebuilt.inner == Inner(size=7) and rebuilt.maybe == Inner(size=3) and rebuilt.name == "y"


def test_unknown_key_is_named_with_its_place():
    with pytest.raises(ConfigError, match=r"unknown config key in 'inner': sise"):
        Outer.from_dict({"inner": {"sise": 3}})
    with pytest.raises(ConfigError, match="typo"):
        Outer.from_dict({"typo": 1})


def test_codec_config_read_back_from_json_equals_the_recipe():
    import json

    from audiocodec import CodecConfig

    recipe = CodecConfig(n_filters=8)  # ratios and bandwidths left at their (tuple) defaults
    saved = CodecConfig.from_dict(json.loads(json.dumps(recipe.to_dict())))  # lists, as a saved model has
    assert saved == recipe  # init_from compares them field by field


@pytest.mark.parametrize("data,message", [
    ({"name": 3}, "'name' must be a string, got 3"),
    ({"ratios": 4}, "'ratios' must be a list, got 4"),
    ({"inner": {"size": "4"}}, "'inner.size' must be an integer, got '4'"),
    ({"inner": {"size": True}}, "'inner.size' must be an integer, got True"),
    ({"inner": 5}, "'inner' must be a mapping of its settings, got 5"),
    ({"maybe": "no"}, "'maybe' must be a mapping of its settings or null, got 'no'"),
])
def test_values_of_the_wrong_type_are_named(data, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        Outer.from_dict(data)


def test_recipe_values_are_checked_like_a_saved_model():
    from audiocodec.training.config import TrainConfig

    # YAML reads 1e-4 (no dot) as a string: refused at once, not when the optimiser is built
    with pytest.raises(ConfigError, match="'optim.lr' must be a number, got '1e-4'"):
        TrainConfig.from_dict({"optim": {"lr": "1e-4"}})
    assert TrainConfig.from_dict({"optim": {"lr": 1}, "model": {"segment": None}}).optim.lr == 1  # ints are numbers
    with pytest.raises(ConfigError, match="model sample_rate must be at least 1, got 0"):
        TrainConfig.from_dict({"model": {"sample_rate": 0}})
