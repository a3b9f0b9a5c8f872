"""Hypothesis strategies for internal records: whole patient packages with consistent links."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import strategies as st

from fhir_bridge import model as m

TEXT = (
    st.text(
        alphabet=st.characters(
            whitelist_categories=("Lu", "Ll", "Nd"), whitelist_characters=" -<&'\""
        ),
        min_size=1,
        max_size=24,
    )
    .map(str.strip)
    .filter(bool)
)
IDS = st.from_regex(r"\A[a-z][a-z0-9\-]{0,11}\Z")
SYSTEMS = st.sampled_from(
    ["http://snomed.info/sct", "http://loinc.org", "http://hl7.org/fhir/sid/icd-10-cm", None]
)
DATES = st.dates(
    min_value=datetime(1930, 1, 1).date(), max_value=datetime(2035, 12, 31).date()
).map(lambda d: d.isoformat())
DATETIMES = st.one_of(
    DATES,
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2035, 1, 1)).map(
        lambda d: d.replace(microsecond=0).isoformat() + "+00:00"
    ),
)
TIMESTAMPS = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2035, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)


def _opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


CODES = st.builds(
    m.Code, system=SYSTEMS, code=st.from_regex(r"\A[A-Z0-9]{1,8}\Z"), display=_opt(TEXT)
)
CONCEPTS = st.one_of(
    st.builds(m.Concept, codings=st.lists(CODES, min_size=1, max_size=2), text=_opt(TEXT)),
    st.builds(m.Concept, text=TEXT),
)
ADHERENCE_CODES = st.one_of(
    st.builds(
        m.Concept,
        codings=st.sampled_from(
            [
                [m.Code(system="http://snomed.info/sct", code=c, display=d)]
                for c, d in (
                    ("1156699004", "Complies with drug therapy (finding)"),
                    ("275928001", "Drugs - partial non-compliance (finding)"),
                    ("702565001", "Non-compliance of drug therapy (finding)"),
                )
            ]
        ),
        text=_opt(TEXT),
    ),
    CONCEPTS,
)
"""A medication's adherence: a code of the VSAC value set, or any concept (it is extensible)."""
ADHERENCE = st.one_of(
    TEXT.map(lambda t: m.Adherence(code=m.Concept(text=t))),  # the older free text's reading
    st.builds(m.Adherence, code=ADHERENCE_CODES, asserted=_opt(DATETIMES)),
)
"""A medication statement's adherence (no coded sources: a statement's informant is
``information_source``)."""
PERIODS = st.builds(m.Period, start=DATETIMES, end=_opt(DATETIMES))
NOTES = st.builds(m.Note, text=TEXT, time=_opt(DATETIMES), author=_opt(TEXT))
QUANTITIES = st.builds(
    m.Quantity,
    value=st.integers(0, 500).map(float)
    | st.floats(0, 500, allow_nan=False).map(lambda x: round(x, 2)),
    unit=_opt(TEXT),
    code=_opt(st.sampled_from(["%", "kg", "mg/dL", "mm[Hg]"])),
    comparator=_opt(st.sampled_from(["<", "<=", ">=", ">"])),
)
NPIS = st.from_regex(r"\A[0-9]{9}\Z").map(lambda head: head + str(m.npi_check_digit(head)))
IDENTIFIERS = st.builds(
    m.Identifier,
    system=st.just("http://hospital.example/mrn"),
    value=st.from_regex(r"\A[0-9]{4,10}\Z"),
    assigner=_opt(TEXT),
) | st.builds(m.Identifier, system=st.just(m.NPI_SYSTEM), value=NPIS, assigner=_opt(TEXT))
PHONES = st.from_regex(r"\A555-01[0-9]{2}\Z")


@st.composite
def directory(draw: st.DrawFn) -> list[m.Party]:
    """A small pool of directory parties; records pick from it so details stay consistent."""
    ids = draw(st.lists(IDS, min_size=1, max_size=3, unique=True))
    return [
        m.Party(
            kind=draw(st.sampled_from([m.PartyKind.practitioner, m.PartyKind.organization])),
            id=party_id,
            name=draw(TEXT),
            identifiers=draw(st.lists(IDENTIFIERS, max_size=1)),
            phone=draw(_opt(PHONES)),
        )
        for party_id in ids
    ]


def _refs(draw: st.DrawFn, ids: list[str]) -> list[m.Ref]:
    if not ids:
        return []
    return [m.Ref(id=i) for i in draw(st.lists(st.sampled_from(ids), max_size=2, unique=True))]


