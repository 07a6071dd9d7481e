"""Lifetime value: BG/NBD and Gamma-Gamma against the published CDNOW results, inputs, scale, CLV."""

from __future__ import annotations

import csv
import importlib.util
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import attrs
import numpy as np
import pytest

from crmcore.analytics.clv import (
    BetaGeoFit,
    BetaGeoModel,
    FitError,
    GammaGammaFit,
    GammaGammaModel,
    TimeUnit,
)
from crmcore.analytics.summaries import summarize
from crmcore.customers import Order, OrderLine
from crmcore.errors import CrmError, ValidationError
from crmcore.money import Money
from crmcore.serialization import structure, unstructure


def _dataset(name: str) -> list[dict[str, str]]:
    """Rows of a data file shipped in the lifetimes wheel (read as a file: the package is not imported)."""
    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None and spec.submodule_search_locations is not None
    path = Path(spec.submodule_search_locations[0]) / "datasets" / name
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


_SUMMARY = _dataset("cdnow_customers_summary.csv")
X = np.array([float(r["frequency"]) for r in _SUMMARY])
T_X = np.array([float(r["recency"]) for r in _SUMMARY])
AGE = np.array([float(r["T"]) for r in _SUMMARY])
_SPEND = _dataset("cdnow_customers_summary_with_transactions.csv")
SPEND_X = np.array([float(r["x"]) for r in _SPEND])
SPEND_M = np.array([float(r["zbar"]) for r in _SPEND])


@pytest.fixture(scope="module")
def bgnbd() -> BetaGeoFit:
    return BetaGeoModel().fit(X, T_X, AGE)


@pytest.fixture(scope="module")
def gamma_gamma() -> GammaGammaFit:
    return GammaGammaModel().fit(SPEND_X, SPEND_M)


def test_cdnow_summary_is_the_published_sample() -> None:
    """The data file is the 2,357-customer CDNOW calibration sample the papers fit."""
    assert len(X) == len(SPEND_X) == 2357
    assert np.array_equal(X, SPEND_X)
    assert int(np.sum(SPEND_X > 0)) == 946


def test_bgnbd_matches_published_cdnow_parameters(bgnbd: BetaGeoFit) -> None:
    """BG/NBD on CDNOW gives FHL 2005's r, alpha, a, b and log-likelihood to three significant figures."""
    assert f"{bgnbd.r:.3g} {bgnbd.alpha:.4g} {bgnbd.a:.3g} {bgnbd.b:.4g}" == "0.243 4.414 0.793 2.426"
    assert round(bgnbd.log_likelihood, 1) == -9582.4
    assert bgnbd.n_customers == 2357


def test_bgnbd_standard_errors_match_lifetimes(bgnbd: BetaGeoFit) -> None:
    """Standard errors from the inverse Hessian agree with the ones the lifetimes package prints."""
    assert f"{bgnbd.r_se:.4f} {bgnbd.alpha_se:.4f} {bgnbd.a_se:.4f} {bgnbd.b_se:.4f}" == (
        "0.0126 0.3782 0.1857 0.7053"
    )
    r = bgnbd.estimates[0]
    assert r.name == "r" and r.lower_95 < r.value < r.upper_95


def test_expected_purchases_for_the_published_customer(bgnbd: BetaGeoFit) -> None:
    """A customer with x = 2, t_x = 30.43, T = 38.86 is expected to buy 1.226 times in 39 weeks."""
    assert round(bgnbd.expected_purchases(39, 2, 30.43, 38.86), 3) == 1.226


def test_probability_alive_behaves(bgnbd: BetaGeoFit) -> None:
    """No repeat purchase means alive; a longer silence since the last purchase means less alive."""
    assert bgnbd.probability_alive(0, 0, 38.86) == 1.0
    alive = bgnbd.probability_alive([2, 2, 2], [38.0, 30.43, 5.0], [38.86, 38.86, 38.86])
    assert isinstance(alive, np.ndarray)
    assert 1.0 > alive[0] > alive[1] > alive[2] > 0.0


