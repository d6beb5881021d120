"""Views that make the data easy to read, declared once with their column descriptions.

A column description of the form "=table.column" borrows the description
declared in civcas/schema.py, so a description is never written twice.
"""
from __future__ import annotations

from dataclasses import dataclass

from .schema import BY_NAME


@dataclass(frozen=True)
class View:
    name: str
    description: str
    sql: str
    columns: dict[str, str]

    def column_descriptions(self) -> dict[str, str]:
        out = {}
        for name, text in self.columns.items():
            if text.startswith("="):
                table, column = text[1:].split(".")
                text = BY_NAME[table].column(column).description
            out[name] = text
        return out


INCIDENT_CLAIMS = View(
    name="incident_claims",
    description="Every casualty claim about each incident, side by side: the number, who claims it, where we read it and the words it rests on.",
    sql="""
SELECT i.incident_id, i.title AS incident_title, i.date_start, i.date_end, i.country,
       f.figure_id, f.metric, f.value_min, f.value_max, f.qualifier,
       f.claimant, a.name AS claimant_name, a.actor_type AS claimant_type,
       f.source_id, s.title AS source_title, s.publisher, s.published, s.url, s.source_type,
       f.quote, f.superseded_by, f.corrected_by, f.notes
FROM figures f
JOIN incidents i ON i.incident_id = f.incident_id
JOIN actors a ON a.actor_id = f.claimant
JOIN sources s ON s.source_id = f.source_id""",
    columns={
        "incident_id": "=figures.incident_id", "incident_title": "=incidents.title",
        "date_start": "=incidents.date_start", "date_end": "=incidents.date_end", "country": "=incidents.country",
        "figure_id": "=figures.figure_id", "metric": "=figures.metric", "value_min": "=figures.value_min",
        "value_max": "=figures.value_max", "qualifier": "=figures.qualifier", "claimant": "=figures.claimant",
        "claimant_name": "Name of the claimant.", "claimant_type": "=actors.actor_type",
        "source_id": "=figures.source_id", "source_title": "=sources.title", "publisher": "=sources.publisher",
        "published": "=sources.published", "url": "=sources.url", "source_type": "=sources.source_type",
        "quote": "=figures.quote", "superseded_by": "=figures.superseded_by", "corrected_by": "=figures.corrected_by",
        "notes": "=figures.notes",
    },
)

AGGREGATE_CLAIMS = View(
    name="aggregate_claims",
    description="Casualty figures for a whole war, campaign or period rather than one incident, with their scope, claimant and source.",
    sql="""
SELECT f.figure_id, f.metric, f.value_min, f.value_max, f.qualifier,
       f.scope_area, f.aggregate_kind, f.scope_perpetrator, p.name AS perpetrator_name,
       f.period_start, f.period_end, f.as_of,
       f.claimant, a.name AS claimant_name, a.actor_type AS claimant_type,
       f.source_id, s.title AS source_title, s.publisher, s.published, s.url,
       f.quote, f.superseded_by, f.corrected_by, f.notes
FROM figures f
JOIN actors a ON a.actor_id = f.claimant
JOIN sources s ON s.source_id = f.source_id
LEFT JOIN actors p ON p.actor_id = f.scope_perpetrator
WHERE f.incident_id IS NULL""",
    columns={
        "figure_id": "=figures.figure_id", "metric": "=figures.metric", "value_min": "=figures.value_min",
        "value_max": "=figures.value_max", "qualifier": "=figures.qualifier", "scope_area": "=figures.scope_area",
        "aggregate_kind": "=figures.aggregate_kind", "scope_perpetrator": "=figures.scope_perpetrator", "perpetrator_name": "Name of the perpetrator the figure counts.",
        "period_start": "=figures.period_start", "period_end": "=figures.period_end", "as_of": "=figures.as_of",
        "claimant": "=figures.claimant", "claimant_name": "Name of the claimant.", "claimant_type": "=actors.actor_type",
        "source_id": "=figures.source_id", "source_title": "=sources.title", "publisher": "=sources.publisher",
        "published": "=sources.published", "url": "=sources.url", "quote": "=figures.quote",
        "superseded_by": "=figures.superseded_by", "corrected_by": "=figures.corrected_by", "notes": "=figures.notes",
    },
)

INCIDENT_STATEMENTS = View(
    name="incident_statements",
    description="Attributed statements with who said them and where we read them.",
    sql="""
SELECT st.statement_id, st.incident_id, i.title AS incident_title, st.statement_type, st.said_on,
       st.speaker, a.name AS speaker_name, a.actor_type AS speaker_type,
       st.source_id, s.title AS source_title, s.publisher, s.url, st.quote, st.corrected_by, st.notes
FROM statements st
JOIN actors a ON a.actor_id = st.speaker
JOIN sources s ON s.source_id = st.source_id
LEFT JOIN incidents i ON i.incident_id = st.incident_id""",
    columns={
        "statement_id": "=statements.statement_id", "incident_id": "=statements.incident_id",
        "incident_title": "=incidents.title", "statement_type": "=statements.statement_type",
        "said_on": "=statements.said_on", "speaker": "=statements.speaker", "speaker_name": "Name of the speaker.",
        "speaker_type": "=actors.actor_type", "source_id": "=statements.source_id", "source_title": "=sources.title",
        "publisher": "=sources.publisher", "url": "=sources.url", "quote": "=statements.quote",
        "corrected_by": "=statements.corrected_by", "notes": "=statements.notes",
    },
)

VIEWS = (INCIDENT_CLAIMS, AGGREGATE_CLAIMS, INCIDENT_STATEMENTS)
