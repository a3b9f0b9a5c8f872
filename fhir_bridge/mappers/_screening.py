"""Screening <-> US Core QuestionnaireResponse plus its derived Screening Assessment Observations.

Out: the QuestionnaireResponse holds the record (its ``questionnaire`` the LOINC form of the
instrument, one item per answer with the LOINC question as ``linkId`` ("/" + code, as the LOINC
forms have it) and the LOINC answer as
``valueCoding``, the total score as the item of its LOINC question); one US Core Observation
Screening Assessment per answer (the SDOH domain as a category, the care manager's finding for
that domain as ``interpretation``) and one that groups them (``hasMember``) and carries the total
score, each ``derivedFrom`` the QuestionnaireResponse. The same profiles exist in US Core 6.1 and
7.0, so one rendering serves both.

In: the QuestionnaireResponse gives the record; the Observations derived from it, when they
come with it, give back each answer's domain and the findings.
"""

from __future__ import annotations

from fhir_bridge import model as m

from . import _vocab as v
from ._common import US_CORE, code_in, head, patient_record_in, subject_out
from ._context import MappingContext
from ._datatypes import Json, Reader, clean, coding_out, first_code
from ._instruments import INSTRUMENTS, LOINC, instrument_of
from ._narrative import narrative
from ._refs import Resolver, party_out, ref_out

QR_PROFILE = US_CORE + "us-core-questionnaireresponse"
OBSERVATION_PROFILE = US_CORE + "us-core-observation-screening-assessment"
OBSERVATION_KIND = "screening_observation"
"""The identifier kind of the Observations derived from a screening."""
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
SDOHCC_CODES = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
US_CORE_CATEGORY = "http://hl7.org/fhir/us/core/CodeSystem/us-core-category"
_SURVEY = {"coding": [{"system": OBSERVATION_CATEGORY, "code": "survey", "display": "Survey"}]}
_SDOH = {"coding": [{"system": US_CORE_CATEGORY, "code": "sdoh", "display": "SDOH"}]}
_FINDING = {True: ("POS", "Positive"), False: ("NEG", "Negative")}
_OBSERVATION_STATUS = {
    m.ScreeningStatus.in_progress: "preliminary",
    m.ScreeningStatus.completed: "final",
    m.ScreeningStatus.amended: "amended",
    m.ScreeningStatus.entered_in_error: "entered-in-error",
    m.ScreeningStatus.stopped: "cancelled",
}
_NO_VALUE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
            "code": "unknown",
            "display": "Unknown",
        }
    ]
}


def observation_id(screening_id: str, question: str | None = None) -> str:
    """Our identifier value of a derived Observation: the screening's, per question."""
    return screening_id if question is None else f"{screening_id}.{question}"


def observation_ref(ctx: MappingContext, screening_id: str, question: str | None = None) -> Json:
    value = observation_id(screening_id, question)
    return {
        "reference": ctx.full_url(OBSERVATION_KIND, value),
        "type": "Observation",
        "identifier": ctx.identifier(OBSERVATION_KIND, value),
    }


def _code(code: str, display: str | None) -> Json:
    return clean({"coding": [clean({"system": LOINC, "code": code, "display": display})]})


def _answer_out(a: m.ScreeningAnswer) -> Json:
    if a.answer is not None:
        return {"valueCoding": coding_out(a.answer)}
    return {"valueInteger": a.value}


