"""Reports over what the store holds: a month's care-management minutes.

Each encounter record that counts (``Encounter.counted_minutes``) has one ``contacts`` row,
written in the same transaction as the record (``track_contact``); the report is plain SQL
over those rows.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from fhir_bridge import model as m

from ._database import Database
from ._tables import ContactRow


@dataclass(frozen=True, slots=True)
class PatientMinutes:
    """One patient's month: minutes, contacts, the highest threshold reached and the next."""

    patient_id: str
    minutes: float
    contacts: int
    reached: int | None
    next_threshold: int | None
    to_next: float | None


@dataclass(frozen=True, slots=True)
class CareManagerMinutes:
    """One care manager's month: minutes and contacts, patients seen, and how many of those
    patients reached each threshold (their month's total, whoever made the contacts)."""

    care_manager_id: str | None
    care_manager_name: str | None
    minutes: float
    contacts: int
    patients: int
    patients_reaching: dict[int, int]


@dataclass(frozen=True, slots=True)
class MinutesReport:
    month: str
    thresholds: tuple[int, ...]
    patients: list[PatientMinutes]
    care_managers: list[CareManagerMinutes]

    def lines(self) -> list[str]:
        """The report as a person reads it: one line per patient, then per care manager."""
        marks = "/".join(str(t) for t in self.thresholds)
        lines = [f"Care-management minutes, {self.month} (thresholds {marks} min)"]
        if not self.patients:
            return [*lines, "  no finished check-ins this month"]
        lines.append("  per patient:")
        for p in self.patients:
            reached = f"reached {p.reached}" if p.reached is not None else "below 20"
            ahead = f", {_number(p.to_next)} to {p.next_threshold}" if p.to_next is not None else ""
            lines.append(
                f"    {p.patient_id}: {_number(p.minutes)} min in {p.contacts} contact(s), "
                f"{reached}{ahead}"
            )
        lines.append("  per care manager:")
        for c in self.care_managers:
            who = c.care_manager_name or c.care_manager_id or "(not recorded)"
            reaching = ", ".join(f"{n} at {t}" for t, n in c.patients_reaching.items())
            lines.append(
                f"    {who}: {_number(c.minutes)} min in {c.contacts} contact(s) with "
                f"{c.patients} patient(s); patients reaching {reaching}"
            )
        return lines


@dataclass
class _Tally:
    minutes: float = 0.0
    contacts: int = 0
    name: str | None = None
    patients: set[str] = field(default_factory=set)

    def add(self, minutes: float, contacts: int, patient_id: str, name: str | None) -> None:
        self.minutes += minutes
        self.contacts += contacts
        self.patients.add(patient_id)
        self.name = self.name or name


def track_contact(s: Session, record: m.Record) -> None:
    """Keep the contacts row of an encounter record in step with it (none if it does not count)."""
    if not isinstance(record, m.Encounter):
        return
    minutes, month = record.counted_minutes(), record.month()
    if minutes is None or month is None or record.patient.id is None:
        forget_contact(s, record.kind, record.id)
        return
    manager = record.care_manager()
    s.merge(
        ContactRow(
            encounter_id=record.id,
            patient_id=record.patient.id,
            month=month,
            day=record.period.start[:10] if record.period and record.period.start else month,
            minutes=minutes,
            care_manager_id=(manager.id or manager.reference) if manager else None,
            care_manager_name=manager.name if manager else None,
        )
    )


def forget_contact(s: Session, kind: str, record_id: str) -> None:
    if kind == "encounter":
        s.execute(delete(ContactRow).where(ContactRow.encounter_id == record_id))


def _number(value: float) -> str:
    return f"{value:g}"


def _reached(minutes: float) -> tuple[int | None, int | None, float | None]:
    met = [t for t in m.MINUTE_THRESHOLDS if minutes >= t]
    ahead = [t for t in m.MINUTE_THRESHOLDS if minutes < t]
    nxt = ahead[0] if ahead else None
    return (met[-1] if met else None, nxt, nxt - minutes if nxt is not None else None)


class Reports:
    def __init__(self, db: Database) -> None:
        self._db = db

    def minutes(
        self, month: str, *, patient_id: str | None = None, care_manager_id: str | None = None
    ) -> MinutesReport:
        """Totals of ``month`` (YYYY-MM) per patient and per care manager, optionally for one
        patient and/or the contacts one care manager made."""
        where = [ContactRow.month == month]
        if patient_id is not None:
            where.append(ContactRow.patient_id == patient_id)
        if care_manager_id is not None:
            where.append(ContactRow.care_manager_id == care_manager_id)
        with self._db.session() as s:
            rows = s.execute(
                select(
                    ContactRow.care_manager_id,
                    func.max(ContactRow.care_manager_name),
                    ContactRow.patient_id,
                    func.sum(ContactRow.minutes),
                    func.count(),
                )
                .where(*where)
                .group_by(ContactRow.care_manager_id, ContactRow.patient_id)
                .order_by(ContactRow.care_manager_id, ContactRow.patient_id)
            ).all()
            patient_ids = sorted({row[2] for row in rows})
            totals = dict(
                s.execute(
                    select(ContactRow.patient_id, func.sum(ContactRow.minutes))
                    .where(ContactRow.month == month, ContactRow.patient_id.in_(patient_ids))
                    .group_by(ContactRow.patient_id)
                ).all()
            )
        per_patient: dict[str, _Tally] = defaultdict(_Tally)
        per_manager: dict[str | None, _Tally] = defaultdict(_Tally)
        for manager_id, manager_name, pid, minutes, count in rows:
            per_patient[pid].add(float(minutes), int(count), pid, None)
            per_manager[manager_id].add(float(minutes), int(count), pid, manager_name)
        patients = [
            PatientMinutes(pid, tally.minutes, tally.contacts, *_reached(tally.minutes))
            for pid, tally in sorted(per_patient.items())
        ]
        managers = [
            CareManagerMinutes(
                manager_id,
                tally.name,
                tally.minutes,
                tally.contacts,
                len(tally.patients),
                {
                    t: sum(1 for pid in tally.patients if float(totals.get(pid, 0.0)) >= t)
                    for t in m.MINUTE_THRESHOLDS
                },
            )
            for manager_id, tally in per_manager.items()
        ]
        return MinutesReport(month, m.MINUTE_THRESHOLDS, patients, managers)
