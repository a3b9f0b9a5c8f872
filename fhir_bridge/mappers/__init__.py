"""Pure translations between internal records and FHIR R4 (US Core, Gravity SDOH).

No I/O and no hidden clock: pass a :class:`MappingContext` for the identifier namespace and
the time used to stamp imported records.
"""

from ._conformance import check_resource
from ._context import DEFAULT_NAMESPACE, MappingContext, full_url_for
from ._plan_note import plan_note_entries
from ._provenance import provenance, provenance_entry
from ._refs import identifiers_of
from ._refs import party_out as party_reference
from ._terminology import TerminologyFinding, terminology_findings, terminology_warnings
from ._translate import (
    IMPORTED_TYPES,
    Entry,
    ImportResult,
    check_package,
    directory_entries,
    from_fhir,
    party_entries,
    record_references,
    resources_of,
    to_bundle,
    to_entries,
)
from ._vocab import ALL as VOCABULARIES
from ._vocab import Vocabulary

__all__ = [
    "DEFAULT_NAMESPACE",
    "IMPORTED_TYPES",
    "VOCABULARIES",
    "Entry",
    "ImportResult",
    "MappingContext",
    "TerminologyFinding",
    "Vocabulary",
    "check_package",
    "check_resource",
    "directory_entries",
    "from_fhir",
    "full_url_for",
    "identifiers_of",
    "party_entries",
    "party_reference",
    "plan_note_entries",
    "provenance",
    "provenance_entry",
    "record_references",
    "resources_of",
    "terminology_findings",
    "terminology_warnings",
    "to_bundle",
    "to_entries",
]
