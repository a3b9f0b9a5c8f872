"""Patient matching, the decisions (pure): is one of the EHR's Patients ours, or is the
patient held for a person to settle?

The steps, in order (``_matcher`` makes the calls, this module judges what they found):

1. **identifier**: the EHR's own patient identifier (its MRN) searched as
   ``identifier=system|value``: one Patient is a match (score 1.0); several hold the patient.
2. **$match** (only where the CapabilityStatement declares ``Patient/$match``): asked with
   ``onlyCertainMatches``; the candidates graded ``certain`` (the ``match-grade`` extension;
   without one, a ``search.score`` of at least :data:`CERTAIN_SCORE`) count. One is a match;
   several hold the patient; none goes on to the next step.
3. **demographics**: ``family``, ``given``, ``birthdate`` and ``gender`` searched together
   (only when our patient has all four). Each candidate is scored: a quarter for each of the
   four that it holds exactly as we do (names compared without case, on any of its names).
   Accepted only with exactly one candidate scoring 1.0 (searches match names by prefix, so a
   candidate can be found and still score less); anything else holds the patient.

Nothing here looks at the network or the clock; reasons carry counts and step names, never
a name or a birth date.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

Json = dict[str, Any]
MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"
CERTAIN_SCORE = 0.95
DEMOGRAPHICS = ("family", "given", "birthdate", "gender")


@dataclass(frozen=True)
class Decision:
    """What matching concluded for one patient on one connection."""

    state: Literal["matched", "held"]
    step: str
    server_id: str | None = None
    reason: str | None = None
    candidates: int = 0
    score: float | None = None


def mrn_of(patient: Json, system: str | None) -> str | None:
    """The value of our patient's identifier in ``system`` (the EHR's MRN), if it has one."""
    if not system:
        return None
    return next(
        (
            str(i["value"])
            for i in patient.get("identifier") or []
            if i.get("system") == system and i.get("value")
        ),
        None,
    )


def by_identifier(found: Sequence[Json]) -> Decision | None:
    """Step 1: the Patients found by the MRN. None when there are none (next step)."""
    if not found:
        return None
    if len(found) == 1:
        return Decision("matched", "identifier", str(found[0]["id"]), candidates=1, score=1.0)
    reason = f"identifier: {len(found)} patients carry the identifier"
    return Decision("held", "identifier", reason=reason, candidates=len(found))


def by_match_operation(bundle: Json) -> Decision | None:
    """Step 2: the Bundle ``Patient/$match`` answered. None when nothing certain came back."""
    certain: list[tuple[str, float | None]] = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        if resource.get("resourceType") != "Patient" or not resource.get("id"):
            continue
        search = entry.get("search") or {}
        score = search.get("score")
        score = float(score) if isinstance(score, int | float) else None
        grades = [
            e.get("valueCode") for e in search.get("extension") or [] if e.get("url") == MATCH_GRADE
        ]
        if grades[:1] == ["certain"] or (
            not grades and score is not None and score >= CERTAIN_SCORE
        ):
            certain.append((str(resource["id"]), score))
    if not certain:
        return None
    if len(certain) == 1:
        server_id, score = certain[0]
        return Decision("matched", "$match", server_id, candidates=1, score=score)
    reason = f"$match: {len(certain)} certain candidates"
    return Decision("held", "$match", reason=reason, candidates=len(certain))


def demographic_query(patient: Json) -> dict[str, str] | None:
    """Search parameters for step 3, or None when our patient lacks one of the four."""
    names = patient.get("name") or []
    name = names[0] if names else {}
    given = (name.get("given") or [None])[0]
    query = {
        "family": name.get("family"),
        "given": given,
        "birthdate": patient.get("birthDate"),
        "gender": patient.get("gender"),
    }
    if not all(isinstance(v, str) and v for v in query.values()):
        return None
    return {k: str(v) for k, v in query.items()}


def demographic_score(ours: Json, candidate: Json) -> float:
    """A quarter for each of family, given, birth date and gender the candidate holds as we do."""
    query = demographic_query(ours)
    if query is None:
        return 0.0

    def same(a: Any, b: Any) -> bool:
        return isinstance(a, str) and isinstance(b, str) and a.strip().lower() == b.strip().lower()

    names = candidate.get("name") or []
    points = [
        any(same(n.get("family"), query["family"]) for n in names),
        any(same(g, query["given"]) for n in names for g in n.get("given") or []),
        candidate.get("birthDate") == query["birthdate"],
        candidate.get("gender") == query["gender"],
    ]
    return float(sum(points)) / len(points)


def by_demographics(ours: Json, found: Sequence[Json]) -> Decision:
    """Step 3: accepted only with exactly one candidate scoring 1.0; otherwise held."""
    if not found:
        return Decision("held", "demographics", reason="no match: demographics found no patient")
    if len(found) > 1:
        reason = f"ambiguous: demographics found {len(found)} patients"
        return Decision("held", "demographics", reason=reason, candidates=len(found))
    score = demographic_score(ours, found[0])
    if score < 1.0:
        reason = f"uncertain: the one candidate scored {score:.2f} (1.00 needed)"
        return Decision("held", "demographics", reason=reason, candidates=1, score=score)
    return Decision("matched", "demographics", str(found[0]["id"]), candidates=1, score=score)


def not_found(tried: Sequence[str]) -> Decision:
    """Held: no step found the patient (``tried``: the steps that ran)."""
    steps = ", ".join(tried) or "none possible"
    return Decision("held", tried[-1] if tried else "none", reason=f"no match (tried: {steps})")