LOINC_QUESTIONS = st.from_regex(r"\A[1-9][0-9]{3,4}-[0-9]\Z")
LOINC_ANSWERS = st.builds(
    m.Code,
    system=st.just("http://loinc.org"),
    code=st.from_regex(r"\ALA[1-9][0-9]{2,4}-[0-9]\Z"),
    display=_opt(TEXT),
)


@st.composite
def screenings_of(
    draw: st.DrawFn, pid: str, sid: str, stamp: datetime, party: st.SearchStrategy[m.Party]
) -> m.Screening:
    """A screening: an instrument with answers (some with a domain), findings and a score."""
    instrument = draw(st.sampled_from(list(m.ScreeningInstrument)))
    questions = draw(
        st.lists(
            LOINC_QUESTIONS.filter(lambda q: q not in ("44261-6", "70274-6")),
            max_size=4,
            unique=True,
        )
    )
    answers = [
        m.ScreeningAnswer(
            question=m.Code(system="http://loinc.org", code=q, display=draw(_opt(TEXT))),
            answer=draw(LOINC_ANSWERS),
            domain=draw(_opt(st.sampled_from(list(m.SdohCategory)))),
        )
        if draw(st.booleans())
        else m.ScreeningAnswer(
            question=m.Code(system="http://loinc.org", code=q), value=draw(st.integers(0, 30))
        )
        for q in questions
    ]
    domains = list(dict.fromkeys(a.domain for a in answers if a.domain is not None))
    findings = [
        m.ScreeningFinding(domain=d, positive=draw(st.booleans()))
        for d in domains
        if draw(st.booleans())
    ]
    top = {m.ScreeningInstrument.phq_9: 27, m.ScreeningInstrument.gad_7: 21}.get(instrument)
    return m.Screening(
        id=sid,
        updated_at=stamp,
        patient=pid,
        instrument=instrument,
        # a form of our own names its instrument (the last segment of its canonical)
        questionnaire=draw(
            _opt(
                st.just(f"http://forms.example/Questionnaire/{instrument.value.replace('_', '-')}")
            )
        ),
        status=draw(st.sampled_from(list(m.ScreeningStatus))),
        authored=draw(DATETIMES),
        author=draw(_opt(party)),
        answers=answers,
        score=draw(_opt(st.integers(0, top))) if top is not None else None,
        findings=findings,
    )


