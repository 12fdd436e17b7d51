"""The deployment files in the repository say what sessionbase really accepts: compose.yaml
(PostgreSQL and two replicas) and the systemd unit. No container engine or user systemd runs
where the tests run, so these check the files against the command line and settings."""

from __future__ import annotations

import re
import shlex

import yaml
from click.testing import CliRunner

from sessionbase.cli import cli
from sessionbase.config import ENV_NAMES, ENV_PREFIX, Settings
from tests.conftest import REPO

SETTINGS_ENV = {
    ENV_PREFIX + ENV_NAMES.get(name, name.upper()) for name in Settings.__dataclass_fields__
}


def serve_accepts(argv: list[str]) -> None:
    """``argv`` (from ``sessionbase`` on) parses as a real command line."""
    assert argv[0] == "sessionbase"
    result = CliRunner().invoke(cli, [*argv[1:], "--help"])
    assert result.exit_code == 0, result.output


def test_compose_runs_postgres_and_two_replicas_of_one_database() -> None:
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"postgres", "replica-a", "replica-b"}
    port = services["postgres"]["command"][services["postgres"]["command"].index("-p") + 1]
    urls = set()
    for name in ("replica-a", "replica-b"):
        service = services[name]
        assert set(service["environment"]) <= SETTINGS_ENV
        urls.add(service["environment"]["SESSIONBASE_DATABASE_URL"])
        command = service["command"][-1].split("&& exec ", 1)[1]
        serve_accepts(shlex.split(command))
    assert len(urls) == 1
    assert f":{port}/" in urls.pop()


def test_the_systemd_unit_starts_serve_with_the_shared_database() -> None:
    unit = (REPO / "deploy" / "systemd" / "sessionbase@.service").read_text()
    exec_start = re.search(r"^ExecStart=(\S+) (.*)$", unit, flags=re.MULTILINE)
    assert exec_start is not None
    assert exec_start.group(1).endswith("/sessionbase")
    serve_accepts(["sessionbase", *exec_start.group(2).replace("%i", "7788").split()])
    assert "SESSIONBASE_DATABASE_URL=postgresql://" in unit
