"""The Provenance that accompanies what fhir-bridge writes to an EHR (US Core Provenance).

One Provenance per transaction, targeting every resource the transaction writes, so the
hospital can tell who wrote what: ``recorded`` is when it was sent; two agents, both
identified by the configured namespace (which names this care-management deployment):

- ``author`` (provenance-participant-type): the care-management organisation, an
  Organization identified by the namespace URI;
- ``transmitter`` (US Core participant type): fhir-bridge itself, a Device, on behalf of that
  organisation (US Core's provenance-1: a Device agent names whom it acts for).

Pure: the caller passes the namespace, the targets and the time.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

Json = dict[str, Any]

US_CORE_PROVENANCE = "http://hl7.org/fhir/us/core/StructureDefinition/us-core-provenance"
PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
US_CORE_PARTICIPANT_TYPE = (
    "http://hl7.org/fhir/us/core/CodeSystem/us-core-provenance-participant-type"
)
URI_SYSTEM = "urn:ietf:rfc:3986"
DEVICE_NAME = "fhir-bridge"


def _agent(system: str, code: str, display: str, who: Json, on_behalf_of: Json | None) -> Json:
    agent: Json = {
        "type": {"coding": [{"system": system, "code": code, "display": display}]},
        "who": who,
    }
    if on_behalf_of is not None:
        agent["onBehalfOf"] = on_behalf_of
    return agent


def provenance(namespace: str, targets: Sequence[str], recorded: datetime) -> Json:
    """A Provenance of ``targets`` (references: ``Type/id`` or a Bundle entry's fullUrl)."""
    organization: Json = {
        "type": "Organization",
        "identifier": {"system": URI_SYSTEM, "value": namespace},
        "display": "Care management (fhir-bridge)",
    }
    device: Json = {
        "type": "Device",
        "identifier": {"system": f"{namespace}/device", "value": DEVICE_NAME},
        "display": DEVICE_NAME,
    }
    return {
        "resourceType": "Provenance",
        "meta": {"profile": [US_CORE_PROVENANCE]},
        "target": [{"reference": target} for target in targets],
        "recorded": recorded.isoformat(timespec="milliseconds"),
        "agent": [
            _agent(PARTICIPANT_TYPE, "author", "Author", organization, None),
            _agent(US_CORE_PARTICIPANT_TYPE, "transmitter", "Transmitter", device, organization),
        ],
    }


def provenance_entry(namespace: str, targets: Sequence[str], recorded: datetime) -> Json:
    """The transaction entry creating :func:`provenance` (a fullUrl derived from its content,
    so the same writes at the same moment give the same entry)."""
    key = "|".join([namespace, recorded.isoformat(), *targets])
    return {
        "fullUrl": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, 'provenance|' + key)}",
        "resource": provenance(namespace, targets, recorded),
        "request": {"method": "POST", "url": "Provenance"},
    }
