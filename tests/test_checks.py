import pytest

from slipway.checks import run_check


class Check:
    """A deepchecks check's run(): ``plots`` and ``values`` say whether each part succeeds."""

    def __init__(self, plots: bool, values: bool = True):
        self.plots, self.values, self.runs = plots, values, []

    def run(self, *datasets, with_display=True, **kwargs):
        self.runs.append(with_display)
        if not self.values or (with_display and not self.plots):
            raise ValueError("cannot draw a density of 1e200")
        return ("result", datasets, kwargs)


def test_a_check_is_run_once_with_its_plots():
    check = Check(plots=True)
    assert run_check(check, "train", "test", model="m") == (("result", ("train", "test"), {"model": "m"}), None)
    assert check.runs == [True]


def test_a_check_whose_plots_fail_is_scored_without_them_and_says_so():
    check = Check(plots=False)
    result, unplotted = run_check(check, "train")
    assert result == ("result", ("train",), {})
    assert unplotted == "no plots: deepchecks could not draw them (cannot draw a density of 1e200)"
    assert check.runs == [True, False]


def test_a_check_that_fails_without_its_plots_too_raises():
    with pytest.raises(ValueError, match="1e200"):
        run_check(Check(plots=False, values=False), "train")
