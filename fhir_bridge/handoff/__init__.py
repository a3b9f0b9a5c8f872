"""Transition-of-care handoffs: build a checked document Bundle, render it, receive one."""

from ._check import Finding, check
from ._document import DOCUMENT_TYPES, HandoffType, as_transaction, build_document, deliver
from ._html import render_html
from ._receive import match_patient, package_of, read_package, rekey
from ._service import (
    Arrival,
    Handoff,
    Received,
    deliver_handoff,
    fetch_bundle,
    finding_json,
    prepare_handoff,
    read_arrival,
    receive_handoff,
    record_handoff,
    send_handoff,
)

__all__ = [
    "DOCUMENT_TYPES",
    "Arrival",
    "Finding",
    "Handoff",
    "HandoffType",
    "Received",
    "as_transaction",
    "build_document",
    "check",
    "deliver",
    "deliver_handoff",
    "fetch_bundle",
    "finding_json",
    "match_patient",
    "package_of",
    "prepare_handoff",
    "read_arrival",
    "read_package",
    "receive_handoff",
    "record_handoff",
    "rekey",
    "render_html",
    "send_handoff",
]
