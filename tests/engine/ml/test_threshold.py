"""The decision threshold: the cost-minimising cut on a hand-made case, the Bayes threshold on a calibrated one."""
from __future__ import annotations

import json

import numpy as np
import pytest

from engine.ml.threshold import Costs, choose_threshold

# Seven validation claims, scores ascending, labels 1 = Approved.
P = np.array([0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.9])
Y = np.array([0, 1, 0, 1, 0, 1, 1])
# Worked by hand, (false denials, false approvals) when the lowest approved score is:
#   0.1 (all): (0, 3)   0.2: (0, 2)   0.3: (1, 2)   0.4: (1, 1)   0.6: (2, 1)   0.7: (2, 0)   0.9: (3, 0)   none: (4, 0)


@pytest.mark.parametrize("false_denial, false_approval, threshold, cost", [
    (2, 1, 0.15, 2 / 7),    # 2*0 + 1*2 at "0.2"; the next best is 3/7
    (1, 3, 0.65, 2 / 7),    # false approvals dearer: 1*2 + 3*0 at "0.7"
    (1, 1, 0.15, 2 / 7),    # a three-way tie (0.2, 0.4 and 0.7 all cost 2): the lowest threshold wins
])
def test_the_cheapest_cut_by_hand(false_denial, false_approval, threshold, cost):
    choice = choose_threshold(Y, P, Costs(false_denial, false_approval))
    assert choice.threshold == pytest.approx(threshold)
    assert choice.cost_per_claim == pytest.approx(cost)
    assert choice.validation_rows == 7
    approve = P >= choice.threshold
    fd, fa = np.sum((Y == 1) & ~approve), np.sum((Y == 0) & approve)
    assert choice.cost_per_claim == pytest.approx((false_denial * fd + false_approval * fa) / 7)


def test_cost_at_half_is_reported_for_comparison():
    choice = choose_threshold(Y, P, Costs(2, 1))
    # At 0.5: 0.6, 0.7, 0.9 approved -> false denials 0.2 and 0.4, false approval 0.6.
    assert choice.cost_per_claim_at_half == pytest.approx((2 * 2 + 1 * 1) / 7)
    assert Costs(2, 1).per_claim(Y, P >= 0.5) == pytest.approx(5 / 7)


def test_all_approved_and_all_denied_edges():
    assert choose_threshold(np.ones(4), np.array([0.2, 0.4, 0.4, 0.9]), Costs(2, 1)).threshold == 0.0
    deny_all = choose_threshold(np.zeros(3), np.array([0.2, 0.5, 0.8]), Costs(2, 1)).threshold
    assert deny_all == pytest.approx(0.9) and deny_all > 0.8
    assert choose_threshold(np.zeros(2), np.array([0.3, 1.0]), Costs(2, 1)).threshold > 1.0


def test_calibrated_scores_land_on_the_bayes_threshold():
    """With P(Approved) the true probability, approving pays iff p * false_denial > (1 - p) * false_approval."""
    rng = np.random.default_rng(0)
    p = rng.random(200_000)
    y = rng.random(len(p)) < p
    for fd, fa in ((2, 1), (3, 1), (1, 1)):
        assert choose_threshold(y, p, Costs(fd, fa)).threshold == pytest.approx(fa / (fa + fd), abs=0.02)


def test_choice_serialises_with_its_rule_and_costs():
    out = choose_threshold(Y, P, Costs(2.0, 1.0)).to_dict()
    assert json.loads(json.dumps(out)) == out
    assert out["costs"] == {"false_denial": 2.0, "false_approval": 1.0}
    assert "2 per false denial, 1 per false approval" in out["rule"]


@pytest.mark.parametrize("costs", [(0, 1), (1, -2), ("2", 1), (None, 1)])
def test_costs_must_be_positive_numbers(costs):
    with pytest.raises(ValueError, match="must be a positive number"):
        Costs(*costs)


@pytest.mark.parametrize("y, p", [([], []), ([1, 0], [0.5])])
def test_threshold_search_refuses_mismatched_or_empty_input(y, p):
    with pytest.raises(ValueError, match="same non-zero length"):
        choose_threshold(np.array(y), np.array(p), Costs(2, 1))
