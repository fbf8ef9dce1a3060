"""Settings come from the environment, and production settings pass Django's deploy checks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def manage(*args, env, cwd=ROOT):
    full_env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DEBUG")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=cwd, env=full_env, capture_output=True, text=True
    )


@pytest.fixture
def secrets_dir(tmp_path):
    from cryptography.fernet import Fernet

    (tmp_path / "sk").write_text(
        "x" * 20 + "-production-secret-key-that-is-long-enough-" + "y" * 20
    )
    (tmp_path / "fk").write_text(Fernet.generate_key().decode())
    return tmp_path


def test_production_settings_pass_check_deploy(secrets_dir):
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={
            "DEBUG": "0",
            "VIPANEL_HTTPS": "1",
            "ALLOWED_HOSTS": "vipanel.example.com",
            "SECRET_KEY_FILE": str(secrets_dir / "sk"),
            "FIELD_ENCRYPTION_KEY_FILE": str(secrets_dir / "fk"),
            "VIPANEL_DATA_DIR": str(secrets_dir),
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_development_defaults_fail_check_deploy(tmp_path):
    # The check must be able to fail, or the test above proves nothing.
    result = manage(
        "check", "--deploy", "--fail-level", "WARNING", env={"VIPANEL_DATA_DIR": str(tmp_path)}
    )
    assert result.returncode != 0
    assert "SECURE_SSL_REDIRECT" in result.stderr + result.stdout


def test_generated_secrets_are_private_and_stable(tmp_path):
    env = {"VIPANEL_DATA_DIR": str(tmp_path)}
    assert manage("check", env=env).returncode == 0
    key = (tmp_path / "secret_key").read_text()
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "field_encryption_key").stat().st_mode & 0o777 == 0o600
    assert manage("check", env=env).returncode == 0
    assert (tmp_path / "secret_key").read_text() == key


@pytest.mark.parametrize(
    "name,value",
    [
        ("DEBUG", "maybe"),
        ("VIPANEL_SWEEP_INTERVAL", "5s"),
        # Written into a shell script on every node: nothing but scheme, host, port and path.
        ("VIPANEL_NOTIFY_URL", "http://192.0.2.1:8000/'; reboot; '"),
        ("VIPANEL_NOTIFY_URL", "http://192.0.2.1:8000/$(id)"),
    ],
)
def test_bad_values_fail_loudly_at_start(tmp_path, name, value):
    result = manage("check", env={"VIPANEL_DATA_DIR": str(tmp_path), name: value})
    assert result.returncode != 0
    assert name in result.stderr


def test_unreadable_secret_file_names_the_variable(tmp_path):
    result = manage(
        "check", env={"VIPANEL_DATA_DIR": str(tmp_path), "SECRET_KEY_FILE": str(tmp_path / "nope")}
    )
    assert result.returncode != 0
    assert "SECRET_KEY_FILE" in result.stderr