def test_conditional_expectation_of_a_newcomer_is_the_unconditional_one(bgnbd: BetaGeoFit) -> None:
    """A customer seen for no time at all is expected to buy what a new customer buys (eq. 10 -> eq. 9)."""
    new = bgnbd.expected_purchases_new(39.0)
    assert bgnbd.expected_purchases(39.0, 0, 0.0, 1e-9) == pytest.approx(new, rel=1e-6)
    # over a short horizon a new customer buys at the mean rate r / alpha
    assert bgnbd.expected_purchases_new(1e-4) == pytest.approx(1e-4 * bgnbd.r / bgnbd.alpha, rel=1e-3)


def test_gamma_gamma_matches_published_cdnow_parameters(gamma_gamma: GammaGammaFit) -> None:
    """Gamma-Gamma on the 946 repeat buyers gives FHL's p, q, gamma and LL -4055.9 (full density)."""
    assert f"{gamma_gamma.p:.3g} {gamma_gamma.q:.3g} {gamma_gamma.gamma:.3g}" == "6.25 3.74 15.4"
    assert gamma_gamma.gamma == pytest.approx(15.44, abs=0.01)  # published 15.44 is truncated: MLE 15.4477
    assert round(gamma_gamma.log_likelihood, 1) == -4055.9
    assert (gamma_gamma.n_customers, gamma_gamma.n_excluded) == (946, 1411)
    assert abs(gamma_gamma.frequency_value_correlation) < 0.2


def test_gamma_gamma_ignores_one_time_buyers_and_zero_spend(gamma_gamma: GammaGammaFit) -> None:
    """Adding one-time buyers and repeat buyers with zero spend leaves the fit unchanged."""
    x = np.concatenate([SPEND_X, [0, 0, 3, 1]])
    m = np.concatenate([SPEND_M, [0.0, 12.0, 0.0, 0.0]])
    refit = GammaGammaModel().fit(x, m)
    assert (refit.p, refit.q, refit.gamma) == pytest.approx((gamma_gamma.p, gamma_gamma.q, gamma_gamma.gamma))
    assert refit.n_excluded == gamma_gamma.n_excluded + 4


def test_expected_average_value(gamma_gamma: GammaGammaFit) -> None:
    """A one-time buyer gets the population mean; more repeat purchases pull towards their own mean."""
    g = gamma_gamma
    assert g.population_mean_value == pytest.approx(g.p * g.gamma / (g.q - 1))
    assert g.expected_average_value(0, 999.0) == pytest.approx(g.population_mean_value)
    few, many = g.expected_average_value([1, 200], [100.0, 100.0])
    assert g.population_mean_value < few < many < 100.0
    assert many == pytest.approx(100.0, rel=0.05)


def test_lifetime_value_without_discount_is_purchases_times_value(
    bgnbd: BetaGeoFit, gamma_gamma: GammaGammaFit
) -> None:
    """Undiscounted, the monthly sum is expected purchases over the whole horizon times expected value."""
    x, t_x, age, m = [0, 2, 5], [0.0, 30.43, 20.0], [38.86, 38.86, 38.86], [0.0, 22.35, 40.0]
    clv = gamma_gamma.customer_lifetime_value(
        bgnbd, x, t_x, age, m, time_unit="weeks", months=12, discount_rate=0.0
    )
    expected = gamma_gamma.expected_average_value(x, m) * bgnbd.expected_purchases(12 * 4.345, x, t_x, age)
    assert clv == pytest.approx(expected)
    # the one-time buyer is valued at the population mean
    assert clv[0] == pytest.approx(
        gamma_gamma.population_mean_value * bgnbd.expected_purchases(52.14, 0, 0, 38.86)
    )


