"""A generated, realistic patient panel, built from the internal model.

Per patient: one care plan, three goals, two referrals (one clinical, one community resource
with Gravity tracking), two or three problems, two or three medications and a care team, with
care managers, physicians and community organisations shared across the panel, as in
``fixtures/``. Seeded: the same size and seed give the same records.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from fhir_bridge import model as m

SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10-cm"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
LOINC = "http://loinc.org"
NPI = "http://hl7.org/fhir/sid/us-npi"
UPDATED = "2025-03-03T09:00:00Z"

GIVEN = ["Marisol", "James", "Aiko", "Robert", "Fatima", "Chen", "Olga", "Luis", "Grace", "Tomas"]
FAMILY = ["Rivera", "Okafor", "Nguyen", "Smith", "Haddad", "Kowalski", "Garcia", "Brown", "Ito"]
CITIES = [("Springfield", "IL", "62701"), ("Peoria", "IL", "61602"), ("Joliet", "IL", "60431")]

# (SNOMED, ICD-10, display, goal text, LOINC measure, target, unit, medication RxNorm, display)
CONDITIONS = [
    (
        "44054006",
        "E11.9",
        "Type 2 diabetes mellitus",
        "HbA1c below 7%",
        "4548-4",
        7.0,
        "%",
        "860975",
        "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
    ),
    (
        "84114007",
        "I50.9",
        "Heart failure",
        "Weight gain under 2 kg per week",
        "29463-7",
        80.0,
        "kg",
        "200033",
        "carvedilol 25 MG Oral Tablet",
    ),
    (
        "38341003",
        "I10",
        "Hypertensive disorder",
        "Blood pressure below 130/80",
        "8480-6",
        130.0,
        "mm[Hg]",
        "314076",
        "lisinopril 10 MG Oral Tablet",
    ),
    (
        "13645005",
        "J44.9",
        "Chronic obstructive lung disease",
        "No emergency visits for COPD",
        "19994-3",
        92.0,
        "%",
        "896188",
        "tiotropium 0.0025 MG/ACTUAT Inhalation Spray",
    ),
    (
        "709044004",
        "N18.9",
        "Chronic kidney disease",
        "eGFR stays above 45",
        "33914-3",
        45.0,
        "mL/min/{1.73_m2}",
        "197361",
        "amlodipine 5 MG Oral Tablet",
    ),
    (
        "35489007",
        "F32.9",
        "Depressive disorder",
        "PHQ-9 score below 10",
        "44261-6",
        10.0,
        "{score}",
        "312940",
        "sertraline 50 MG Oral Tablet",
    ),
]
# (SDOH category, SNOMED problem, ICD-10, display, service SNOMED, service display)
SDOH = [
    (
        "food-insecurity",
        "733423003",
        "Z59.41",
        "Food insecurity",
        "467771000124109",
        "Assistance with application for food pantry program",
    ),
    (
        "transportation-insecurity",
        "713458007",
        "Z59.82",
        "Lack of access to transportation",
        "464711000124100",
        "Referral to transportation support program",
    ),
    (
        "housing-instability",
        "1156191002",
        "Z59.811",
        "Housing instability",
        "464401000124103",
        "Referral to housing support program",
    ),
]
SPECIALTIES = [
    ("306253008", "Referral to dietitian"),
    ("183519002", "Referral to cardiology service"),
    ("306106009", "Referral to nephrology service"),
]
CARE_MANAGERS = 8
PHYSICIANS = 16
ORGANISATIONS = 6


@dataclass(frozen=True)
class Panel:
    packages: list[m.PatientPackage]

    def records(self) -> list[m.Record]:
        return [r for p in self.packages for r in p.records()]

    @property
    def patients(self) -> int:
        return len(self.packages)


def _practitioner(index: int, role: str) -> dict[str, Any]:
    surname = FAMILY[index % len(FAMILY)]
    first = GIVEN[(index * 3) % len(GIVEN)]
    suffix = "RN" if role == "cm" else "MD"
    head = f"{1 if role == 'cm' else 2}{index:08d}"
    return {
        "kind": "practitioner",
        "id": f"{role}-{index:03d}",
        "name": f"{first} {surname}, {suffix}",
        "phone": f"555-{1000 + index:04d}",
        "identifiers": [{"system": NPI, "value": head + str(m.npi_check_digit(head))}],
    }


def _organisation(index: int) -> dict[str, Any]:
    return {
        "kind": "organization",
        "id": f"org-community-{index:03d}",
        "name": f"Community Resource Center {index}",
        "phone": f"555-{2000 + index:04d}",
    }


def _concept(system: str, code: str, display: str, *more: tuple[str, str, str]) -> dict[str, Any]:
    codings = [{"system": system, "code": code, "display": display}]
    codings += [{"system": s, "code": c, "display": d} for s, c, d in more]
    return {"codings": codings}


def package(index: int, rng: random.Random) -> m.PatientPackage:
    """One patient with everything the care manager holds for them."""
    pid = f"pat-{index:05d}"
    cm = _practitioner(rng.randrange(CARE_MANAGERS), "cm")
    pcp = _practitioner(rng.randrange(PHYSICIANS), "pcp")
    org = _organisation(rng.randrange(ORGANISATIONS))
    city, state, postal = rng.choice(CITIES)
    chronic = rng.sample(CONDITIONS, rng.choice((2, 3)))
    sdoh = rng.choice(SDOH)
    specialty = rng.choice(SPECIALTIES)
    start = f"2025-0{rng.randint(1, 2)}-{rng.randint(1, 28):02d}"

    problems = [
        {
            "id": f"prob-{index:05d}-{n}",
            "patient": pid,
            "code": _concept(SNOMED, c[0], c[2], (ICD10, c[1], c[2])),
            "clinical_status": "active",
            "verification_status": "confirmed",
            "onset": f"20{rng.randint(10, 23)}-0{rng.randint(1, 9)}-15",
            "recorder": pcp,
        }
        for n, c in enumerate(chronic)
    ]
    problems.append(
        {
            "id": f"prob-{index:05d}-sdoh",
            "patient": pid,
            "code": _concept(SNOMED, sdoh[1], sdoh[3], (ICD10, sdoh[2], sdoh[3])),
            "category": "health_concern",
            "sdoh_category": sdoh[0],
            "clinical_status": "active",
            "verification_status": "confirmed",
            "recorded_date": start,
            "recorder": cm,
        }
    )
    goals = [
        {
            "id": f"goal-{index:05d}-{n}",
            "patient": pid,
            "description": {"text": c[3]},
            "lifecycle_status": "active",
            "achievement_status": rng.choice(["in_progress", "improving", "no_change"]),
            "priority": rng.choice(["high", "medium"]),
            "start_date": start,
            "targets": [
                {
                    "measure": _concept(LOINC, c[4], c[3]),
                    "quantity": {"value": c[5], "unit": c[6], "code": c[6]},
                    "due_date": "2025-12-31",
                }
            ],
            "addresses": [f"prob-{index:05d}-{n}"],
            "expressed_by": {"kind": "patient", "id": pid},
        }
        for n, c in enumerate(chronic[:2])
    ]
    goals.append(
        {
            "id": f"goal-{index:05d}-sdoh",
            "patient": pid,
            "description": {"text": f"{sdoh[3]} resolved"},
            "lifecycle_status": "active",
            "achievement_status": "in_progress",
            "start_date": start,
            "targets": [
                {"text": "Need met", "measure": {"text": sdoh[3]}, "due_date": "2025-09-30"}
            ],
            "addresses": [f"prob-{index:05d}-sdoh"],
            "expressed_by": {"kind": "patient", "id": pid},
        }
    )
    referrals = [
        {
            "id": f"ref-{index:05d}-spec",
            "patient": pid,
            "status": "active",
            "priority": "routine",
            "referral_kind": "specialist",
            "service": _concept(SNOMED, *specialty),
            "reasons": [f"prob-{index:05d}-0"],
            "requester": pcp,
            "authored_on": start,
            "goals": [f"goal-{index:05d}-0"],
        },
        {
            "id": f"ref-{index:05d}-sdoh",
            "patient": pid,
            "status": "active",
            "priority": "routine",
            "referral_kind": "community_resource",
            "sdoh_category": sdoh[0],
            "service": _concept(SNOMED, sdoh[4], sdoh[5]),
            "reasons": [f"prob-{index:05d}-sdoh"],
            "requester": cm,
            "performer": org,
            "authored_on": start,
            "goals": [f"goal-{index:05d}-sdoh"],
            "tracking": {
                "status": rng.choice(["requested", "accepted", "in_progress"]),
                "owner": org,
                "authored_on": start,
            },
        },
    ]
    medications = [
        {
            "id": f"med-{index:05d}-{n}",
            "patient": pid,
            "medication": _concept(RXNORM, c[7], c[8]),
            "status": "active",
            "dosage": "one tablet by mouth daily",
            "effective_period": {"start": "2024-06-01"},
            "date_asserted": "2025-03-01",
            "reasons": [f"prob-{index:05d}-{n}"],
        }
        for n, c in enumerate(chronic)
    ]
    care_plan = {
        "id": f"cp-{index:05d}",
        "patient": pid,
        "title": "Chronic care management plan",
        "description": "Monthly chronic care management with weekly check-ins.",
        "status": "active",
        "categories": [{"text": "Chronic care management"}],
        "period": {"start": start, "end": "2026-01-31"},
        "author": cm,
        "contributors": [pcp],
        "care_teams": [f"team-{index:05d}"],
        "addresses": [p["id"] for p in problems],
        "goals": [g["id"] for g in goals],
        "created_at": f"{start}T10:00:00Z",
        "activities": [
            {
                "planned": {
                    "kind": "CommunicationRequest",
                    "code": _concept(SNOMED, "185317003", "Telephone encounter"),
                    "status": "in_progress",
                    "description": "Weekly 20-minute check-in call",
                    "schedule": {"frequency": 1, "period": 1, "period_unit": "wk"},
                    "performers": [cm],
                    "goals": [goals[0]["id"]],
                }
            },
            *({"referral": r["id"]} for r in referrals),
        ],
    }
    care_team = {
        "id": f"team-{index:05d}",
        "patient": pid,
        "name": "Care team",
        "status": "active",
        "members": [
            {"party": cm, "roles": [{"text": "Care manager"}]},
            {"party": pcp, "roles": [{"text": "Primary care physician"}]},
        ],
    }
    patient = {
        "id": pid,
        "names": [{"family": rng.choice(FAMILY), "given": [rng.choice(GIVEN)], "use": "official"}],
        "birth_date": f"19{rng.randint(35, 75)}-0{rng.randint(1, 9)}-{rng.randint(10, 28)}",
        "sex": rng.choice(["female", "male"]),
        "phone": f"555-{rng.randint(3000, 9999)}",
        "address": {
            "lines": [f"{rng.randint(1, 999)} Alder Way"],
            "city": city,
            "state": state,
            "postal_code": postal,
            "country": "US",
        },
        "identifiers": [{"system": "https://care.example.org/mrn", "value": f"MRN-{index:07d}"}],
    }

    def stamped(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**item, "updated_at": UPDATED} for item in items]

    return m.PatientPackage.model_validate(
        {
            "patient": {**patient, "updated_at": UPDATED},
            "care_plans": stamped([care_plan]),
            "goals": stamped(goals),
            "referrals": stamped(referrals),
            "problems": stamped(problems),
            "medications": stamped(medications),
            "care_teams": stamped([care_team]),
        }
    )


def generate(patients: int, seed: int = 8) -> Panel:
    rng = random.Random(seed)  # noqa: S311 - synthetic data, not security
    return Panel([package(i, rng) for i in range(patients)])


def changed(panel: Panel, fraction: float, seed: int = 9) -> Iterator[m.Record]:
    """A ``fraction`` of the panel's goals and care plans, edited as a care manager would."""
    rng = random.Random(seed)  # noqa: S311
    for record in panel.records():
        if isinstance(record, m.Goal | m.CarePlan) and rng.random() < fraction:
            data = record.model_dump(mode="json", exclude_none=True)
            data["notes"] = [
                *data.get("notes", []),
                {"text": "Reviewed at the monthly check-in.", "time": "2025-03-10"},
            ]
            data["updated_at"] = "2025-03-10T09:00:00Z"
            yield type(record).model_validate(data)
