"""Transition-of-care handoffs: build a checked document Bundle, render it, receive one."""

from ._check import Finding, check
from ._document import DOCUMENT_TYPES, HandoffType, as_transaction, build_document, deliver
from ._html import render_html
from ._receive import match_patient, package_of, read_package, rekey
from ._service import Handoff, deliver_handoff, finding_json, prepare_handoff, record_handoff

__all__ = [
    "DOCUMENT_TYPES",
    "Finding",
    "Handoff",
    "HandoffType",
    "as_transaction",
    "build_document",
    "check",
    "deliver",
    "deliver_handoff",
    "finding_json",
    "match_patient",
    "package_of",
    "prepare_handoff",
    "read_package",
    "record_handoff",
    "rekey",
    "render_html",
]
