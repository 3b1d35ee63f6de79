"""Settings, read once from environment variables, with embedded defaults that need no services."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

# MLflow's HTTP client retries for minutes by default; a lab step should fail fast and say why.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
# A lab prints what it does, not download progress bars; and it sends nothing anywhere.
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

EXPERIMENT = "claims-settlement"
MODEL_NAME = "claims-settlement-rf"
CHALLENGER, STAGING, CHAMPION = "challenger", "staging", "champion"
RUN_TAGS = ("commit_sha", "stage", "dataset_window", "seed", "model_version", "pipeline_run_id")


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
    stream_tick_seconds: float = 1.0
    stream_max_rate: float = 5000.0
    stream_retention: int = 50_000

    @classmethod
    def from_env(cls, env: dict | None = None, **overrides) -> "Settings":
        """Build settings from `env` (default os.environ); keyword overrides win."""
        env = os.environ if env is None else env
        data_dir = Path(overrides.pop("data_dir", None) or env.get("LAB_DATA_DIR") or "data").resolve()
        values = dict(
            data_dir=data_dir,
            database_url=env.get("DATABASE_URL") or f"sqlite:///{data_dir / 'lab.db'}",
            tracking_uri=env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{data_dir / 'mlflow.db'}",
            artifact_root=env.get("MLFLOW_ARTIFACT_ROOT") or (data_dir / "mlartifacts").as_uri(),
            mlflow_ui_url=env.get("MLFLOW_UI_URL") or "http://127.0.0.1:5000",
            tick_seconds=float(env.get("LAB_TICK_SECONDS") or 0.5),
            heartbeat_seconds=float(env.get("LAB_HEARTBEAT_SECONDS") or 1.0),
            stale_seconds=float(env.get("LAB_STALE_SECONDS") or 10.0),
            # Port 9 (discard) on loopback: nothing listens there, so a connection is refused at once.
            unreachable_mlflow_uri=env.get("LAB_UNREACHABLE_MLFLOW_URI") or "http://127.0.0.1:9",
            stream_tick_seconds=float(env.get("LAB_STREAM_TICK_SECONDS") or 1.0),
            stream_max_rate=float(env.get("LAB_STREAM_MAX_RATE") or 5000),
            stream_retention=int(env.get("LAB_STREAM_RETENTION") or 50_000),
        )
        values.update(overrides)
        return cls(**values)
