from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ._record import PatientRecord
from ._statuses import GoalAchievement, GoalLifecycle, GoalPriority
from ._types import Concept, Element, FhirDate, Party, Quantity, Range, Ref


class GoalTarget(Element):
    """What reaching the goal means: a measure (e.g. LOINC 4548-4 HbA1c), a value, a due date."""

    measure: Concept | None = None
    quantity: Quantity | None = None
    range: Range | None = None
    text: str | None = None
    concept: Concept | None = None
    boolean: bool | None = None
    integer: int | None = None
    due_date: FhirDate | None = None

    @model_validator(mode="after")
    def _one_detail(self) -> GoalTarget:
        details = [
            x
            for x in (
                self.quantity,
                self.range,
                self.text,
                self.concept,
                self.boolean,
                self.integer,
            )
            if x is not None
        ]
        if len(details) > 1:
            raise ValueError(
                "give at most one of quantity, range, text, concept, boolean or integer"
            )
        if details and self.measure is None:
            raise ValueError("a target value needs a measure: what is measured (FHIR gol-1)")
        return self


class Goal(PatientRecord):
    kind: Literal["goal"] = "goal"
    description: Concept
    lifecycle_status: GoalLifecycle
    achievement_status: GoalAchievement | None = None
    priority: GoalPriority | None = None
    categories: list[Concept] = Field(default_factory=list)
    start_date: FhirDate | None = None
    status_date: FhirDate | None = None
    targets: list[GoalTarget] = Field(default_factory=list)
    addresses: list[Ref] = Field(default_factory=list, description="Problems the goal addresses")
    expressed_by: Party | None = None
