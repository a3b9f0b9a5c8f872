"""An async FHIR R4 client on httpx: retries that never duplicate, bounded concurrency,
paging that follows the server's links, capability discovery, and auth (bearer, client
credentials, SMART Backend Services).

Errors are in :mod:`fhir_bridge.errors` (``FhirError`` and below); see docs/fhir-client.md.
"""

from fhir_bridge.errors import OperationOutcome, OutcomeIssue

from ._auth import make_auth
from ._bearer import BearerToken
from ._bulk import ExportFile, ExportManifest
from ._bundles import EntryResult, entry_results
from ._capabilities import (
    ResourceCapabilities,
    ServerCapabilities,
    WriteStrategy,
    change_detection,
    write_strategy,
)
from ._client import FhirClient
from ._client_credentials import ClientCredentials
from ._core import FhirResponse, Observer, RequestEvent
from ._outcome import parse_outcome, status_error
from ._reads import matches
from ._retry import RetryPolicy, is_safe_to_repeat, parse_retry_after
from ._secrets import secret_from_env, secret_from_file
from ._smart import SmartBackendServices
from ._writes import WriteResult, if_match_value, version_of_etag

__all__ = [
    "BearerToken",
    "ClientCredentials",
    "EntryResult",
    "ExportFile",
    "ExportManifest",
    "FhirClient",
    "FhirResponse",
    "Observer",
    "OperationOutcome",
    "OutcomeIssue",
    "RequestEvent",
    "ResourceCapabilities",
    "RetryPolicy",
    "ServerCapabilities",
    "SmartBackendServices",
    "WriteResult",
    "WriteStrategy",
    "change_detection",
    "entry_results",
    "if_match_value",
    "is_safe_to_repeat",
    "make_auth",
    "matches",
    "parse_outcome",
    "parse_retry_after",
    "secret_from_env",
    "secret_from_file",
    "status_error",
    "version_of_etag",
    "write_strategy",
]
