"""Units a case may write that convert differently by what the value means: a temperature in
degC is 273.15 K above its number, a temperature difference in degC is its number in K."""

import pytest

from app.events import step_limits
from physics_modules.mechanics.parameters import WLFShift
from physics_modules.reaction_conversions import GlassTransition


@pytest.mark.parametrize(("limit", "kelvin"), [("5 degC", 5.0), ("9 degF", 5.0), ("5 K", 5.0)])
def test_a_step_limit_on_a_temperature_is_a_change(limit, kelvin):
    """'[time.adaptive] limits' of 5 degC let a step change the temperature by 278.15 K."""
    limits = step_limits({"max_temperature_K": limit}, {"max_temperature_K": "K"})
    assert limits["max_temperature_K"] == pytest.approx(kelvin, rel=1e-12)


def test_differences_of_temperature_in_degrees_and_temperatures_beside_them():
    """WLF's C2 and Tg - T are differences; the reference and Tg's ends are temperatures."""
    shift = {"type": "wlf", "reference_temperature": "120 degC", "c1": 17.4, "c2": "51.6 degC"}
    wlf = WLFShift.model_validate(shift)
    assert wlf.c2.value == pytest.approx(51.6, rel=1e-12)
    assert wlf.reference_temperature.value == pytest.approx(393.15, rel=1e-12)
    glass = {"uncured": "0 degC", "cured": "200 degC", "ratio": 0.5, "sharpness": 0.1}
    transition = GlassTransition.model_validate({**glass, "offset": "18 degF"})
    assert transition.offset == pytest.approx(10.0, rel=1e-12)
    assert (transition.uncured, transition.cured) == pytest.approx((273.15, 473.15), rel=1e-12)
