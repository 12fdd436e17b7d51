"""Settings from a TOML file, the environment and flags, each value checked against its type."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sessionbase import config
from sessionbase.errors import ConfigError


def test_environment_values_become_the_fields_types(tmp_path: Path) -> None:
    settings = config.load(
        environ={
            "HOME": str(tmp_path),
            "SESSIONBASE_CODEX_HOME": os.pathsep.join(["/a", "", "~/b"]),
            "SESSIONBASE_BATCH_BYTES": " 4096 ",
            "SESSIONBASE_RESCAN_INTERVAL": "2.5",
            "SESSIONBASE_DATA_DIR": "~/data",
            "SESSIONBASE_LOG_LEVEL": "debug",
        }
    )
    assert settings.codex_homes == (Path("/a"), Path.home() / "b")
    assert settings.batch_bytes == 4096
    assert settings.rescan_interval == 2.5
    assert settings.data_dir == Path.home() / "data"
    assert settings.log_level == "debug"


def test_toml_values_keep_their_types_and_flags_win(tmp_path: Path) -> None:
    toml = tmp_path / "config.toml"
    toml.write_text(
        'codex-home = ["/x", "~/y"]\nread_workers = 3\nrescan_interval = 7\nmachine = 42\n'
        'embedding_model = "m"\n'
    )
    settings = config.load(
        environ={"SESSIONBASE_READ_WORKERS": "2"}, config_file=toml, overrides={"machine": "box"}
    )
    assert settings.codex_homes == (Path("/x"), Path.home() / "y")
    assert settings.read_workers == 2  # the environment over the file
    assert settings.rescan_interval == 7.0
    assert isinstance(settings.rescan_interval, float)
    assert settings.machine == "box"  # a flag over both
    assert settings.embedding_model == "m"
    numeric_name = config.load(environ={}, config_file=toml)
    assert numeric_name.machine == "42"  # a number where text is expected is that text


@pytest.mark.parametrize(
    ("name", "value"),
    [("SESSIONBASE_BATCH_BYTES", "lots"), ("SESSIONBASE_RESCAN_INTERVAL", "soon")],
)
def test_a_value_of_the_wrong_type_is_one_clear_line(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(environ={name: value})
    message = str(caught.value)
    setting = name.removeprefix("SESSIONBASE_").lower()
    assert message.startswith(f"setting {setting!r}: cannot use {value!r} (")
    assert "\n" not in message


def test_an_unknown_key_in_the_file_is_refused(tmp_path: Path) -> None:
    toml = tmp_path / "config.toml"
    toml.write_text("batch_size = 5\n")
    with pytest.raises(ConfigError, match="unknown setting 'batch_size'"):
        config.load(environ={}, config_file=toml)


def test_public_urls_are_kept_as_the_origins_browsers_send() -> None:
    settings = config.load(
        environ={
            "SESSIONBASE_PUBLIC_URLS": "https://SB.example.ts.net/app/, http://[::1]:8080 "
            "http://box.lan:80"
        }
    )
    assert settings.public_urls == (
        "https://sb.example.ts.net",
        "http://[::1]:8080",
        "http://box.lan",
    )


@pytest.mark.parametrize("url", ["sb.example", "ftp://sb.example", "https://", "http://x:99999"])
def test_a_public_url_that_is_no_url_is_one_clear_line(url: str) -> None:
    with pytest.raises(ConfigError, match=r"^setting 'public_urls': cannot use "):
        config.load(environ={"SESSIONBASE_PUBLIC_URLS": url})
