import math

import pytest

from dqngan.config import LIVE_KEYS, PRESETS, Config, ConfigError, make_config, parse_overrides


def test_presets_are_valid():
    for name in PRESETS:
        assert isinstance(make_config(name), Config)


@pytest.mark.parametrize("key,value,words", [
    ("lr_g", -1.0, "lr_g must be >= 0"),
    ("n_dirs", 0, "n_dirs must be >= 1"),
    ("delta", math.nan, "finite"),
    ("horizon", 10**9, "horizon must be <="),
    ("batch_size", 0, "batch_size must be >= 1"),
    ("loss", "mse", "loss must be one of"),
    ("width", "wide", "width must be float"),
    ("n_critic", 1.5, "n_critic must be int"),
])
def test_bad_values_give_one_line_errors(key, value, words):
    with pytest.raises(ConfigError) as e:
        make_config(None, {key: value})
    assert words in str(e.value) and "\n" not in str(e.value)


def test_unknown_key_and_preset():
    with pytest.raises(ConfigError, match="unknown config key"):
        make_config(None, {"nope": 1})
    with pytest.raises(ConfigError, match="unknown preset"):
        make_config("huge")
    with pytest.raises(ConfigError, match="wgan-gp needs d_norm=none"):
        make_config(None, {"loss": "wgan-gp"})


def test_overrides_parse_json_values_and_round_trip():
    o = parse_overrides(["lr_g=5e-4", "loss=hinge", "amp=false", "n_dirs=4"])
    assert o == {"lr_g": 5e-4, "loss": "hinge", "amp": False, "n_dirs": 4}
    cfg = make_config("tiny", o)
    assert Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["lr_g"])


def test_live_keys_are_safe_knobs():
    assert {"lr_g", "lr_d", "eps_end", "lam_prior", "beta_goal"} <= LIVE_KEYS
    assert not {"width", "z_dim", "n_dirs", "loss"} & LIVE_KEYS
