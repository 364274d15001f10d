"""Progress schedules: ranges, monotonicity, the constant ablation."""

import numpy as np
import pytest

from dagcl_scverse.model import schedules

T = np.linspace(0, 1, 101)


@pytest.mark.parametrize("kind", [k for k in schedules.SCHEDULES if k != "constant"])
def test_gamma_rises_from_zero_to_one(kind):
    values = np.array([schedules.gamma(t, kind) for t in T])
    assert values[0] == pytest.approx(0) and values[-1] == pytest.approx(1)
    assert np.all(np.diff(values) >= 0) and np.all((0 <= values) & (values <= 1))


def test_gamma_shapes_differ_as_named():
    mid = {k: schedules.gamma(0.5, k) for k in schedules.SCHEDULES}
    assert mid["convex"] < mid["linear"] < mid["concave"]
    assert mid["composite"] == pytest.approx(0.5)
    assert schedules.gamma(0.2, "composite") < schedules.gamma(0.2, "linear")
    assert all(schedules.gamma(t, "constant") == 1 for t in T)


def test_unknown_schedule_lists_valid_names():
    with pytest.raises(ValueError, match="convex"):
        schedules.gamma(0.5, "cubic")


@pytest.mark.parametrize("fn", [schedules.capacity, schedules.aggregation, schedules.curriculum_share])
def test_ramps_are_monotone_in_unit_interval(fn):
    values = np.array([fn(t) for t in T])
    assert np.all(np.diff(values) >= 0) and np.all((0 <= values) & (values <= 1))
    assert values[-1] > values[0]


def test_capacity_ramps_from_start_to_one_within_warmup():
    assert schedules.capacity(0.0, start=0.25, warmup=0.3) == pytest.approx(0.25)
    assert schedules.capacity(0.3, start=0.25, warmup=0.3) == pytest.approx(1.0)
    assert schedules.capacity(0.9) == 1.0
    assert schedules.curriculum_share(1.0) == 1.0
    assert schedules.sharpening(1.0) > schedules.sharpening(0.0)
