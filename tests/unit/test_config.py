"""Settings layering: defaults < TOML < MMSERVE_* env < explicit flags."""

from __future__ import annotations

import msgspec
import pytest

from mmserve.cli import build_parser, setting_overrides
from mmserve.config import OPTIONS, Settings, SettingsError, env_for, flag_for, load_settings


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


# --- one name per setting, everywhere ---------------------------------------


def _sample(name: str):
    """A valid value for a setting that differs from its default."""
    special = {
        "text_model": "org/text", "vision_model": "/models/vision", "host": "0.0.0.0", "api_key": "secret",
        "memory_budget": "2GB", "media_root": "/srv/images", "log_level": "debug", "log_json": True,
        "max_image_side": 640, "cors_origins": ("https://app.example.org",), "allow_media_hosts": ("10.0.0.0/8",),
    }  # fmt: skip
    if name in special:
        return special[name]
    default = getattr(Settings(), name)
    if isinstance(default, bool):
        return not default
    if isinstance(default, int):
        return default + 1
    if isinstance(default, float):
        return default + 1.5
    raise AssertionError(f"no sample value for {name}")


def _toml(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(f'"{item}"' for item in value) + "]"
    return f'"{value}"' if isinstance(value, str) else str(value)


def _env(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return ",".join(value) if isinstance(value, tuple) else str(value)


def _flag_args(name: str, value) -> list[str]:
    flag = flag_for(name)
    if isinstance(value, bool):
        return [flag] if value else [f"--no-{flag[2:]}"]
    if isinstance(value, tuple):
        return [part for item in value for part in (flag, item)]
    return [flag, str(value)]


SETTING_NAMES = [field.name for field in msgspec.structs.fields(Settings)]


@pytest.mark.parametrize("name", SETTING_NAMES)
def test_every_setting_has_one_name_in_toml_env_and_flags(name, tmp_path):
    """The TOML key, MMSERVE_<NAME> and --<name> of every setting each set it to the same value."""
    value = _sample(name)
    config = tmp_path / "mmserve.toml"
    config.write_text(f"{name} = {_toml(value)}\n")
    from_toml = load_settings(config, env={})
    from_env = load_settings(env={env_for(name): _env(value)})
    args = build_parser().parse_args(["serve", *_flag_args(name, value)])
    from_flag = load_settings(env={}, overrides=setting_overrides(args))
    assert getattr(from_toml, name) == getattr(from_env, name) == getattr(from_flag, name) == value


def test_every_setting_is_in_serve_help_with_its_default_and_variable(capsys):
    """`mmserve serve --help` lists each setting's flag with help, its default and its variable."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert set(OPTIONS) == set(SETTING_NAMES)
    for name in SETTING_NAMES:
        assert flag_for(name) in text and env_for(name) in text
    assert text.count("(default:") >= len(SETTING_NAMES)


def test_earlier_flag_spellings_still_work():
    """--memory-wait, --cors-origin and the other earlier spellings set the same settings."""
    args = build_parser().parse_args(["serve", "--memory-wait", "5", "--cors-origin", "https://a.example"])
    settings = load_settings(env={}, overrides=setting_overrides(args))
    assert settings.memory_wait_s == 5 and settings.cors_origins == ("https://a.example",)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (
            {"env": {"MMSERVE_MAX_IMAGE_SIDE": "abc"}},
            "MMSERVE_MAX_IMAGE_SIDE: 'abc' is not valid: expected a whole number",
        ),
        ({"env": {"MMSERVE_MEMORY_BUDGET": "12XB"}}, "MMSERVE_MEMORY_BUDGET: memory budget '12XB' has an unknown unit"),
        ({"env": {}, "overrides": {"memory_budget": "12XB"}}, "--memory-budget: memory budget '12XB'"),
        ({"env": {"MMSERVE_QUEUE_SIZE": "0"}}, "MMSERVE_QUEUE_SIZE: queue_size must be at least 1"),
    ],
)
def test_a_bad_value_names_where_it_came_from(source, expected):
    """The error names the environment variable or flag that carried the bad value."""
    with pytest.raises(SettingsError) as info:
        load_settings(**source)
    assert str(info.value).startswith(expected)


def test_a_bad_toml_key_names_the_file_and_a_close_match(tmp_path):
    """An unknown key in the TOML file is refused naming the file, the key and the setting meant."""
    config = tmp_path / "mmserve.toml"
    config.write_text("max_image_sid = 100\n")
    with pytest.raises(
        SettingsError, match=r"mmserve.toml: max_image_sid: unknown setting .*did you mean 'max_image_side'"
    ):
        load_settings(config, env={})
