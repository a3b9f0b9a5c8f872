"""Transition-of-care handoffs: build a checked document Bundle, render it, receive one."""

from ._check import Finding, check
from ._document import DOCUMENT_TYPES, HandoffType, as_transaction, build_document, deliver
from ._html import render_html
from ._receive import match_patient, package_of, read_package, rekey

__all__ = [
    "DOCUMENT_TYPES",
    "Finding",
    "HandoffType",
    "as_transaction",
    "build_document",
    "check",
    "deliver",
    "match_patient",
    "package_of",
    "read_package",
    "rekey",
    "render_html",
]
