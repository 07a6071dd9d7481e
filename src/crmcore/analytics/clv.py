"""Customer lifetime value: the BG/NBD purchase model and the Gamma-Gamma spend model.

BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way") says how many purchases a
customer will make and whether they are still "alive"; Gamma-Gamma (Fader, Hardie & Lee 2005, "RFM and
CLV") says how much each purchase is worth. Both are fitted by maximum likelihood on per-customer
summaries: ``frequency`` (repeat purchases), ``recency`` (age at the last purchase), ``age`` (age at
the end of the observation, T in the papers) and, for spend, ``monetary_value`` (mean value of the
repeat purchases).

``fit()`` returns a frozen result (`BetaGeoFit`, `GammaGammaFit`) with the parameters, their standard
errors and the fit's diagnostics; predictions are methods of that result, so predicting before
fitting cannot be written. Needs the ``analytics`` extra (numpy and scipy), imported on first use.

While its optimizer runs, a fit sets the OpenBLAS that scipy uses to one thread, process-wide, and
restores the previous count afterwards (see `_one_blas_thread`): scipy's L-BFGS-B solves tiny
triangular systems that OpenBLAS would otherwise split across threads, which made a 6 ms fit take
0.25 s on a busy machine. BLAS calls of other threads during the fit run on one thread too.
"""

from __future__ import annotations

import contextlib
import ctypes
import enum
import functools
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, overload

import attrs

from crmcore.analytics._extras import require
from crmcore.analytics.summaries import CustomerSummaries
from crmcore.errors import CrmError, FieldError, ValidationError
from crmcore.money import Money

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import ArrayLike, NDArray

    FloatArray = NDArray[np.float64]

__all__ = [
    "BetaGeoFit",
    "BetaGeoModel",
    "FitError",
    "GammaGammaFit",
    "GammaGammaModel",
    "ParameterEstimate",
    "TimeUnit",
]

# Log-parameters are kept within this distance of their start: a parameter that runs to the edge has
# no finite maximum-likelihood estimate on this data, which we report instead of returning it.
_LOG_BOUND = 18.0


class FitError(CrmError):
    """A model could not be fitted: the optimizer did not converge or the data cannot identify it."""


class TimeUnit(enum.Enum):
    """The time unit of ``recency`` and ``age``; sets how many of them make the month CLV discounts by.

    The factors are the ones the `lifetimes` package uses (a month is 4.345 weeks, 30 days, 720 hours),
    so lifetime values agree with it.
    """

    HOURS = "hours"
    DAYS = "days"
    WEEKS = "weeks"
    MONTHS = "months"

    @property
    def per_month(self) -> float:
        """How many units make one month."""
        return {"hours": 720.0, "days": 30.0, "weeks": 4.345, "months": 1.0}[self.value]


@attrs.frozen(kw_only=True)
class ParameterEstimate:
    """One fitted parameter with its standard error and a Wald 95 % interval."""

    name: str
    value: float
    standard_error: float

    @property
    def lower_95(self) -> float:
        """Lower end of the 95 % interval (value - 1.96 standard errors)."""
        return self.value - 1.959963984540054 * self.standard_error

    @property
    def upper_95(self) -> float:
        """Upper end of the 95 % interval (value + 1.96 standard errors)."""
        return self.value + 1.959963984540054 * self.standard_error


def _numpy() -> Any:
    """numpy, or a CrmError naming the extra to install (scipy checked too, before any work)."""
    require("scipy", "analytics")
    return require("numpy", "analytics")


# --------------------------------------------------------------------------------------------------
# input handling


def _as_array(values: ArrayLike, name: str) -> FloatArray:
    """``values`` as a 1-d float array, or a ValidationError naming the argument."""
    np = _numpy()
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(name, f"must be numbers ({exc})") from exc
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ValidationError(name, f"must be one-dimensional, got shape {array.shape}")
    return array  # type: ignore[no-any-return]


def _first_bad(mask: FloatArray, name: str, reason: Callable[[int], str]) -> FieldError | None:
    """A FieldError for the first row where ``mask`` is true, saying how many rows share the problem."""
    np = _numpy()
    bad = np.flatnonzero(mask)
    if bad.size == 0:
        return None
    first = int(bad[0])
    others = bad.size - 1
    more = f" ({others} more {'row' if others == 1 else 'rows'} like it)" if others else ""
    return FieldError(f"{name}[{first}]", reason(first) + more)


def _raise_all(problems: Iterable[FieldError | None]) -> None:
    found = [p for p in problems if p is not None]
    if found:
        raise ValidationError.from_errors(found)


