"""Completeness check of a handoff package: named findings, each an error or a warning."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from fhir_bridge import model as m
from fhir_bridge.sync import (
    CONTACT_BUSINESS_DAYS,
    VISIT_DAYS_MODERATE,
    is_transitional,
    windows,
)

Severity = Literal["error", "warning"]
OPEN_REFERRAL = (m.ReferralStatus.draft, m.ReferralStatus.active, m.ReferralStatus.on_hold)
OPEN_ACTIVITY = (
    m.ActivityStatus.not_started,
    m.ActivityStatus.scheduled,
    m.ActivityStatus.in_progress,
    m.ActivityStatus.on_hold,
)
FOLLOW_UP_KINDS = ("Appointment", "CommunicationRequest")


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: Severity
    message: str
    record: str | None = None  # kind/id the finding is about


def check(package: m.PatientPackage) -> list[Finding]:
    """Every gap a receiving provider would trip over, errors first."""
    findings: list[Finding] = []
    add = findings.append
    patient = package.patient
    if not patient.identifiers:
        add(
            Finding(
                "no-patient-identifier",
                "error",
                "the patient has no identifier (MRN) the receiver can match on",
                f"patient/{patient.id}",
            )
        )
    active = [
        p
        for p in package.problems
        if p.clinical_status
        in (None, m.ClinicalStatus.active, m.ClinicalStatus.recurrence, m.ClinicalStatus.relapse)
    ]
    if not active:
        add(Finding("no-active-problems", "error", "no active problem or health concern is listed"))
    if not package.medications:
        add(
            Finding(
                "no-medication-list",
                "error",
                'no medication list (record "No current medications" when there are none)',
            )
        )
    members = [member.party for team in package.care_teams for member in team.members]
    if not any(party.phone for party in members) and not any(t.phone for t in package.care_teams):
        add(Finding("no-care-team-phone", "error", "no care-team contact has a phone number"))
    if not _follow_up(package):
        add(
            Finding(
                "no-follow-up",
                "error",
                "no follow-up appointment or contact is scheduled (transitional care expects "
                "contact within 2 business days of discharge and a visit within 7 to 14 days)",
            )
        )
    for referral in package.referrals:
        if referral.status in OPEN_REFERRAL and referral.performer is None:
            add(
                Finding(
                    "referral-without-performer",
                    "error",
                    "an open referral names no performer",
                    f"referral/{referral.id}",
                )
            )
    for goal in package.goals:
        if not goal.targets or not any(t.due_date for t in goal.targets):
            missing = "a target or a due date" if not goal.targets else "a due date"
            add(
                Finding(
                    "goal-without-target", "warning", f"a goal has no {missing}", f"goal/{goal.id}"
                )
            )
    referred = {r.sdoh_category for r in package.referrals if r.sdoh_category}
    referred_reasons = {ref.id for r in package.referrals for ref in r.reasons}
    for problem in package.problems:
        if (
            problem.sdoh_category
            and problem.sdoh_category not in referred
            and problem.id not in referred_reasons
        ):
            add(
                Finding(
                    "sdoh-need-without-referral",
                    "warning",
                    f"a social need ({problem.sdoh_category.value}) has no referral",
                    f"problem/{problem.id}",
                )
            )
    findings += _transitional_timing(package)
    return sorted(findings, key=lambda f: f.severity != "error")


def _day(value: str | None) -> date | None:
    if not value or len(value) < 10:
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _transitional_timing(package: m.PatientPackage) -> list[Finding]:
    """Transitional care: the windows of ``sync._transitions`` (contact within 2 business
    days of discharge; a visit within 14 days, the longer of the two visit windows)."""
    out: list[Finding] = []
    for plan in package.care_plans:
        discharge = _day(plan.period.start) if plan.period else None
        if not is_transitional(plan) or discharge is None:
            continue
        due = windows(discharge, high_complexity=False)
        planned = [
            a.planned for a in plan.activities if a.planned and a.planned.status in OPEN_ACTIVITY
        ]
        contacts = [
            _day(p.scheduled_period.start)
            for p in planned
            if p.kind == "CommunicationRequest" and p.scheduled_period
        ]
        visits = [
            _day(p.scheduled_period.start)
            for p in planned
            if p.kind == "Appointment" and p.scheduled_period
        ]
        first_contact = min((d for d in contacts if d), default=None)
        first_visit = min((d for d in visits if d), default=None)
        where = f"careplan/{plan.id}"
        if first_contact is None or first_contact > due.contact_by:
            out.append(
                Finding(
                    "contact-late",
                    "warning",
                    f"no contact scheduled within {CONTACT_BUSINESS_DAYS} business days of "
                    "discharge",
                    where,
                )
            )
        if first_visit is None or first_visit > due.visit_by:
            out.append(
                Finding(
                    "visit-late",
                    "warning",
                    f"no visit scheduled within {VISIT_DAYS_MODERATE} days of discharge",
                    where,
                )
            )
    return out


def _follow_up(package: m.PatientPackage) -> bool:
    for plan in package.care_plans:
        for activity in plan.activities:
            planned = activity.planned
            if (
                planned is not None
                and planned.kind in FOLLOW_UP_KINDS
                and planned.status in OPEN_ACTIVITY
                and (planned.scheduled_period or planned.schedule or planned.scheduled_text)
            ):
                return True
    return False
