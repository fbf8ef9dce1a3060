"""docker-compose.yml and the Dockerfile agree with vipanel/settings.py, requirements.txt and the
README.

No Docker engine (nor the compose plugin) runs where the tests run, so neither
`docker compose config` nor an image build can be part of them. Instead this reads both files,
interpolates the compose file the way Compose does for the forms it uses, and runs the image's
own steps here: the collectstatic of the build, then the web service's command with the
environment the compose file gives the containers, probed by its own health check.
"""

import http.client
import json
import re
import secrets
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
VENV_BIN = Path(sys.executable).parent

# What the README tells an operator to put in .env.
EXAMPLE_DOTENV = {"POSTGRES_PASSWORD": "example-password", "ALLOWED_HOSTS": "vipanel.example.com"}
SERVICES = ("postgres", "redis", "web", "worker", "sweeper", "beat")
# Settings whose default is wrong in a container; each must be given, and never as "".
NO_SAFE_DEFAULT = {
    "DATABASE_URL": "the default is a SQLite file inside the container, lost with it",
    "REDIS_URL": "the default, 127.0.0.1, is the container itself, where no Redis runs",
    "SECRET_KEY": "else each container generates its own, and sessions break between them",
    "FIELD_ENCRYPTION_KEY": "else each container generates its own, and the worker cannot "
    "decrypt the SSH keys the web server encrypted",
    "ALLOWED_HOSTS": "the default accepts only localhost",
    "VIPANEL_HTTPS": "off by default: cookies without Secure, no HSTS",
}


class MissingVariable(Exception):
    pass


