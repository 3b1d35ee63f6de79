"""Settings, read once from environment variables, with embedded defaults that need no services."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

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
    demo: bool = False                      # LAB_DEMO=1: the guarded public demo
    demo_max_active_runs: int = 3           # queued or running runs in all
    demo_commit_interval: float = 30.0      # seconds between commits of one browser session
    demo_toggle_interval: float = 5.0       # seconds between failure-mode toggles of one browser session
    demo_max_stream_rate: float = 20.0      # claims per second the live stream may be set to
    demo_keep_runs: int = 200               # runs kept when a demo starts (older ones pruned)
    stream_tick_seconds: float = 1.0
    stream_max_rate: float = 5000.0
    stream_retention: int = 50_000

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
            demo=env.get("LAB_DEMO", "").strip().lower() in ("1", "true", "yes", "on"),
            demo_max_active_runs=int(_number(env, "LAB_DEMO_MAX_ACTIVE_RUNS", 3)),
            demo_commit_interval=_number(env, "LAB_DEMO_COMMIT_INTERVAL", 30.0),
            demo_toggle_interval=_number(env, "LAB_DEMO_TOGGLE_INTERVAL", 5.0),
            demo_max_stream_rate=_number(env, "LAB_DEMO_MAX_STREAM_RATE", 20.0),
            demo_keep_runs=int(_number(env, "LAB_DEMO_KEEP_RUNS", 200)),
            stream_tick_seconds=_number(env, "LAB_STREAM_TICK_SECONDS", 1.0),
            stream_max_rate=_number(env, "LAB_STREAM_MAX_RATE", 5000),
            stream_retention=int(_number(env, "LAB_STREAM_RETENTION", 50_000)),
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


def _number(env, name: str, default: float) -> float:
    raw = env.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        raise BadInput(f"{name}={raw!r} is not a number; set it like {name}={default:g} or unset it") from None
    if not value > 0:
        raise BadInput(f"{name}={raw!r} must be above 0; set it like {name}={default:g} or unset it")
    return value
