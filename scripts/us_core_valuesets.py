"""Writes fhir_bridge/mappers/_us_core_terminology.py from the US Core packages in the repository.

    python scripts/us_core_valuesets.py && ruff format fhir_bridge/mappers/_us_core_terminology.py

For the US Core profile of every resource type fhir-bridge emits, in 6.1.0 and 7.0.0, it lists
each element with a required or extensible binding to a value set the package ships and that
can be expanded from the package alone (concepts listed, or a whole code system the package
holds). Value sets defined by filters on external code systems (SNOMED CT, LOINC, BCP-47) or
published elsewhere (VSAC) are left out: the validating sandbox reports those as warnings.
"""

from __future__ import annotations

import json
import pprint
import tarfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "7.0.0": ROOT / "sandbox/hapi/src/main/resources/ig/hl7.fhir.us.core-7.0.0.tgz",
    "6.1.0": ROOT / "sandbox/hapi/src/main/resources/ig/hl7.fhir.us.core-6.1.0.tgz",
}
OUT = ROOT / "fhir_bridge/mappers/_us_core_terminology.py"
PROFILES = {
    "Patient": "us-core-patient",
    "Practitioner": "us-core-practitioner",
    "PractitionerRole": "us-core-practitionerrole",
    "Organization": "us-core-organization",
    "CarePlan": "us-core-careplan",
    "CareTeam": "us-core-careteam",
    "Goal": "us-core-goal",
    "ServiceRequest": "us-core-servicerequest",
    "Condition": "us-core-condition-problems-health-concerns",
    "Condition/encounter-diagnosis": "us-core-condition-encounter-diagnosis",
    "MedicationRequest": "us-core-medicationrequest",
}
CODED = {"code", "Coding", "CodeableConcept"}


def _package(path: Path) -> dict[str, Any]:
    by_url: dict[str, Any] = {}
    with tarfile.open(path) as tar:
        for member in tar.getmembers():
            if not member.name.endswith(".json") or "/example/" in member.name:
                continue
            handle = tar.extractfile(member)
            if handle is None:
                continue
            try:
                data = json.load(handle)
            except ValueError:
                continue
            if isinstance(data, dict) and "url" in data and "resourceType" in data:
                by_url[data["url"]] = data
    return by_url


def _concepts(items: list[Any]) -> list[str]:
    codes = []
    for c in items:
        codes.append(c["code"])
        codes += _concepts(c.get("concept") or [])
    return codes


def _expand(value_set: dict[str, Any], by_url: dict[str, Any]) -> dict[str, list[str]] | None:
    compose = value_set.get("compose") or {}
    if compose.get("exclude"):
        return None
    codes: dict[str, list[str]] = {}
    for include in compose.get("include") or []:
        system = include.get("system")
        for imported in include.get("valueSet") or []:
            inner = by_url.get(imported.split("|")[0])
            expanded = _expand(inner, by_url) if inner else None
            if expanded is None:
                return None
            for inner_system, inner_codes in expanded.items():
                codes.setdefault(inner_system, []).extend(inner_codes)
        if include.get("valueSet") and not system:
            continue
        if not system or include.get("filter") or include.get("valueSet"):
            return None
        if include.get("concept"):
            codes.setdefault(system, []).extend(c["code"] for c in include["concept"])
            continue
        code_system = by_url.get(system)
        if code_system is None or code_system.get("content") != "complete":
            return None
        codes.setdefault(system, []).extend(_concepts(code_system.get("concept") or []))
    return {s: sorted(set(c)) for s, c in codes.items()} or None


Binding = tuple[str, str, int, str, dict[str, list[str]]]
"""element path (a slice as path:slice), strength, the element's min, value set, its codes"""


def bindings(by_url: dict[str, Any]) -> dict[str, list[Binding]]:
    out: dict[str, list[Binding]] = {}
    for resource_type, name in PROFILES.items():
        profile = by_url.get(f"http://hl7.org/fhir/us/core/StructureDefinition/{name}")
        if profile is None:
            continue
        for element in profile["snapshot"]["element"]:
            binding = element.get("binding") or {}
            path = element["id"]
            types = {t["code"] for t in element.get("type") or []}
            if (
                path.count(":") > 1
                or "[x]" in path
                or binding.get("strength") not in ("required", "extensible")
                or not types <= CODED
                or not binding.get("valueSet")
            ):
                continue
            url = binding["valueSet"].split("|")[0]
            value_set = by_url.get(url)
            expanded = _expand(value_set, by_url) if value_set else None
            if expanded is None:
                continue
            entry = (path, binding["strength"], int(element.get("min", 0)), url, expanded)
            out.setdefault(resource_type, []).append(entry)
    return out


def main() -> None:
    data = {version: bindings(_package(path)) for version, path in PACKAGES.items()}
    OUT.write_text(
        '"""Required and extensible bindings of US Core 6.1.0 and 7.0.0 to value sets the\n'
        "packages ship, expanded. Generated by scripts/us_core_valuesets.py from the packages\n"
        'in sandbox/hapi/src/main/resources/ig/ (then ruff format); do not edit."""\n\n'
        "BINDINGS: dict[str, dict[str, list[tuple[str, str, int, str, dict[str, list[str]]]]]] = "
        + pprint.pformat(data, width=100, sort_dicts=True)
        + "\n"
    )
    for version, per_type in data.items():
        print(version, {t: [b[0] for b in bs] for t, bs in per_type.items()})


if __name__ == "__main__":
    main()