_VARIABLE = re.compile(
    r"\$(?:\$|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<named>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text, dotenv):
    """Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?err}."""

    def substitute(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group("braced") or m.group("named")
        op, arg, value = m.group("op") or "", m.group("arg") or "", dotenv.get(name)
        unset = value is None or (op.startswith(":") and value == "")
        if op.endswith("?") and unset:
            raise MissingVariable(f"{name}: {arg}")
        if op.endswith("-") and unset:
            return arg
        return value or ""

    return _VARIABLE.sub(substitute, text)


def resolve(node, dotenv):
    if isinstance(node, str):
        return interpolate(node, dotenv)
    if isinstance(node, list):
        return [resolve(item, dotenv) for item in node]
    if isinstance(node, dict):
        return {key: resolve(value, dotenv) for key, value in node.items()}
    return node


def raw_compose():
    return yaml.safe_load(COMPOSE.read_text())


def compose(dotenv=EXAMPLE_DOTENV):
    return resolve(raw_compose(), dotenv)


def interpolation_variables():
    text = COMPOSE.read_text().replace("$$", "")
    return {m.group("braced") or m.group("named") for m in _VARIABLE.finditer(text)}


def vipanel_services(config):
    """The services that run vipanel's image (web, worker, beat and the one-shot migrate)."""
    return {name: s for name, s in config["services"].items() if s.get("build")}


def command(service):
    cmd = service["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def dockerfile_instructions():
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.lstrip().startswith("#"):
            continue
        current += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            lines.append(current)
            current = ""
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in lines]


def image_env():
    env = {}
    for instruction, args in dockerfile_instructions():
        if instruction == "ENV":
            env.update(item.split("=", 1) for item in shlex.split(args))
    return env


def requirement_pins(path=ROOT / "requirements.txt"):
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[re.sub(r"\[.*\]", "", name).lower()] = version
    return pins


def container_env(service, secrets_dir, static_root=None):
    """The environment of a vipanel container, with docker secrets as files in secrets_dir."""
    env = {**image_env(), **service["environment"]}
    for name, value in env.items():
        if value.startswith("/run/secrets/"):
            env[name] = str(secrets_dir / value.removeprefix("/run/secrets/"))
    if static_root is not None:
        env["STATIC_ROOT"] = str(static_root)
    env["PATH"] = f"{VENV_BIN}:/usr/bin:/bin"
    return env


@pytest.fixture
def secrets_dir(tmp_path):
    from cryptography.fernet import Fernet

    d = tmp_path / "secrets"
    d.mkdir()
    # As the README makes them.
    (d / "secret_key").write_text(secrets.token_urlsafe(64))
    (d / "field_encryption_key").write_text(Fernet.generate_key().decode())
    return d


def settings_reads(env):
    """Every environment variable vipanel/settings.py looks at when loaded with env."""
    code = """
import json, os
import dj_database_url, django.core.exceptions, cryptography.fernet  # their reads are not ours
read = set()
class Recording(type(os.environ)):
    def __getitem__(self, key):
        read.add(key)
        return super().__getitem__(key)
os.environ.__class__ = Recording
import vipanel.settings
print(json.dumps(sorted(read)))
"""
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    return set(json.loads(proc.stdout))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The compose file


def test_it_parses_and_has_the_services():
    config = compose()
    assert set(SERVICES) <= set(config["services"])
    assert set(vipanel_services(config)) == {"migrate", "web", "worker", "sweeper", "beat"}
    # One image for all of them, built from ./Dockerfile.
    assert {s["image"] for s in vipanel_services(config).values()} == {"vipanel:latest"}
    assert {s["build"] for s in vipanel_services(config).values()} == {"."}


def test_it_refuses_to_start_without_the_dotenv_values():
    for missing in EXAMPLE_DOTENV:
        with pytest.raises(MissingVariable, match=missing):
            compose({k: v for k, v in EXAMPLE_DOTENV.items() if k != missing})


def test_the_services_run_gunicorn_and_celery_worker_and_beat():
    services = compose()["services"]
    assert command(services["web"])[:2] == ["gunicorn", "vipanel.wsgi"]
    assert command(services["worker"])[:4] == ["celery", "-A", "vipanel", "worker"]
    assert command(services["beat"])[:4] == ["celery", "-A", "vipanel", "beat"]
    assert "manage.py migrate" in " ".join(command(services["migrate"]))
    # Two beats would sweep every cluster twice as often.
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1
    # beat's schedule file must be where the read-only container may write.
    schedule = next(a for a in command(services["beat"]) if a.startswith("--schedule="))
    assert schedule.split("=", 1)[1].startswith("/tmp/")
    assert "/tmp" in services["beat"]["tmpfs"]


def test_web_worker_and_beat_wait_for_migrations_and_their_backends():
    services = compose()["services"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "sweeper", "beat"):
        deps = services[name]["depends_on"]
        assert deps["migrate"]["condition"] == "service_completed_successfully"
        assert deps["redis"]["condition"] == "service_healthy"


def test_long_running_services_have_health_checks():
    services = compose()["services"]
    for name in ("postgres", "redis", "web", "worker", "sweeper"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("worker", "sweeper"):
        worker = command(services[name])
        hostname = next(a for a in worker if a.startswith("--hostname=")).split("=", 1)[1]
        # The check pings this very worker by the name it was given (%h is the container's host).
        probe = raw_compose()["services"][name]["healthcheck"]["test"][1]
        assert "inspect ping" in probe
        assert f"-d {hostname.replace('%h', '$$HOSTNAME')}" in probe


def test_every_routed_queue_is_served_and_sweeps_apart_from_pushes():
    from django.conf import settings

    services = compose()["services"]

    def queues(name):
        flag = next(a for a in command(services[name]) if a.startswith("--queues="))
        return set(flag.split("=", 1)[1].split(","))

    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    assert routed | {"celery"} == queues("worker") | queues("sweeper")
    assert queues("sweeper") == set(settings.SWEEP_WORKER_QUEUES.split(","))
    assert queues("worker") == set(settings.OPERATION_WORKER_QUEUES.split(","))
    assert settings.ALERT_QUEUE not in queues("worker")  # never behind a long push
    assert settings.SWEEP_QUEUE not in queues("worker")


def test_state_is_kept_in_named_volumes():
    config = compose()
    assert "postgres-data:/var/lib/postgresql/data" in config["services"]["postgres"]["volumes"]
    assert "redis-data:/data" in config["services"]["redis"]["volumes"]
    assert {"postgres-data", "redis-data"} <= set(config["volumes"])


def test_database_and_redis_are_not_published():
    services = compose()["services"]
    assert "ports" not in services["postgres"] and "ports" not in services["redis"]
    assert compose()["networks"]["backend"]["internal"] is True


# Its environment against vipanel/settings.py


def test_every_vipanel_service_gets_the_same_environment_and_secrets():
    # Above all the same FIELD_ENCRYPTION_KEY: the worker decrypts what the web encrypted.
    services = vipanel_services(compose())
    assert len({repr(sorted(s["environment"].items())) for s in services.values()}) == 1
    assert len({repr(sorted(s["secrets"])) for s in services.values()}) == 1


def test_every_variable_in_compose_is_read_by_settings(secrets_dir, tmp_path):
    env = container_env(compose()["services"]["web"], secrets_dir)
    read = settings_reads(env) | settings_reads(
        {"PATH": env["PATH"], "VIPANEL_DATA_DIR": str(tmp_path / "data")}
    )
    given = set(compose()["services"]["web"]["environment"])
    assert given - read == set(), "named in docker-compose.yml but never read by settings"


def test_every_setting_without_a_safe_default_is_provided():
    raw = vipanel_services(raw_compose())
    for name, service in raw.items():
        env = service["environment"]
        for setting, why in NO_SAFE_DEFAULT.items():
            key = setting if setting in env else f"{setting}_FILE"
            assert key in env, f"{name}: {setting} is not set ({why})"
            value = env[key]
            # Either a fixed value, a required .env entry (:?), or a non-empty default.
            for m in _VARIABLE.finditer(value.replace("$$", "")):
                op, arg = m.group("op") or "", m.group("arg") or ""
                assert op == ":?" or (op == ":-" and arg), f"{name}: {key} may end up empty"
            assert interpolate(value, EXAMPLE_DOTENV), f"{name}: {key} is empty"
    # The production values, not the development ones.
    env = compose()["services"]["web"]["environment"]
    assert env["DEBUG"] == "0"
    assert env["VIPANEL_HTTPS"] == "1"


def test_secret_files_come_from_docker_secrets():
    config = compose()
    for name, service in vipanel_services(config).items():
        for key, value in service["environment"].items():
            if key.endswith("_FILE"):
                secret = value.removeprefix("/run/secrets/")
                assert value == f"/run/secrets/{secret}", key
                assert secret in service["secrets"], f"{name}: {secret} not mounted"
                assert config["secrets"][secret]["file"] == f"./secrets/{secret}"
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert "secrets" in ignored and ".env" in ignored, "secrets would be copied into the image"


def test_the_compose_environment_passes_the_deploy_check(secrets_dir):
    env = container_env(compose()["services"]["migrate"], secrets_dir)
    proc = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# The Dockerfile


def test_dockerfile_base_user_and_pinned_requirements():
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    users = [args for instr, args in instructions if instr == "USER"]
    assert users and users[-1] not in ("root", "0"), "the image must not run as root"
    runs = " ".join(args for instr, args in instructions if instr == "RUN")
    assert "pip install --no-cache-dir -r requirements.txt" in runs
    # paramiko speaks SSH: no OpenSSH client (nor any apt package) in the image.
    assert "openssh" not in runs and "apt-get" not in runs
    pins = requirement_pins()
    assert all(re.fullmatch(r"\d+(\.\d+)*", v) for v in pins.values()), pins
    # Tests' requirements stay out of the image.
    assert "pytest" not in pins and "pyyaml" not in pins


def test_the_commands_of_image_and_compose_are_installed():
    pins = requirement_pins()
    cmd = [args for instr, args in dockerfile_instructions() if instr == "CMD"][-1]
    programs = {yaml.safe_load(cmd)[0]}  # exec form: a JSON list
    for service in vipanel_services(compose()).values():
        programs.add(command(service)[0])
    assert programs == {"gunicorn", "celery", "sh"}
    assert {"gunicorn", "celery", "whitenoise"} <= set(pins)
    for program in ("gunicorn", "celery"):
        assert (VENV_BIN / program).exists(), program


def test_the_image_command_matches_the_web_service():
    cmd = [args for instr, args in dockerfile_instructions() if instr == "CMD"][-1]
    assert yaml.safe_load(cmd) == command(compose()["services"]["web"])


def test_the_built_image_serves_pages_and_hashed_static_files(tmp_path, secrets_dir):
    """The build's collectstatic, then the web command and its health check, as in a container
    with its database out of reach (the login page needs none)."""
    static_root = tmp_path / "staticfiles"
    build = next(
        args
        for instr, args in dockerfile_instructions()
        if instr == "RUN" and "collectstatic" in args
    ).replace("/tmp/build", str(tmp_path / "build"))
    env = {"PATH": f"{VENV_BIN}:/usr/bin:/bin", "STATIC_ROOT": str(static_root)}
    proc = subprocess.run(["sh", "-c", build], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not (tmp_path / "build").exists(), "the throwaway keys were left in the image"

    web = compose()["services"]["web"]
    port = free_port()
    argv = [a.replace("0.0.0.0:8000", f"127.0.0.1:{port}") for a in command(web)]
    env = container_env(web, secrets_dir, static_root)
    # Nothing of this run may land in the image's (read-only) places.
    env["VIPANEL_DATA_DIR"] = str(tmp_path / "no-data")
    env["HOME"] = str(tmp_path / "home")
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        server = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        probe = web["healthcheck"]["test"]
        assert probe[:2] == ["CMD", "python"]
        probe = [sys.executable, *probe[2:-1], probe[-1].replace("8000", str(port))]
        deadline = time.monotonic() + 30
        while subprocess.run(probe, env=env, capture_output=True).returncode != 0:
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)

        def get(path):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request(
                "GET", path, headers={"Host": "vipanel.example.com", "X-Forwarded-Proto": "https"}
            )
            r = c.getresponse()
            return r.status, r.read().decode(errors="replace")

        status, page = get("/login/")
        assert status == 200, log.read_text()
        css = re.search(r"/static/vipanel\.[0-9a-f]{12}\.css", page)
        assert css, "the login page does not link the hashed stylesheet"
        status, body = get(css.group(0))
        assert status == 200 and "{" in body
    finally:
        server.terminate()
        server.wait(15)
    assert not (tmp_path / "no-data").exists() and not (tmp_path / "home").exists()


# The README


def readme_section():
    text = (ROOT / "README.md").read_text()
    m = re.search(r"^## Production with Docker Compose\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, "README.md has no '## Production with Docker Compose' section"
    return m.group(1)


def test_readme_names_the_same_services_and_variables():
    section = readme_section()
    config = compose()
    backticked = set(re.findall(r"`([^`\n]+)`", section))
    for service in config["services"]:
        assert service in backticked, f"README does not name the service `{service}`"
    env = set(config["services"]["web"]["environment"])
    variables = env | interpolation_variables()
    for name in variables:
        assert name in backticked, f"README does not name `{name}`"
    # The names of the secrets themselves (FIELD_ENCRYPTION_KEY) may be spoken of too.
    known = variables | {v.removesuffix("_FILE") for v in env}
    named = {w for w in backticked if re.fullmatch(r"[A-Z][A-Z0-9_]{2,}", w)}
    assert named - known == set(), "README names variables the compose file does not set"
    for secret in config["secrets"]:
        assert f"secrets/{secret}" in section
