"""Drift statistics: how far a current sample of a feature has moved from its reference sample.

Population Stability Index (PSI): bin the data, then compare each sample's share of rows per bin,

    PSI = sum_i (cur_i - ref_i) * ln(cur_i / ref_i)

Numeric bins are cut at deduplicated quantiles of the reference, so each holds roughly the same share of it; they
are right-closed, (a, b], and the outer bins are open to -inf / +inf so current values beyond the reference range
still count. Categorical data get one bin per category seen in either sample. Every term is >= 0, identical samples
give exactly 0, and PSI is a symmetrised KL divergence, so it grows both with how much mass moved and with how rare
the place it moved to was. The conventional reading, used for `level`:

    PSI < 0.10            none       no meaningful change
    0.10 <= PSI < 0.25    moderate   worth watching
    PSI >= 0.25           major      the population has shifted: investigate, consider retraining

Missing values (NaN/None) get a bin of their own, labelled MISSING, in both kinds of data: a feed that starts
sending nulls is drift too, and a monitor must not crash on it. KS and chi-square see only the present values.

An empty bin would make the log infinite, so shares below EPSILON (in particular empty bins) are raised to EPSILON
before the log; a bin empty in the reference holding share c of the current sample then adds ~c * ln(c / EPSILON).

KS (numeric) and chi-square (categorical) tests are reported alongside as supporting evidence, not as the drift
level: with a 100k-row reference their p-values drop below any alpha for shifts far too small to matter, whereas
PSI measures the size of the shift.

One snapshot runs one test per feature, so "significant" is decided for the family, not test by test: six
uncorrected tests at 5% flag some feature in about one no-drift window in four (measured: 15% of 40 independent
5,000-claim windows). Holm's step-down rule keeps the chance that a no-drift snapshot flags any feature at most
`alpha`: sort the m p-values, compare the k-th smallest (k = 1..m) with alpha / (m - k + 1), and stop at the first
that is not below its bound; the tests before it are significant. `CORRECTION` names the rule; the report's
`flagged` is True when any feature's test is significant after it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from engine.ml.claims import FEATURES

EPSILON = 1e-4   # floor on bin shares; a new category at 10% of current rows then adds ~0.1 * ln(1000) = 0.69
MODERATE = 0.10  # PSI at or above this is "moderate" drift
MAJOR = 0.25     # PSI at or above this is "major" drift
MISSING = "missing"  # label of the bin that counts missing values
LEVELS = ("none", "moderate", "major")  # ordered, so the worst of several levels is the one with the highest index
ALPHA = 0.05           # family-wise error rate of one snapshot's per-feature tests
CORRECTION = "holm"    # "holm" (step-down, the default), "bonferroni", or "none" (each test alone at alpha)
CORRECTIONS = ("holm", "bonferroni", "none")


def psi_level(value: float) -> str:
    """Level name of a PSI value: "none" below MODERATE, "moderate" below MAJOR, else "major"."""
    return "major" if value >= MAJOR else "moderate" if value >= MODERATE else "none"


@dataclass(frozen=True)
class PSIBin:
    """One bin: label, each sample's share of rows (as observed, before EPSILON) and its term of the PSI sum."""

    label: str
    reference_share: float
    current_share: float
    contribution: float


@dataclass(frozen=True)
class PSIResult:
    """A PSI value, its level and the per-bin breakdown that explains it."""

    value: float
    level: str
    bins: tuple[PSIBin, ...]

    def to_dict(self) -> dict:
        """JSON-safe dict."""
        return {"value": self.value, "level": self.level, "bins": [asdict(b) for b in self.bins]}


@dataclass(frozen=True)
class StatTestResult:
    """A two-sample test: its name ("ks" or "chi-square"), statistic and p-value."""

    name: str
    statistic: float
    p_value: float

    def to_dict(self) -> dict:
        """JSON-safe dict."""
        return asdict(self)


def _sample(values, what: str) -> pd.Series:
    if np.ndim(values) != 1:
        raise ValueError(f"{what} must be 1-D, got {np.ndim(values)} dimension(s)")
    s = values if isinstance(values, pd.Series) else pd.Series(values)
    if s.empty:
        raise ValueError(f"{what} is empty; drift needs at least one value in each sample")
    return s


def _present(s: pd.Series, what: str) -> pd.Series:
    present = s.dropna()
    if present.empty:
        raise ValueError(f"{what} has only missing values; a test needs at least one present value")
    return present


def _numeric(s: pd.Series, what: str) -> np.ndarray:
    try:
        return s.to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{what} is not numeric (dtype {s.dtype}); treat it as categorical") from None


def _fmt(x: float) -> str:
    return repr(float(f"{x:.6g}"))  # 6 significant digits keep labels readable; repr keeps the ".0" of 40.0


