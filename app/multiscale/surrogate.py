"""A physics-constrained surrogate of effective properties with a predictive uncertainty.

Inputs are the state descriptors of a microstructure (volume fraction, aspect ratio, ...),
scaled to [0, 1] by their admissible ranges. Each learned output of a backbone
(:mod:`app.multiscale.backbones`) gets a Gaussian process (scikit-learn: constant x Matern 5/2
with one length scale per input, plus a white-noise term; targets normalised). A prediction is
decoded through the backbone, so bounds, symmetry and positive definiteness hold for any input,
also far outside the training data, and the dilute limit is exact.

Uncertainty: each output's predictive standard deviation, calibrated by its leave-one-out
residuals (a GP whose length scales overfit claims too little; the factor is at least 1), is
pushed through the backbone by finite differences; the relative uncertainty of a state is the
combined change of the property over the property (the backbone's ``relative_error``).

The training hull is the convex hull of the inputs (and every state at volume fraction 0, where
the backbone is exact). Outside it a GP's deviation says little (its length scales were fitted
to data elsewhere: trained on fibres at 0.41-0.49, it claimed 0.18 % at 0.21 and erred by
0.72 %), so there the uncertainty is at least the extrapolation envelope: the change of the
property as each learned output sweeps the range between the GP's extrapolation and 0 (the
backbone's own law, free of the interactions the data add), widened by its deviation. The
state's own extrapolation counts, not the range of all data: far states (a crowded core) say
nothing of the interactions at small fractions. The anchored hull adds the inputs with their
volume fraction set to 0: a state in it but outside the training hull lies between the exact
dilute limit and the data, where the envelope (which vanishes with the fraction) decides
whether it needs an RVE; a state beyond the anchored hull is an extrapolation whatever it
says, refreshed once it lies farther from the data than the cluster radius (the envelope there
would be the whole interaction term, and a state creeping past the data would ask for an RVE
at every step). After every fit the directional properties are checked to grow (or fall, with
a softer inclusion) monotonically with the volume fraction; :attr:`Surrogate.warnings` says
where they do not, with the numbers.
"""

from __future__ import annotations

import warnings as python_warnings
from dataclasses import dataclass, field

import numpy as np
from scipy.linalg import cho_solve
from scipy.spatial import Delaunay, QhullError
from sklearn.exceptions import ConvergenceWarning
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import ConstantKernel, Matern, WhiteKernel
from threadpoolctl import threadpool_limits

FRACTION = "volume_fraction"
MAX_POINTS = 150  # training states a GP learns from (farthest-point subset beyond)
RVE_PRECISION = 1e-5  # relative precision of an RVE's property (discretisation, remeshing)


@dataclass
class Prediction:
    """Properties of a batch of states with their relative uncertainty and hull membership."""

    properties: np.ndarray
    uncertainty: np.ndarray
    inside: np.ndarray  # in the training hull (or at volume fraction 0)
    anchored: np.ndarray  # in the hull of the training states and their dilute limits