def test_lifetime_value_discounts_each_month(bgnbd: BetaGeoFit, gamma_gamma: GammaGammaFit) -> None:
    """Each month's expected purchases are discounted by (1 + rate) ** month, as lifetimes does."""
    clv = gamma_gamma.customer_lifetime_value(
        bgnbd, [2], [30.43], [38.86], [22.35], time_unit=TimeUnit.WEEKS, months=3, discount_rate=0.1
    )
    value = gamma_gamma.expected_average_value(2, 22.35)
    cumulative = [0.0] + [bgnbd.expected_purchases(k * 4.345, 2, 30.43, 38.86) for k in (1, 2, 3)]
    by_hand = sum(value * (cumulative[k] - cumulative[k - 1]) / 1.1**k for k in (1, 2, 3))
    assert clv[0] == pytest.approx(by_hand)


def test_lifetime_value_refuses_bad_options(bgnbd: BetaGeoFit, gamma_gamma: GammaGammaFit) -> None:
    """An unknown time unit lists the valid ones; a bad horizon and rate are reported together."""
    with pytest.raises(
        ValidationError, match="'fortnights' is not one of 'hours', 'days', 'weeks', 'months'"
    ):
        gamma_gamma.customer_lifetime_value(bgnbd, [1], [1.0], [2.0], [5.0], time_unit="fortnights")
    with pytest.raises(ValidationError) as caught:
        gamma_gamma.customer_lifetime_value(
            bgnbd, [1], [1.0], [2.0], [5.0], time_unit="weeks", months=0, discount_rate=-0.5
        )
    assert [e.path for e in caught.value.errors] == ["months", "discount_rate"]


def test_invalid_inputs_are_all_reported() -> None:
    """Negative, fractional, missing and inconsistent values are each named, with the first bad row."""
    with pytest.raises(ValidationError) as caught:
        BetaGeoModel().fit([-1, 0, 1.5, 0, float("nan"), 3], [0, 2, 50, 0, 0, 5], [10, 10, 10, -1, 1, 4])
    messages = {e.path: e.reason for e in caught.value.errors}
    assert set(messages) == {"frequency[4]", "frequency[0]", "age[3]", "recency[2]", "recency[1]"}
    assert "1 more row like it" in messages["frequency[0]"]
    assert "later than the end of observation (age 10.0) (1 more row like it)" in messages["recency[2]"]
    assert "no repeat purchase" in messages["recency[1]"]
    with pytest.raises(ValidationError, match="differ in length"):
        BetaGeoModel().fit([1, 2], [1.0], [3.0, 3.0])
    with pytest.raises(ValidationError, match="no customers"):
        BetaGeoModel().fit([], [], [])
    with pytest.raises(ValidationError, match=r"monetary_value\[1\]: -3.0 is negative"):
        GammaGammaModel().fit([1, 2], [4.0, -3.0])


def test_predictions_validate_their_inputs(bgnbd: BetaGeoFit) -> None:
    """A fitted model refuses an inconsistent customer or a negative horizon instead of returning NaN."""
    with pytest.raises(ValidationError, match="recency"):
        bgnbd.probability_alive(2, 40.0, 38.86)
    with pytest.raises(ValidationError, match=r"t\[0\]"):
        bgnbd.expected_purchases(-1.0, 2, 30.43, 38.86)


def test_no_repeat_buyers_cannot_be_fitted() -> None:
    """Without repeat purchases neither model can be fitted, and the error says why."""
    with pytest.raises(FitError, match="none of the 3 customers made a repeat purchase"):
        BetaGeoModel().fit([0, 0, 0], [0, 0, 0], [5.0, 6.0, 7.0])
    with pytest.raises(FitError, match="0 of 2 customers have repeat purchases"):
        GammaGammaModel().fit([0, 0], [0.0, 0.0])


def test_unidentifiable_data_is_refused() -> None:
    """Data with no finite maximum (identical spend; everyone bought right at the end) raises FitError."""
    with pytest.raises(FitError):
        GammaGammaModel().fit([1, 2, 3], [10.0, 10.0, 10.0])
    with pytest.raises(FitError):
        BetaGeoModel().fit([1, 1, 1], [5.0, 5.0, 5.0], [5.0, 5.0, 5.0])