def _numeric_cuts(rs: np.ndarray, bins: int) -> tuple[np.ndarray, list[str]]:
    lo, hi = rs[0], rs[-1]  # rs is the sorted reference
    if lo == hi:
        # No quantile can split one value; isolate it so that any other current value counts as drift.
        v = _fmt(lo)
        return np.array([np.nextafter(lo, -np.inf), lo]), [f"(-inf, {v})", f"[{v}, {v}]", f"({v}, +inf)"]
    # Inverted-CDF quantiles, so cuts are reference values; with right-closed bins (a, b] no bin is empty in the
    # reference by construction and a point mass at the minimum (zero amounts, say) gets a bin of its own.
    q = np.unique(rs[(np.arange(1, bins) * rs.size + bins - 1) // bins - 1])
    cuts = q[q < hi]  # a cut at the max would leave the bin above it empty in the reference
    if cuts.size < q.size:  # a point mass at the max swallowed quantiles: give that mass its own bin
        cuts = np.union1d(cuts, rs[np.searchsorted(rs, hi) - 1])
    edges = [_fmt(c) for c in cuts]
    return cuts, [f"({a}, {b}]" for a, b in zip(["-inf", *edges], edges)] + [f"({edges[-1]}, +inf)"]


def _category_counts(ref: pd.Series, cur: pd.Series) -> tuple[list[str], np.ndarray, np.ndarray]:
    # Zero counts are unobserved levels of a categorical dtype: not bins.
    r, c = ({k: n for k, n in s.value_counts(sort=False).items() if n} for s in (ref, cur))
    # Most common reference categories first, new ones last; the stable sort breaks ties by category/appearance order.
    keys = sorted(r, key=r.get, reverse=True) + [k for k in c if k not in r]
    return [str(k) for k in keys], *(np.array([d.get(k, 0) for k in keys], float) for d in (r, c))


def _binned(reference, current, bins: int, categorical: bool | None):
    """(kind, labels, reference counts, current counts, reference data, current data) after validation.

    The data returned are the present values; the counts include a MISSING bin when either sample has one.
    """
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    ref, cur = _sample(reference, "reference sample"), _sample(current, "current sample")
    missing = np.array([ref.isna().sum(), cur.isna().sum()], float)
    ref, cur = ref.dropna(), cur.dropna()
    if categorical is None:  # bools are flags, not magnitudes: count them like categories
        categorical = any(not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s) for s in (ref, cur))
    if categorical:
        kind, (labels, rc, cc), r, c = "categorical", _category_counts(ref, cur), ref, cur
    elif ref.empty:  # nothing to cut quantiles from: every present current value is in one new bin
        kind, r, c = "numeric", np.array([]), _numeric(cur, "current sample")
        labels, rc, cc = ["(-inf, +inf)"], np.zeros(1), np.array([float(c.size)])
    else:
        kind, r, c = "numeric", _numeric(ref, "reference sample"), _numeric(cur, "current sample")
        rs = np.sort(r)  # one sort is cheaper than a quantile partition plus binning 100k unsorted values
        cuts, labels = _numeric_cuts(rs, int(bins))
        rc = np.diff(np.searchsorted(rs, cuts, side="right"), prepend=0, append=rs.size)
        cc = np.bincount(np.searchsorted(cuts, c, side="left"), minlength=len(labels))
    if missing.any():
        labels, rc, cc = [*labels, MISSING], np.append(rc, missing[0]), np.append(cc, missing[1])
    return kind, labels, rc, cc, r, c


def _psi_from_counts(labels: list[str], ref_counts: np.ndarray, cur_counts: np.ndarray) -> PSIResult:
    ref_share, cur_share = ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()
    r, c = np.maximum(ref_share, EPSILON), np.maximum(cur_share, EPSILON)
    terms = (c - r) * np.log(c / r)
    value = float(terms.sum())
    bins = zip(labels, ref_share.tolist(), cur_share.tolist(), terms.tolist())
    return PSIResult(value, psi_level(value), tuple(PSIBin(*b) for b in bins))


def _chi_square(ref_counts: np.ndarray, cur_counts: np.ndarray) -> StatTestResult:
    # Plain Pearson (no Yates correction) so the statistic means the same for 2 categories as for 20. A single
    # category in total gives a 2x1 table, which scipy scores as statistic 0, p-value 1: nothing can differ.
    from scipy import stats  # here: scipy.stats costs ~1.5 s to import, and most commands never test
    res = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]), correction=False)
    return StatTestResult("chi-square", float(res.statistic), float(res.pvalue))


def psi(reference, current, bins: int = 10, categorical: bool | None = None) -> PSIResult:
    """Population Stability Index of `current` against `reference` (categorical auto-detected from dtype if None)."""
    _, labels, rc, cc, _, _ = _binned(reference, current, bins, categorical)
    return _psi_from_counts(labels, rc, cc)


def ks_test(reference, current) -> StatTestResult:
    """Two-sample Kolmogorov-Smirnov test on numeric samples."""
    ref, cur = _sample(reference, "reference sample"), _sample(current, "current sample")
    ref, cur = _present(ref, "reference sample"), _present(cur, "current sample")
    # The asymptotic p-value: scipy's default computes the exact one up to 10,000 rows a side, ~0.35 s per
    # feature there, and at these sizes the two agree to several digits.
    from scipy import stats
    res = stats.ks_2samp(_numeric(ref, "reference sample"), _numeric(cur, "current sample"), method="asymp")
    return StatTestResult("ks", float(res.statistic), float(res.pvalue))


