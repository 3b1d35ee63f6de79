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

Drift for the live stream is a `Shift`. Most of its fields are covariate drift: they change who files claims
(amounts, ages, provider and case mix), never the rule that decides them, so drift statistics move while the
model's logic stays valid. One field, `concept`, is concept drift: the payer's rule itself changes (the effects of
the allowed share and of the amount reverse) while the inputs stay exactly as they were, so only accuracy can
reveal it.

Frames are prefix-stable: claims are drawn in blocks of BLOCK rows, each block from its own seeded stream, so the
first k rows of generate_claims(n, ...) are generate_claims(k, ...) for every k <= n, and `start=` continues a
sequence (the live stream draws claim after claim of one endless sequence this way).

Claim ids are `seed * ROWS_PER_SEED + row`: unique across seeds by construction. Seeds the lab derives for fresh
claims (holdouts, shadow traffic, the stream) come from `derived_seed`, which never meets a commit seed.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the functions that build frames import pandas: the CLI reads constants only, without it
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
    oncology_boost: float = 0.0     # extra weight (share of total, 0..1) moved to the Oncology diagnosis group
    concept: float = 0.0            # 0..1: how far the payer's rule has turned (share and amount effects reverse)

    def scaled(self, intensity: float) -> "Shift":
        """This shift at `intensity` (0 = none, 1 = full): amounts scale geometrically, the rest linearly."""
        k = min(max(float(intensity), 0.0), 1.0)
        return Shift(amount_scale=self.amount_scale ** k, age_shift=self.age_shift * k,
                     telehealth_boost=self.telehealth_boost * k, surgery_boost=self.surgery_boost * k,
                     oncology_boost=self.oncology_boost * k, concept=self.concept * k)


NO_SHIFT = Shift()


@dataclass(frozen=True)
class Scenario:
    """A named change of who files claims (or of the payer's rule), at full intensity."""

    name: str         # what the CLI, the API and the stored stream state say
    shift: Shift
    description: str
    label: str        # what every page's scenario list shows (the dashboard's Claims panel, the walkthrough)


SCENARIOS = {s.name: s for s in (
    Scenario("none", NO_SHIFT, "claims come from the training distribution", "No drift"),
    Scenario("inflation", Shift(amount_scale=1.8), "billed (and so allowed) amounts rise by 80%", "Inflation"),
    Scenario("telehealth_surge", Shift(telehealth_boost=0.35), "35% of claims move to Telehealth providers",
             "Telehealth surge"),
    Scenario("aging", Shift(age_shift=15), "patients are 15 years older", "Older patients"),
    Scenario("case_mix", Shift(surgery_boost=0.25, oncology_boost=0.2),
             "more Surgery CPT codes and more Oncology diagnoses", "Case mix"),
    Scenario("concept_drift", Shift(concept=1.0),
             "the payer's rule turns (a high allowed share now counts against approval); inputs unchanged",
             "Concept drift"),
)}

BLOCK = 1024                       # rows per independently seeded block (prefix stability)
ROWS_PER_SEED = 1_000_000          # rows one seed may produce; claim_id = seed * ROWS_PER_SEED + row
COMMIT_SEEDS = 2**31               # commit seeds are 0 .. COMMIT_SEEDS - 1
MAX_SEED = (2**63 - 1) // ROWS_PER_SEED - 1


def claim_ids(seed: int, start: int, n: int) -> np.ndarray:
    """Ids of rows start .. start+n-1 of a seed's sequence: the seed above ROWS_PER_SEED, the row below."""
    return int(seed) * ROWS_PER_SEED + np.arange(start, start + n, dtype=np.int64)


def derived_seed(seed: int, purpose: int) -> int:
    """A seed for fresh claims of `purpose` (1..999) beside commit seed `seed`; never equal to any commit seed."""
    if not 0 < int(purpose) < 1000:
        raise ValueError(f"purpose must be 1..999, got {purpose}")
    return COMMIT_SEEDS + int(seed) * 1000 + int(purpose)


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
    import pandas as pd
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