def screening_out(ctx: MappingContext, s: m.Screening) -> list[Json]:
    """The QuestionnaireResponse, then one Observation per answer, then the grouping one."""
    instrument = INSTRUMENTS[s.instrument]
    items = [
        clean(
            {
                "linkId": f"/{a.question.code}",
                "text": a.question.display,
                "answer": [_answer_out(a)],
            }
        )
        for a in s.answers
    ]
    if s.score is not None and instrument.total is not None:
        at = next(
            (i for i, a in enumerate(s.answers) if a.question.code in instrument.after_total),
            len(items),
        )
        items.insert(
            at,
            # as US Core's own PHQ-9 example has it: no text (the LOINC code names it), and
            # valueDecimal
            {"linkId": f"/{instrument.total}", "answer": [{"valueDecimal": s.score}]},
        )
    response = clean(
        {
            **head(ctx, "QuestionnaireResponse", "screening", s, [QR_PROFILE]),
            "text": narrative(
                "Screening",
                [
                    ("Instrument", instrument.panel_display),
                    ("Status", s.status.value),
                    ("Administered", s.authored),
                    ("Answers", str(len(s.answers))),
                    ("Total score", None if s.score is None else str(s.score)),
                ],
            ),
            "questionnaire": s.questionnaire or instrument.questionnaire,
            "status": v.SCREENING_STATUS.to_fhir(s.status),
            "subject": subject_out(ctx, s),
            "authored": s.authored,
            "author": party_out(ctx, s.author) if s.author else None,
            "item": items,
        }
    )
    response["identifier"] = response["identifier"][-1]  # 0..1 on a QuestionnaireResponse
    source = [ref_out(ctx, m.Ref(id=s.id), "screening")]
    findings = {f.domain: f.positive for f in s.findings}
    categories = [_SURVEY, _SDOH] if instrument.sdoh else [_SURVEY]
    common = {
        "status": _OBSERVATION_STATUS[s.status],
        "subject": subject_out(ctx, s),
        "effectiveDateTime": s.authored,
        "performer": [party_out(ctx, s.author)] if s.author else None,
        "derivedFrom": source,
    }
    answers = []
    for a in s.answers:
        question = a.question.code or ""
        domain = (
            [{"coding": [{"system": SDOHCC_CODES, "code": a.domain.value}]}] if a.domain else []
        )
        finding = findings.get(a.domain) if a.domain else None
        value = (
            {"valueCodeableConcept": {"coding": [coding_out(a.answer)]}}
            if a.answer is not None
            else {"valueInteger": a.value}
        )
        answers.append(
            clean(
                {
                    **head(
                        ctx,
                        "Observation",
                        OBSERVATION_KIND,
                        s,
                        [OBSERVATION_PROFILE],
                        record_id=observation_id(s.id, question),
                    ),
                    "text": narrative(
                        "Screening answer",
                        [
                            ("Question", a.question.display or question),
                            ("Answer", a.answer.display or a.answer.code if a.answer else None),
                            ("Value", None if a.value is None else str(a.value)),
                            ("Domain", a.domain.value if a.domain else None),
                        ],
                    ),
                    **common,
                    "category": categories + domain,
                    "code": _code(question, a.question.display),
                    **value,
                    "interpretation": [
                        {
                            "coding": [
                                {
                                    "system": INTERPRETATION,
                                    "code": _FINDING[finding][0],
                                    "display": _FINDING[finding][1],
                                }
                            ]
                        }
                    ]
                    if finding is not None
                    else None,
                }
            )
        )
    scored = s.score is not None and instrument.total is not None
    members = [observation_ref(ctx, s.id, a.question.code) for a in s.answers]
    group = clean(
        {
            **head(ctx, "Observation", OBSERVATION_KIND, s, [OBSERVATION_PROFILE]),
            "text": narrative(
                "Screening result",
                [
                    ("Instrument", instrument.panel_display),
                    ("Total score", str(s.score) if scored else None),
                    ("Answers", str(len(s.answers))),
                ],
            ),
            **common,
            "category": categories,
            "code": _code(instrument.total, instrument.total_display)
            if scored and instrument.total
            else _code(instrument.panel, instrument.panel_display),
            "valueInteger": s.score if scored else None,
            "dataAbsentReason": _NO_VALUE if not scored and not members else None,
            "hasMember": members,
        }
    )
    return [response, *answers, group]


