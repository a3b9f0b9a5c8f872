"""Codes checked against the value sets US Core ships, before anything is sent.

For each resource type's US Core profile (6.1.0 and 7.0.0; Condition by its category, as the
validating server chooses), the elements bound ``required`` or ``extensible`` to a value set the
package ships and that the package alone can expand (``_us_core_terminology``, generated from
the packages by ``scripts/us_core_valuesets.py``). A code outside a required binding is an
error (the EHR would refuse it); outside an extensible one, a warning (shown in the dry-run
plan). Value sets defined on external terminologies (SNOMED CT, LOINC, VSAC) are not checked
here; base R4 status codes are checked by ``_conformance``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ._datatypes import Json
from ._us_core_terminology import BINDINGS

Codes = dict[str, list[str]]


@dataclass(frozen=True, slots=True)
class TerminologyFinding:
    path: str
    reason: str
    severity: str  # "error" | "warning"

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def _profile_key(resource: Json) -> str:
    resource_type = str(resource.get("resourceType"))
    if resource_type == "Condition" and any(
        coding.get("code") == "encounter-diagnosis"
        for concept in resource.get("category") or []
        for coding in concept.get("coding") or []
    ):
        return "Condition/encounter-diagnosis"
    return resource_type


def _values(node: Any, steps: list[str], at: str) -> list[tuple[str, Any]]:
    """The values under ``node`` along ``steps``, each with its path (arrays indexed)."""
    if not steps:
        return [(at, node)]
    if not isinstance(node, dict) or steps[0] not in node:
        return []
    child = node[steps[0]]
    here = f"{at}.{steps[0]}"
    if isinstance(child, list):
        return [v for i, item in enumerate(child) for v in _values(item, steps[1:], f"{here}[{i}]")]
    return _values(child, steps[1:], here)


def _in(value: Any, codes: Codes) -> bool:
    if isinstance(value, str):
        return any(value in listed for listed in codes.values())
    if not isinstance(value, dict):
        return False
    if "coding" in value:
        return any(_in(coding, codes) for coding in value.get("coding") or [])
    return value.get("code") in codes.get(str(value.get("system")), [])


def terminology_findings(resource: Json, path: str) -> list[TerminologyFinding]:
    """Every code of ``resource`` outside a US Core binding the packages let us check."""
    found: dict[tuple[str, str, str], list[str]] = {}
    key = _profile_key(resource)
    for version, per_type in sorted(BINDINGS.items()):
        for element, strength, minimum, url, codes in per_type.get(key, []):
            base, _, slice_name = element.partition(":")
            steps = base.split(".")[1:]
            values = _values(resource, steps, path)
            value_set = url.rsplit("/", 1)[-1]
            if slice_name:
                if (
                    strength == "required"
                    and minimum >= 1
                    and not any(_in(v, codes) for _, v in values)
                ):
                    reason = f"one code from the value set {value_set} is required"
                    found.setdefault((".".join([path, *steps]), reason, "error"), []).append(
                        version
                    )
                continue
            for at, value in values:
                if not _in(value, codes):
                    severity = "error" if strength == "required" else "warning"
                    reason = f"not in the value set {value_set} ({strength} binding)"
                    found.setdefault((at, reason, severity), []).append(version)
    return [
        TerminologyFinding(at, f"{reason} of US Core {', '.join(versions)}", severity)
        for (at, reason, severity), versions in found.items()
    ]


def terminology_warnings(resource: Json) -> list[str]:
    """The extensible-binding findings of one resource, as the dry-run plan shows them."""
    name = str(resource.get("resourceType"))
    return [str(f) for f in terminology_findings(resource, name) if f.severity == "warning"]
