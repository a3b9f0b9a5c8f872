"""Routing: which of a patient's records go to which connection (pure; no SQL here).

A connection takes either every patient's records (``enrol = "all"``) or only the records of
patients enrolled with it (``"listed"``). A connection that is an organisation's own endpoint
(``organization``) also takes the referrals that organisation fulfils, with the Patient they
are about, even when the patient is not enrolled there. The outbox (when a record changes,
``enqueue_unsynced``) and push (which of a patient's records it maps) both ask :class:`Routing`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

from fhir_bridge import model as m

Enrol = Literal["all", "listed"]


@dataclass(frozen=True, slots=True)
class Organization:
    """How a connection names the organisation it is the endpoint of: the internal directory
    id of the organisation (``id``), or one of its identifiers (``system`` and ``value``)."""

    id: str | None = None
    system: str | None = None
    value: str | None = None

    def names(self, party: m.Party | None) -> bool:
        """True when ``party`` is this organisation."""
        if party is None or party.kind != m.PartyKind.organization:
            return False
        if self.id is not None and party.id == self.id:
            return True
        return self.value is not None and any(
            i.value == self.value and (self.system is None or i.system == self.system)
            for i in party.identifiers
        )


@dataclass(frozen=True, slots=True)
class Route:
    """How records reach one connection."""

    connection: str
    enrol: Enrol = "all"
    organization: Organization | None = None


class Share(StrEnum):
    """What of one record goes to one connection."""

    full = "full"  # the record as it is
    request = "request"  # a referral another connection's organisation fulfils: no Task here
    referral = "referral"  # a referral fulfilled here for a patient not enrolled here


def performer_of(record: m.Record) -> m.Party | None:
    """Who fulfils a referral (its performer, else the owner its tracking names)."""
    if isinstance(record, m.Referral):
        owner = record.tracking.owner if record.tracking else None
        return record.performer or owner
    if isinstance(record, m.ReferralTask):
        return record.tracking.owner
    return None


def for_fulfiller(record: m.Record) -> m.Record:
    """A referral as it goes to the organisation fulfilling it for a patient not enrolled
    there: without references to the patient's other records (problems, goals, consent)."""
    if not isinstance(record, m.Referral):
        return record
    extras = {k: v for k, v in record.fhir_extras.items() if k != "ServiceRequest"}
    return record.model_copy(
        update={"reasons": [], "goals": [], "consent": None, "fhir_extras": extras}
    )


def as_shared(record: m.Record, share: Share, *, fulfilled_here: bool) -> m.Record:
    """``record`` as it goes to a connection it is shared with as ``share``.

    A referral fulfilled elsewhere comes without its tracking (so without a Task); one
    fulfilled here without tracking yet gets ``requested`` tracking owned by its performer
    (Gravity's direct pattern: the Task is the request to the organisation)."""
    if share == Share.referral:
        record = for_fulfiller(record)
    if not isinstance(record, m.Referral):
        return record
    if share == Share.request:
        return record.model_copy(update={"tracking": None})
    if fulfilled_here and record.tracking is None:
        tracking = m.Tracking(status=m.TrackingStatus.requested, owner=record.performer)
        return record.model_copy(update={"tracking": tracking})
    return record


@dataclass(frozen=True)
class Routing:
    """Every connection's route. A connection it does not know (``push --fhir-url``) takes
    everything."""

    routes: tuple[Route, ...] = ()
    _by_name: Mapping[str, Route] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {r.connection: r for r in self.routes})

    @classmethod
    def everywhere(cls, connections: Iterable[str]) -> Routing:
        """Every record to each of ``connections`` (``enrol = "all"``)."""
        return cls(tuple(Route(name) for name in connections))

    @property
    def connections(self) -> list[str]:
        return [r.connection for r in self.routes]

    @property
    def fulfils_any(self) -> bool:
        """True when some connection is an organisation's own endpoint."""
        return any(r.organization is not None for r in self.routes)

    def route(self, connection: str) -> Route:
        return self._by_name.get(connection) or Route(connection)

    def fulfiller(self, record: m.Record) -> str | None:
        """The connection of the organisation that fulfils this referral (None: none has one)."""
        performer = performer_of(record)
        if performer is None:
            return None
        for route in self.routes:
            if route.organization is not None and route.organization.names(performer):
                return route.connection
        return None

    def share(
        self, record: m.Record, connection: str, *, enrolled: bool, fulfils_patient: bool
    ) -> Share | None:
        """What of ``record`` goes to ``connection`` (None: nothing).

        ``enrolled``: the record's patient is enrolled with the connection. ``fulfils_patient``:
        the connection's organisation fulfils one of the patient's referrals (it then gets
        the Patient too, so the referral can name it).
        """
        return self.share_of(
            record.kind,
            self.fulfiller(record),
            connection,
            enrolled=enrolled,
            fulfils_patient=fulfils_patient,
        )

    def share_of(
        self,
        kind: str,
        fulfiller: str | None,
        connection: str,
        *,
        enrolled: bool,
        fulfils_patient: bool,
    ) -> Share | None:
        """:meth:`share` of a record known by its kind and the connection fulfilling it."""
        everything = self.route(connection).enrol == "all" or enrolled
        if fulfiller == connection:
            return Share.full if everything else Share.referral
        if kind == "patient":
            return Share.full if everything or fulfils_patient else None
        if not everything:
            return None
        if fulfiller is None:
            return Share.full
        # fulfilled elsewhere: the referral's Task lives with the organisation fulfilling it
        return Share.request if kind == "referral" else None

    def shares(
        self, records: Sequence[m.Record], connection: str, enrolled: bool
    ) -> dict[tuple[str, str], Share]:
        """What of each of one patient's records goes to ``connection``, by (kind, id)."""
        fulfils = any(self.fulfiller(r) == connection for r in records)
        found: dict[tuple[str, str], Share] = {}
        for record in records:
            share = self.share(record, connection, enrolled=enrolled, fulfils_patient=fulfils)
            if share is not None:
                found[(record.kind, record.id)] = share
        return found

    def destinations(
        self, record: m.Record, enrolled: Iterable[str], fulfils_patient: Iterable[str]
    ) -> list[str]:
        """The connections ``record`` is queued for."""
        enrolled, fulfilling = set(enrolled), set(fulfils_patient)
        return [
            r.connection
            for r in self.routes
            if self.share(
                record,
                r.connection,
                enrolled=r.connection in enrolled,
                fulfils_patient=r.connection in fulfilling,
            )
            is not None
        ]
