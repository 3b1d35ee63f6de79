"""Settings, read once from environment variables, with embedded defaults that need no services."""
from __future__ import annotations

import functools
import os
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from engine.errors import BadInput

# MLflow's HTTP client retries for minutes by default; a lab step should fail fast and say why.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
# MLflow prints "View run ... at <tracking URI>" to stdout, credentials and all; the lab links runs itself.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
os.environ.setdefault("MLFLOW_PRINT_MODEL_URLS_ON_CREATION", "false")
# A lab prints what it does, not download progress bars; and it sends nothing anywhere.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

EXPERIMENT = "claims-settlement"
MODEL_NAME = "claims-settlement-rf"
CHALLENGER, STAGING, CHAMPION = "challenger", "staging", "champion"
RUN_TAGS = ("commit_sha", "stage", "dataset_window", "seed", "model_version", "pipeline_run_id")
DB_SCHEMES = ("sqlite", "postgresql")
# A busy machine can delay a heartbeat by a few intervals; a step is only judged dead after this many.
MIN_STALE_HEARTBEATS = 5
MASK = "***"
# Documented limits of every free-text input (README "Limits"); checked before anything is written.
LIMITS = {"message": 2000, "author": 200, "by": 200, "comment": 2000, "reason": 2000}


def mask_url(url: str) -> str:
    """`url` with its password (database URL or MLflow URI with credentials) replaced by ***."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        host = parts.netloc.rsplit("@", 1)[1]
        return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}"))
    except ValueError:  # not a URL we can parse: hide anything between ':' and '@' in it
        return re.sub(r"(//[^:/@]*:)[^@]*@", rf"\g<1>{MASK}@", url)


def url_password(url: str) -> str | None:
    """The password in a URL, or None."""
    try:
        return urlsplit(url).password or None
    except ValueError:
        return None


# The password of any URL in free text (`scheme://user:password@host`): client libraries quote the URL they
# called in their messages (MLflow: "API request to http://user:PASSWORD@host/... failed").
_URL_PASSWORD = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*:)[^\s/'\"]*@")
# Variables that hold a URL with a password, or a secret outright: their values are masked in any text.
SECRET_URL_VARS = ("DATABASE_URL", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_ARTIFACT_ROOT",
                   "MLFLOW_UI_URL", "LAB_UNREACHABLE_MLFLOW_URI", "LAB_TEST_PG_URL")
SECRET_VARS = ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN", "AWS_SECRET_ACCESS_KEY", "PGPASSWORD",
               "LAB_OPERATOR_KEY", "LAB_WEBHOOK_SECRET", "LAB_API_TOKEN")


def env_secrets(env=None) -> tuple[str, ...]:
    """The passwords and keys the environment holds (URL passwords, raw and decoded; tokens), longest first."""
    env = os.environ if env is None else env
    return _secrets_of(tuple(env.get(n) or "" for n in SECRET_URL_VARS), tuple(env.get(n) or "" for n in SECRET_VARS))


@functools.lru_cache(maxsize=8)  # every log record asks; the environment rarely changes
def _secrets_of(urls: tuple[str, ...], values: tuple[str, ...]) -> tuple[str, ...]:
    passwords = {p for u in urls if (p := url_password(u))}
    found = passwords | {unquote(p) for p in passwords} | {v for v in values if v}
    return tuple(sorted(found, key=len, reverse=True))


def mask_text(text: str, secrets=()) -> str:
    """`text` with the password of every URL in it, and each of `secrets`, replaced by ***."""
    text = _URL_PASSWORD.sub(rf"\g<1>{MASK}@", str(text))
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def mask_exception(exc: BaseException, secrets=(), full: bool = False) -> str:
    """`exc` as text, masked (mask_text): its message, then each chained cause's (__cause__, __context__) on its
    own line; with `full`, the whole traceback of the chain, as Python prints it (for server logs)."""
    if full:
        return mask_text("".join(traceback.format_exception(exc)), secrets)
    return mask_text("\n".join(str(e).strip() or type(e).__name__ for e in exception_chain(exc)), secrets)


def exception_chain(exc: BaseException | None):
    """`exc`, then the exception it was raised from or during (__cause__, else __context__), and so on."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)


