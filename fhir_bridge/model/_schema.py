"""The published JSON Schema of the internal format."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from ._careplan import CarePlan
from ._clinical import CareTeam, Medication, Problem
from ._encounter import Encounter
from ._goal import Goal
from ._package import AnyRecord, PatientPackage
from ._patient import Patient
from ._record import Record
from ._referral import Referral, ReferralTask
from ._screening import Screening

RECORD_TYPES: dict[str, type[Record]] = {
    "patient": Patient,
    "careplan": CarePlan,
    "goal": Goal,
    "referral": Referral,
    "referral_task": ReferralTask,
    "problem": Problem,
    "medication": Medication,
    "careteam": CareTeam,
    "encounter": Encounter,
    "screening": Screening,
}


def json_schema() -> dict[str, Any]:
    """JSON Schema of an input document: one record, a list of records, or a patient package."""
    document = TypeAdapter(AnyRecord | list[AnyRecord] | PatientPackage)
    schema = document.json_schema(ref_template="#/$defs/{model}")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "fhir-bridge internal records"
    return schema
