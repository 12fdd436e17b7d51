"""Settings: one frozen dataclass, layered defaults < TOML file < SESSIONBASE_* env < flags.

Nothing below this module reads ``os.environ``: load once, pass ``settings`` down.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, get_type_hints
from urllib.parse import urlsplit

import platformdirs
from pydantic import AfterValidator, BeforeValidator, ConfigDict, TypeAdapter, ValidationError

from sessionbase.errors import ConfigError
from sessionbase.files import read_limited

APP_NAME = "sessionbase"
MAX_CONFIG_BYTES = 1024 * 1024  # a config file is a few lines; anything bigger is a mistake


def _default_data_dir() -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def _path_list(raw: Any) -> Any:
    """A list from TOML, or one string from the environment split at ``os.pathsep``; empty
    entries dropped."""
    parts = raw if isinstance(raw, list | tuple) else str(raw).split(os.pathsep)
    return [p for p in parts if str(p)]


UserPath = Annotated[Path, AfterValidator(Path.expanduser)]
"""A path as a user writes it: ``~`` is their home."""
UserPaths = Annotated[tuple[UserPath, ...], BeforeValidator(_path_list)]


def _expand_file(raw: str) -> str:
    """A database as a user writes it: a file path's ``~`` is their home; a URL stays."""
    return raw if not raw or "://" in raw else str(Path(raw).expanduser())


DatabaseUrl = Annotated[str, AfterValidator(_expand_file)]


def _url_list(raw: Any) -> Any:
    """A list from TOML, or one string from the environment split at commas and spaces."""
    parts = raw if isinstance(raw, list | tuple) else str(raw).replace(",", " ").split()
    return [p for p in parts if str(p)]