def test_fit_at_scale_is_finite_and_unchanged(bgnbd: BetaGeoFit) -> None:
    """CDNOW replicated 100 times (235,700 customers): same estimates, LL x100, standard errors /10."""
    big = BetaGeoModel().fit(np.tile(X, 100), np.tile(T_X, 100), np.tile(AGE, 100))
    assert big.n_customers == 235_700
    assert (big.r, big.alpha, big.a, big.b) == pytest.approx(
        (bgnbd.r, bgnbd.alpha, bgnbd.a, bgnbd.b), rel=1e-6
    )
    assert big.log_likelihood == pytest.approx(100 * bgnbd.log_likelihood, rel=1e-9)
    assert big.r_se == pytest.approx(bgnbd.r_se / 10, rel=1e-4)
    assert np.isfinite([big.r_se, big.alpha_se, big.a_se, big.b_se]).all()


def test_time_unit_does_not_change_the_fit(bgnbd: BetaGeoFit) -> None:
    """The same data in days gives alpha x7 and the same r, a, b (the start adapts to the unit)."""
    days = BetaGeoModel().fit(X, T_X * 7, AGE * 7)
    assert (days.r, days.alpha / 7, days.a, days.b) == pytest.approx(
        (bgnbd.r, bgnbd.alpha, bgnbd.a, bgnbd.b), rel=1e-5
    )


def test_fit_is_deterministic(bgnbd: BetaGeoFit, gamma_gamma: GammaGammaFit) -> None:
    """Fitting the same data again gives exactly the same result, whatever the row order."""
    assert BetaGeoModel().fit(X, T_X, AGE) == bgnbd
    order = np.random.default_rng(7).permutation(X.size)
    assert BetaGeoModel().fit(X[order], T_X[order], AGE[order]) == bgnbd
    assert GammaGammaModel().fit(SPEND_X, SPEND_M) == gamma_gamma


def test_fits_are_frozen(bgnbd: BetaGeoFit) -> None:
    """A fitted result cannot be changed after the fact."""
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        bgnbd.r = 1.0  # type: ignore[misc]


@attrs.frozen(kw_only=True)
class _Summary:
    frequency: int
    recency: float
    t: float
    monetary_value: float


def test_fit_from_summary_records(bgnbd: BetaGeoFit, gamma_gamma: GammaGammaFit) -> None:
    """Records with frequency/recency/t (or T)/monetary_value attributes fit like the columns."""
    records = [
        _Summary(frequency=int(x), recency=r, t=a, monetary_value=m)
        for x, r, a, m in zip(X, T_X, AGE, SPEND_M, strict=True)
    ]
    assert BetaGeoModel().fit_summaries(records) == bgnbd
    assert GammaGammaModel().fit_summaries(records) == gamma_gamma
    with pytest.raises(ValidationError, match=r"summaries\[1\]: has no attribute 'recency'"):
        BetaGeoModel().fit_summaries([records[0], SimpleNamespace(frequency=1)])


def test_models_and_fits_round_trip(bgnbd: BetaGeoFit, gamma_gamma: GammaGammaFit) -> None:
    """Options and fitted results survive unstructure/structure unchanged."""
    model = BetaGeoModel(max_iterations=50, tolerance=1e-6)
    assert structure(unstructure(model), BetaGeoModel) == model
    assert structure(unstructure(bgnbd), BetaGeoFit) == bgnbd
    assert structure(unstructure(gamma_gamma), GammaGammaFit) == gamma_gamma


