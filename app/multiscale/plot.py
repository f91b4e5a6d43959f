"""A PNG of a surrogate against its training points, written into the run folder.

One panel per directional property (conductivity along each cell axis, or bulk and shear
moduli) against the volume fraction, the other descriptors at the median of the training
states: the prediction with its 2-sigma band, the RVE results, the Voigt and Reuss bounds and
the dilute (Mori-Tanaka / Maxwell-Garnett) law the backbone starts from.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from app.multiscale.served import ServedSurrogate


def plot_surrogate(served: ServedSurrogate, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backbone, fraction = served.backbone, served.fraction
    units = "Pa" if served.spec.property == "elasticity" else served.spec.units() or "SI"
    states, values = served.training()
    middle = np.median(states, axis=0) if len(states) else served.ranges.mean(axis=1)
    top = max(served.ranges[fraction, 1], states[:, fraction].max() if len(states) else 0)
    grid = np.repeat(middle[None, :], 200, axis=0)
    grid[:, fraction] = np.linspace(0, top, 200)
    f = grid[:, fraction]
    dilute = backbone.decode(f, np.zeros((len(f), backbone.outputs)))
    panels = backbone.components(dilute)
    low, high = (
        b if b.ndim == 2 else np.repeat(b[:, None], len(panels), 1) for b in backbone.bounds(f)
    )
    figure, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 4), squeeze=False)
    predicted = served.surrogate.predict(grid) if served.spec.mode == "surrogate" else None
    for column, (axis, name) in enumerate(zip(axes[0], panels, strict=True)):
        axis.plot(f, high[:, column], "k--", lw=0.8)
        axis.plot(f, low[:, column], "k--", lw=0.8)
        axis.plot(f, panels[name], ":", color="grey", label="dilute law (backbone)")
        if predicted is not None:
            mean = backbone.components(predicted.properties)[name]
            band = 2 * predicted.uncertainty * np.abs(mean)
            axis.plot(f, mean, color="C0", label="surrogate")
            axis.fill_between(f, mean - band, mean + band, color="C0", alpha=0.25, label="2 sigma")
        if len(states):
            axis.plot(
                states[:, fraction],
                backbone.components(values)[name],
                "o",
                color="C3",
                label=f"RVE solves ({len(states)})",
            )
        axis.set_xlabel("volume fraction")
        axis.set_title(f"{name} ({units})")
        axis.legend(fontsize=8)
    figure.suptitle(f"{served.where} ({served.spec.property}); dashed: Voigt and Reuss bounds")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
