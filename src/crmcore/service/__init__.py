"""Customer service: tickets, business calendars and SLA timers (to come)."""

__all__: list[str] = []
