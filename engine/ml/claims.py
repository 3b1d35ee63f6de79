"""Synthetic medical claims: one vectorised generator for training, holdouts and the live stream.

The outcome follows a documented latent rule. Each claim gets a logistic score

    score = base
          + CPT effect + provider effect + diagnosis effect         (main effects)
          - 1.6 * z(billed)          z = standardised log billed amount within its CPT bucket
          + 5.0 * (allowed / billed - 0.65)                         (payer already allowed most of it)
          - 2.5 * [Pediatrics and age > 18]                         (interactions a tree can learn)
          - 2.0 * [Obstetrics and (age < 16 or age > 52)]
          - 2.0 * [Telehealth and CPT in (Surgery, Anesthesia)]
          + 1.5 * [Hospital and CPT == Emergency]
          - 0.04 * max(age - 75, 0) * [CPT == Surgery]

and the claim is Approved with probability sigmoid(1.6 * score). The Bernoulli draw is the noise: the best possible
model still misclassifies claims whose score is near 0, which keeps the task honest (ROC-AUC near 0.9, not 1).

Covariate drift for the live stream is a `Shift`: it changes who files claims (amounts, ages, case mix), never
the rule that decides them, so drift statistics move while the model's logic stays valid.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd

CPT_BUCKETS = (
    "Evaluation & Management", "Anesthesia", "Surgery", "Radiology", "Pathology & Lab",
    "Medicine", "Emergency", "Preventive", "Behavioral Health", "Durable Medical Equipment",
)
PROVIDER_TYPES = ("Hospital", "Physician Office", "Clinic", "Urgent Care", "Telehealth")
DIAGNOSIS_GROUPS = (
    "Cardiovascular", "Respiratory", "Musculoskeletal", "Digestive", "Endocrine",
    "Neurological", "Mental Health", "Oncology", "Infectious Disease", "Renal",
    "Dermatology", "Ophthalmology", "ENT", "Obstetrics", "Pediatrics",
    "Trauma", "Urology", "Hematology", "Immunology", "Preventive Care",
)
CATEGORIES = {"cpt_bucket": CPT_BUCKETS, "provider_type": PROVIDER_TYPES, "diagnosis_group": DIAGNOSIS_GROUPS}
CATEGORICAL = ("cpt_bucket", "provider_type", "diagnosis_group")
NUMERIC = ("billed_amount", "allowed_amount", "patient_age")
FEATURES = CATEGORICAL + NUMERIC
TARGET = "outcome"
APPROVED, DENIED = "Approved", "Denied"
COLUMNS = ("claim_id", "service_date") + FEATURES + (TARGET,)
DEFAULT_WINDOW = "2025-01-01..2025-06-30"

# Per-category parameters, index-aligned with the tuples above.
_CPT_WEIGHTS = np.array([22, 4, 8, 12, 14, 12, 7, 9, 6, 6], float)
_CPT_LOG_MEAN = np.log([180, 900, 4200, 650, 120, 260, 1500, 150, 220, 700])
_CPT_LOG_SD = 0.55
_CPT_EFFECT = np.array([0.8, -0.4, -0.9, 0.1, 0.9, 0.3, 0.2, 1.4, -0.3, -1.1])
_PROVIDER_WEIGHTS = np.array([25, 35, 20, 12, 8], float)
_PROVIDER_EFFECT = np.array([0.3, 0.6, 0.2, -0.2, -0.6])
_DX_WEIGHTS = np.array([9, 8, 9, 6, 6, 5, 6, 4, 5, 3, 4, 3, 4, 4, 5, 5, 3, 2, 2, 7], float)
_DX_EFFECT = np.array([0.2, 0.3, -0.2, 0.1, 0.4, -0.3, -0.5, -0.8, 0.2, -0.4,
                       0.6, 0.5, 0.5, 0.1, 0.7, -0.6, 0.0, -0.7, -0.9, 1.3])
_BASE = 0.6
_SHARPNESS = 1.6  # how decisive the rule is; higher means less label noise


@dataclass(frozen=True)
class Shift:
    """Covariate drift applied while generating: who files claims changes, the outcome rule does not."""

    amount_scale: float = 1.0       # billed amounts multiplied by this (inflation, upcoding)
    age_shift: float = 0.0          # years added to every patient's age
    telehealth_boost: float = 0.0   # extra weight (share of total, 0..1) moved to Telehealth providers
    surgery_boost: float = 0.0      # extra weight (share of total, 0..1) moved to the Surgery CPT bucket


NO_SHIFT = Shift()


def parse_window(window: str) -> tuple[date, date]:
    """Parse 'YYYY-MM-DD..YYYY-MM-DD' into (start, end); raise ValueError saying what is wrong."""
    parts = str(window).split("..")
    if len(parts) != 2:
        raise ValueError(f"dataset window {window!r} must look like 2025-01-01..2025-06-30")
    try:
        start, end = (date.fromisoformat(p.strip()) for p in parts)
    except ValueError as exc:
        raise ValueError(f"dataset window {window!r}: {exc}; use ISO dates like 2025-01-01..2025-06-30") from None
    if end < start:
        raise ValueError(f"dataset window {window!r} ends before it starts; put the earlier date first")
    return start, end


def _mix(weights: np.ndarray, index: int, boost: float) -> np.ndarray:
    p = weights / weights.sum()
    if boost:
        p = p * (1 - boost)
        p[index] += boost
    return p


def latent_score(frame: pd.DataFrame) -> np.ndarray:
    """The documented logistic score of each claim (see the module docstring)."""
    cpt = pd.Categorical(frame["cpt_bucket"], categories=CPT_BUCKETS).codes
    prov = pd.Categorical(frame["provider_type"], categories=PROVIDER_TYPES).codes
    dx = pd.Categorical(frame["diagnosis_group"], categories=DIAGNOSIS_GROUPS).codes
    billed = frame["billed_amount"].to_numpy(float)
    allowed = frame["allowed_amount"].to_numpy(float)
    age = frame["patient_age"].to_numpy(float)
    return _score(cpt, prov, dx, billed, allowed, age)


def _score(cpt, prov, dx, billed, allowed, age) -> np.ndarray:
    z = (np.log(billed) - _CPT_LOG_MEAN[cpt]) / _CPT_LOG_SD
    surgery, anesthesia, emergency = (CPT_BUCKETS.index(n) for n in ("Surgery", "Anesthesia", "Emergency"))
    score = _BASE + _CPT_EFFECT[cpt] + _PROVIDER_EFFECT[prov] + _DX_EFFECT[dx]
    score = score - 1.6 * z + 5.0 * (allowed / billed - 0.65)
    score -= 2.5 * ((dx == DIAGNOSIS_GROUPS.index("Pediatrics")) & (age > 18))
    score -= 2.0 * ((dx == DIAGNOSIS_GROUPS.index("Obstetrics")) & ((age < 16) | (age > 52)))
    score -= 2.0 * ((prov == PROVIDER_TYPES.index("Telehealth")) & ((cpt == surgery) | (cpt == anesthesia)))
    score += 1.5 * ((prov == PROVIDER_TYPES.index("Hospital")) & (cpt == emergency))
    score -= 0.04 * np.maximum(age - 75, 0) * (cpt == surgery)
    return score


def generate_claims(n: int, seed: int, window: str = DEFAULT_WINDOW, shift: Shift = NO_SHIFT) -> pd.DataFrame:
    """Generate `n` claims; the same (n, seed, window, shift) always gives the identical frame."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    start, end = parse_window(window)
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, start.toordinal(), end.toordinal()])
    cpt = rng.choice(len(CPT_BUCKETS), n, p=_mix(_CPT_WEIGHTS, CPT_BUCKETS.index("Surgery"), shift.surgery_boost))
    prov = rng.choice(len(PROVIDER_TYPES), n,
                      p=_mix(_PROVIDER_WEIGHTS, PROVIDER_TYPES.index("Telehealth"), shift.telehealth_boost))
    dx = rng.choice(len(DIAGNOSIS_GROUPS), n, p=_DX_WEIGHTS / _DX_WEIGHTS.sum())
    # Ages: a pediatric bump plus a broad adult population, clipped to the contract's 0..110.
    adult = rng.normal(52, 18, n)
    child = rng.uniform(0, 18, n)
    age = np.where(rng.random(n) < 0.15, child, adult) + shift.age_shift
    age = np.clip(np.rint(age), 0, 110).astype(np.int64)
    billed = np.exp(_CPT_LOG_MEAN[cpt] + _CPT_LOG_SD * rng.standard_normal(n)) * shift.amount_scale
    billed = np.round(np.maximum(billed, 5.0), 2)
    allowed = np.round(billed * rng.beta(5, 2.5, n), 2)
    allowed = np.clip(allowed, 0.01, billed)
    approved = rng.random(n) < 1 / (1 + np.exp(-_SHARPNESS * _score(cpt, prov, dx, billed, allowed, age)))
    days = (end - start).days + 1
    service_date = np.datetime64(start.isoformat(), "D") + rng.integers(0, days, n).astype("timedelta64[D]")
    # Ids are unique within a frame and differ across seeds: seed in the high digits, row number below.
    claim_id = (int(seed) % 1_000_000) * 10_000_000_000 + np.arange(n, dtype=np.int64)
    return pd.DataFrame({
        "claim_id": claim_id,
        "service_date": service_date.astype("datetime64[ns]"),
        "cpt_bucket": pd.Categorical.from_codes(cpt, categories=list(CPT_BUCKETS)),
        "provider_type": pd.Categorical.from_codes(prov, categories=list(PROVIDER_TYPES)),
        "diagnosis_group": pd.Categorical.from_codes(dx, categories=list(DIAGNOSIS_GROUPS)),
        "billed_amount": billed,
        "allowed_amount": allowed,
        "patient_age": age,
        TARGET: pd.Categorical.from_codes(np.where(approved, 0, 1), categories=[APPROVED, DENIED]),
    })


def label_array(frame: pd.DataFrame) -> np.ndarray:
    """1 for Approved, 0 for Denied: the positive class the metrics are about."""
    return (frame[TARGET].astype(str).to_numpy() == APPROVED).astype(np.int8)
