"""(ours, sinabs') pairs of the activation objects the equivalence tests run over."""

import pytest

pytest.importorskip("sinabs", reason="sinabs 3.1.3 is the test oracle")

import sinabs.activation as sa  # noqa: E402  (after the importorskip)

import sinabs_fast.activation as fa  # noqa: E402

SPIKES = {
    "multi": (fa.MultiSpike, sa.MultiSpike),
    "single": (fa.SingleSpike, sa.SingleSpike),
    "max2": (fa.MaxSpike(2), sa.MaxSpike(2)),
}
RESETS = {
    "subtract": (fa.MembraneSubtract(), sa.MembraneSubtract()),
    "subtract0.5": (fa.MembraneSubtract(subtract_value=0.5), sa.MembraneSubtract(0.5)),
    "reset": (fa.MembraneReset(), sa.MembraneReset()),
    "reset0.1": (fa.MembraneReset(0.1), sa.MembraneReset(0.1)),
}
SURROGATES = {
    "single_exp": (fa.SingleExponential(), sa.SingleExponential()),
    "single_exp_wide": (fa.SingleExponential(1.5, 0.3), sa.SingleExponential(1.5, 0.3)),
    "periodic": (fa.PeriodicExponential(0.4, 2.0), sa.PeriodicExponential(0.4, 2.0)),
    "heaviside": (fa.Heaviside(0.5), sa.Heaviside(0.5)),
    "gaussian": (fa.Gaussian(0.1, 0.4, 1.5), sa.Gaussian(0.1, 0.4, 1.5)),
    "multi_gaussian": (fa.MultiGaussian(), sa.MultiGaussian()),
}
