"""The one exception of the sandbox."""

from __future__ import annotations

from fhir_bridge.errors import BridgeError


class SandboxError(BridgeError):
    """The sandbox could not do what was asked.

    ``message`` says what failed; ``log_tail`` holds the last lines of the Maven output or of
    the server log when they explain it (empty otherwise).
    """

    def __init__(self, message: str, log_tail: str = "") -> None:
        self.message = message
        self.log_tail = log_tail
        super().__init__(message)
