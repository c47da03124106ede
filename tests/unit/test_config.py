"""Settings layering: defaults < TOML < MMSERVE_* env < explicit flags."""

from __future__ import annotations

import pytest

from mmserve.config import Settings, SettingsError, load_settings


def test_defaults_serve_on_loopback_8000():
    """With nothing given the server binds 127.0.0.1:8000 with the guard on."""
    settings = load_settings(env={})
    assert (settings.host, settings.port, settings.no_guard) == ("127.0.0.1", 8000, False)


def test_toml_then_env_then_flags_override_in_order(tmp_path):
    """A TOML value is overridden by MMSERVE_* env, which is overridden by a flag."""
    config = tmp_path / "mmserve.toml"
    config.write_text('port = 9000\nmax_images = 3\nmemory-budget = "2GB"\nallow_media_hosts = ["10.0.0.0/8"]\n')
    settings = load_settings(config, env={"MMSERVE_PORT": "9100", "MMSERVE_MAX_IMAGES": "5"}, overrides={"port": 9200})
    assert settings.port == 9200
    assert settings.max_images == 5
    assert settings.memory_budget == "2GB"
    assert settings.allow_media_hosts == ("10.0.0.0/8",)


def test_env_lists_and_booleans_are_parsed():
    """Comma lists and true/false strings from the environment become tuples and bools."""
    settings = load_settings(env={"MMSERVE_ALLOW_MEDIA_HOSTS": "127.0.0.1, example.org", "MMSERVE_NO_GUARD": "true"})
    assert settings.allow_media_hosts == ("127.0.0.1", "example.org")
    assert settings.no_guard is True


def test_unknown_toml_key_is_an_error(tmp_path):
    """A misspelt setting in the TOML file is refused instead of ignored."""
    config = tmp_path / "bad.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(SettingsError, match="prot"):
        load_settings(config, env={})


def test_bad_values_are_refused():
    """Out-of-range values fail at load time with the setting's name."""
    with pytest.raises(SettingsError, match="port"):
        load_settings(env={"MMSERVE_PORT": "70000"})
    with pytest.raises(SettingsError):
        load_settings(env={"MMSERVE_QUEUE_SIZE": "many"})


def test_settings_are_frozen():
    """Settings cannot be changed after loading."""
    with pytest.raises(AttributeError):
        Settings().port = 1  # type: ignore[misc]
