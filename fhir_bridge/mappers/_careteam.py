"""CareTeam <-> FHIR CareTeam (US Core CareTeam)."""

from __future__ import annotations

from fhir_bridge import model as m

from . import _vocab as v
from ._common import US_CORE, code_in, head, notes_out, patient_record_in, subject_out
from ._context import MappingContext
from ._datatypes import (
    Json,
    Reader,
    clean,
    concept_in,
    concept_out,
    period_in,
    period_out,
    telecom_in,
    telecom_out,
)
from ._narrative import concept_text, joined, narrative
from ._refs import Resolver, participation_out, participations_in, parties_in, party_out


def _member_label(x: m.CareTeamMember) -> str | None:
    return joined([x.party.name, joined([concept_text(r) for r in x.roles]), x.party.phone])


def careteam_out(ctx: MappingContext, t: m.CareTeam) -> Json:
    return clean(
        {
            **head(ctx, "CareTeam", "careteam", t, [US_CORE + "us-core-careteam"]),
            "text": narrative(
                t.name or "Care team",
                [("Members", "; ".join(filter(None, map(_member_label, t.members))))],
            ),
            "status": v.CARETEAM_STATUS.to_fhir(t.status) if t.status else None,
            "category": [concept_out(c) for c in t.categories],
            "name": t.name,
            "subject": subject_out(ctx, t),
            "period": period_out(t.period),
            "participant": [participation_out(ctx, x, "member", "role") for x in t.members],
            "managingOrganization": [party_out(ctx, o) for o in t.managing_organizations],
            "telecom": telecom_out(t.phone, None),
            "note": notes_out(t),
        }
    )


def careteam_in(
    ctx: MappingContext, resolver: Resolver, record_id: str, r: Json, reader: Reader
) -> Json:
    data = patient_record_in(ctx, resolver, record_id, r, reader)
    status = r.get("status")
    members = participations_in(
        resolver, r, reader, who="member", roles="role", why="required: who takes part"
    )
    return clean(
        data
        | {
            "name": r.get("name"),
            "status": code_in(v.CARETEAM_STATUS, status, reader, "status"),
            "categories": [c for c in (concept_in(x) for x in reader.objs(r, "category")) if c],
            "members": members,
            "period": period_in(reader.obj(r, "period")),
            "managing_organizations": parties_in(resolver, reader.objs(r, "managingOrganization")),
            "phone": telecom_in(reader.objs(r, "telecom"), "phone"),
        }
    )
