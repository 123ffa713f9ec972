"""docker-compose.yml cannot run here (no Docker engine); check what would break `docker compose up`."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tower.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
VARIABLE = re.compile(r"\$\{([A-Z0-9_]+)")


def tower_subcommands() -> set[str]:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    return set(sub.choices)


def test_every_variable_is_documented_in_env_example():
    used = set(VARIABLE.findall((ROOT / "docker-compose.yml").read_text()))
    documented = {
        line.split("=", 1)[0]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert used - documented == set()


def test_app_services_run_real_tower_subcommands():
    commands = tower_subcommands()
    app_services = {name: s for name, s in COMPOSE["services"].items() if s.get("image", "").startswith("perps-ops")}
    assert {"migrate", "jobs", "metabase-provision", "ingest-binance", "ingest-hyperliquid", "demo"} <= set(
        app_services
    )
    for name, service in app_services.items():
        assert service["command"][0] in commands, f"{name} runs unknown subcommand {service['command'][0]}"


def test_third_party_images_are_pinned_and_dependencies_exist():
    services = COMPOSE["services"]
    for name, service in services.items():
        image = service.get("image", "")
        if not image.startswith("perps-ops"):
            assert ":" in image and not image.endswith(":latest"), f"{name}: pin the image tag"
        for dep in service.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown service {dep}"
    assert "healthcheck" in services["timescale"] and "healthcheck" in services["metabase"]


def test_no_secret_values_in_compose():
    text = (ROOT / "docker-compose.yml").read_text()
    for line in text.splitlines():
        if re.search(r"(PASSWORD|SECRET|PASS)\w*:\s*\S", line):
            assert "${" in line, f"secret written into docker-compose.yml: {line.strip()}"


def test_database_healthchecks_test_tcp_not_the_init_socket():
    """During its first boot the image's init scripts run on a server listening only on the Unix socket;
    a socket check passes then, and the migrate one-shot would meet a server about to restart."""
    checks = {
        name: " ".join(s["healthcheck"]["test"])
        for name, s in COMPOSE["services"].items()
        if "pg_isready" in " ".join(s.get("healthcheck", {}).get("test", []))
    }
    assert {"timescale"} <= set(checks)
    for name, check in checks.items():
        assert "-h 127.0.0.1" in check, f"{name}: pg_isready must test TCP (-h 127.0.0.1)"


def test_migrate_one_shot_waits_for_the_database():
    command = COMPOSE["services"]["migrate"]["command"]
    args = build_parser().parse_args(command)
    assert args.command == "migrate" and args.wait is not None and args.wait.total_seconds() >= 60
