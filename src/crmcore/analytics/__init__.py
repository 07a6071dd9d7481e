"""Analytics: customer summaries, RFM, lifetime value, churn and forecasting (to come)."""

__all__: list[str] = []
