"""fhir-bridge: care-management records <-> FHIR R4 EHR servers."""

__version__ = "0.1.0"
