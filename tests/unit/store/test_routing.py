"""Routing, pure: which of a patient's records go to which connection, and in what shape."""

from __future__ import annotations

from fhir_bridge import model as m
from fhir_bridge.store import Organization, Route, Routing, Share, as_shared
from tests.unit.store.records import NOW, goal, patient

PANTRY = m.Party(
    kind=m.PartyKind.organization,
    id="org-pantry",
    identifiers=[m.Identifier(system="http://hl7.org/fhir/sid/us-npi", value="1234567893")],
)
ROUTING = Routing(
    (
        Route("hospital-one", "listed"),
        Route("hospital-two", "listed"),
        Route("community", "listed", Organization(id="org-pantry")),
        Route("registry", "all"),
    )
)


def referral(performer: m.Party | None = PANTRY, *, tracked: bool = False) -> m.Referral:
    return m.Referral(
        id="ref-1",
        updated_at=NOW,
        patient="p1",
        status=m.ReferralStatus.active,
        service=m.Concept(text="food pantry"),
        performer=performer,
        reasons=[m.Ref(id="prob-1")],
        goals=[m.Ref(id="g1")],
        consent="Consent/9",
        tracking=m.Tracking(status=m.TrackingStatus.accepted, owner=performer) if tracked else None,
    )


def test_a_listed_connection_takes_only_enrolled_patients_and_all_takes_everyone() -> None:
    records = [patient(), goal()]
    assert ROUTING.shares(records, "hospital-one", enrolled=False) == {}
    assert ROUTING.shares(records, "hospital-one", enrolled=True) == {
        ("patient", "p1"): Share.full,
        ("goal", "g1"): Share.full,
    }
    assert set(ROUTING.shares(records, "registry", enrolled=False).values()) == {Share.full}
    # a connection the configuration does not name (push --fhir-url) takes everything
    assert ROUTING.route("http://ad-hoc/fhir").enrol == "all"


def test_the_fulfilling_organisation_gets_the_referral_and_the_patient_only() -> None:
    records = [patient(), goal(), referral()]
    assert ROUTING.fulfiller(referral()) == "community"
    assert ROUTING.shares(records, "community", enrolled=False) == {
        ("patient", "p1"): Share.full,
        ("referral", "ref-1"): Share.referral,
    }
    # enrolled there too: everything, the referral whole
    assert ROUTING.shares(records, "community", enrolled=True)[("referral", "ref-1")] == Share.full
    # the enrolled hospital gets the request, not the Task (that lives with the fulfiller)
    assert ROUTING.shares(records, "hospital-one", enrolled=True)[("referral", "ref-1")] == (
        Share.request
    )
    # a hospital where the patient is not enrolled gets nothing, referral included
    assert ROUTING.shares(records, "hospital-two", enrolled=False) == {}
    assert ROUTING.destinations(referral(), ["hospital-one"], []) == [
        "hospital-one",
        "community",
        "registry",
    ]
    assert ROUTING.destinations(patient(), [], ["community"]) == ["community", "registry"]


def test_a_standalone_task_goes_only_where_its_owner_fulfils_it() -> None:
    task = m.ReferralTask(
        id="t1",
        updated_at=NOW,
        patient="p1",
        referral=m.Ref(reference="ServiceRequest/5"),
        tracking=m.Tracking(status=m.TrackingStatus.in_progress, owner=PANTRY),
    )
    assert ROUTING.share(task, "community", enrolled=False, fulfils_patient=True) == Share.referral
    assert ROUTING.share(task, "hospital-one", enrolled=True, fulfils_patient=False) is None


def test_organisations_are_named_by_id_or_by_identifier() -> None:
    by_npi = Organization(system="http://hl7.org/fhir/sid/us-npi", value="1234567893")
    assert by_npi.names(PANTRY)
    assert Organization(value="1234567893").names(PANTRY)  # any system
    assert not Organization(system="urn:other", value="1234567893").names(PANTRY)
    assert not Organization(id="org-other").names(PANTRY)
    person = PANTRY.model_copy(update={"kind": m.PartyKind.practitioner})
    assert not Organization(id="org-pantry").names(person)
    assert ROUTING.fulfiller(referral(performer=None)) is None


def test_shapes_the_referral_takes() -> None:
    to_fulfiller = as_shared(referral(), Share.referral, fulfilled_here=True)
    assert isinstance(to_fulfiller, m.Referral)
    assert (to_fulfiller.reasons, to_fulfiller.goals, to_fulfiller.consent) == ([], [], None)
    assert to_fulfiller.tracking is not None  # Gravity direct: the Task is the request
    assert to_fulfiller.tracking.status == m.TrackingStatus.requested
    assert to_fulfiller.tracking.owner == PANTRY
    kept = as_shared(referral(tracked=True), Share.full, fulfilled_here=True)
    assert isinstance(kept, m.Referral)
    assert kept.tracking is not None
    assert kept.tracking.status == m.TrackingStatus.accepted
    assert kept.reasons
    request = as_shared(referral(tracked=True), Share.request, fulfilled_here=False)
    assert isinstance(request, m.Referral)
    assert request.tracking is None
    assert request.reasons
    untouched = as_shared(referral(), Share.full, fulfilled_here=False)
    assert isinstance(untouched, m.Referral)
    assert untouched.tracking is None