def chi_square_test(reference, current) -> StatTestResult:
    """Chi-square test of homogeneity on the category counts of two samples."""
    ref, cur = _sample(reference, "reference sample"), _sample(current, "current sample")
    _, rc, cc = _category_counts(_present(ref, "reference sample"), _present(cur, "current sample"))
    return _chi_square(rc, cc)


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one feature: PSI (the flag) and a two-sample test (the supporting evidence)."""

    feature: str
    kind: str            # "numeric" or "categorical"
    psi: PSIResult
    test: StatTestResult  # KS for numeric, chi-square for categorical
    significant: bool    # the test is significant after the report's multiple-test correction
    drifted: bool        # PSI >= MODERATE, i.e. level is not "none"
    p_adjusted: float = float("nan")  # the p-value adjusted for the family (Holm/Bonferroni); raw when "none"

    def to_dict(self) -> dict:
        """JSON-safe dict."""
        return {"feature": self.feature, "kind": self.kind, "psi": self.psi.value, "level": self.psi.level,
                "drifted": self.drifted, "test": self.test.name, "statistic": self.test.statistic,
                "p_value": self.test.p_value, "p_adjusted": self.p_adjusted, "significant": self.significant,
                "bins": self.psi.to_dict()["bins"]}


def adjusted_p_values(p_values, correction: str = CORRECTION) -> np.ndarray:
    """p-values adjusted for a family of tests: significant at family-wise level alpha where adjusted < alpha.

    Holm: the k-th smallest of m becomes max over j <= k of min(1, (m - j + 1) * p_(j)) (its step-down rule as
    one number per test); Bonferroni: min(1, m * p). A NaN (a test that could not run) stays NaN and does not
    count in m.
    """
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}")
    p = np.asarray(p_values, float)
    out = np.full(p.shape, np.nan)
    present = np.flatnonzero(~np.isnan(p))
    m = len(present)
    if not m or correction == "none":
        return p.copy()
    if correction == "bonferroni":
        out[present] = np.minimum(1.0, m * p[present])
        return out
    order = present[np.argsort(p[present], kind="stable")]
    out[order] = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    return out


@dataclass(frozen=True)
class DriftReport:
    """Per-feature drift plus a summary: worst level, max PSI and share of features flagged as drifted."""

    level: str           # worst feature level
    max_psi: float
    drift_share: float   # fraction of features with drifted=True
    alpha: float
    n_reference: int
    n_current: int
    features: tuple[FeatureDrift, ...]
    correction: str = CORRECTION  # how the per-feature tests were corrected for their number
    flagged: bool = False         # any feature's test significant after the correction

    def to_dict(self) -> dict:
        """JSON-safe dict: summary plus one entry per feature."""
        summary = {k: v for k, v in vars(self).items() if k != "features"}
        return {**summary, "features": [f.to_dict() for f in self.features]}

    def to_frame(self) -> pd.DataFrame:
        """One row per feature, for display."""
        return pd.DataFrame([{k: v for k, v in f.to_dict().items() if k != "bins"} for f in self.features])


def feature_drift(reference_df: pd.DataFrame, current_df: pd.DataFrame, features=None, bins: int = 10,
                  alpha: float = ALPHA, correction: str = CORRECTION) -> DriftReport:
    """Drift of each feature (default: the claims model's FEATURES) of `current_df` against `reference_df`.

    A feature's test is `significant` when its p-value, adjusted by `correction` over all the features, is below
    `alpha` (see the module docstring)."""
    features = list(FEATURES if features is None else features)
    if not features:
        raise ValueError("no features to compare; pass at least one column name")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha!r}")
    if correction not in CORRECTIONS:
        raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, got {correction!r}")
    missing = [f for f in features if f not in reference_df.columns or f not in current_df.columns]
    if missing:
        raise ValueError(f"feature column(s) {missing} missing from a frame; pass features= to choose others")
    measured = []
    for name in features:
        try:
            kind, labels, rc, cc, r, c = _binned(reference_df[name], current_df[name], bins, None)
        except ValueError as exc:
            raise ValueError(f"feature {name!r}: {exc}") from None
        present = [label != MISSING for label in labels]
        if kind == "categorical":
            test = _chi_square(rc[present], cc[present])
        elif len(r) and len(c):
            test = ks_test(r, c)
        else:  # one side has no present value at all: nothing to test, PSI carries the signal
            test = StatTestResult("ks", float("nan"), float("nan"))
        measured.append((name, kind, _psi_from_counts(labels, rc, cc), test))
    adjusted = adjusted_p_values([t.p_value for *_, t in measured], correction)
    out = [FeatureDrift(name, kind, result, test, bool(p < alpha), result.value >= MODERATE, float(p))
           for (name, kind, result, test), p in zip(measured, adjusted)]
    return DriftReport(LEVELS[max(LEVELS.index(f.psi.level) for f in out)], max(f.psi.value for f in out),
                       sum(f.drifted for f in out) / len(out), float(alpha), len(reference_df), len(current_df),
                       tuple(out), correction, any(f.significant for f in out))