# ------------------------------------------------------------------ FHIR -> internal


def _flat_items(items: list[Json], path: str) -> list[tuple[str, Json]]:
    """Every item of a QuestionnaireResponse, groups opened, with its path."""
    out: list[tuple[str, Json]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        here = f"{path}[{i}]"
        out.append((here, item))
        children = item.get("item")
        if isinstance(children, list):
            out += _flat_items(children, f"{here}.item")
    return out


def _integer(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def screening_in(
    ctx: MappingContext, resolver: Resolver, record_id: str, r: Json, reader: Reader
) -> Json:
    data = patient_record_in(ctx, resolver, record_id, r, reader)
    canonical = r.get("questionnaire")
    kind = instrument_of(canonical) if isinstance(canonical, str) else None
    if kind is None:
        reader.add(
            "questionnaire",
            "not an instrument fhir-bridge knows (AHC HRSN, PRAPARE, PHQ-9, GAD-7)",
        )
    total = INSTRUMENTS[kind].total if kind is not None else None
    status = r.get("status")
    if status is None:
        reader.add("status", "required")
    if r.get("authored") is None:
        reader.add("authored", "required: when the screening was administered")
    answers: list[Json] = []
    score: int | None = None
    for path, item in _flat_items(reader.objs(r, "item"), "item"):
        # a LOINC form's linkId is the question's code after a slash ("/44250-9"), inside a
        # group its path ("/93043-8/56051-6")
        link_id = str(item.get("linkId") or "").rstrip("/").rsplit("/", 1)[-1]
        given = [x for x in item.get("answer") or [] if isinstance(x, dict)]
        if not given or not link_id:
            continue  # a group, or a question left unanswered
        answer = given[0]
        number = _integer(answer.get("valueInteger", answer.get("valueDecimal")))
        if link_id == total:
            if number is None:
                reader.add(f"{path}.answer[0]", "the total score is a whole number")
            score = number
            continue
        question = clean({"system": LOINC, "code": link_id, "display": item.get("text")})
        coding = answer.get("valueCoding")
        if isinstance(coding, dict):
            answers.append(
                {
                    "question": question,
                    "answer": clean(
                        {
                            "system": coding.get("system"),
                            "code": coding.get("code"),
                            "display": coding.get("display"),
                        }
                    ),
                }
            )
        elif number is not None:
            answers.append({"question": question, "value": number})
        else:
            reader.add(f"{path}.answer[0]", "expected valueCoding or a whole number")
    author = reader.obj(r, "author")
    return clean(
        data
        | {
            "instrument": kind,
            "questionnaire": canonical
            if kind is not None and canonical != INSTRUMENTS[kind].questionnaire
            else None,
            "status": code_in(v.SCREENING_STATUS, status, reader, "status"),
            "authored": r.get("authored"),
            "author": resolver.party_in(author) if author else None,
            "answers": answers,
            "score": score,
        }
    )


def derived_in(data: Json, observations: list[Json]) -> None:
    """Each answer's domain and the findings, from the Observations derived from the response."""
    by_question = {a["question"]["code"]: a for a in data.get("answers") or []}
    findings: dict[str, bool] = {}
    for observation in observations:
        answer = by_question.get(first_code(observation.get("code"), LOINC) or "")
        if answer is None:
            continue
        domain = next(
            (
                first_code(c, SDOHCC_CODES)
                for c in observation.get("category") or []
                if isinstance(c, dict) and first_code(c, SDOHCC_CODES)
            ),
            None,
        )
        if domain is None:
            continue
        answer["domain"] = domain
        for concept in observation.get("interpretation") or []:
            code = first_code(concept, INTERPRETATION) if isinstance(concept, dict) else None
            if code in ("POS", "NEG"):
                findings.setdefault(domain, code == "POS")
    if findings:
        data["findings"] = [{"domain": d, "positive": p} for d, p in findings.items()]
