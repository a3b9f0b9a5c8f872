"""The screening instruments fhir-bridge knows: their LOINC panels, total scores and forms."""

from __future__ import annotations

from dataclasses import dataclass

from fhir_bridge import model as m

LOINC = "http://loinc.org"


@dataclass(frozen=True)
class Instrument:
    """One instrument: the LOINC panel, the total-score question if it has one, the form."""

    panel: str
    panel_display: str
    total: str | None
    total_display: str | None
    sdoh: bool
    """An SDOH screening: its observations carry the US Core ``sdoh`` category."""
    names: tuple[str, ...]
    """Words a questionnaire's canonical URL may name it by (any case)."""
    after_total: tuple[str, ...] = ()
    """Questions the LOINC form puts after the total score (how difficult the problems made
    things): the total's item goes before them, as on the form."""

    @property
    def questionnaire(self) -> str:
        """The canonical of the LOINC form of the instrument."""
        return f"{LOINC}/q/{self.panel}"


INSTRUMENTS: dict[m.ScreeningInstrument, Instrument] = {
    m.ScreeningInstrument.ahc_hrsn: Instrument(
        "96777-8",
        "Accountable health communities (AHC) health-related social needs screening (HRSN) tool",
        None,
        None,
        True,
        ("ahc-hrsn", "ahc_hrsn", "hrsn"),
    ),
    m.ScreeningInstrument.prapare: Instrument(
        "93025-5",
        "Protocol for Responding to and Assessing Patients' Assets, Risks, and Experiences "
        "[PRAPARE]",
        None,
        None,
        True,
        ("prapare",),
    ),
    m.ScreeningInstrument.phq_9: Instrument(
        "44249-1",
        "PHQ-9 quick depression assessment panel [Reported.PHQ]",
        "44261-6",
        "Patient Health Questionnaire 9 item (PHQ-9) total score [Reported]",
        False,
        ("phq-9", "phq9", "phq_9"),
        ("69722-7",),
    ),
    m.ScreeningInstrument.gad_7: Instrument(
        "69737-5",
        "Generalized anxiety disorder 7 item (GAD-7)",
        "70274-6",
        "Generalized anxiety disorder 7 item (GAD-7) total score [Reported.PHQ]",
        False,
        ("gad-7", "gad7", "gad_7"),
        ("69722-7",),
    ),
}


def instrument_of(canonical: str) -> m.ScreeningInstrument | None:
    """The instrument a QuestionnaireResponse's ``questionnaire`` names, else None.

    Our own canonical; else one ending in the instrument's LOINC panel code; else one whose
    last path segment names it (``.../Questionnaire/phq-9-example``).
    """
    url = canonical.split("|", maxsplit=1)[0].rstrip("/")
    last = url.rsplit("/", 1)[-1].lower()
    for kind, instrument in INSTRUMENTS.items():
        if url == instrument.questionnaire or last == instrument.panel:
            return kind
    for kind, instrument in INSTRUMENTS.items():
        if any(last == n or last.startswith(n + "-") for n in instrument.names):
            return kind
    return None