@st.composite
def packages(draw: st.DrawFn) -> m.PatientPackage:
    pid = "p-" + draw(IDS)
    parties = draw(directory())
    party = st.sampled_from(parties)
    stamp = draw(TIMESTAMPS)
    patient = m.Patient(
        id=pid,
        updated_at=stamp,
        identifiers=draw(st.lists(IDENTIFIERS, max_size=2)),
        names=[m.PersonName(family=draw(TEXT), given=draw(st.lists(TEXT, min_size=1, max_size=2)))],
        birth_date=draw(DATES),
        sex=draw(st.sampled_from(list(m.Sex))),
        phone=draw(_opt(PHONES)),
        address=draw(_opt(st.builds(m.Address, lines=st.lists(TEXT, max_size=2), city=TEXT))),
        preferred_language=draw(
            _opt(st.just(m.Concept.model_validate({"system": "urn:ietf:bcp:47", "code": "es"})))
        ),
        caregivers=draw(
            st.lists(
                st.builds(
                    m.Caregiver,
                    name=st.builds(m.PersonName, text=TEXT),
                    relationship=_opt(CONCEPTS),
                    phone=_opt(PHONES),
                ),
                max_size=1,
            )
        ),
    )
    screenings = [
        draw(screenings_of(pid, f"{pid}-scr{i}", stamp, party))
        for i in range(draw(st.integers(0, 2)))
    ]
    screening_ids = [s.id for s in screenings]
    n_problems = draw(st.integers(0, 3))
    problems = [
        m.Problem(
            id=f"{pid}-prob{i}",
            updated_at=stamp,
            patient=pid,
            code=draw(CONCEPTS),
            category=draw(st.sampled_from(list(m.ProblemCategory))),
            sdoh_category=draw(_opt(st.sampled_from(list(m.SdohCategory)))),
            clinical_status=draw(_opt(st.sampled_from(list(m.ClinicalStatus)))),
            verification_status=draw(_opt(st.sampled_from(list(m.VerificationStatus)))),
            onset=draw(_opt(DATETIMES)),
            recorded_date=draw(_opt(DATETIMES)),
            recorder=draw(_opt(party)),
            evidence=_refs(draw, screening_ids),
            notes=draw(st.lists(NOTES, max_size=1)),
        )
        for i in range(n_problems)
    ]
    problem_ids = [p.id for p in problems]
    goals = [
        m.Goal(
            id=f"{pid}-goal{i}",
            updated_at=stamp,
            patient=pid,
            description=draw(CONCEPTS),
            lifecycle_status=draw(st.sampled_from(list(m.GoalLifecycle))),
            achievement_status=draw(_opt(st.sampled_from(list(m.GoalAchievement)))),
            priority=draw(_opt(st.sampled_from(list(m.GoalPriority)))),
            categories=draw(st.lists(CONCEPTS, max_size=1)),
            start_date=draw(_opt(DATES)),
            targets=draw(
                st.lists(
                    st.one_of(
                        st.builds(
                            m.GoalTarget,
                            measure=CONCEPTS,
                            quantity=QUANTITIES,
                            due_date=_opt(DATES),
                        ),
                        st.builds(m.GoalTarget, measure=CONCEPTS, text=TEXT, due_date=_opt(DATES)),
                        st.builds(
                            m.GoalTarget,
                            measure=CONCEPTS,
                            range=st.builds(m.Range, low=QUANTITIES, high=QUANTITIES),
                        ),
                        st.builds(m.GoalTarget, due_date=DATES),
                    ),
                    max_size=2,
                )
            ),
            addresses=_refs(draw, problem_ids),
            expressed_by=draw(_opt(party)),
            notes=draw(st.lists(NOTES, max_size=1)),
        )
        for i in range(draw(st.integers(0, 3)))
    ]
    goal_ids = [g.id for g in goals]
    referrals = []
    for i in range(draw(st.integers(0, 2))):
        tracking = draw(
            _opt(
                st.builds(
                    m.Tracking,
                    status=st.sampled_from(list(m.TrackingStatus)),
                    reason=_opt(TEXT),
                    owner=_opt(party),
                    outputs=st.lists(
                        st.builds(m.Output, reference=st.just("Procedure/abc"), type=CONCEPTS),
                        max_size=1,
                    ),
                    authored_on=_opt(DATETIMES),
                )
            )
        )
        referrals.append(
            m.Referral(
                id=f"{pid}-ref{i}",
                updated_at=stamp,
                patient=pid,
                status=draw(st.sampled_from(list(m.ReferralStatus))),
                intent=draw(st.sampled_from(list(m.ReferralIntent))),
                priority=draw(_opt(st.sampled_from(list(m.ReferralPriority)))),
                referral_kind=draw(st.sampled_from(list(m.ReferralKind))),
                sdoh_category=draw(_opt(st.sampled_from(list(m.SdohCategory)))),
                service=draw(CONCEPTS),
                reasons=_refs(draw, problem_ids),
                requester=draw(_opt(party)),
                performer=draw(_opt(party)),
                occurrence=draw(_opt(DATETIMES)),
                authored_on=draw(_opt(DATETIMES)),
                goals=_refs(draw, goal_ids),
                consent=draw(_opt(st.just("Consent/c1"))),
                tracking=tracking,
                notes=draw(st.lists(NOTES, max_size=1)),
            )
        )
    referral_ids = [r.id for r in referrals]
    team = m.CareTeam(
        id=f"{pid}-team",
        updated_at=stamp,
        patient=pid,
        name=draw(_opt(TEXT)),
        status=draw(_opt(st.sampled_from(list(m.CareTeamStatus)))),
        members=[
            m.CareTeamMember(party=p, roles=draw(st.lists(CONCEPTS, min_size=1, max_size=1)))
            for p in parties
        ],
    )
    medications = [
        m.Medication(
            id=f"{pid}-med{i}",
            updated_at=stamp,
            patient=pid,
            medication=draw(CONCEPTS),
            status=draw(
                st.sampled_from([s for s in m.MedicationStatus if s not in m.REQUEST_ONLY])
            ),
            dosage=draw(_opt(TEXT)),
            effective=draw(_opt(DATETIMES)),
            reasons=_refs(draw, problem_ids),
            adherence=draw(_opt(ADHERENCE)),
        )
        for i in range(draw(st.integers(0, 2)))
    ]
    medications += [
        m.Medication(
            id=f"{pid}-medrx{i}",
            updated_at=stamp,
            patient=pid,
            medication=draw(CONCEPTS),
            status=draw(
                st.sampled_from([s for s in m.MedicationStatus if s not in m.STATEMENT_ONLY])
            ),
            dosage=draw(_opt(TEXT)),
            reasons=_refs(draw, problem_ids),
            request=m.MedicationRequestDetails(
                intent=draw(st.sampled_from(list(m.MedicationIntent))),
                authored_on=draw(_opt(DATETIMES)),
                requester=m.Party(
                    kind=m.PartyKind.practitioner, id=f"{pid}-prescriber", name="Dr Rx"
                ),
                reported=draw(_opt(st.booleans())),
            ),
            adherence=draw(
                _opt(
                    st.builds(
                        m.Adherence,
                        code=ADHERENCE_CODES,
                        asserted=DATETIMES,
                        sources=st.lists(CONCEPTS, max_size=2),
                    )
                )
            ),
        )
        for i in range(draw(st.integers(0, 1)))
    ]
    activities = [m.Activity(referral=m.Ref(id=r)) for r in referral_ids]
    activities += [
        m.Activity(
            planned=m.PlannedActivity(
                kind=draw(_opt(st.sampled_from(["Appointment", "Task", "CommunicationRequest"]))),
                code=draw(_opt(CONCEPTS)),
                status=draw(st.sampled_from(list(m.ActivityStatus))),
                description=draw(_opt(TEXT)),
                schedule=draw(
                    _opt(
                        st.builds(
                            m.Schedule,
                            frequency=st.integers(1, 3),
                            period=st.just(1.0),
                            period_unit=st.sampled_from(["d", "wk"]),
                            duration=st.just(20.0),
                            duration_unit=st.just("min"),
                        )
                    )
                ),
                performers=draw(st.lists(party, max_size=1)),
                goals=_refs(draw, goal_ids),
            ),
            progress=draw(st.lists(NOTES, max_size=1)),
        )
        for _ in range(draw(st.integers(0, 2)))
    ]
    plan = m.CarePlan(
        id=f"{pid}-plan",
        updated_at=stamp,
        patient=pid,
        title=draw(_opt(TEXT)),
        description=draw(_opt(TEXT)),
        status=draw(st.sampled_from(list(m.CarePlanStatus))),
        intent=draw(st.sampled_from(list(m.PlanIntent))),
        categories=draw(st.lists(CONCEPTS, max_size=2)),
        period=draw(_opt(PERIODS)),
        author=draw(_opt(party)),
        contributors=draw(st.lists(party, max_size=1)),
        care_teams=[m.Ref(id=team.id)],
        addresses=_refs(draw, problem_ids),
        goals=[m.Ref(id=g) for g in goal_ids],
        activities=activities,
        created_at=draw(_opt(TIMESTAMPS)),
        notes=draw(st.lists(NOTES, max_size=2)),
    )
    encounters = [
        m.Encounter(
            id=f"{pid}-enc{i}",
            updated_at=stamp,
            patient=pid,
            status=draw(st.sampled_from(list(m.EncounterStatus))),
            encounter_class=draw(st.sampled_from(list(m.EncounterClass))),
            types=draw(st.lists(CONCEPTS, min_size=1, max_size=2)),
            period=draw(_opt(PERIODS)),
            length_minutes=draw(_opt(st.integers(0, 240).map(float))),
            participants=[
                m.EncounterParticipant(party=p, roles=draw(st.lists(CONCEPTS, max_size=1)))
                for p in draw(st.lists(party, max_size=1))
            ],
            reasons=_refs(draw, problem_ids),
            reason_codes=draw(st.lists(CONCEPTS, max_size=1)),
            goals=_refs(draw, goal_ids),
            referrals=_refs(draw, referral_ids),
            hospitalization=draw(
                _opt(
                    st.builds(
                        m.Hospitalization,
                        admit_source=_opt(CONCEPTS),
                        discharge_disposition=CONCEPTS,
                    )
                )
            ),
            service_provider=draw(
                _opt(st.sampled_from([p for p in parties if p.kind is m.PartyKind.organization]))
                if any(p.kind is m.PartyKind.organization for p in parties)
                else st.none()
            ),
        )
        for i in range(draw(st.integers(0, 2)))
    ]
    return m.PatientPackage(
        patient=patient,
        encounters=encounters,
        screenings=screenings,
        care_plans=[plan],
        goals=goals,
        referrals=referrals,
        problems=problems,
        medications=medications,
        care_teams=[team],
    )
