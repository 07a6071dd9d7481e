"""Sales pipeline: leads, opportunities, stage transitions, assignment and scoring (to come)."""

__all__: list[str] = []
