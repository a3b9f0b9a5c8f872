"""Logging as configured at start-up: structured lines, request ids, PHI-shaped fields blanked,
exceptions without their messages, no ``extra`` key that logging reserves."""

from __future__ import annotations

import ast
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from fhir_bridge import logs

SOURCE = Path(logs.__file__).parent


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    out = io.StringIO()
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_lines_carry_fields_and_the_request_id(stream: io.StringIO) -> None:
    logs.configure("INFO", "json", stream=stream)
    log = logging.getLogger("fhir_bridge.test")
    token = logs.REQUEST_ID.set("req-1")
    try:
        log.info("push finished", extra={"action": "push", "counts": {"created": 3}})
    finally:
        logs.REQUEST_ID.reset(token)
    log.debug("below the level")
    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["msg"] == "push finished"
    assert entry["level"] == "INFO"
    assert entry["logger"] == "fhir_bridge.test"
    assert entry["request_id"] == "req-1"
    assert entry["counts"] == {"created": 3}
    assert entry["ts"].endswith("+00:00")


def test_key_value_lines_quote_what_needs_quoting(stream: io.StringIO) -> None:
    logs.configure("DEBUG", "keyvalue", stream=stream)
    logging.getLogger("fhir_bridge.test").debug(
        "a message", extra={"connection": "ehr-1", "why": 'two "words"'}
    )
    line = stream.getvalue().strip()
    assert 'msg="a message"' in line
    assert "connection=ehr-1" in line
    assert 'why="two \\"words\\""' in line
    assert "level=DEBUG" in line


def test_phi_shaped_fields_are_blanked(stream: io.StringIO) -> None:
    logs.configure("INFO", "json", stream=stream)
    logging.getLogger("fhir_bridge.test").info(
        "oops",
        extra={
            "patient_name": "Marisol Rivera",
            "birthDate": "1958-07-14",
            "phone": "555-0131",
            "body": "{...}",
            "record_id": "pat-rivera",
            "resource_type": "Patient",
        },
    )
    entry = json.loads(stream.getvalue())
    for field in ("patient_name", "birthDate", "phone", "body"):
        assert entry[field] == logs.REDACTED
    assert entry["record_id"] == "pat-rivera"
    assert entry["resource_type"] == "Patient"


def test_an_exception_is_logged_without_its_message(stream: io.StringIO) -> None:
    logs.configure("INFO", "keyvalue", stream=stream)
    try:
        raise ValueError("Marisol Rivera born 1958-07-14")
    except ValueError:
        logging.getLogger("fhir_bridge.test").exception("failed")
    text = stream.getvalue()
    assert "exc_type=ValueError" in text
    assert "test_logs.py" in text
    assert "Marisol" not in text


def test_the_environment_sets_the_level_over_the_file(
    stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(logs.LEVEL_ENV, "debug")
    logs.configure("WARNING", "json", stream=stream)
    assert logging.getLogger().level == logging.DEBUG
    assert logging.getLogger("httpx").level == logging.WARNING  # URLs hold search values
    monkeypatch.setenv(logs.LEVEL_ENV, "chatty")
    with pytest.raises(ValueError, match="chatty"):
        logs.configure(None, None, stream=stream)
    monkeypatch.delenv(logs.LEVEL_ENV)
    with pytest.raises(ValueError, match="xml"):
        logs.configure("INFO", "xml", stream=stream)  # type: ignore[arg-type]


def test_configuring_turns_on_loggers_a_library_disabled(stream: io.StringIO) -> None:
    ours = logging.getLogger("fhir_bridge.test")
    ours.disabled = True  # as logging.config.dictConfig does to every existing logger
    try:
        logs.configure("INFO", "json", stream=stream)
        ours.info("heard")
    finally:
        ours.disabled = False
    assert json.loads(stream.getvalue())["msg"] == "heard"


def test_configuring_twice_leaves_one_handler(stream: io.StringIO) -> None:
    logs.configure("INFO", "json", stream=stream)
    logs.configure("INFO", "json", stream=stream)
    logging.getLogger("fhir_bridge.test").info("once")
    assert len(stream.getvalue().splitlines()) == 1


def _extra_keys(tree: ast.AST) -> Iterator[tuple[int, str | None]]:
    """Each key of every ``extra={...}`` in a module (None for a ``**`` spread)."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        for keyword in node.keywords:
            if keyword.arg == "extra" and isinstance(keyword.value, ast.Dict):
                for key in keyword.value.keys:
                    if key is None:
                        yield node.lineno, None
                    elif isinstance(key, ast.Constant) and isinstance(key.value, str):
                        yield node.lineno, key.value


def test_no_extra_in_the_code_uses_a_reserved_key_or_spreads_a_mapping() -> None:
    """``created`` in ``extra`` crashed push at INFO: every key is checked, none spread."""
    found = []
    for path in sorted(SOURCE.rglob("*.py")):
        for line, key in _extra_keys(ast.parse(path.read_text(), str(path))):
            if key is None or key in logs.RESERVED:
                found.append(f"{path.relative_to(SOURCE)}:{line}: {key or '**'}")
    assert found == []


def test_the_scan_of_extra_finds_a_reserved_key() -> None:
    bad = ast.parse('log.info("x", extra={"created": 1, **counts})')
    assert list(_extra_keys(bad)) == [(1, "created"), (1, None)]
    assert "created" in logs.RESERVED