def test_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without numpy/scipy, fitting raises a CrmError telling which extra to install."""
    monkeypatch.setitem(sys.modules, "scipy", None)
    with pytest.raises(CrmError, match=r'pip install "crmcore\[analytics\]"'):
        BetaGeoModel().fit([1], [1.0], [2.0])


def test_module_imports_without_the_extra() -> None:
    """The module itself imports when numpy and scipy are absent (they load on first use)."""
    code = "import sys; sys.modules['numpy'] = sys.modules['scipy'] = None; import crmcore.analytics.clv"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fit_summaries_reads_money_spend_like_plain_numbers(gamma_gamma: GammaGammaFit) -> None:
    """Customer summaries carry spend as Money; fit_summaries takes its amount, giving the same fit."""
    from types import SimpleNamespace

    from crmcore.money import Money

    records = [
        SimpleNamespace(frequency=int(x), monetary_value=Money(f"{m:.2f}", "USD"))
        for x, m in zip(SPEND_X, SPEND_M, strict=True)
    ]
    fitted = GammaGammaModel().fit_summaries(records)
    assert (fitted.p, fitted.q, fitted.gamma) == pytest.approx(
        (gamma_gamma.p, gamma_gamma.q, gamma_gamma.gamma), rel=1e-3
    )


def test_gamma_gamma_refuses_spend_without_heterogeneity() -> None:
    """Customers whose mean spends differ only by purchase noise leave q unbounded: FitError says so."""
    rng = np.random.default_rng(3)
    frequency = rng.integers(1, 12, size=800)
    spend = np.array([rng.gamma(50.0, 2.0, size=int(n)).mean() for n in frequency])  # one shared nu
    with pytest.raises(FitError, match="hardly varies between customers"):
        GammaGammaModel().fit(frequency, spend)


def test_optimizer_runs_scipy_blas_on_one_thread_and_restores_it(bgnbd: BetaGeoFit) -> None:
    """L-BFGS-B runs with scipy's OpenBLAS on one thread (its tiny parallel solves stall on a busy
    machine); the previous count is back afterwards, also when fits run concurrently."""
    from concurrent.futures import ThreadPoolExecutor

    from numpy.typing import NDArray

    from crmcore.analytics import clv

    control = clv._scipy_blas_threads()
    if control is None:
        pytest.skip("the thread count of scipy's OpenBLAS cannot be reached on this platform")
    get, set_ = control
    before = get()
    seen: list[int] = []

    def loglik(theta: NDArray[np.float64]) -> tuple[float, NDArray[np.float64]]:
        seen.append(get())
        return -float(np.sum((theta - 2.0) ** 2)), -2.0 * (theta - 2.0)

    set_(2)
    try:
        clv._maximize(loglik, np.ones(2), ("u", "v"), 100, 1e-8, 1.0)
        assert seen[0] == 1  # inside the optimizer
        assert seen[-1] == get() == 2  # the Hessian, after it
        with ThreadPoolExecutor(4) as pool:
            fits = list(pool.map(lambda _: BetaGeoModel().fit(X, T_X, AGE), range(8)))
        assert fits == [bgnbd] * 8
        assert get() == 2
    finally:
        set_(before)


def test_fit_summaries_reads_customer_summary_columns_like_records() -> None:
    """CustomerSummaries are read column by column and give the same fits as their records."""
    rng = np.random.default_rng(11)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    orders = []
    for c in range(400):
        scale = rng.gamma(4.0, 10.0)  # each customer's own basket size: spend varies between them
        for day in sorted(set(rng.integers(0, 360, size=int(rng.integers(1, 9))).tolist())):
            price = Money(f"{rng.gamma(8.0, scale / 8.0) + 1:.2f}", "EUR")
            orders.append(
                Order(
                    customer_id=f"c{c:03d}",
                    ordered_at=start + timedelta(days=day),
                    currency="EUR",
                    lines=[OrderLine(product="Tea", unit_price=price)],
                )
            )
    summaries = summarize(orders, start + timedelta(days=365), unit="weeks")
    records = list(summaries)
    assert BetaGeoModel().fit_summaries(summaries) == BetaGeoModel().fit_summaries(records)
    assert GammaGammaModel().fit_summaries(summaries) == GammaGammaModel().fit_summaries(records)
