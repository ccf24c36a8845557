"""The champion gate's rule, stated without AWS: a challenger may not be worse than the live model."""
import re

import pytest

from processing.champion_gate import DEFAULT_TOLERANCE, MAX_TOLERANCE, Figures, ToleranceError, decide

CHAMPION = Figures(accuracy=0.94, coverage=0.80, precision=0.99, confident=160, count=200, precision_lower_bound=0.96)
METADATA = re.compile(r"^[\w\s.:/=+\-@]{1,256}$")       # CustomerMetadataProperties' value pattern


def _challenger(**changes) -> Figures:
    base = dict(accuracy=0.94, coverage=0.80, precision=0.99, confident=160, count=200)
    return Figures(**{**base, **changes})


def test_an_equal_or_better_challenger_passes():
    assert decide(_challenger(), CHAMPION, 0.0, 0.93).passed
    assert decide(_challenger(accuracy=0.96, coverage=0.85, precision=1.0), CHAMPION, 0.0, 0.93).passed


@pytest.mark.parametrize("field, value", [("accuracy", 0.91), ("coverage", 0.77), ("precision", 0.96)])
def test_worse_on_any_figure_beyond_the_tolerance_fails(field, value):
    result = decide(_challenger(**{field: value}), CHAMPION, 0.02, 0.93)
    assert not result.passed and result.worse_on == (field,) and result.verdict == "fail"


@pytest.mark.parametrize("field, value", [("accuracy", 0.92), ("coverage", 0.78), ("precision", 0.97)])
def test_worse_within_the_tolerance_passes(field, value):
    assert decide(_challenger(**{field: value}), CHAMPION, 0.02, 0.93).passed     # exactly at the edge too


def test_the_shuffled_label_challenger_of_the_incident_is_stopped_and_the_message_names_both_figures():
    shuffled = Figures(accuracy=0.475, coverage=0.12, precision=0.5, confident=24, count=200)
    result = decide(shuffled, CHAMPION, DEFAULT_TOLERANCE, 0.93, "v3")
    assert not result.passed and result.worse_on == ("accuracy", "coverage", "precision")
    for text in ("v3", "accuracy 0.4750 vs 0.9400", "coverage 0.1200 vs 0.8000", "precision 0.5000 vs 0.9900",
                 "tolerance 0.02", "confidence 0.93"):
        assert text in result.message, text


def test_a_challenger_confident_about_nothing_is_worse_than_a_champion_that_is():
    result = decide(_challenger(coverage=0.0, precision=None, confident=0), CHAMPION, 0.1, 0.93)
    assert result.worse_on == ("coverage", "precision") and "precision none vs 0.9900" in result.message
    quiet_champion = Figures(accuracy=0.9, coverage=0.0, precision=None)
    assert decide(_challenger(coverage=0.0, precision=None), quiet_champion, 0.0, 0.93).passed


def test_the_first_model_of_a_group_passes_on_the_absolute_gate_alone():
    result = decide(_challenger(accuracy=0.31), None, 0.0, 0.93)
    assert result.passed and result.worse_on == () and "no champion" in result.message


@pytest.mark.parametrize("tolerance", [-0.01, MAX_TOLERANCE + 0.001, float("nan"), True, "0.02", None])
def test_a_tolerance_outside_its_range_is_refused(tolerance):
    with pytest.raises(ToleranceError, match=r"\[0, 0.1\]"):
        decide(_challenger(), CHAMPION, tolerance, 0.93)


def test_figures_become_valid_registry_metadata():
    text = Figures(0.9412, 0.8, None, 0, 200).metadata()
    assert text == "accuracy=0.9412 coverage=0.8000 precision=none lcb95=none n=0" and METADATA.match(text)
    assert METADATA.match(CHAMPION.metadata()) and "lcb95=0.9600 n=160" in CHAMPION.metadata()
