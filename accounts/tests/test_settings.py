"""Production settings: they fail loudly when incomplete and pass Django's deployment checklist."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "x" * 30 + "production-like-secret-key-for-the-check",
    "ALLOWED_HOSTS": "events.canvasapp.com",
    "DATABASE_URL": os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/canvas"),
}


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECRET_KEY", "DEBUG"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, timeout=60
    )


def test_check_deploy_is_clean_with_production_settings():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_a_missing_secret_key_is_a_clear_error():
    result = _manage("check", **{**PRODUCTION, "SECRET_KEY": ""})
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set" in result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        pytest.param("WAREHOUSE_STATEMENT_TIMEOUT", "5 minutes", id="timeout-unit-spelled-out"),
        pytest.param("WAREHOUSE_STATEMENT_TIMEOUT", "0s", id="timeout-off"),
        pytest.param("WAREHOUSE_WORK_MEM", "64", id="work-mem-without-unit"),
        pytest.param("WAREHOUSE_WORK_MEM", "32kB", id="work-mem-below-postgresqls-minimum"),
        pytest.param("WAREHOUSE_TEMP_FILE_LIMIT", "-1", id="temp-file-limit-off"),
        pytest.param("WAREHOUSE_TEMP_FILE_LIMIT", "3TB", id="temp-file-limit-beyond-postgresqls-maximum"),
    ],
)
def test_a_wrong_warehouse_limit_is_a_clear_error(variable, value):
    result = _manage("check", **{**PRODUCTION, variable: value})
    assert result.returncode != 0
    assert f"ImproperlyConfigured: {variable} must be a whole number" in result.stderr


@pytest.mark.parametrize("value", ["events.example.com", "https://events.example.com/v1/event"])
def test_an_events_public_url_that_is_not_an_origin_is_a_clear_error(value):
    result = _manage("check", **{**PRODUCTION, "EVENTS_PUBLIC_URL": value})
    assert result.returncode != 0
    assert "ImproperlyConfigured: EVENTS_PUBLIC_URL must be an origin" in result.stderr
