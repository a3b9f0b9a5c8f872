"""Logging as every entry point configures it: one handler, structured lines, no PHI.

``configure(level, fmt)`` is called once at start-up by the CLI (every command), ``serve``
and the worker. Lines are JSON objects or ``key=value`` pairs with the time, level, logger,
message, the request id of the API request being served (``request_id``, from
:data:`REQUEST_ID`) and the ``extra`` fields the caller passed.

What keeps PHI out, besides callers logging ids and counts only:

- :class:`PhiFilter` replaces the value of any field whose name is PHI-shaped (``name``,
  ``birth_date``, ``phone``, ``address``, ``body``, ``text`` ...) with ``[redacted]``;
- an exception is logged as its type and its stack (file, line, function), never its message,
  which may quote the input that caused it;
- httpx and httpcore, which log whole request URLs (a search by family name and birth date is a
  URL), are held at WARNING.

``extra`` keys that ``logging`` reserves for itself (``created``, ``name``, ``msg`` ...) make
``Logger.makeRecord`` raise: a mapping of counts goes under one key (``"counts": {...}``), never
spread into ``extra`` (``tests/unit/test_logs.py`` checks every ``extra=`` in the code).
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import traceback
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

LEVEL_ENV = "FHIR_BRIDGE_LOG_LEVEL"
FORMAT_ENV = "FHIR_BRIDGE_LOG_FORMAT"
Format = Literal["json", "keyvalue"]

REQUEST_ID: ContextVar[str | None] = ContextVar("fhir_bridge_request_id", default=None)

# the attributes every LogRecord has: not extra fields, and not allowed as extra keys
RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}

# field names that would carry PHI if anything were put in them (compared without _ and -)
_PHI_NAMES = frozenset(
    {
        "name",
        "names",
        "given",
        "family",
        "birthdate",
        "dob",
        "phone",
        "telecom",
        "email",
        "address",
        "addressline",
        "text",
        "note",
        "notes",
        "description",
        "comment",
        "body",
        "content",
        "payload",
        "mrn",
        "ssn",
    }
)
REDACTED = "[redacted]"
_QUIET = ("httpx", "httpcore", "hpack")
_HANDLER_FLAG = "_fhir_bridge_handler"


def phi_shaped(key: str) -> bool:
    """Whether a field of that name could carry PHI (``patient_name``, ``birthDate``, ...)."""
    words = [w for w in re.split(r"[_\-.]", re.sub(r"([a-z])([A-Z])", r"\1_\2", key).lower()) if w]
    return bool(words) and ("".join(words) in _PHI_NAMES or words[-1] in _PHI_NAMES)


class PhiFilter(logging.Filter):
    """Blanks extra fields whose names are PHI-shaped; stamps the current request id."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key in extras(record):
            if phi_shaped(key):
                setattr(record, key, REDACTED)
        if getattr(record, "request_id", None) is None:
            record.request_id = REQUEST_ID.get()
        return True


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller passed in ``extra``."""
    return {k: v for k, v in record.__dict__.items() if k not in RESERVED and k != "request_id"}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return str(value)


def _payload(record: logging.LogRecord) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname,
        "logger": record.name,
        "msg": record.getMessage(),
    }
    request_id = getattr(record, "request_id", None)
    if request_id is not None:
        payload["request_id"] = request_id
    payload.update({k: _plain(v) for k, v in extras(record).items()})
    if record.exc_info and record.exc_info[0] is not None:
        exc_type, _, tb = record.exc_info
        payload["exc_type"] = exc_type.__name__
        payload["exc_stack"] = [
            f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno}:{frame.name}"
            for frame in traceback.extract_tb(tb)
        ]
    return payload


class JsonFormatter(logging.Formatter):
    """One JSON object per line."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_payload(record), ensure_ascii=True, separators=(",", ":"))


_BARE = re.compile(r"^[A-Za-z0-9_.:/@+\-]+$")


def _kv(value: Any) -> str:
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=True, separators=(",", ":"))
    text = "null" if value is None else str(value)
    return text if _BARE.match(text) else json.dumps(text, ensure_ascii=True)


class KeyValueFormatter(logging.Formatter):
    """``key=value`` pairs, values quoted when they hold spaces or quotes."""

    def format(self, record: logging.LogRecord) -> str:
        return " ".join(f"{key}={_kv(value)}" for key, value in _payload(record).items())


def configure(
    level: str | int | None = None,
    fmt: Format | None = None,
    *,
    default_level: str = "WARNING",
    stream: TextIO | None = None,
) -> logging.Handler:
    """Install fhir-bridge's handler on the root logger (again: replaces the earlier one).

    The level is ``FHIR_BRIDGE_LOG_LEVEL`` (the environment overrides the file), else
    ``level`` (the configured one), else ``default_level``; the format ``FHIR_BRIDGE_LOG_FORMAT``,
    else ``fmt``, else key=value. ValueError for an unknown level or format."""
    chosen: str | int = os.environ.get(LEVEL_ENV) or (level if level is not None else default_level)
    if isinstance(chosen, str):
        number = logging.getLevelName(chosen.strip().upper())
        if not isinstance(number, int):
            raise ValueError(f"unknown log level {chosen!r}")
        chosen = number
    style = os.environ.get(FORMAT_ENV) or fmt or "keyvalue"
    if style not in ("json", "keyvalue"):
        raise ValueError(f"unknown log format {style!r}; use json or keyvalue")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if style == "json" else KeyValueFormatter())
    handler.addFilter(PhiFilter())
    setattr(handler, _HANDLER_FLAG, True)
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_FLAG, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(chosen)
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(chosen, logging.WARNING))
    # a library's dictConfig (disable_existing_loggers) may have silenced ours: on again
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.split(".")[0] == "fhir_bridge" and isinstance(logger, logging.Logger):
            logger.disabled = False
    return handler
