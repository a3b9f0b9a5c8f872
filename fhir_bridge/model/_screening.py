"""A screening or assessment: an instrument administered on a day, its answers and result."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from ._record import PatientRecord
from ._statuses import ScreeningInstrument, ScreeningStatus, SdohCategory
from ._types import Code, FhirDateTime, Model, Party

SCORED = frozenset({ScreeningInstrument.phq_9, ScreeningInstrument.gad_7})
"""Instruments with a total score (PHQ-9 0-27, GAD-7 0-21)."""
MAX_SCORE = {ScreeningInstrument.phq_9: 27, ScreeningInstrument.gad_7: 21}
TOTAL_SCORE_QUESTIONS = frozenset({"44261-6", "70274-6"})
"""The LOINC total-score questions of PHQ-9 and GAD-7: held in ``score``, not as answers."""
LOINC = "http://loinc.org"


class ScreeningAnswer(Model):
    """One question answered: the LOINC question and a LOINC answer (or a number)."""

    question: Code = Field(description="The question, a LOINC code, e.g. 88122-7")
    answer: Code | None = Field(
        default=None, description="The answer, a LOINC answer code, e.g. LA28397-0 Often true"
    )
    value: int | None = Field(default=None, description="A numeric answer (a count, a score)")
    domain: SdohCategory | None = Field(
        default=None, description="The social-needs domain the question screens, if any"
    )

    @model_validator(mode="after")
    def _one_answer(self) -> ScreeningAnswer:
        if not self.question.code:
            raise ValueError("question: a LOINC code is required")
        if self.question.system is None:
            self.question.system = LOINC
        if self.question.system != LOINC:
            raise ValueError(f"question: a LOINC code (system {LOINC}) is required")
        if self.question.code in TOTAL_SCORE_QUESTIONS:
            raise ValueError("question: a total score is the screening's score, not an answer")
        if (self.answer is None) == (self.value is None):
            raise ValueError("exactly one of answer (a code) or value (a number) is required")
        if self.answer is not None and not self.answer.code:
            raise ValueError("answer: a code is required")
        return self


class ScreeningFinding(Model):
    """The care manager's reading of one domain: positive (a need) or negative."""

    domain: SdohCategory
    positive: bool


class Screening(PatientRecord):
    """An SDOH screening (AHC HRSN, PRAPARE) or a clinical instrument (PHQ-9, GAD-7).

    On the FHIR side a US Core QuestionnaireResponse plus the US Core Screening Assessment
    Observations derived from it (one per answer, and one that groups them and carries the
    total score). A positive domain that the care manager acts on is an ordinary problem
    record (a health concern) whose ``evidence`` names this screening, and goals address that
    problem. FHIR QuestionnaireResponse has no notes: ``notes`` stays empty.
    """

    kind: Literal["screening"] = "screening"
    instrument: ScreeningInstrument
    questionnaire: str | None = Field(
        default=None,
        description="The canonical of the form used, when not the instrument's LOINC form "
        "(http://loinc.org/q/<panel>)",
    )
    status: ScreeningStatus
    authored: FhirDateTime = Field(description="When it was administered")
    author: Party | None = Field(default=None, description="Who administered it")
    answers: list[ScreeningAnswer] = Field(default_factory=list)
    score: int | None = Field(default=None, ge=0, description="The total score (PHQ-9, GAD-7 only)")
    findings: list[ScreeningFinding] = Field(
        default_factory=list,
        description="Per domain, positive or negative; each domain is that of an answer",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Screening:
        if self.notes:
            raise ValueError("notes: a screening holds none (QuestionnaireResponse has no note)")
        if self.score is not None:
            if self.instrument not in SCORED:
                raise ValueError(f"score: {self.instrument.value} has no total score")
            if self.score > MAX_SCORE[self.instrument]:
                raise ValueError(
                    f"score: at most {MAX_SCORE[self.instrument]} for {self.instrument.value}"
                )
        questions = [a.question.code for a in self.answers]
        if len(set(questions)) != len(questions):
            raise ValueError("answers: each question is answered once")
        domains = [a.domain for a in self.answers if a.domain is not None]
        found = [f.domain for f in self.findings]
        if len(set(found)) != len(found):
            raise ValueError("findings: one finding per domain")
        stray = [d.value for d in found if d not in domains]
        if stray:
            raise ValueError(f"findings: no answer screens {', '.join(stray)}")
        # findings in the order their domains are first answered: one order on both sides
        order = {d: i for i, d in reversed(list(enumerate(domains)))}
        self.findings.sort(key=lambda f: order[f.domain])
        return self
