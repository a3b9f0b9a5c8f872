"""What a pulled screening cannot say: the domains and findings its Observations carry.

Pull reads a screening from its QuestionnaireResponse alone (the Observations are rendered from
it, not read back), so each answer's domain and the care manager's findings come from the local
record, for the base and the server's side alike: the merge then sees only what the response
itself changed.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


def with_local_findings(data: Json, local: Json) -> Json:
    """``data`` (a screening read from its response) with the local domains and findings."""
    domains = {
        a["question"].get("code"): a["domain"]
        for a in local.get("answers") or []
        if a.get("domain") is not None
    }
    answers = []
    for answer in data.get("answers") or []:
        domain = domains.get(answer["question"].get("code"))
        answers.append({**answer, "domain": domain} if domain else answer)
    kept = {a["domain"] for a in answers if a.get("domain")}
    findings = [f for f in local.get("findings") or [] if f.get("domain") in kept]
    out = {**data, "answers": answers}
    if findings:
        out["findings"] = findings
    else:
        out.pop("findings", None)
    return out