@dataclass(frozen=True)
class Settings:
    """Everything the engine reads from the environment."""

    data_dir: Path
    database_url: str
    tracking_uri: str
    artifact_root: str
    mlflow_ui_url: str
    tick_seconds: float
    heartbeat_seconds: float
    stale_seconds: float
    unreachable_mlflow_uri: str
    db_connect_timeout: float = 5.0         # seconds to open a database connection
    db_statement_timeout: float = 8.0       # seconds one SQL statement (or SQLite lock wait) may take
    shutdown_grace_seconds: float = 8.0     # SIGTERM: how long running steps get to finish before release
    app_worker: bool = True                 # LAB_APP_WORKER=0: the dashboard starts no worker (compose runs them)
    shared_read_seconds: float = 1.0        # how old a read shared by a server's sessions may be (0: not shared)
    page_nice: int = 5                      # how far a server's page runs yield the CPU to its worker (0: not)
    demo: bool = False                      # LAB_DEMO=1: the guarded public demo
    demo_max_active_runs: int = 3           # queued or running runs in all
    demo_commit_interval: float = 30.0      # seconds between commits of one visitor
    demo_toggle_interval: float = 5.0       # seconds between failure-mode toggles of one visitor
    demo_max_stream_rate: float = 20.0      # claims per second the live stream may be set to
    demo_keep_runs: int = 200               # runs kept by a demo's pruning (older ones removed for real)
    stream_tick_seconds: float = 1.0
    stream_max_rate: float = 5000.0
    stream_retention: int = 50_000
    keep_snapshots: int = 2000              # newest stream snapshots kept (every mode)
    keep_log_runs: int = 1000               # newest runs whose step logs are kept (every mode)
    keep_audit: int = 5000                  # newest audit rows without a run kept (every mode)
    keep_champions: int = 5                 # newest champions a prune keeps: how far rollbacks can reach
    retention_seconds: float = 600.0        # seconds between a worker's retention passes
    operator_key: str = field(default="", repr=False)  # LAB_OPERATOR_KEY: the demo's shared controls
    api_token: str = field(default="", repr=False)     # LAB_API_TOKEN: the HTTP API's writes (none: refused)
    webhook_secret: str = field(default="", repr=False)  # LAB_WEBHOOK_SECRET: GitHub's webhook (none: no webhook)
    webhook_branches: tuple[str, ...] = ()  # LAB_WEBHOOK_BRANCHES: pushes that start a run (none: default branch)

    @classmethod
    def from_env(cls, env: dict | None = None, **overrides) -> "Settings":
        """Build settings from `env` (default os.environ); keyword overrides win. BadInput names a bad variable."""
        env = os.environ if env is None else env
        data_dir = Path(overrides.pop("data_dir", None) or env.get("LAB_DATA_DIR") or "data").resolve()
        values = dict(
            data_dir=data_dir,
            database_url=env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'lab.db'}",
            tracking_uri=env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{data_dir / 'mlflow.db'}",
            artifact_root=env.get("MLFLOW_ARTIFACT_ROOT") or (data_dir / "mlartifacts").as_uri(),
            mlflow_ui_url=env.get("MLFLOW_UI_URL") or "http://127.0.0.1:5000",
            tick_seconds=_number(env, "LAB_TICK_SECONDS", 0.5),
            heartbeat_seconds=_number(env, "LAB_HEARTBEAT_SECONDS", 2.0),
            stale_seconds=_number(env, "LAB_STALE_SECONDS", 20.0),
            # Port 9 (discard) on loopback: nothing listens there, so a connection is refused at once.
            unreachable_mlflow_uri=env.get("LAB_UNREACHABLE_MLFLOW_URI") or "http://127.0.0.1:9",
            db_connect_timeout=_number(env, "LAB_DB_CONNECT_TIMEOUT", 5.0),
            db_statement_timeout=_number(env, "LAB_DB_STATEMENT_TIMEOUT", 8.0),
            shutdown_grace_seconds=_number(env, "LAB_SHUTDOWN_GRACE_SECONDS", 8.0),
            app_worker=_flag(env, "LAB_APP_WORKER", True),
            shared_read_seconds=_number(env, "LAB_SHARED_READ_SECONDS", 1.0, allow_zero=True),
            page_nice=int(min(19, _number(env, "LAB_PAGE_NICE", 5, allow_zero=True))),
            demo=_flag(env, "LAB_DEMO", False),
            demo_max_active_runs=int(_number(env, "LAB_DEMO_MAX_ACTIVE_RUNS", 3)),
            demo_commit_interval=_number(env, "LAB_DEMO_COMMIT_INTERVAL", 30.0),
            demo_toggle_interval=_number(env, "LAB_DEMO_TOGGLE_INTERVAL", 5.0),
            demo_max_stream_rate=_number(env, "LAB_DEMO_MAX_STREAM_RATE", 20.0),
            demo_keep_runs=int(_number(env, "LAB_DEMO_KEEP_RUNS", 200)),
            stream_tick_seconds=_number(env, "LAB_STREAM_TICK_SECONDS", 1.0),
            stream_max_rate=_number(env, "LAB_STREAM_MAX_RATE", 5000),
            stream_retention=int(_number(env, "LAB_STREAM_RETENTION", 50_000)),
            keep_snapshots=int(_number(env, "LAB_KEEP_SNAPSHOTS", 2000)),
            keep_log_runs=int(_number(env, "LAB_KEEP_LOG_RUNS", 1000)),
            keep_audit=int(_number(env, "LAB_KEEP_AUDIT", 5000)),
            keep_champions=int(_number(env, "LAB_KEEP_CHAMPIONS", 5)),
            retention_seconds=_number(env, "LAB_RETENTION_INTERVAL", 600.0),
            operator_key=env.get("LAB_OPERATOR_KEY", ""),
            api_token=env.get("LAB_API_TOKEN", ""),
            webhook_secret=env.get("LAB_WEBHOOK_SECRET", ""),
            webhook_branches=tuple(b.strip() for b in env.get("LAB_WEBHOOK_BRANCHES", "").split(",") if b.strip()),
        )
        values.update(overrides)
        settings = cls(**values)
        settings.check()
        return settings

    def check(self) -> None:
        """BadInput naming the variable when a setting cannot work."""
        scheme = self.database_url.split(":", 1)[0].split("+", 1)[0]
        if scheme not in DB_SCHEMES:
            raise BadInput(f"DATABASE_URL {mask_url(self.database_url)!r} has the scheme {scheme!r}, which the lab "
                           "does not support; use sqlite:///path/to/lab.db or "
                           "postgresql+psycopg2://user:password@host:5432/dbname (or unset it for embedded mode)")
        if self.stale_seconds < MIN_STALE_HEARTBEATS * self.heartbeat_seconds:
            raise BadInput(f"LAB_STALE_SECONDS ({self.stale_seconds:g}) must be at least {MIN_STALE_HEARTBEATS} "
                           f"heartbeats (LAB_HEARTBEAT_SECONDS {self.heartbeat_seconds:g}), or a busy machine "
                           f"makes live workers look dead; set it to {MIN_STALE_HEARTBEATS * self.heartbeat_seconds:g}"
                           " or more")

    def secrets(self) -> list[str]:
        """Passwords in the configured URLs (masked wherever the lab shows or stores text)."""
        found = {url_password(u) for u in (self.database_url, self.tracking_uri, self.unreachable_mlflow_uri)}
        return sorted((p for p in found if p), key=len, reverse=True)

    def redact(self, value):
        """`value` (text, or dicts/lists of it) with every configured password replaced by ***."""
        secrets = self.secrets()
        if not secrets:
            return value
        return _redact(value, secrets)


def _redact(value, secrets: list[str]):
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {k: _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_redact(v, secrets) for v in value)
    return value


def _flag(env, name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise BadInput(f"{name}={raw!r} is not on or off; set it to 1 or 0, or unset it")


def _number(env, name: str, default: float, allow_zero: bool = False) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadInput(f"{name}={raw!r} is not a number; set it like {name}={default:g} or unset it") from None
    if not (value >= 0 if allow_zero else value > 0):
        raise BadInput(f"{name}={raw!r} must be {'0 or more' if allow_zero else 'above 0'}; set it like "
                       f"{name}={default:g} or unset it")
    return value
