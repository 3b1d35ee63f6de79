"""compose.yaml, the Dockerfiles and .env.example, checked by construction (Docker does not run here).

The stack's wiring is read from the files themselves: who talks to whom at which address, in which order the
services start, which variables must be documented, which ports are published. tests/test_full_stack.py runs
the same topology with native stand-ins.
"""
from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "compose.yaml"
SERVICES = ("postgres", "minio", "minio-init", "mlflow", "app", "worker")
LAB_SERVICES = ("app", "worker")

VAR_RE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::?[-?+]((?:[^{}]|\{[^{}]*\})*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return parse_env_file(ROOT / ".env.example")


def parse_env_file(path: Path) -> dict[str, str]:
    """NAME=value lines of a dotenv file (comments and blanks skipped)."""
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f"{path.name}: not NAME=value: {line!r}"
            out[name.strip()] = value.strip()
    return out


def interpolate(value, env: dict[str, str] | None = None):
    """Compose's interpolation of one value: ${VAR}, ${VAR:-default} (nested), $VAR, and $$ for a literal $."""
    if not isinstance(value, str):
        return value
    env = env or {}

    def sub(m):
        name = m.group(1) or m.group(3)
        default = m.group(2)
        got = env.get(name)
        return got if got else interpolate(default or "", env)

    parts = value.split("$$")
    return "$".join(VAR_RE.sub(sub, p) for p in parts)


def variables(text: str) -> set[str]:
    """Every variable compose would interpolate in `text` (defaults included; $$ escapes excluded)."""
    names = set()
    for part in text.split("$$"):
        for m in VAR_RE.finditer(part):
            names.add(m.group(1) or m.group(3))
            if m.group(2):
                names |= variables(m.group(2))
    return names


def strings(node) -> list[str]:
    """Every string value in the parsed file: what compose interpolates (comments are not)."""
    if isinstance(node, dict):
        return [s for v in node.values() for s in strings(v)]
    if isinstance(node, list):
        return [s for v in node for s in strings(v)]
    return [node] if isinstance(node, str) else []


def service_env(compose: dict, name: str, env: dict | None = None) -> dict[str, str]:
    raw = compose["services"][name].get("environment") or {}
    if isinstance(raw, list):
        raw = dict(item.split("=", 1) for item in raw)
    return {k: str(interpolate(v, env)) for k, v in raw.items()}


def command_of(compose: dict, name: str) -> list[str]:
    cmd = compose["services"][name].get("command")
    if cmd is None:
        return []
    return [interpolate(c) for c in cmd] if isinstance(cmd, list) else shlex.split(interpolate(cmd))


def option(cmd: list[str], flag: str) -> str | None:
    """The value of `--flag value` or `--flag=value` in a command list."""
    for i, arg in enumerate(cmd):
        if arg == flag and i + 1 < len(cmd):
            return cmd[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def depends(compose: dict, name: str) -> dict[str, str]:
    """{dependency: condition} of a service (short list form means service_started)."""
    deps = compose["services"][name].get("depends_on") or {}
    if isinstance(deps, list):
        return {d: "service_started" for d in deps}
    return {d: spec.get("condition", "service_started") for d, spec in deps.items()}


def published(compose: dict) -> list[tuple[str, str, int, int]]:
    """(service, host ip, host port, container port) of every published port."""
    out = []
    for name, svc in compose["services"].items():
        for p in svc.get("ports") or []:
            spec = interpolate(str(p)).split("/")[0]
            parts = spec.rsplit(":", 2)
            ip, host, container = (["0.0.0.0"] + parts)[-3:] if len(parts) < 3 else parts
            out.append((name, ip, int(host), int(container)))
    return out


def dockerfile_instruction(path: Path, keyword: str) -> list[str]:
    """Arguments of every `keyword` instruction (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", path.read_text())
    return [line.split(None, 1)[1] for line in text.splitlines() if line.upper().startswith(keyword + " ")]


def config_env_names() -> set[str]:
    """Every environment variable engine/config.py reads."""
    text = (ROOT / "engine" / "config.py").read_text()
    pattern = r"""(?:env|environ)(?:\.get|\.setdefault|\.pop)?\s*[\(\[]\s*["']([A-Z][A-Z0-9_]*)["']"""
    return set(re.findall(pattern, text))


# ---- services and wiring -------------------------------------------------------------------------------------
def test_the_stack_has_its_services(compose):
    assert set(SERVICES) <= set(compose["services"]), sorted(compose["services"])


def test_app_and_worker_reach_postgres_and_mlflow_by_service_name(compose):
    mlflow_port = option(command_of(compose, "mlflow"), "--port")
    for name in LAB_SERVICES:
        env = service_env(compose, name)
        db = urlsplit(env["DATABASE_URL"])
        assert db.scheme.startswith("postgresql") and db.hostname == "postgres" and db.port == 5432, env
        assert db.path == "/lab", "the lab's state has its own database, apart from MLflow's"
        pg = service_env(compose, "postgres")
        assert (db.username, db.password) == (pg["POSTGRES_USER"], pg["POSTGRES_PASSWORD"])
        tracking = urlsplit(env["MLFLOW_TRACKING_URI"])
        assert (tracking.scheme, tracking.hostname, str(tracking.port)) == ("http", "mlflow", mlflow_port), env
        assert env["LAB_DATA_DIR"].startswith("/"), "an absolute data dir inside the container"


def test_both_databases_exist_on_first_start(compose):
    """POSTGRES_DB creates one; the mounted init script must create every other database a URL names."""
    pg = compose["services"]["postgres"]
    created = {service_env(compose, "postgres")["POSTGRES_DB"]}
    mounts = [v for v in pg["volumes"] if "docker-entrypoint-initdb.d" in v]
    assert mounts, "an init script creates MLflow's database"
    for mount in mounts:
        script = ROOT / mount.split(":")[0]
        assert script.is_file(), f"{script} is mounted but missing"
        created |= set(re.findall(r"CREATE DATABASE\s+\"?(\w+)", script.read_text(), re.I))
    wanted = {urlsplit(service_env(compose, n)["DATABASE_URL"]).path.strip("/") for n in LAB_SERVICES}
    wanted.add(urlsplit(option(command_of(compose, "mlflow"), "--backend-store-uri")).path.strip("/"))
    assert wanted == {"lab", "mlflow"} and wanted <= created, (wanted, created)


def test_mlflow_server_uses_postgres_and_proxies_artifacts_to_minio(compose):
    cmd = command_of(compose, "mlflow")
    assert cmd[:2] == ["mlflow", "server"], cmd
    assert option(cmd, "--host") == "0.0.0.0"
    store = urlsplit(option(cmd, "--backend-store-uri"))
    assert store.scheme.startswith("postgresql") and store.hostname == "postgres", store
    dest = option(cmd, "--artifacts-destination")
    assert dest and dest.startswith("s3://"), dest
    assert "--serve-artifacts" in cmd, "the app and workers need no S3 keys when the server proxies artifacts"
    # The bucket it writes to is the one minio-init creates.
    init = " ".join(command_of(compose, "minio-init"))
    assert re.search(rf"mc mb\b[^&;]*\blocal/{re.escape(urlsplit(dest).netloc)}\b", init), init
    env = service_env(compose, "mlflow")
    s3 = urlsplit(env["MLFLOW_S3_ENDPOINT_URL"])
    minio_api = next(c for n, _, _, c in published(compose) if n == "minio" and c == 9000)
    assert (s3.hostname, s3.port) == ("minio", minio_api), env
    minio = service_env(compose, "minio")
    assert env["AWS_ACCESS_KEY_ID"] == minio["MINIO_ROOT_USER"]
    assert env["AWS_SECRET_ACCESS_KEY"] == minio["MINIO_ROOT_PASSWORD"]
    raw = compose["services"]["mlflow"]["environment"]
    assert "${MINIO_ROOT_USER" in raw["AWS_ACCESS_KEY_ID"] and "${MINIO_ROOT_PASSWORD" in raw["AWS_SECRET_ACCESS_KEY"]


def test_only_the_mlflow_server_holds_s3_keys(compose):
    for name in LAB_SERVICES:
        env = service_env(compose, name)
        assert not {k for k in env if k.startswith("AWS_") or k == "MLFLOW_S3_ENDPOINT_URL"}, env


def test_mlflow_accepts_the_host_names_it_is_called_by(compose):
    """MLflow's DNS-rebinding guard answers 403 to a Host that is not localhost or a private IP unless listed."""
    from mlflow.server.security_utils import get_default_allowed_hosts, is_allowed_host_header
    allowed = [h.strip() for h in option(command_of(compose, "mlflow"), "--allowed-hosts").split(",")]
    in_network = urlsplit(service_env(compose, "app")["MLFLOW_TRACKING_URI"]).netloc
    browser = urlsplit(service_env(compose, "app")["MLFLOW_UI_URL"]).netloc
    assert not is_allowed_host_header(get_default_allowed_hosts(), in_network), "the flag would be unnecessary"
    for host in (in_network, browser, "127.0.0.1:5000"):
        assert is_allowed_host_header(allowed, host), host
    assert "*" not in allowed


def test_start_order(compose):
    """Each service waits for what it talks to: healthy servers, the bucket created, the schema migrated."""
    want = {
        "minio-init": {"minio": "service_healthy"},
        "mlflow": {"postgres": "service_healthy", "minio-init": "service_completed_successfully"},
        "app": {"postgres": "service_healthy", "mlflow": "service_healthy"},
        "worker": {"postgres": "service_healthy", "mlflow": "service_healthy"},
    }
    for name, deps in want.items():
        got = depends(compose, name)
        for dep, condition in deps.items():
            assert got.get(dep) == condition, f"{name} depends_on {dep}: {got.get(dep)} (want {condition})"
    for name in compose["services"]:
        for dep, condition in depends(compose, name).items():
            assert dep in compose["services"], f"{name} depends on unknown {dep}"
            if condition == "service_healthy":
                test = (compose["services"][dep].get("healthcheck") or {}).get("test")
                assert test and not (compose["services"][dep]["healthcheck"].get("disable")), \
                    f"{name} waits for {dep} to be healthy, but {dep} has no healthcheck"
    init = compose["services"]["minio-init"]
    assert str(init.get("restart")) == "no", "a one-shot job must not restart after it completed"
    # The dependency graph is acyclic and puts the stores first.
    order, left = [], {n: set(depends(compose, n)) for n in compose["services"]}
    while left:
        ready = sorted(n for n, d in left.items() if d <= set(order))
        assert ready, f"dependency cycle among {sorted(left)}"
        order += ready
        for n in ready:
            del left[n]
    pos = order.index
    assert pos("postgres") < pos("mlflow") < pos("app") and pos("minio") < pos("minio-init") < pos("mlflow")


def test_every_address_a_service_calls_is_a_started_dependency(compose):
    """A service named in another's URLs or command is among its (transitive) depends_on, and healthy first."""
    names = set(compose["services"])

    def closure(name, seen=None):
        seen = set() if seen is None else seen
        for dep, cond in depends(compose, name).items():
            if cond != "service_started" and dep not in seen:
                seen.add(dep)
                closure(dep, seen)
        return seen

    for name in names:
        text = " ".join(list(service_env(compose, name).values()) + command_of(compose, name))
        called = {h for h in re.findall(r"(?:://|@)([a-z][a-z0-9-]*)(?::\d+|/|\b)", text) if h in names} - {name}
        assert called <= closure(name), f"{name} calls {sorted(called)} but waits only for {sorted(closure(name))}"


def test_scale_out_worker(compose):
    worker, app = compose["services"]["worker"], compose["services"]["app"]
    assert command_of(compose, "worker") == ["python", "-m", "engine", "worker"]
    assert worker["deploy"]["replicas"] == 1
    assert "container_name" not in worker and not worker.get("ports"), "--scale worker=N needs neither"
    assert worker["image"] == app["image"] and worker["build"] == app["build"], "one image for app and worker"
    app_env = service_env(compose, "app")
    assert app_env.pop("LAB_APP_WORKER") == "0", "the worker service runs the steps: the app starts no worker"
    assert service_env(compose, "worker") == app_env, "app and worker see the same lab"
    assert "--scale worker=" in COMPOSE.read_text(), "the file says how to scale workers"


def test_every_engine_setting_reaches_app_and_worker(compose):
    # MLFLOW_ARTIFACT_ROOT only applies to a file/SQLite tracking store; the MLflow server decides artifacts here.
    wanted = config_env_names() - {"MLFLOW_ARTIFACT_ROOT"}
    assert {"DATABASE_URL", "MLFLOW_TRACKING_URI", "LAB_DATA_DIR"} <= wanted, wanted
    for name in LAB_SERVICES:
        assert wanted <= set(service_env(compose, name)), (name, sorted(wanted - set(service_env(compose, name))))


def test_named_volumes(compose):
    declared = set(compose.get("volumes") or {})
    assert {"postgres-data", "minio-data", "lab-data"} <= declared, declared
    mounts = {n: [str(v).split(":")[:2] for v in s.get("volumes") or []] for n, s in compose["services"].items()}
    assert ["postgres-data", "/var/lib/postgresql/data"] in mounts["postgres"]
    assert ["minio-data", "/data"] in mounts["minio"]
    for name in LAB_SERVICES:  # run files written by one worker are read by steps on another
        assert ["lab-data", service_env(compose, name)["LAB_DATA_DIR"]] in mounts[name], mounts[name]
    for name, ms in mounts.items():
        for source, _ in ms:
            assert source.startswith(".") or source in declared, f"{name} mounts undeclared volume {source}"


def test_published_ports_do_not_collide_and_stay_local(compose):
    ports = published(compose)
    hosts = [(ip, host) for _, ip, host, _ in ports]
    assert len(hosts) == len(set(hosts)), ports
    assert len({h for _, h in hosts}) == len(hosts), "one host port per service, whatever the interface"
    assert all(ip == "127.0.0.1" for ip, _ in hosts), ports
    by_service = {n: (h, c) for n, _, h, c in ports}
    assert by_service["app"][1] == 8501 and by_service["mlflow"][1] == 5000
    ui = urlsplit(service_env(compose, "app")["MLFLOW_UI_URL"])
    assert ui.port == by_service["mlflow"][0], "the dashboard's MLflow links reach the published port"
    assert by_service["postgres"][0] != 5432, "leave a PostgreSQL already running on the host alone"


# ---- variables -------------------------------------------------------------------------------------------------
def test_every_compose_variable_is_in_env_example(compose, env_example):
    used = set().union(*(variables(s) for s in strings(compose)))
    assert used, "compose.yaml reads its credentials from variables"
    assert used <= set(env_example), sorted(used - set(env_example))


def test_compose_defaults_match_env_example(compose, env_example):
    """`docker compose up` with or without `cp .env.example .env` gives the same stack."""
    for part in "\n".join(strings(compose)).split("$$"):
        for m in VAR_RE.finditer(part):
            if m.group(1) and m.group(2) is not None:
                assert env_example[m.group(1)] == interpolate(m.group(2)), m.group(0)


def test_every_engine_variable_is_in_env_example(env_example):
    names = config_env_names()
    assert {"LAB_DATA_DIR", "DATABASE_URL", "MLFLOW_TRACKING_URI", "MLFLOW_HTTP_REQUEST_TIMEOUT"} <= names, names
    assert names <= set(env_example), sorted(names - set(env_example))


def test_env_example_lists_the_stack_variables_each_with_a_comment(env_example):
    stack = {"POSTGRES_USER", "POSTGRES_PASSWORD", "MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD", "MLFLOW_S3_ENDPOINT_URL",
             "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
             "MLFLOW_HTTP_REQUEST_TIMEOUT"}
    assert stack <= set(env_example), sorted(stack - set(env_example))
    lines = (ROOT / ".env.example").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip() and not line.startswith("#"):
            assert i and lines[i - 1].startswith("# "), f"{line.split('=')[0]} has no comment line above it"
    assert len(env_example) == len([ln for ln in lines if ln.strip() and not ln.startswith("#")]), "duplicates"
    assert len(env_example["MINIO_ROOT_PASSWORD"]) >= 8, "MinIO refuses to start with a shorter password"


def test_env_example_host_addresses_reach_the_published_stack(compose, env_example):
    """The engine values in .env.example are for running on the host against `docker compose up`."""
    ports = {(n, c): h for n, _, h, c in published(compose)}
    db, in_network = urlsplit(env_example["DATABASE_URL"]), urlsplit(service_env(compose, "app")["DATABASE_URL"])
    assert (db.hostname, db.port) == ("127.0.0.1", ports[("postgres", 5432)]), env_example["DATABASE_URL"]
    assert (db.scheme, db.username, db.password, db.path) == \
        (in_network.scheme, in_network.username, in_network.password, in_network.path)
    tracking = urlsplit(env_example["MLFLOW_TRACKING_URI"])
    assert (tracking.hostname, tracking.port) == ("127.0.0.1", ports[("mlflow", 5000)])
    s3 = urlsplit(env_example["MLFLOW_S3_ENDPOINT_URL"])
    assert (s3.hostname, s3.port) == ("127.0.0.1", ports[("minio", 9000)])
    assert env_example["AWS_ACCESS_KEY_ID"] == env_example["MINIO_ROOT_USER"]
    assert env_example["AWS_SECRET_ACCESS_KEY"] == env_example["MINIO_ROOT_PASSWORD"]
    assert not Path(env_example["LAB_DATA_DIR"]).is_absolute(), "a host run keeps its files in the work tree"


def test_credentials_come_from_variables_with_local_defaults(compose):
    secretish = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|_USER$")
    for name, svc in compose["services"].items():
        raw = svc.get("environment") or {}
        for key, value in raw.items():
            if secretish.search(key):
                assert re.fullmatch(r"\$\{[A-Z_]+:-[^}]*\}", str(value)), f"{name}.{key} is a literal: {value!r}"
    raw_cmd = compose["services"]["mlflow"]["command"]
    raw_urls = [raw_cmd[raw_cmd.index("--backend-store-uri") + 1]] + \
        [compose["services"][n]["environment"]["DATABASE_URL"] for n in LAB_SERVICES]
    for url in raw_urls:
        assert "${POSTGRES_USER:-" in url and "${POSTGRES_PASSWORD:-" in url, url


SECRET_PATTERNS = {
    "AWS access key id": r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b",
    "private key": r"-----BEGIN [A-Z ]*PRIVATE KEY-----",
    "GitHub token": r"\bgh[pousr]_[A-Za-z0-9]{36,}\b",
    "Slack token": r"\bxox[abprs]-[A-Za-z0-9-]{10,}",
    "OpenAI-style key": r"\bsk-[A-Za-z0-9_-]{20,}",
    "40-char secret": r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+]{40}(?![A-Za-z0-9/+=])",
}


@pytest.mark.parametrize("path", ["compose.yaml", ".env.example", "Dockerfile", "docker/mlflow.Dockerfile",
                                  "docker/postgres-init.sql"])
def test_no_real_secrets(path):
    text = (ROOT / path).read_text()
    for what, pattern in SECRET_PATTERNS.items():
        assert not re.search(pattern, text), f"{path} holds something that looks like a {what}"


def test_secrets_files_stay_out_of_git_and_images():
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    ignored = (ROOT / ".dockerignore").read_text().split()
    for entry in (".venv", "data", "mlruns", "mlartifacts", "*.db", ".env", "__pycache__", "test-output"):
        assert entry in ignored, f".dockerignore lacks {entry}"


# ---- images ----------------------------------------------------------------------------------------------------
def test_app_image_runs_the_dashboard(compose):
    dockerfile = ROOT / compose["services"]["app"]["build"]["dockerfile"]
    assert dockerfile == ROOT / "Dockerfile"
    assert dockerfile_instruction(dockerfile, "FROM") == ["python:3.11-slim"]
    assert any("pip install -r requirements.txt" in r for r in dockerfile_instruction(dockerfile, "RUN"))
    cmd = json.loads(dockerfile_instruction(dockerfile, "CMD")[-1])
    assert cmd[:3] == ["streamlit", "run", "app.py"], cmd
    assert option(cmd, "--server.address") == "0.0.0.0"
    assert int(option(cmd, "--server.port")) == 8501 == next(c for n, _, _, c in published(compose) if n == "app")
    assert "command" not in compose["services"]["app"], "the app runs the image's CMD"


def test_mlflow_image_pins_match_requirements(compose):
    build = compose["services"]["mlflow"]["build"]
    dockerfile = ROOT / build["context"] / build["dockerfile"]
    pins = dict(re.findall(r"^([A-Za-z0-9_.\[\]-]+)==(\S+)", (ROOT / "requirements.txt").read_text(), re.M))
    installed = dict(re.findall(r"([A-Za-z0-9_.-]+)==(\S+)", " ".join(dockerfile_instruction(dockerfile, "RUN"))))
    for package in ("mlflow", "psycopg2-binary", "boto3"):
        assert installed.get(package) == pins[package], f"{package}: image {installed.get(package)}, " \
                                                        f"requirements {pins[package]}"


def test_healthchecks_use_tools_the_images_have(compose):
    """python:3.11-slim has no curl or wget; minio ships mc; postgres ships pg_isready."""
    for name in ("mlflow", "app"):
        test = compose["services"][name]["healthcheck"]["test"]
        assert test[:2] == ["CMD", "python"] and "/health" in test[-1], test
    assert compose["services"]["minio"]["healthcheck"]["test"][1] == "mc"
    assert "pg_isready" in " ".join(compose["services"]["postgres"]["healthcheck"]["test"])


def _compose_cli() -> list[str] | None:
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]):
            probe = subprocess.run([*cmd, "version"], capture_output=True, text=True)
            if probe.returncode == 0:
                return cmd
    return None


def test_docker_compose_accepts_the_file():
    """Where a Compose CLI is installed, it validates the file (no daemon needed)."""
    cli = _compose_cli()
    if cli is None:
        pytest.skip("no docker compose / docker-compose CLI on this machine")
    proc = subprocess.run([*cli, "-f", str(COMPOSE), "config", "-q"], capture_output=True, text=True, cwd=ROOT,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