def generate_claims(n: int, seed: int, window: str = DEFAULT_WINDOW, shift: Shift = NO_SHIFT,
                    start: int = 0) -> pd.DataFrame:
    """Rows start .. start+n-1 of the claim sequence of (seed, window, shift); always the identical frame."""
    import pandas as pd
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if start < 0:
        raise ValueError(f"start must be >= 0, got {start}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"seed must be 0..{MAX_SEED}, got {seed}")
    if start + n > ROWS_PER_SEED:
        raise ValueError(f"one seed gives at most {ROWS_PER_SEED:,} claims; rows {start}..{start + n - 1} "
                         "are past that, so use another seed")
    first, stop = parse_window(window)
    blocks = [_block(int(seed), b, first, stop, shift) for b in range(start // BLOCK, -(-(start + n) // BLOCK))]
    cols = {k: np.concatenate([blk[k] for blk in blocks]) if blocks else np.empty(0, np.int64) for k in _DRAWN}
    lo = start - (start // BLOCK) * BLOCK
    cols = {k: v[lo:lo + n] for k, v in cols.items()}
    return pd.DataFrame({
        "claim_id": claim_ids(seed, start, n),
        "service_date": cols["service_date"].astype("datetime64[ns]"),
        "cpt_bucket": pd.Categorical.from_codes(cols["cpt"].astype(np.int64), categories=list(CPT_BUCKETS)),
        "provider_type": pd.Categorical.from_codes(cols["prov"].astype(np.int64), categories=list(PROVIDER_TYPES)),
        "diagnosis_group": pd.Categorical.from_codes(cols["dx"].astype(np.int64), categories=list(DIAGNOSIS_GROUPS)),
        "billed_amount": cols["billed"].astype(np.float64),
        "allowed_amount": cols["allowed"].astype(np.float64),
        "patient_age": cols["age"].astype(np.int64),
        TARGET: pd.Categorical.from_codes(np.where(cols["approved"].astype(bool), 0, 1),
                                          categories=[APPROVED, DENIED]),
    })


_DRAWN = ("cpt", "prov", "dx", "age", "billed", "allowed", "approved", "service_date")


def _block(seed: int, block: int, start: date, end: date, shift: Shift) -> dict[str, np.ndarray]:
    """BLOCK claims drawn from the block's own random stream (the same whatever frame asks for them)."""
    n = BLOCK
    rng = np.random.default_rng([seed & 0xFFFFFFFF, seed >> 32, start.toordinal(), end.toordinal(), block])
    cpt = rng.choice(len(CPT_BUCKETS), n, p=_mix(_CPT_WEIGHTS, CPT_BUCKETS.index("Surgery"), shift.surgery_boost))
    prov = rng.choice(len(PROVIDER_TYPES), n,
                      p=_mix(_PROVIDER_WEIGHTS, PROVIDER_TYPES.index("Telehealth"), shift.telehealth_boost))
    dx = rng.choice(len(DIAGNOSIS_GROUPS), n,
                    p=_mix(_DX_WEIGHTS, DIAGNOSIS_GROUPS.index("Oncology"), shift.oncology_boost))
    # Ages: a pediatric bump plus a broad adult population, clipped to the contract's 0..110.
    adult = rng.normal(52, 18, n)
    child = rng.uniform(0, 18, n)
    age = np.where(rng.random(n) < 0.15, child, adult) + shift.age_shift
    age = np.clip(np.rint(age), 0, 110).astype(np.int64)
    billed = np.exp(_CPT_LOG_MEAN[cpt] + _CPT_LOG_SD * rng.standard_normal(n)) * shift.amount_scale
    billed = np.round(np.maximum(billed, 5.0), 2)
    allowed = np.round(billed * rng.beta(5, 2.5, n), 2)
    allowed = np.clip(allowed, 0.01, billed)
    score = _score(cpt, prov, dx, billed, allowed, age)
    if shift.concept:  # the payer's rule turns: the allowed-share and amount effects fade, then reverse
        z = (np.log(billed) - _CPT_LOG_MEAN[cpt]) / _CPT_LOG_SD
        score -= shift.concept * 2 * (5.0 * (allowed / billed - 0.65) - 1.6 * z)
    approved = rng.random(n) < 1 / (1 + np.exp(-_SHARPNESS * score))
    days = (end - start).days + 1
    service_date = np.datetime64(start.isoformat(), "D") + rng.integers(0, days, n).astype("timedelta64[D]")
    return {"cpt": cpt, "prov": prov, "dx": dx, "age": age, "billed": billed, "allowed": allowed,
            "approved": approved, "service_date": service_date}


def label_array(frame: pd.DataFrame) -> np.ndarray:
    """1 for Approved, 0 for Denied: the positive class the metrics are about."""
    return (frame[TARGET].astype(str).to_numpy() == APPROVED).astype(np.int8)


def stored_frame(rows: list[dict]) -> pd.DataFrame:
    """Claims stored by the live stream (dicts with claim_id, ts, the features and a boolean outcome) as a frame in
    generate_claims' layout: service_date is the day production scored the claim, the outcome Approved/Denied."""
    import pandas as pd
    frame = pd.DataFrame(rows, columns=["seq", "claim_id", "ts", *FEATURES, TARGET])
    return pd.DataFrame({
        "claim_id": frame["claim_id"].astype(np.int64),
        "service_date": pd.to_datetime(frame["ts"].astype(float), unit="s").dt.floor("D").astype("datetime64[ns]"),
        **{col: pd.Categorical(frame[col], categories=list(CATEGORIES[col])) for col in CATEGORICAL},
        "billed_amount": frame["billed_amount"].astype(np.float64),
        "allowed_amount": frame["allowed_amount"].astype(np.float64),
        "patient_age": frame["patient_age"].astype(np.int64),
        TARGET: pd.Categorical(np.where(frame[TARGET].astype(bool), APPROVED, DENIED), categories=[APPROVED, DENIED]),
    })
