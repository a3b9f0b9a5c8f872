"""Fakes for the FHIR client tests: a scripted server, a clock that sleeps instantly."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from fhir_bridge.fhir import FhirClient, RetryPolicy

BASE = "https://ehr.test/fhir"
START = 1_700_000_000.0


@dataclass
class FakeTime:
    """A wall clock that only moves when the code under test sleeps."""

    now: float = START
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def policy(fake: FakeTime, **overrides: Any) -> RetryPolicy:
    """A retry policy on fake time, with jitter fixed at the middle of its range."""
    return RetryPolicy(sleep=fake.sleep, clock=fake.clock, jitter=lambda: 0.5, **overrides)


def fhir_json(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"Content-Type": "application/fhir+json", **(headers or {})},
    )


def outcome(
    code: str, diagnostics: str = "", severity: str = "error", **extra: Any
) -> dict[str, Any]:
    issue = {"severity": severity, "code": code, **extra}
    if diagnostics:
        issue["diagnostics"] = diagnostics
    return {"resourceType": "OperationOutcome", "issue": [issue]}


Step = httpx.Response | type[httpx.RequestError] | Callable[[httpx.Request], httpx.Response]


class Script:
    """A server that answers requests with the given steps in order (the last one repeats).

    A step is a response, an httpx error class to raise, or a function of the request.
    """

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps[min(len(self.requests), len(self.steps)) - 1]
        if isinstance(step, type):
            raise step("simulated", request=request)
        if isinstance(step, httpx.Response):
            return step
        return step(request)

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def client(self, fake: FakeTime | None = None, **kwargs: Any) -> FhirClient:
        if fake is not None:
            kwargs.setdefault("retry", policy(fake))
        return FhirClient(BASE, transport=self.transport, **kwargs)


PATIENT = {"resourceType": "Patient", "id": "p1", "meta": {"versionId": "3"}}
GOAL = {
    "resourceType": "Goal",
    "identifier": [{"system": "urn:goal", "value": "g1"}],
    "lifecycleStatus": "active",
}