@dataclass
class _Output:
    """One learned output: a fitted GP, or a constant when the data do not vary."""

    constant: float = 0.0
    process: GaussianProcessRegressor | None = None
    calibration: float = 1.0

    def predict(self, scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # no states (a rank without a cell of the surrogate's regions): scikit-learn refuses
        if self.process is None or not len(scaled):
            return np.full(len(scaled), self.constant), np.zeros(len(scaled))
        mean, std = self.process.predict(scaled, return_std=True)
        return mean, std * self.calibration


@dataclass
class Surrogate:
    """Descriptors -> effective property, through a backbone.

    Args:
        backbone: A :class:`~app.multiscale.backbones.TensorBackbone` or ``ModuliBackbone``.
        names: Descriptor names; one of them must be ``volume_fraction``.
        ranges: Admissible (low, high) of each descriptor (the scaling of the inputs).
    """

    backbone: object
    names: list[str]
    ranges: np.ndarray
    inputs: np.ndarray = field(init=False)
    properties: np.ndarray = field(init=False)
    warnings: list[str] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.ranges = np.asarray(self.ranges, float).reshape(len(self.names), 2)
        self._fraction = self.names.index(FRACTION)
        self.inputs = np.zeros((0, len(self.names)))
        self.properties = np.zeros((0,))
        self._outputs: list[_Output] = []
        self._hull: Delaunay | tuple | None = None
        self._anchored_hull: Delaunay | tuple | None = None

    # Training -------------------------------------------------------------------------------
    def fit(self, inputs: np.ndarray, properties: np.ndarray) -> None:
        """Learn from computed properties at ``inputs`` (states at volume fraction 0 carry no
        information: the backbone is exact there)."""
        with threadpool_limits(1):  # beside MPI ranks, BLAS threads only oversubscribe
            self._fit(inputs, properties)

    def _fit(self, inputs: np.ndarray, properties: np.ndarray) -> None:
        self.inputs, self.properties = np.asarray(inputs, float), np.asarray(properties, float)
        fraction = self.inputs[:, self._fraction]
        informative = np.flatnonzero(fraction > 0)
        everything = self.scale(self.inputs[informative])
        self._hull = self._make_hull(everything, anchored=False)
        self._anchored_hull = self._make_hull(everything, anchored=True)
        learned = self.backbone.encode(fraction[informative], self.properties[informative])
        if len(informative) > MAX_POINTS:  # a GP costs n^3: a spread-out subset
            subset = _spread(everything, MAX_POINTS)
            informative, learned = informative[subset], learned[subset]
        scaled = self.scale(self.inputs[informative])
        scale = np.max(np.abs(learned)) if learned.size else 0.0
        noise = self._noise(fraction[informative], learned)
        self._outputs = [
            self._fit_output(scaled, column, spread, scale)
            for column, spread in zip(learned.T, noise.T, strict=True)
        ]
        self.warnings = self._monotonicity()

    def _noise(self, fraction: np.ndarray, learned: np.ndarray) -> np.ndarray:
        """How precisely each state pins each learned output down: an RVE's relative
        precision over the property's relative sensitivity to the output. At small volume
        fractions the property hardly depends on the shape parameter, so those states say
        little about it (and would otherwise be read as noise-free)."""
        noise = np.empty_like(learned)
        base = self.backbone.decode(fraction, learned)
        for column in range(learned.shape[1]):
            shifted = learned.copy()
            shifted[:, column] += 1e-4
            moved = self.backbone.decode(fraction, shifted)
            sensitivity = self.backbone.relative_error(moved, base) / 1e-4
            noise[:, column] = RVE_PRECISION / np.maximum(sensitivity, 1e-300)
        return noise

    def _fit_output(
        self, scaled: np.ndarray, values: np.ndarray, noise: np.ndarray, scale: float
    ) -> _Output:
        if np.ptp(values) <= 1e-9 * max(scale, 1e-300) or len(values) < 2:
            return _Output(constant=float(np.mean(values)) if len(values) else 0.0)
        kernel = ConstantKernel(1.0, (1e-3, 1e3)) * Matern(
            np.full(scaled.shape[1], 0.3), (1e-2, 1e2), nu=2.5
        ) + WhiteKernel(1e-6, (1e-12, 1e-2))
        spread = np.std(values) or 1.0  # normalize_y divides the targets by it
        process = GaussianProcessRegressor(
            kernel,
            alpha=np.minimum(noise / spread, 1e3) ** 2,
            normalize_y=True,
            n_restarts_optimizer=3,
            random_state=0,
        )
        with python_warnings.catch_warnings():
            python_warnings.simplefilter("ignore", ConvergenceWarning)
            process.fit(scaled, values)
        return _Output(process=process, calibration=_loo_calibration(process))

    # Prediction -----------------------------------------------------------------------------
    def scale(self, inputs: np.ndarray) -> np.ndarray:
        low, high = self.ranges[:, 0], self.ranges[:, 1]
        return (np.asarray(inputs, float) - low) / np.where(high > low, high - low, 1.0)

    def predict(self, inputs: np.ndarray) -> Prediction:
        """Properties, relative uncertainty and hull membership of states (n, descriptors);
        one BLAS thread, so a state gets the same bits on any number of ranks."""
        with threadpool_limits(1):
            return self._predict(inputs)

    def _predict(self, inputs: np.ndarray) -> Prediction:
        inputs = np.atleast_2d(np.asarray(inputs, float))
        fraction = inputs[:, self._fraction]
        scaled = self.scale(inputs)
        if not self._outputs:  # nothing learned yet: the dilute backbone, unsure off f = 0
            learned = np.zeros((len(inputs), self.backbone.outputs))
            properties = self.backbone.decode(fraction, learned)
            unsure = np.where(fraction > 0, np.inf, 0.0)
            return Prediction(properties, unsure, fraction == 0, fraction == 0)
        means, stds = zip(*(output.predict(scaled) for output in self._outputs), strict=True)
        learned, sigma = np.column_stack(means), np.column_stack(stds)
        properties = self.backbone.decode(fraction, learned)
        squares = np.zeros(len(inputs))
        for column in range(learned.shape[1]):
            if not sigma[:, column].any():
                continue
            shifted = learned.copy()
            shifted[:, column] += sigma[:, column]
            moved = self.backbone.decode(fraction, shifted)
            squares += self.backbone.relative_error(moved, properties) ** 2
        uncertainty = np.sqrt(squares)
        inside, anchored = self.inside(inputs), self.inside(inputs, anchored=True)
        # between the dilute limit and the data; beyond the data the distance decides (Served)
        between = anchored & ~inside
        if between.any():
            envelope = self._extrapolation(
                fraction[between], learned[between], sigma[between], properties[between]
            )
            uncertainty[between] = np.maximum(uncertainty[between], envelope)
        return Prediction(properties, uncertainty, inside, anchored)

    def _extrapolation(
        self, fraction: np.ndarray, learned: np.ndarray, sigma: np.ndarray, properties: np.ndarray
    ) -> np.ndarray:
        """The relative uncertainty of the envelope (see the module): per learned output, the
        larger change as it moves to either end of its range, widened by the output's own
        deviation (the GP's value is known that well, not exactly: in the square array the
        truth sits at 0, on the envelope's end, to within an RVE's precision); outputs
        combined in quadrature."""
        squares = np.zeros(len(fraction))
        for column in range(learned.shape[1]):
            change = np.zeros(len(fraction))
            low = np.minimum(learned[:, column], 0) - sigma[:, column]
            high = np.maximum(learned[:, column], 0) + sigma[:, column]
            for end in (low, high):
                moved = learned.copy()
                moved[:, column] = end
                decoded = self.backbone.decode(fraction, moved)
                change = np.maximum(change, self.backbone.relative_error(decoded, properties))
            squares += change**2
        return np.sqrt(squares)

    def inside(self, inputs: np.ndarray, anchored: bool = False) -> np.ndarray:
        """Whether states lie in the training hull (volume fraction 0 always does), or with
        ``anchored`` in the hull of the training states and their dilute limits."""
        scaled = self.scale(np.atleast_2d(inputs))
        at_zero = scaled[:, self._fraction] <= 0
        hull = self._anchored_hull if anchored else self._hull
        if hull is None:
            return at_zero
        if isinstance(hull, tuple):  # a box: the hull was flat or one-dimensional
            low, high = hull
            tolerance = 1e-9
            return at_zero | np.all((scaled >= low - tolerance) & (scaled <= high + tolerance), 1)
        return at_zero | (hull.find_simplex(scaled, tol=1e-9) >= 0)

    def _make_hull(self, scaled: np.ndarray, anchored: bool) -> Delaunay | tuple | None:
        if not len(scaled):
            return None
        points = scaled
        if anchored:
            dilute = scaled.copy()
            zero = self.scale(np.zeros((1, len(self.names))))[0, self._fraction]
            dilute[:, self._fraction] = zero
            points = np.vstack([scaled, dilute])
        points = np.unique(points, axis=0)
        if scaled.shape[1] > 1 and len(points) > scaled.shape[1]:
            try:
                return Delaunay(points)
            except QhullError:  # flat: the other descriptors took one value so far
                pass
        return points.min(axis=0), points.max(axis=0)

    # Checks ---------------------------------------------------------------------------------
    def _monotonicity(self) -> list[str]:
        """Where a directional property is not monotone in the volume fraction, swept from 0 to
        the largest trained fraction at each trained combination of the other descriptors."""
        column = self._fraction
        informative = self.inputs[self.inputs[:, column] > 0]
        if not len(informative):
            return []
        grid = np.linspace(0.0, informative[:, column].max(), 81)
        others = [i for i in range(len(self.names)) if i != column]
        problems = []
        for state in np.unique(informative[:, others], axis=0)[:20]:
            inputs = np.empty((len(grid), len(self.names)))
            inputs[:, others], inputs[:, column] = state, grid
            properties = self.predict(inputs).properties
            trends = self.backbone.trends()
            where = ", ".join(
                f"{self.names[i]} = {v:.4g}" for i, v in zip(others, state, strict=True)
            )
            for name, values in self.backbone.components(properties).items():
                problem = _trend_problem(name, grid, values, trends[name], where)
                if problem:
                    problems.append(problem)
        return problems

    def relative_error(self, predicted: np.ndarray, reference: np.ndarray) -> np.ndarray:
        return self.backbone.relative_error(predicted, reference)


def _trend_problem(name, grid, values, trend, where) -> str | None:
    steps = np.diff(values) * trend
    slack = 1e-9 * np.max(np.abs(values))
    wrong = np.flatnonzero(steps < -slack)
    if not len(wrong):
        return None
    i = int(wrong[np.argmin(steps[wrong])])
    direction = "increase" if trend > 0 else "decrease"
    return (
        f"{name} is not monotone in the volume fraction: {values[i]:.6g} at {grid[i]:.4g}, "
        f"{values[i + 1]:.6g} at {grid[i + 1]:.4g} (expected to {direction}"
        f"{'; at ' + where if where else ''})"
    )


def _spread(points: np.ndarray, count: int) -> np.ndarray:
    """Indices of ``count`` points that cover ``points`` (greedy farthest-point sampling from
    the first, deterministic)."""
    chosen = [0]
    distance = np.linalg.norm(points - points[0], axis=1)
    for _ in range(count - 1):
        chosen.append(int(np.argmax(distance)))
        distance = np.minimum(distance, np.linalg.norm(points - points[chosen[-1]], axis=1))
    return np.array(sorted(chosen))


def _loo_calibration(process: GaussianProcessRegressor) -> float:
    """Root-mean-square of the leave-one-out residuals over their predicted deviations (at
    least 1): Rasmussen & Williams eq. 5.12 from the fitted Cholesky factor."""
    inverse = cho_solve((process.L_, True), np.eye(len(process.L_)))
    diagonal = np.diag(inverse)
    residuals = process.alpha_.ravel() / diagonal
    deviations = np.sqrt(1 / diagonal)
    return float(max(1.0, np.sqrt(np.mean((residuals / deviations) ** 2))))