def _check_rfm(
    frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validated (x, t_x, T) arrays; every kind of bad row is reported at once."""
    np = _numpy()
    x, t_x, age = _as_array(frequency, "frequency"), _as_array(recency, "recency"), _as_array(age, "age")
    if not (x.size == t_x.size == age.size):
        raise ValidationError(
            "frequency", f"frequency, recency and age differ in length ({x.size}, {t_x.size}, {age.size})"
        )
    if x.size == 0:
        raise ValidationError("frequency", "no customers given")
    finite_x, finite_t, finite_age = np.isfinite(x), np.isfinite(t_x), np.isfinite(age)
    good_x = finite_x & (x >= 0) & (x == np.floor(x))
    good_age = finite_age & (age > 0)
    # Rounding in upstream summaries may put recency a hair above T; more than that is inconsistent.
    slack = 1e-9 * np.maximum(1.0, np.abs(age))
    with np.errstate(invalid="ignore"):
        _raise_all(
            [
                _first_bad(~finite_x, "frequency", lambda i: f"{x[i]} is not a finite number"),
                _first_bad(~finite_t, "recency", lambda i: f"{t_x[i]} is not a finite number"),
                _first_bad(~finite_age, "age", lambda i: f"{age[i]} is not a finite number"),
                _first_bad(
                    finite_x & ~good_x,
                    "frequency",
                    lambda i: f"{x[i]} is not a whole number of repeat purchases >= 0",
                ),
                _first_bad(finite_t & (t_x < 0), "recency", lambda i: f"{t_x[i]} is negative"),
                _first_bad(finite_age & (age <= 0), "age", lambda i: f"{age[i]} must be greater than 0"),
                _first_bad(
                    finite_t & good_age & (t_x > age + slack),
                    "recency",
                    lambda i: f"{t_x[i]} is later than the end of observation (age {age[i]})",
                ),
                _first_bad(
                    good_x & finite_t & (x == 0) & (t_x > 0),
                    "recency",
                    lambda i: f"{t_x[i]} given for a customer with no repeat purchase (must be 0)",
                ),
            ]
        )
    return x, np.minimum(t_x, age), age


def _check_spend(frequency: ArrayLike, monetary_value: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Validated (x, m) arrays."""
    np = _numpy()
    x, m = _as_array(frequency, "frequency"), _as_array(monetary_value, "monetary_value")
    if x.size != m.size:
        raise ValidationError(
            "monetary_value", f"frequency and monetary_value differ in length ({x.size}, {m.size})"
        )
    with np.errstate(invalid="ignore"):
        _raise_all(
            [
                _first_bad(~np.isfinite(x), "frequency", lambda i: f"{x[i]} is not a finite number"),
                _first_bad(~np.isfinite(m), "monetary_value", lambda i: f"{m[i]} is not a finite number"),
                _first_bad(
                    np.isfinite(x) & ((x < 0) | (x != np.floor(x))),
                    "frequency",
                    lambda i: f"{x[i]} is not a whole number of repeat purchases >= 0",
                ),
                _first_bad(np.isfinite(m) & (m < 0), "monetary_value", lambda i: f"{m[i]} is negative"),
            ]
        )
    return x, m


def _summary_columns(summaries: Iterable[Any], names: Sequence[tuple[str, ...]]) -> list[list[float]]:
    """Columns read from records by attribute; each entry of ``names`` lists accepted spellings.

    `CustomerSummaries` already holds columns: they are read as they are, without building one
    object per customer.
    """
    if isinstance(summaries, CustomerSummaries):
        read: dict[str, Callable[[CustomerSummaries], list[float]]] = {
            "frequency": lambda s: list(map(float, s.frequency)),
            "recency": lambda s: list(s.recency),
            "T": lambda s: list(s.age),
            "monetary_value": lambda s: s.amounts("monetary_value"),
        }
        return [read[spellings[0]](summaries) for spellings in names]
    columns: list[list[float]] = [[] for _ in names]
    for index, record in enumerate(summaries):
        for column, spellings in zip(columns, names, strict=True):
            for spelling in spellings:
                if hasattr(record, spelling):
                    value = getattr(record, spelling)
                    column.append(float(value.amount if isinstance(value, Money) else value))
                    break
            else:
                raise ValidationError(f"summaries[{index}]", f"has no attribute {spellings[0]!r}")
    return columns


_MAX_Q = 1e4
"""Past this q the customers' mean spends are all but equal: the Gamma-Gamma mixing is not identified."""


def _no_heterogeneity(theta: FloatArray) -> str | None:
    """Why a Gamma-Gamma fit at (p, q, gamma) = ``theta`` is not supported, if q ran off to infinity."""
    p, q, gamma = (float(t) for t in theta)
    if q <= _MAX_Q:
        return None
    return (
        f"spend hardly varies between customers beyond purchase-to-purchase noise: q and gamma "
        f"grow without bound together (q = {q:.3g}), so only the mean value per purchase "
        f"(about {p * gamma / (q - 1):.4g}) is supported; value customers at that mean"
    )


def _estimates_frame(estimates: Iterable[ParameterEstimate]) -> Any:
    """Parameter estimates as a DataFrame indexed by ``name`` (both fits' `to_dataframe`)."""
    rows = [
        {
            "name": e.name,
            "value": e.value,
            "standard_error": e.standard_error,
            "lower_95": e.lower_95,
            "upper_95": e.upper_95,
        }
        for e in estimates
    ]
    return require("pandas", "pandas").DataFrame(rows).set_index("name")


# --------------------------------------------------------------------------------------------------
# optimisation shared by both models

# (get, set) thread-count functions of OpenBLAS: scipy's wheels (prefixed), ILP64 builds, plain builds.
_OPENBLAS_THREAD_FUNCTIONS = (
    ("scipy_openblas_get_num_threads", "scipy_openblas_set_num_threads"),
    ("scipy_openblas_get_num_threads64_", "scipy_openblas_set_num_threads64_"),
    ("openblas_get_num_threads", "openblas_set_num_threads"),
)


@functools.cache
def _scipy_blas_threads() -> tuple[Callable[[], int], Callable[[int], None]] | None:
    """Getter and setter of the thread count of the OpenBLAS scipy calls; None if not found.

    Looked up through scipy's BLAS extension, whose symbol lookup reaches the library it links
    (checked on Linux); another BLAS, or a platform where that lookup fails, gets None (no limit).
    """
    try:
        from scipy.linalg import cython_blas

        library = ctypes.CDLL(cython_blas.__file__)
    except (ImportError, OSError):
        return None
    for get_name, set_name in _OPENBLAS_THREAD_FUNCTIONS:
        get, set_ = getattr(library, get_name, None), getattr(library, set_name, None)
        if get is not None and set_ is not None:
            get.argtypes, get.restype = [], ctypes.c_int
            set_.argtypes, set_.restype = [ctypes.c_int], None
            return get, set_
    return None


class _BlasLimit:
    """How many fits are inside `_one_blas_thread`, and the thread count to restore after the last."""

    lock = threading.Lock()
    users = 0
    saved = 1


@contextlib.contextmanager
def _one_blas_thread() -> Iterator[None]:
    """Run the block with scipy's OpenBLAS on one thread, restoring the previous count afterwards.

    Why: scipy's L-BFGS-B calls LAPACK ``dtrtrs`` on its few-by-few matrices every iteration, and
    OpenBLAS runs that in parallel at any size. Its worker thread then spins while the objective
    runs, and each call waits for that worker to be scheduled: on a loaded machine a call takes
    about 1 ms instead of 1 us. The setting is process-wide (OpenBLAS has no per-thread one), so
    concurrent fits share it: the first one in saves and lowers it, the last one out restores it.
    """
    control = _scipy_blas_threads()
    if control is None:
        yield
        return
    get, set_ = control
    with _BlasLimit.lock:
        if _BlasLimit.users == 0:
            _BlasLimit.saved = get()
            if _BlasLimit.saved != 1:
                set_(1)
        _BlasLimit.users += 1
    try:
        yield
    finally:
        with _BlasLimit.lock:
            _BlasLimit.users -= 1
            if _BlasLimit.users == 0 and _BlasLimit.saved != 1:
                set_(_BlasLimit.saved)


@attrs.frozen(kw_only=True)
class _Optimum:
    params: tuple[float, ...]
    standard_errors: tuple[float, ...]
    log_likelihood: float
    iterations: int
    gradient_norm: float


def _maximize(
    loglik: Callable[[FloatArray], tuple[float, FloatArray]],
    start: FloatArray,
    names: Sequence[str],
    max_iterations: int,
    tolerance: float,
    scale: float,
    unsupported: Callable[[FloatArray], str | None] | None = None,
) -> _Optimum:
    """Maximise ``loglik`` (value and gradient in the original parameters) over positive parameters.

    ``unsupported`` looks at where the optimizer stopped and names a known way the data fails the
    model (checked first: a fit drifting off that way often also stops short of converging, and
    the specific reason is the useful one).

    The optimizer works on log-parameters (no positivity constraint, and the scale of alpha or gamma
    does not matter); the objective is the mean log-likelihood per customer, so its size does not
    grow with the number of customers. Standard errors come from the inverse of the negative
    Hessian in the original parameters, by central differences of the analytic gradient. The
    optimizer runs with scipy's OpenBLAS on one thread (`_one_blas_thread`).
    """
    np = _numpy()
    from scipy.optimize import minimize

    log_start = np.log(start)

    def objective(phi: FloatArray) -> tuple[float, FloatArray]:
        theta = np.exp(phi)
        value, grad = loglik(theta)
        if not np.isfinite(value):
            return math.inf, np.zeros_like(phi)
        return -value / scale, -(grad * theta) / scale

    with _one_blas_thread():
        result = minimize(
            objective,
            log_start,
            jac=True,
            method="L-BFGS-B",
            bounds=[(s - _LOG_BOUND, s + _LOG_BOUND) for s in log_start],
            options={"maxiter": max_iterations, "ftol": 1e-15, "gtol": tolerance},
        )
    phi = np.asarray(result.x, dtype=np.float64)
    theta = np.exp(phi)
    reason = None if unsupported is None else unsupported(theta)
    if reason is not None:
        raise FitError(reason)
    value, grad = loglik(theta)
    gradient_norm = float(np.max(np.abs(grad * theta)) / scale)
    if not np.isfinite(value):
        raise FitError(f"the log-likelihood is not finite at the estimate ({result.message})")
    at_edge = [n for n, p, s in zip(names, phi, log_start, strict=True) if abs(p - s) > _LOG_BOUND - 1e-6]
    if at_edge:
        raise FitError(
            f"no finite estimate for {', '.join(at_edge)}: the likelihood keeps rising as "
            f"{'it runs' if len(at_edge) == 1 else 'they run'} to 0 or infinity, so the data cannot "
            "support this model (too few customers, or too little variation)"
        )
    hessian = np.empty((theta.size, theta.size))
    for j in range(theta.size):
        step = 1e-5 * theta[j]
        up, down = theta.copy(), theta.copy()
        up[j] += step
        down[j] -= step
        hessian[:, j] = (loglik(up)[1] - loglik(down)[1]) / (2 * step)
    hessian = (hessian + hessian.T) / 2
    try:
        covariance = np.linalg.inv(-hessian)
    except np.linalg.LinAlgError as exc:
        raise FitError("the information matrix is singular: the data cannot identify the model") from exc
    variances = np.diag(covariance)
    if not np.all(np.isfinite(variances)) or np.any(variances <= 0):
        raise FitError("the estimate is not a maximum of the likelihood (information matrix not positive)")
    # The line search may stop a hair short of the optimum (scipy's ABNORMAL_TERMINATION_IN_LNSRCH
    # when float precision runs out). What matters is how much log-likelihood is left to gain: the
    # Newton decrement g' H^-1 g / 2, in log-likelihood units, tiny next to the standard errors.
    remaining = float(grad @ covariance @ grad) / 2
    if gradient_norm > max(tolerance, 1e-5) and not remaining < 1e-6:
        raise FitError(
            f"the fit did not converge after {result.nit} iterations ({result.message}); "
            f"largest gradient {gradient_norm:.3g}, {remaining:.3g} of log-likelihood left to gain"
        )
    return _Optimum(
        params=tuple(float(t) for t in theta),
        standard_errors=tuple(float(s) for s in np.sqrt(variances)),
        log_likelihood=float(value),
        iterations=int(result.nit),
        gradient_norm=gradient_norm,
    )


def _distinct_rows(*columns: FloatArray) -> tuple[tuple[FloatArray, ...], FloatArray]:
    """The distinct rows of ``columns`` and how often each occurs.

    Customers with the same summary add the same term to the likelihood, so the fit runs over the
    distinct summaries weighted by their counts: at millions of customers it stays as fast as the
    number of distinct (frequency, recency, T) triples allows.
    """
    np = _numpy()
    # lexsort + run boundaries: np.unique(axis=0) sorts a structured view and is ten times slower
    order = np.lexsort(columns[::-1])
    ordered = [c[order] for c in columns]
    same_as_previous = np.ones(order.size - 1, dtype=bool)
    for c in ordered:
        same_as_previous &= c[1:] == c[:-1]
    first = np.flatnonzero(np.concatenate([[True], ~same_as_previous]))
    counts = np.diff(np.append(first, order.size)).astype(np.float64)
    return tuple(c[first] for c in ordered), counts


# --------------------------------------------------------------------------------------------------
# BG/NBD


def _bgnbd_terms(
    theta: FloatArray, x: FloatArray, t_x: FloatArray, age: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Per-row pieces of the BG/NBD log-likelihood: the common part and the two mixture parts."""
    np = _numpy()
    from scipy.special import betaln, gammaln

    r, alpha, a, b = theta
    repeat = x > 0
    common = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    base = betaln(a, b)
    # "alive at T": no purchase after t_x and the customer has not dropped out
    alive = betaln(a, b + x) - base - (r + x) * np.log(alpha + age)
    # "dropped out right after t_x", possible only after a repeat purchase; x is clamped so that
    # b + x - 1 stays positive where the term is masked out anyway
    x1 = np.where(repeat, x, 1.0)
    dropped = np.where(repeat, betaln(a + 1, b + x1 - 1) - base - (r + x) * np.log(alpha + t_x), -np.inf)
    return common, alive, dropped, x1


def _bgnbd_loglik(
    theta: FloatArray, x: FloatArray, t_x: FloatArray, age: FloatArray, weight: FloatArray
) -> tuple[float, FloatArray]:
    """Total BG/NBD log-likelihood and its analytic gradient in (r, alpha, a, b)."""
    np = _numpy()
    from scipy.special import digamma

    r, alpha, a, b = theta
    common, alive, dropped, x1 = _bgnbd_terms(theta, x, t_x, age)
    mixed = np.logaddexp(alive, dropped)
    total = float(np.sum(weight * (common + mixed)))
    w_alive = np.exp(alive - mixed)
    w_dropped = np.exp(dropped - mixed)  # 0 where x == 0

    psi_ab, psi_abx = digamma(a + b), digamma(a + b + x)
    d_r = digamma(r + x) - digamma(r) + np.log(alpha)
    d_r = d_r - w_alive * np.log(alpha + age) - w_dropped * np.log(alpha + t_x)
    d_alpha = r / alpha - (r + x) * (w_alive / (alpha + age) + w_dropped / (alpha + t_x))
    d_a = w_alive * (psi_ab - psi_abx) + w_dropped * (digamma(a + 1) - digamma(a) + psi_ab - psi_abx)
    d_b = w_alive * (digamma(b + x) - digamma(b) + psi_ab - psi_abx) + w_dropped * (
        digamma(b + x1 - 1) - digamma(b) + psi_ab - psi_abx
    )
    grad = np.array([np.sum(weight * d) for d in (d_r, d_alpha, d_a, d_b)])
    return total, grad


@attrs.frozen(kw_only=True)
class BetaGeoModel:
    """The BG/NBD model's fitting options; `fit` returns the fitted `BetaGeoFit`.

    Args:
        max_iterations: optimizer iterations before the fit is reported as not converged.
        tolerance: largest gradient of the mean log-likelihood (per log-parameter) accepted.
    """

    max_iterations: int = 1000
    tolerance: float = 1e-8

    def fit(self, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike) -> BetaGeoFit:
        """Fit BG/NBD by maximum likelihood to one row per customer.

        Args:
            frequency: repeat purchases (purchases after the first), whole numbers >= 0.
            recency: age of the customer at the last purchase (0 without repeat purchase).
            age: age of the customer at the end of the observation (T in the papers), in the same unit.

        Raises:
            ValidationError: a value is missing, negative, or inconsistent (recency > age, or recency
                > 0 without repeat purchases); every kind of problem is listed.
            FitError: no customer made a repeat purchase, or the optimizer found no finite maximum.
        """
        np = _numpy()
        x, t_x, age = _check_rfm(frequency, recency, age)
        if not np.any(x > 0):
            raise FitError(
                f"none of the {x.size} customers made a repeat purchase: BG/NBD cannot estimate "
                "purchase or drop-out rates without them"
            )
        (u_x, u_t, u_age), weight = _distinct_rows(x, t_x, age)
        # r / alpha is the mean purchase rate: starting there makes the start independent of the time
        # unit; sums over the sorted distinct rows make it independent of the row order too
        start = np.array([1.0, float(np.sum(weight * u_age) / np.sum(weight * u_x)), 1.0, 1.0])
        optimum = _maximize(
            lambda theta: _bgnbd_loglik(theta, u_x, u_t, u_age, weight),
            start,
            ("r", "alpha", "a", "b"),
            self.max_iterations,
            self.tolerance,
            float(x.size),
        )
        r, alpha, a, b = optimum.params
        r_se, alpha_se, a_se, b_se = optimum.standard_errors
        return BetaGeoFit(
            r=r,
            alpha=alpha,
            a=a,
            b=b,
            r_se=r_se,
            alpha_se=alpha_se,
            a_se=a_se,
            b_se=b_se,
            log_likelihood=optimum.log_likelihood,
            n_customers=int(x.size),
            iterations=optimum.iterations,
            gradient_norm=optimum.gradient_norm,
        )

    def fit_summaries(self, summaries: Iterable[Any]) -> BetaGeoFit:
        """`fit` on records with ``frequency``, ``recency`` and ``T`` (or ``t`` or ``age``) attributes."""
        frequency, recency, age = _summary_columns(
            summaries, [("frequency",), ("recency",), ("T", "t", "age")]
        )
        return self.fit(frequency, recency, age)


@attrs.frozen(kw_only=True)
class BetaGeoFit:
    """A fitted BG/NBD model: parameters, standard errors, diagnostics, and its predictions.

    Purchases follow a Poisson process with a gamma(r, alpha) distributed rate; after each purchase
    the customer drops out with a beta(a, b) distributed probability. Times are in the unit of the
    data it was fitted on.
    """

    r: float
    alpha: float
    a: float
    b: float
    r_se: float
    alpha_se: float
    a_se: float
    b_se: float
    log_likelihood: float
    n_customers: int
    iterations: int
    gradient_norm: float

    @property
    def estimates(self) -> tuple[ParameterEstimate, ...]:
        """Each parameter with its standard error, in the order r, alpha, a, b."""
        return tuple(
            ParameterEstimate(name=n, value=getattr(self, n), standard_error=getattr(self, f"{n}_se"))
            for n in ("r", "alpha", "a", "b")
        )

    def to_dataframe(self) -> Any:
        """`estimates` as a pandas DataFrame indexed by ``name``: value, standard error, 95 % bounds.

        Raises:
            MissingExtra: pandas is not installed (``pip install "crmcore[pandas]"``).
        """
        return _estimates_frame(self.estimates)

    @overload
    def probability_alive(self, frequency: float, recency: float, age: float) -> float: ...
    @overload
    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike) -> FloatArray: ...
    def probability_alive(self, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike) -> Any:
        """Probability that a customer with this history is still active at ``age`` (1 without repeats)."""
        np = _numpy()
        from scipy.special import expit

        x, t_x, big_t = _check_rfm(frequency, recency, age)
        result = np.where(x > 0, expit(-self._log_odds_dropped(x, t_x, big_t)), 1.0)
        return _shaped(result, frequency, recency, age)

    def _log_odds_dropped(self, x: FloatArray, t_x: FloatArray, big_t: FloatArray) -> FloatArray:
        """log(P(dropped out) / P(alive)) = log(a / (b + x - 1) * ((alpha + T) / (alpha + t_x)) ** (r + x)).

        Only meaningful where x > 0 (without repeats the customer is alive); x is clamped to 1 there
        so that b + x - 1 stays positive.
        """
        np = _numpy()
        x1 = np.maximum(x, 1.0)
        ratio = np.log(self.alpha + big_t) - np.log(self.alpha + t_x)
        return np.log(self.a) - np.log(self.b + x1 - 1) + (self.r + x) * ratio  # type: ignore[no-any-return]

    @overload
    def expected_purchases(self, t: float, frequency: float, recency: float, age: float) -> float: ...
    @overload
    def expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
    ) -> FloatArray: ...
    def expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, age: ArrayLike
    ) -> Any:
        """Expected purchases in the next ``t`` time units of a customer with this history.

        FHL 2005, equation (10): the conditional expectation given (x, t_x, T).
        """
        np = _numpy()
        from scipy.special import expit, hyp2f1

        x, t_x, big_t = _check_rfm(frequency, recency, age)
        horizon = _horizon(t)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = horizon / (alpha + big_t + horizon)
        log_ratio = (r + x) * (np.log(alpha + big_t) - np.log(alpha + big_t + horizon))
        bracket = 1.0 - np.exp(log_ratio) * hyp2f1(r + x, b + x, a + b + x - 1, z)
        front = (a + b + x - 1) / (a - 1)
        alive = np.where(x > 0, expit(-self._log_odds_dropped(x, t_x, big_t)), 1.0)
        return _shaped(front * bracket * alive, t, frequency, recency, age)

    @overload
    def expected_purchases_new(self, t: float) -> float: ...
    @overload
    def expected_purchases_new(self, t: ArrayLike) -> FloatArray: ...
    def expected_purchases_new(self, t: ArrayLike) -> Any:
        """Expected purchases in ``t`` time units of a new customer (FHL 2005, equation 9)."""
        np = _numpy()
        from scipy.special import hyp2f1

        horizon = _horizon(t)
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        log_ratio = r * (np.log(alpha) - np.log(alpha + horizon))
        value = (
            (a + b - 1)
            / (a - 1)
            * (1.0 - np.exp(log_ratio) * hyp2f1(r, b, a + b - 1, horizon / (alpha + horizon)))
        )
        return _shaped(value, t)


def _horizon(t: ArrayLike) -> FloatArray:
    np = _numpy()
    horizon = _as_array(t, "t")
    _raise_all(
        [
            _first_bad(
                ~(horizon >= 0) | ~np.isfinite(horizon), "t", lambda i: f"{horizon[i]} is not a time >= 0"
            )
        ]
    )
    return horizon


def _shaped(result: FloatArray, *inputs: ArrayLike) -> Any:
    """A float when every input was a scalar, else the array."""
    np = _numpy()
    if all(np.ndim(i) == 0 for i in inputs):
        return float(result.reshape(-1)[0])
    return result


# --------------------------------------------------------------------------------------------------
# Gamma-Gamma


def _gamma_gamma_loglik(
    theta: FloatArray, x: FloatArray, m: FloatArray, weight: FloatArray
) -> tuple[float, FloatArray]:
    """Total Gamma-Gamma log-likelihood (the full density of the mean spend) and its gradient."""
    np = _numpy()
    from scipy.special import digamma, gammaln

    p, q, v = theta
    px = p * x
    log_v_xm = np.log(v + x * m)
    terms = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * log_v_xm
    )
    psi = digamma(px + q)
    d_p = x * (psi - digamma(px) + np.log(m) + np.log(x) - log_v_xm)
    d_q = psi - digamma(q) + np.log(v) - log_v_xm
    d_v = q / v - (px + q) / (v + x * m)
    grad = np.array([np.sum(weight * d) for d in (d_p, d_q, d_v)])
    return float(np.sum(weight * terms)), grad


@attrs.frozen(kw_only=True)
class GammaGammaModel:
    """The Gamma-Gamma spend model's fitting options; `fit` returns the fitted `GammaGammaFit`.

    Args:
        max_iterations: optimizer iterations before the fit is reported as not converged.
        tolerance: largest gradient of the mean log-likelihood (per log-parameter) accepted.
    """

    max_iterations: int = 1000
    tolerance: float = 1e-8

    def fit(self, frequency: ArrayLike, monetary_value: ArrayLike) -> GammaGammaFit:
        """Fit Gamma-Gamma by maximum likelihood on the customers with repeat purchases.

        Customers with ``frequency`` 0 (one purchase, so no repeat purchase to average) and customers
        whose repeat purchases averaged 0 are left out of the fit: the model describes positive
        spend per repeat purchase. `GammaGammaFit.n_customers` says how many were used.

        Args:
            frequency: repeat purchases per customer.
            monetary_value: mean value of each customer's repeat purchases (ignored where frequency is 0).

        Raises:
            ValidationError: a value is missing, negative or not a whole number of purchases.
            FitError: fewer than two customers with repeat purchases and positive spend, or no finite
                maximum of the likelihood (e.g. every customer spends the same).
        """
        np = _numpy()
        x, m = _check_spend(frequency, monetary_value)
        used = (x > 0) & (m > 0)
        n_used = int(np.sum(used))
        if n_used < 2:
            raise FitError(
                f"{n_used} of {x.size} customers have repeat purchases with positive spend: "
                "Gamma-Gamma needs at least two"
            )
        x, m = x[used], m[used]
        (ux, um), weight = _distinct_rows(x, m)
        mean = float(np.sum(weight * um) / np.sum(weight))  # over sorted rows: row order cannot matter
        # start near the method of moments: spend with mean v / (q - 1) ~ mean value, p moderate
        start = np.array([1.0, 2.0, mean])
        optimum = _maximize(
            lambda theta: _gamma_gamma_loglik(theta, ux, um, weight),
            start,
            ("p", "q", "gamma"),
            self.max_iterations,
            self.tolerance,
            float(n_used),
            unsupported=_no_heterogeneity,
        )
        p, q, gamma = optimum.params
        p_se, q_se, gamma_se = optimum.standard_errors
        correlation = float(np.corrcoef(x, m)[0, 1]) if np.ptp(x) > 0 and np.ptp(m) > 0 else 0.0
        return GammaGammaFit(
            p=p,
            q=q,
            gamma=gamma,
            p_se=p_se,
            q_se=q_se,
            gamma_se=gamma_se,
            log_likelihood=optimum.log_likelihood,
            n_customers=n_used,
            n_excluded=int(used.size - n_used),
            frequency_value_correlation=correlation,
            iterations=optimum.iterations,
            gradient_norm=optimum.gradient_norm,
        )

    def fit_summaries(self, summaries: Iterable[Any]) -> GammaGammaFit:
        """`fit` on records with ``frequency`` and ``monetary_value`` attributes."""
        frequency, monetary = _summary_columns(summaries, [("frequency",), ("monetary_value", "monetary")])
        return self.fit(frequency, monetary)


@attrs.frozen(kw_only=True)
class GammaGammaFit:
    """A fitted Gamma-Gamma spend model, its diagnostics, and expected values and lifetime value.

    Each purchase's value is gamma(p, nu) distributed with a customer-level nu that is
    gamma(q, gamma) across customers. The model assumes spend does not depend on purchase
    frequency: ``frequency_value_correlation`` (Pearson, over the fitted customers) should be near 0.
    """

    p: float
    q: float
    gamma: float
    p_se: float
    q_se: float
    gamma_se: float
    log_likelihood: float
    n_customers: int
    n_excluded: int
    frequency_value_correlation: float
    iterations: int
    gradient_norm: float

    @property
    def estimates(self) -> tuple[ParameterEstimate, ...]:
        """Each parameter with its standard error, in the order p, q, gamma."""
        return tuple(
            ParameterEstimate(name=n, value=getattr(self, n), standard_error=getattr(self, f"{n}_se"))
            for n in ("p", "q", "gamma")
        )

    def to_dataframe(self) -> Any:
        """`estimates` as a pandas DataFrame indexed by ``name``: value, standard error, 95 % bounds.

        Raises:
            MissingExtra: pandas is not installed (``pip install "crmcore[pandas]"``).
        """
        return _estimates_frame(self.estimates)

    @property
    def population_mean_value(self) -> float:
        """Mean purchase value across all customers, p * gamma / (q - 1); the value of a new customer.

        Raises:
            FitError: q <= 1, where the population mean is infinite.
        """
        if self.q <= 1:
            raise FitError(f"q = {self.q:.4g} <= 1: the mean purchase value of the population is infinite")
        return self.p * self.gamma / (self.q - 1)

    @overload
    def expected_average_value(self, frequency: float, monetary_value: float) -> float: ...
    @overload
    def expected_average_value(self, frequency: ArrayLike, monetary_value: ArrayLike) -> FloatArray: ...
    def expected_average_value(self, frequency: ArrayLike, monetary_value: ArrayLike) -> Any:
        """Expected value of a customer's future purchases given their repeat purchases so far.

        A weighted mean of the population mean and the customer's own mean, weighted by frequency;
        a customer without repeat purchases gets the population mean (``monetary_value`` ignored).
        """
        np = _numpy()
        x, m = _check_spend(frequency, monetary_value)
        m = np.where(x > 0, m, 0.0)
        self.population_mean_value  # noqa: B018  (raises when q <= 1)
        value = self.p * (self.gamma + x * m) / (self.p * x + self.q - 1)
        return _shaped(value, frequency, monetary_value)

    def customer_lifetime_value(
        self,
        transactions: BetaGeoFit,
        frequency: ArrayLike,
        recency: ArrayLike,
        age: ArrayLike,
        monetary_value: ArrayLike,
        *,
        time_unit: TimeUnit | str,
        months: int = 12,
        discount_rate: float = 0.01,
    ) -> FloatArray:
        """Discounted value of each customer's purchases over the next ``months``.

        As in the `lifetimes` package: for each month, the purchases `BetaGeoFit.expected_purchases`
        expects in it, times `expected_average_value`, discounted by ``(1 + discount_rate) ** month``.
        Customers without repeat purchases are valued at the population mean purchase value.

        Args:
            transactions: the fitted BG/NBD model, fitted on data in ``time_unit``.
            time_unit: unit of ``recency`` and ``age`` (a `TimeUnit` or its value, e.g. ``"weeks"``).
            months: horizon in months (>= 1).
            discount_rate: discount rate per month (>= 0).

        Raises:
            ValidationError: an unknown time unit, a bad horizon or rate, or bad customer data.
        """
        np = _numpy()
        unit = _time_unit(time_unit)
        _raise_all(
            [
                None
                if isinstance(months, int) and months >= 1
                else FieldError("months", f"{months!r} is not a whole number >= 1"),
                None
                if math.isfinite(discount_rate) and discount_rate >= 0
                else FieldError("discount_rate", f"{discount_rate!r} is not a rate >= 0"),
            ]
        )
        x, t_x, big_t = _check_rfm(frequency, recency, age)
        value = self.expected_average_value(x, _as_array(monetary_value, "monetary_value"))
        total = np.zeros_like(x)
        previous = np.zeros_like(x)
        for month in range(1, months + 1):
            cumulative = transactions.expected_purchases(month * unit.per_month, x, t_x, big_t)
            total += value * (cumulative - previous) / (1 + discount_rate) ** month
            previous = cumulative
        return total  # type: ignore[no-any-return]


def _time_unit(value: TimeUnit | str) -> TimeUnit:
    if isinstance(value, TimeUnit):
        return value
    try:
        return TimeUnit(value)
    except ValueError:
        valid = ", ".join(repr(u.value) for u in TimeUnit)
        raise ValidationError("time_unit", f"{value!r} is not one of {valid}") from None