def _origin(url: str) -> str:
    """``https://Host.example:443/path`` → ``https://host.example``: the origin a browser
    sends for pages at that URL (scheme, host, and the port unless it is the default)."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username:
        raise ValueError("expected an http:// or https:// URL with a host name")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port not in (None, default) else "")


PublicUrls = Annotated[
    tuple[Annotated[str, AfterValidator(_origin)], ...], BeforeValidator(_url_list)
]


def _default_read_workers(cpus: int) -> int:
    """As many as CPUs (the ingesting thread itself waits on them much of the time), at most
    4; none on a single CPU, where handing rows between processes would only add work."""
    return 0 if cpus < 2 else min(4, cpus)


@dataclass(frozen=True)
class Settings:
    """Everything sessionbase can be told. Each field's ``help`` is the documentation."""

    data_dir: UserPath = field(
        default_factory=_default_data_dir,
        metadata={"help": "Where the database and secrets live (default: the user data dir)."},
    )
    database: DatabaseUrl = field(
        default="",
        metadata={
            "help": "The database: a file path, sqlite:///PATH or postgresql://USER@HOST/DB "
            "(default: sessionbase.db in the data dir)."
        },
    )
    codex_homes: UserPaths = field(
        default=(),
        metadata={"help": "Codex home directories to mirror (default: $CODEX_HOME or ~/.codex)."},
    )
    codex_homes_defaulted: bool = field(
        default=False,
        metadata={
            "help": "Not a setting: load() found no Codex home given (flag, environment, config"
            " file) and defaulted. The homes a data dir recorded then stand in for the default.",
            "setting": False,
        },
    )
    home: UserPath = field(
        default_factory=Path.home,
        metadata={"help": "The user's home, for ~/.agents/skills (default: the current user's)."},
    )
    machine: str = field(
        default_factory=socket.gethostname,
        metadata={"help": "Name of this machine, recorded on every thread and project."},
    )
    rescan_interval: float = field(
        default=30.0,
        metadata={"help": "Seconds between safety-net rescans while serving (0 disables)."},
    )
    batch_bytes: int = field(
        default=8 * 1024 * 1024,
        metadata={"help": "Bytes of rollout read per ingest transaction."},
    )
    read_workers: int = field(
        default_factory=lambda: _default_read_workers(os.cpu_count() or 1),
        metadata={
            "help": "Processes that parse new rollouts ahead of a large backfill "
            "(default: one per CPU, at most 4, none on one CPU; 0 parses in one process)."
        },
    )
    max_line_bytes: int = field(
        default=64 * 1024 * 1024,
        metadata={"help": "Longer rollout lines are skipped and counted as oversized."},
    )
    public_urls: PublicUrls = field(
        default=(),
        metadata={
            "help": "URLs this server is also reached at, e.g. through a reverse proxy: pages "
            "from these origins may use it (besides its own loopback addresses)."
        },
    )
    require_auth: bool = field(
        default=False,
        metadata={
            "help": "Make requests from this machine authenticate too (by default a loopback "
            "request that no proxy relayed is the owner's, with every scope)."
        },
    )
    token_ttl: int = field(
        default=900,
        metadata={"help": "Seconds a device token lives (15 to 86400)."},
    )
    log_level: str = field(default="info", metadata={"help": "Log level: debug, info, warning."})
    embedding_provider: str = field(
        default="local",
        metadata={"help": "local (the bundled model, offline) or openai (any /v1/embeddings)."},
    )
    embedding_url: str = field(
        default="", metadata={"help": "Base URL of the /v1/embeddings endpoint (openai provider)."}
    )
    embedding_model: str = field(
        default="", metadata={"help": "Model name to ask the endpoint for (openai provider)."}
    )
    embedding_api_key: str = field(
        default="", metadata={"help": "Bearer token for the endpoint, if it needs one."}
    )

    @property
    def database_path(self) -> Path:
        """The default database: a SQLite file in the data dir."""
        return self.data_dir / "sessionbase.db"

    @property
    def database_url(self) -> str:
        """The database to open: the one configured, else ``database_path``."""
        return self.database or str(self.database_path)

    def with_overrides(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


ENV_PREFIX = "SESSIONBASE_"
# Settings whose environment variable is not their name in upper case.
ENV_NAMES = {"codex_homes": "CODEX_HOME", "database": "DATABASE_URL"}


@functools.cache
def _adapter(name: str) -> TypeAdapter[Any]:
    """Validates one setting against its field's type (numbers pass for text)."""
    kind = get_type_hints(Settings, include_extras=True)[name]
    return TypeAdapter(kind, config=ConfigDict(coerce_numbers_to_str=True))


def _coerce(name: str, raw: Any) -> Any:
    """Turn a TOML or environment value into the field's type, or raise ConfigError."""
    try:
        return _adapter(name).validate_python(raw)
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"]
        raise ConfigError(f"setting {name!r}: cannot use {raw!r} ({reason})") from None


def load(
    *,
    environ: Mapping[str, str],
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings from defaults, an optional TOML file, the environment and flags.

    Raises ConfigError for an unreadable file, an unknown key, a value of the wrong type, or
    a data dir that is not a directory.
    """
    names = {f.name for f in dataclasses.fields(Settings) if f.metadata.get("setting", True)}
    values: dict[str, Any] = {}
    path = config_file or (
        Path(environ[ENV_PREFIX + "CONFIG"]) if environ.get(ENV_PREFIX + "CONFIG") else None
    )
    if path is not None:
        try:
            table = tomllib.loads(read_limited(path, MAX_CONFIG_BYTES).decode("utf-8"))
        except OSError as exc:
            raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path} is not UTF-8 text: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
        for key, raw in table.items():
            name = key.replace("-", "_")
            if name == "codex_home":
                name = "codex_homes"
            elif name == "database_url":
                name = "database"
            if name not in names:
                raise ConfigError(f"config file {path}: unknown setting {key!r}")
            values[name] = _coerce(name, raw)
    for name in names:
        env_name = ENV_PREFIX + ENV_NAMES.get(name, name.upper())
        if environ.get(env_name):
            values[name] = _coerce(name, environ[env_name])
    for name, raw in (overrides or {}).items():
        if raw is not None and raw != ():
            values[name] = _coerce(name, raw)
    if not values.get("codex_homes"):
        codex_home = environ.get("CODEX_HOME")
        home = values.get("home") or Path(environ.get("HOME") or Path.home())
        values["codex_homes"] = (Path(codex_home) if codex_home else Path(home) / ".codex",)
        values["codex_homes_defaulted"] = not codex_home
    settings = Settings(**values)
    if settings.data_dir.exists() and not settings.data_dir.is_dir():
        raise ConfigError(
            f"data dir {settings.data_dir} is a file, not a directory: point --data-dir "
            "(or SESSIONBASE_DATA_DIR, or data_dir in the config file) at a directory"
        )
    return settings
