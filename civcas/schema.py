"""The one declaration of every table and column civcas publishes.

Validation (civcas.validate), table creation (civcas.build), the column
descriptions in metadata.yml (civcas.metadata), the data dictionary in
docs/data-dictionary.md and the `data_dictionary`/`codes` tables inside the
database are all generated from the objects below. Change a column here and
run `make metadata` to regenerate the published descriptions; a test fails
while they disagree.
"""
from __future__ import annotations

from dataclasses import dataclass, field

SCHEMA_VERSION = "1.0"

# Column kinds: how a raw CSV value is parsed and what SQLite type it gets.
KINDS = {
    "id": ("TEXT", "stable slug: lower-case letters, digits and single hyphens"),
    "text": ("TEXT", "free text"),
    "integer": ("INTEGER", "whole number"),
    "real": ("REAL", "decimal number"),
    "date": ("TEXT", "ISO 8601 calendar date, YYYY-MM-DD (a local date, never a UTC timestamp)"),
    "url": ("TEXT", "absolute http(s) URL"),
    "language": ("TEXT", "ISO 639-1 two-letter language code"),
    "country": ("TEXT", "ISO 3166-1 alpha-2 country code"),
    "flag": ("INTEGER", "1 = yes, 0 = no"),
}


@dataclass(frozen=True)
class Column:
    name: str
    kind: str
    description: str
    required: bool = False
    # Allowed values -> what each means. Integer codes are keyed by int.
    values: dict | None = None
    # "table.column" this column must resolve to.
    references: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    # What an empty cell / NULL means for this column.
    null_means: str | None = None
    # Derived columns are computed by the build and never appear in raw/.
    derived: str | None = None
    # The value a derived column has when its row is copied in (the column's DEFAULT), so that the step deriving it
    # writes only the rows that differ.
    default: int | None = None

    @property
    def sql_type(self) -> str:
        return KINDS[self.kind][0]


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    pk: str
    # Curated tables are read from raw/<name>.csv; others are made by the build.
    curated: bool = True
    label_column: str | None = None
    indexes: tuple[tuple[str, ...], ...] = ()
    fts: tuple[str, ...] = ()
    extra_checks: tuple[str, ...] = field(default=())

    @property
    def raw_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if not c.derived)

    @property
    def derived_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.derived)

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name}.{name}")

    @property
    def foreign_keys(self) -> list[tuple[str, str, str]]:
        return [(c.name, *c.references.split(".")) for c in self.columns if c.references]

    @property
    def all_indexes(self) -> list[tuple[str, ...]]:
        """The declared indexes, then one for each foreign-key column that no declared index starts with."""
        declared = list(self.indexes)
        return declared + [(c,) for c, _, _ in self.foreign_keys if not any(ix[0] == c for ix in declared)]


# --- Controlled vocabularies -------------------------------------------------

AGGREGATE_KINDS = {
    "running total": "A cumulative count from the start of a campaign or war up to as_of (e.g. CJTF-OIR's 'at least 188').",
    "batch": "Deaths found in one set of investigations or one release, covering period_start to period_end "
             "(e.g. CENTCOM's 64 of 9 November 2016); never compare it with a running total.",
    "period count": "A count of deaths in a stated period (a month, a year, six months), not cumulative.",
}

SOURCE_TYPES = {
    "news report": "Journalism by a news organisation (including reports that carry a wire service's copy).",
    "opinion": "Commentary or opinion writing that relays facts reported elsewhere.",
    "monitor report": "A report or statement by a casualty monitor or human-rights organisation (e.g. SOHR, Airwars, Amnesty).",
    "official statement": "A statement, press release or report by a government, armed force or coalition.",
    "UN statement": "A statement or report by a United Nations official or body.",
    "study": "A research study or report with a stated method (academic or NGO).",
    "witness account": "A first-hand account by a witness or survivor, as published.",
    "reference work": "A gazetteer, encyclopedia or map used for place names and coordinates.",
}

ACTOR_TYPES = {
    "state armed force": "The armed forces of one state.",
    "coalition": "A multinational military coalition or its joint task force.",
    "non-state armed group": "An armed group that is not a state's armed force.",
    "government": "A government or ministry speaking in a non-military capacity.",
    "monitor": "A casualty monitor or human-rights organisation.",
    "UN": "A United Nations official or body.",
    "research group": "Authors or publishers of a study.",
    "news organisation": "A news outlet or wire service.",
    "person": "A named or anonymous individual (witness, official speaking personally, author).",
}

METRICS = {
    "civilians_killed": "Civilians killed.",
    "civilians_injured": "Civilians injured (wounded).",
    "children_killed": "Children killed (a subset of civilians_killed).",
    "women_killed": "Women killed (a subset of civilians_killed).",
    "children_injured": "Children injured (a subset of civilians_injured).",
    "women_injured": "Women injured (a subset of civilians_injured).",
    "people_injured": "People injured, civilian status not stated.",
    "deaths_total": "All people killed, civilians and combatants alike (e.g. a war's overall death toll).",
    "combatants_killed": "Combatants killed.",
}

# A breakdown may never exceed the total it is part of, for the same claimant
# and source (and incident, or scope and period for aggregates).
BREAKDOWNS = {
    "children_killed": ("civilians_killed", "deaths_total"),
    "women_killed": ("civilians_killed", "deaths_total"),
    "civilians_killed": ("deaths_total",),
    "combatants_killed": ("deaths_total",),
    "children_injured": ("civilians_injured", "people_injured"),
    "women_injured": ("civilians_injured", "people_injured"),
    "civilians_injured": ("people_injured",),
}

QUALIFIERS = {
    "exact": "The source gives one number without hedging: value_min = value_max.",
    "about": "An estimate or approximation ('about', 'an estimated', 'nearly'): value_min = value_max = the number given.",
    "at least": "'At least N': value_min = N, value_max NULL (no upper bound given).",
    "more than": "'More than N' / 'over N': value_min = N as written (the true figure is above it), value_max NULL.",
    "up to": "'Up to N': value_min NULL, value_max = N.",
    "range": "'Between N and M': value_min = N < value_max = M.",
}
OPEN_ENDED = ("at least", "more than")

DATE_PRECISION = {
    1: "exact date (date_start = date_end)",
    2: "a span of 2 to 6 days",
    3: "a week",
    4: "a month",
    5: "a year",
}
# Widest date_end - date_start, in days, each precision code allows.
DATE_PRECISION_MAX_SPAN = {1: 0, 2: 5, 3: 7, 4: 31, 5: 366}

GEO_PRECISION = {
    1: "exact point (within about 10 m)",
    2: "within about 100 m (street, block, landmark)",
    3: "neighbourhood or village",
    4: "town or city",
    5: "district or sub-district (ADM2/ADM3) centroid, or a point estimated from a distance and direction",
    6: "province / governorate (ADM1) centroid",
    7: "several areas, between places, or country",
    8: "water or airspace",
}

GEO_METHODS = {
    "gazetteer": "Coordinates of the named place from a gazetteer or reference map.",
    "distance and direction": "A point computed from a reported distance and direction from a named place.",
    "belligerent coordinates": "Coordinates published by the belligerent (e.g. MGRS in a strike report).",
    "imagery": "Located on satellite or aerial imagery.",
    "admin centroid": "Centroid of the administrative unit named.",
    "monitor geolocation": "Coordinates published by a monitor or investigators (e.g. Airwars' geolocation), cited in geo_source_id.",
}

PLACE_TYPES = {
    "village": "A village or hamlet.",
    "town": "A town.",
    "city": "A city.",
    "neighbourhood": "A district or neighbourhood of a town or city.",
    "site": "A specific building or strike site.",
    "area": "A wider area or region.",
}

BELLIGERENT_STATUS = {
    "known": "The belligerent has confirmed it carried out strikes at this place and time.",
    "suspected": "Sources blame the belligerent; it has not confirmed the strike.",
}

GRADINGS = {
    "confirmed": "A belligerent has accepted responsibility for civilian harm.",
    "fair": "Two or more independent credible sources, and a belligerent confirmed or likely to have struck nearby.",
    "weak": "A single-source claim, however detailed.",
    "contested": "Competing claims of responsibility (several belligerents, or ground forces also blamed).",
    "discounted": "Those killed were combatants, or others were most likely responsible.",
    "not yet assessed": "Recorded but not yet graded by civcas.",
}

ASSESSMENTS = {
    "not yet assessed": "The belligerent has not published an assessment of the allegation.",
    "credible": "The belligerent assessed the allegation as credible (it caused civilian harm).",
    "non-credible": "The belligerent assessed the allegation as non-credible / unsubstantiated.",
    "duplicate": "The belligerent treated the allegation as a duplicate of one already assessed.",
    "unknown": "civcas has not found whether the belligerent assessed it.",
}

STATEMENT_TYPES = {
    "confirmation": "A belligerent confirms it carried out strikes (not necessarily that it harmed civilians).",
    "denial": "A belligerent denies a strike or a figure.",
    "assessment": "A belligerent's or monitor's assessment of an allegation.",
    "witness account": "A witness or survivor describes what happened.",
    "assertion": "An attributed assertion that carries no number we can record as a figure.",
    "context": "Attributed background to an incident (e.g. who controlled the area).",
}

DISCREPANCY_KINDS = {
    "misspelling": "A name spelled differently from the better source or the local-script form.",
    "misattribution": "A figure or statement credited to the wrong person or body.",
    "subset": "A figure presented as a total that covers only part of the scope.",
    "outdated": "A figure later revised by its claimant, or overtaken by later reporting.",
    "imprecise": "A date, place, scope or wording vaguer or looser than the better source.",
    "wire copy": "An outlet credited for reporting it only republished from a wire service or another outlet.",
    "unsupported": "A statement no source we read supports.",
}


def _c(*args, **kwargs) -> Column:
    return Column(*args, **kwargs)


CHANGE_ACTIONS = {
    "added": "The row was added.",
    "changed": "The row was corrected or updated (what and why in `summary`).",
    "removed": "The row was withdrawn; its id is never reused (a tombstone).",
    "merged": "The row was merged into another (`replaced_by`); its id is never reused (a tombstone).",
}
CHANGED_TABLES = ("incidents", "figures", "statements", "sources", "places", "actors", "discrepancies")

# --- Tables -----------------------------------------------------------------

COUNTRIES = Table(
    name="countries",
    description="Countries that incidents and places may lie in, with the bounding box used to check that coordinates fall inside the stated country.",
    pk="country_code",
    label_column="name",
    columns=(
        _c("country_code", "country", "ISO 3166-1 alpha-2 code.", required=True),
        _c("name", "text", "English short name.", required=True),
        _c("name_local", "text", "Name in the official local script.", null_means="not recorded"),
        _c("lat_min", "real", "Southern edge of the bounding box (WGS84 degrees).", required=True, minimum=-90, maximum=90),
        _c("lat_max", "real", "Northern edge of the bounding box (WGS84 degrees).", required=True, minimum=-90, maximum=90),
        _c("lon_min", "real", "Western edge of the bounding box (WGS84 degrees).", required=True, minimum=-180, maximum=180),
        _c("lon_max", "real", "Eastern edge of the bounding box (WGS84 degrees).", required=True, minimum=-180, maximum=180),
    ),
)

ACTORS = Table(
    name="actors",
    description="Belligerents, claimants and speakers: armed forces, coalitions, armed groups, monitors, UN officials, study authors, outlets and individuals.",
    pk="actor_id",
    label_column="name",
    indexes=(("actor_type",), ("parent_id",)),
    fts=("name", "name_local", "description"),
    columns=(
        _c("actor_id", "id", "Stable identifier; never reused.", required=True),
        _c("name", "text", "Name in English.", required=True),
        _c("name_local", "text", "Name in the actor's own language and script.", null_means="not recorded or same as name"),
        _c("actor_type", "text", "What kind of actor this is.", required=True, values=ACTOR_TYPES),
        _c("country", "country", "Country the actor belongs to or is based in.", references="countries.country_code",
           null_means="multinational, or not in the countries table"),
        _c("parent_id", "id", "The larger body this actor belongs to or speaks for (e.g. a spokesman's coalition).",
           references="actors.actor_id", null_means="none"),
        _c("description", "text", "Who this is, in our own words.", required=True),
        _c("url", "url", "Official or reference web page.", null_means="none recorded"),
        _c("top_id", "id", "The top of this actor's parent chain (the actor itself when it has no parent): a belligerent's "
           "spokesmen, commands and ministries share its top_id, which is how queries tell a belligerent's own figures "
           "from everyone else's.", derived="actors.parent_id", references="actors.actor_id"),
    ),
)

SOURCES = Table(
    name="sources",
    description="One row per document: every article, report, statement or study a figure or statement was read in, or that a source we read cites.",
    pk="source_id",
    label_column="title",
    indexes=(("source_type",), ("publisher",), ("published",), ("cited_in",)),
    fts=("title", "publisher", "author", "notes"),
    columns=(
        _c("source_id", "id", "Stable identifier; never reused.", required=True),
        _c("title", "text", "Headline or title as published.", required=True),
        _c("publisher", "text", "Outlet, organisation or body that published it.", required=True),
        _c("author", "text", "Named author(s) or spokesperson.", null_means="no named author, or not known"),
        _c("url", "url", "Where the document is (or was) published.", null_means="no URL known (e.g. a cited document we have not located)"),
        _c("published", "date", "Date of publication.", null_means="publication date not known"),
        _c("source_type", "text", "Kind of document.", required=True, values=SOURCE_TYPES),
        _c("language", "language", "Language the document is written in.", required=True),
        _c("archive_url", "url", "A copy in a web archive (e.g. the Wayback Machine).", null_means="no archived copy recorded"),
        _c("accessed", "date", "Date a civcas curator last read the document.", null_means="not read by civcas (see cited_in)"),
        _c("cited_in", "id", "For a document known only because another source cites it: the citing source. Cleared once a curator has read the document itself.",
           references="sources.source_id", null_means="read directly by civcas"),
        _c("notes", "text", "Curator's notes on the document (republications, corrections, reliability).", null_means="none"),
    ),
)

PLACES = Table(
    name="places",
    description="Gazetteer of the places incidents happened in: names in English and local script, spelling variants, administrative units and coordinates with a precision code and the method used.",
    pk="place_id",
    label_column="name",
    indexes=(("country",), ("admin1",)),
    fts=("name", "name_local", "name_variants"),
    columns=(
        _c("place_id", "id", "Stable identifier; never reused.", required=True),
        _c("name", "text", "Name in English as civcas spells it.", required=True),
        _c("name_local", "text", "Name in the local script (e.g. Arabic).", null_means="not recorded"),
        _c("name_variants", "text", "Other spellings found in sources, separated by ' | '.", null_means="none recorded"),
        _c("place_type", "text", "What kind of place this is.", required=True, values=PLACE_TYPES),
        _c("country", "country", "Country the place lies in.", required=True, references="countries.country_code"),
        _c("admin1", "text", "First-level administrative unit (governorate / province).", null_means="not known"),
        _c("admin2", "text", "Second-level administrative unit (district).", null_means="not known"),
        _c("admin3", "text", "Third-level administrative unit (sub-district / nahiya).", null_means="not known"),
        _c("latitude", "real", "Latitude, WGS84 decimal degrees.", minimum=-90, maximum=90, null_means="not geolocated"),
        _c("longitude", "real", "Longitude, WGS84 decimal degrees.", minimum=-180, maximum=180, null_means="not geolocated"),
        _c("geo_precision", "integer", "How precise the coordinates are (lower is better).", values=GEO_PRECISION, null_means="not geolocated"),
        _c("geo_method", "text", "How the coordinates were obtained.", values=GEO_METHODS, null_means="not geolocated"),
        _c("geo_source_id", "id", "The source the coordinates or distance came from.", references="sources.source_id", null_means="not geolocated"),
        _c("notes", "text", "How the place was identified; doubts about it.", null_means="none"),
    ),
)

INCIDENTS = Table(
    name="incidents",
    description="One row per alleged incident of civilian harm from an air strike. Place and casualty columns are derived by the build from `places` and `figures`; they are never typed in twice.",
    pk="incident_id",
    label_column="title",
    # A column the incidents list is filtered by is indexed with the list's sort column (date_start, newest first):
    # `?country=SY` then reads the newest SY incidents from the index and stops after a page, instead of walking
    # every incident in date order (or sorting 400,000 SY rows) at 1,000,000 incidents (docs/performance.md).
    indexes=(("date_start", "date_end"), ("date_end",), ("year", "date_start"), ("country", "date_start"),
             ("belligerent", "date_start"), ("place_id", "date_start"), ("grading", "date_start"),
             ("belligerent_assessment", "date_start"), ("provisional", "date_start"),
             ("civilians_killed_max",), ("latitude", "longitude")),
    fts=("title", "summary", "place", "place_local"),
    columns=(
        _c("incident_id", "id", "Stable identifier; never reused, even if the incident is merged or withdrawn.", required=True),
        _c("title", "text", "Short title in our own words.", required=True),
        _c("date_start", "date", "Earliest date the strike can have happened.", required=True),
        _c("date_end", "date", "Latest date the strike can have happened.", required=True),
        _c("date_precision", "integer", "How precisely the date is known (UCDP date_prec).", required=True, values=DATE_PRECISION),
        _c("year", "integer", "Year of date_start, for faceting.", derived="incidents.date_start"),
        _c("date_notes", "text", "How the dates were worked out.", null_means="none"),
        _c("place_id", "id", "Where it happened: a row of `places`.", required=True, references="places.place_id"),
        _c("place", "text", "Place name in English.", derived="places.name"),
        _c("place_local", "text", "Place name in the local script.", derived="places.name_local", null_means="not recorded"),
        _c("country", "country", "Country.", derived="places.country", references="countries.country_code"),
        _c("admin1", "text", "Governorate / province.", derived="places.admin1", null_means="not known"),
        _c("latitude", "real", "Latitude, WGS84.", derived="places.latitude", null_means="not geolocated"),
        _c("longitude", "real", "Longitude, WGS84.", derived="places.longitude", null_means="not geolocated"),
        _c("geo_precision", "integer", "Precision of the coordinates (see `places.geo_precision`).", derived="places.geo_precision",
           values=GEO_PRECISION, null_means="not geolocated"),
        _c("first_reported_by", "id", "Who first reported the incident publicly, as far as civcas found.", references="actors.actor_id",
           null_means="not established"),
        _c("first_report_source_id", "id", "The source that says who reported it first (a later report that names the first "
           "reporter, not necessarily the first report itself).", references="sources.source_id",
           null_means="not established"),
        _c("belligerent", "id", "The actor credited with, or suspected of, the strike.", required=True, references="actors.actor_id"),
        _c("belligerent_status", "text", "Whether the belligerent has confirmed striking there.", required=True, values=BELLIGERENT_STATUS),
        _c("belligerent_assessment", "text", "The belligerent's own assessment of the civilian-harm allegation.", required=True, values=ASSESSMENTS),
        _c("grading", "text", "civcas grading of the civilian-harm evidence (see docs/methodology.md).", required=True, values=GRADINGS),
        _c("grading_reason", "text", "Why the incident has its grading, citing the sources.", null_means="not yet assessed"),
        _c("summary", "text", "What happened, in our own words, with who says what.", required=True),
        _c("notes", "text", "Curator's notes: doubts, open questions.", null_means="none"),
        _c("civilians_killed_min", "integer", "Lowest civilian death toll claimed by any source.", derived="figures",
           null_means="no source gives a lower bound"),
        _c("civilians_killed_max", "integer", "Highest civilian death toll claimed by any source.", derived="figures",
           null_means="no figure, or the highest claim is open-ended ('more than N')"),
        _c("civilians_injured_min", "integer", "Lowest count of civilians injured claimed.", derived="figures", null_means="no figure"),
        _c("civilians_injured_max", "integer", "Highest count of civilians injured claimed.", derived="figures",
           null_means="no figure, or the highest claim is open-ended"),
        _c("children_killed_min", "integer", "Lowest count of children killed claimed.", derived="figures", null_means="no figure"),
        _c("children_killed_max", "integer", "Highest count of children killed claimed.", derived="figures",
           null_means="no figure, or the highest claim is open-ended"),
        _c("women_killed_min", "integer", "Lowest count of women killed claimed.", derived="figures", null_means="no figure"),
        _c("women_killed_max", "integer", "Highest count of women killed claimed.", derived="figures",
           null_means="no figure, or the highest claim is open-ended"),
        _c("sources_count", "integer", "Distinct sources with a figure or statement on this incident.", derived="figures, statements"),
        _c("claimants_count", "integer", "Distinct claimants giving a casualty figure for this incident, counting an actor and those "
           "under it in the parent chain (a monitor and its director, a family and its members) as one.", derived="figures, actors"),
        _c("provisional", "flag", "1 when the casualty figures rest on fewer than two independent claimants (Iraq Body Count's rule).",
           derived="figures"),
        _c("popup", "text", "JSON for the map popup (title, dates, killed range, link).", derived="incidents"),
        _c("geometry", "text", "GeoJSON point of the place (longitude, latitude), for GeoJSON downloads "
           "(/civcas/incidents.geojson).", derived="incidents.latitude, incidents.longitude", null_means="not geolocated"),
        _c("first_published", "date", "When civcas first published the incident (its 'added' row in `changes`).",
           derived="changes"),
        _c("last_modified", "date", "The last change to the incident or to its figures and statements, from `changes`.",
           derived="changes"),
    ),
)

# The figures' index on (incident_id, metric) and then the rest of what makes two figures the same claim: the
# query finding the figures another source agrees with (derive.derive_figure_provisional) reads it alone.
CLAIM_INDEX = ("incident_id", "metric", "scope_area", "scope_perpetrator", "value_min", "value_max", "source_id")


def index_name(table: str, columns: tuple[str, ...]) -> str:
    """The name sqlite-utils gives the index on `columns` of `table` (sqlite_utils' Table.create_index)."""
    return f"idx_{table}_{'_'.join(columns)}"


FIGURES = Table(
    name="figures",
    description="One row per number per claimant per source: who asserts it (claimant), where we read it (source), the words it rests on (quote). Aggregate figures (a whole war or campaign) have no incident and state their scope and period.",
    pk="figure_id",
    indexes=(CLAIM_INDEX, ("source_id",), ("claimant",), ("metric",), ("scope_perpetrator",), ("period_start",)),
    fts=("quote", "scope_area", "notes"),
    columns=(
        _c("figure_id", "id", "Stable identifier; never reused.", required=True),
        _c("incident_id", "id", "The incident counted.", references="incidents.incident_id",
           null_means="an aggregate or cumulative figure (see the scope columns)"),
        _c("source_id", "id", "The document we read the number in.", required=True, references="sources.source_id"),
        _c("claimant", "id", "Who asserts the number (may differ from the publisher: a BBC report relaying SOHR has claimant SOHR).",
           required=True, references="actors.actor_id"),
        _c("metric", "text", "What is counted.", required=True, values=METRICS),
        _c("value_min", "integer", "Lower bound of the claim, as written.", minimum=0, null_means="no lower bound given ('up to N')"),
        _c("value_max", "integer", "Upper bound of the claim.", minimum=0,
           null_means="open-ended claim ('at least N', 'more than N'): never a made-up number"),
        _c("qualifier", "text", "How the source hedges the number.", required=True, values=QUALIFIERS),
        _c("scope_area", "text", "For aggregates: the area the figure covers.", null_means="an incident figure"),
        _c("aggregate_kind", "text", "For aggregates: whether the figure is a running total, a batch or a count for a period. "
           "Queries compare only figures of the same kind and area.", values=AGGREGATE_KINDS, null_means="an incident figure"),
        _c("scope_perpetrator", "id", "For aggregates: whose actions the figure counts.", references="actors.actor_id",
           null_means="all parties, or an incident figure"),
        _c("period_start", "date", "For aggregates: first day of the period counted.", null_means="not stated, or an incident figure"),
        _c("period_end", "date", "For aggregates: last day of the period counted.", null_means="not stated, or an incident figure"),
        _c("as_of", "date", "Date the claimant gave the figure (for running totals).", null_means="not known"),
        _c("quote", "text", "The short words of the source the number rests on.", required=True),
        _c("superseded_by", "id", "A later figure by the same claimant that replaces this one (e.g. a revised toll). Superseded figures stay "
           "on record but are left out of the incident's derived range.", references="figures.figure_id",
           null_means="the claimant's current figure"),
        _c("notes", "text", "Curator's notes (e.g. a later revision, a doubt).", null_means="none"),
        _c("corrected_by", "text", "The corrections (`discrepancies` ids, ' | '-separated) that find this figure wrong, out of date or "
           "imprecise as reported: read them before quoting it.", derived="discrepancies.figure_id",
           null_means="no correction touches this figure"),
        _c("provisional", "flag", "1 when no other source gives the same number for the same incident (or scope) and metric: "
           "the figure rests on a single source.", derived="figures", default=1),
    ),
)

STATEMENTS = Table(
    name="statements",
    description="Attributed statements that carry no number: a belligerent's confirmation or denial, a witness's account, an assertion.",
    pk="statement_id",
    indexes=(("incident_id", "said_on"), ("source_id",), ("speaker",), ("statement_type",)),
    fts=("quote", "notes"),
    columns=(
        _c("statement_id", "id", "Stable identifier; never reused.", required=True),
        _c("incident_id", "id", "The incident it is about.", references="incidents.incident_id", null_means="a general statement"),
        _c("source_id", "id", "The document we read it in.", required=True, references="sources.source_id"),
        _c("speaker", "id", "Who said it.", required=True, references="actors.actor_id"),
        _c("statement_type", "text", "What kind of statement.", required=True, values=STATEMENT_TYPES),
        _c("said_on", "date", "When it was said.", null_means="not known"),
        _c("quote", "text", "The words, quoted (short).", required=True),
        _c("notes", "text", "Curator's notes.", null_means="none"),
        _c("corrected_by", "text", "The corrections (`discrepancies` ids, ' | '-separated) that find this statement wrong, "
           "unsupported or imprecise as reported: read them before quoting it.", derived="discrepancies.statement_id",
           null_means="no correction touches this statement"),
    ),
)

DISCREPANCIES = Table(
    name="discrepancies",
    description="Where a source (often the seed article) is wrong, out of date or imprecise: what it said, what a better source says, and both sources.",
    pk="discrepancy_id",
    indexes=(("kind", "subject"), ("source_id",), ("incident_id",)),
    fts=("subject", "reported", "better", "notes"),
    columns=(
        _c("discrepancy_id", "id", "Stable identifier.", required=True),
        _c("kind", "text", "What kind of discrepancy.", required=True, values=DISCREPANCY_KINDS),
        _c("subject", "text", "What the discrepancy is about, in a few words.", required=True),
        _c("incident_id", "id", "The incident concerned.", references="incidents.incident_id", null_means="not about one incident"),
        _c("figure_id", "id", "The figure as reported (kept unchanged).", references="figures.figure_id", null_means="not about one figure"),
        _c("statement_id", "id", "The statement as reported (kept unchanged).", references="statements.statement_id",
           null_means="not about one statement"),
        _c("source_id", "id", "The source that is wrong or imprecise.", required=True, references="sources.source_id"),
        _c("reported", "text", "What that source says.", required=True),
        _c("better_source_id", "id", "The better source.", required=True, references="sources.source_id"),
        _c("better", "text", "What the better source says.", required=True),
        _c("notes", "text", "Why we prefer the better source.", null_means="none"),
    ),
)

CHANGES = Table(
    name="changes",
    description="The data's own history, kept by the curators: every incident added, every correction and update, and "
                "a tombstone for every row withdrawn or merged (its id is never reused).",
    pk="change_id",
    indexes=(("table_name", "row_id"), ("changed_on",), ("action",)),
    fts=("summary",),
    columns=(
        _c("change_id", "id", "Stable identifier of the change.", required=True),
        _c("changed_on", "date", "When the change was published.", required=True),
        _c("table_name", "text", "The table of the row that changed.", required=True,
           values={t: f"a row of `{t}`" for t in CHANGED_TABLES}),
        _c("row_id", "id", "The id of the row that changed. For 'added' and 'changed' the row must exist; for "
           "'removed' and 'merged' it must not (the id is retired).", required=True),
        _c("action", "text", "What happened to the row.", required=True, values=CHANGE_ACTIONS),
        _c("replaced_by", "id", "For 'merged': the row of the same table that replaces it (it must exist).",
           null_means="not merged"),
        _c("summary", "text", "What changed and why, in a sentence.", required=True),
        _c("source_id", "id", "The source that prompted the change.", references="sources.source_id",
           null_means="no single source (e.g. a new incident, sourced row by row)"),
    ),
)

# Load order: every table after the tables it references.
TABLES = (COUNTRIES, ACTORS, SOURCES, PLACES, INCIDENTS, FIGURES, STATEMENTS, DISCREPANCIES, CHANGES)
BY_NAME = {t.name: t for t in TABLES}

# --- Tables the build writes about itself ----------------------------------------

BUILD_INFO = Table(
    name="build_info",
    description="One row describing the build that made this database: when, from which commit and raw files, and how many rows each table holds.",
    pk="built_at",
    curated=False,
    columns=(
        _c("built_at", "text", "When the database was built (UTC, ISO 8601); SOURCE_DATE_EPOCH, when set, fixes it for a "
           "reproducible build.", required=True),
        _c("schema_version", "text", "Version of the civcas schema (civcas/schema.py).", required=True),
        _c("source_commit", "text", "Git commit of the repository the raw files came from.", null_means="not built from a git checkout"),
        _c("raw_sha256", "text", "SHA-256 over the raw CSV files, in load order.", required=True),
        _c("release", "text", "The release of the data, as numbered in CHANGELOG.md (its latest heading).",
           null_means="no CHANGELOG.md release"),
        _c("data_version", "text", "The data's version: the first 12 characters of data_sha256, so the same data always has the "
           "same version and any change gives a new one. Cite it with the data.", required=True),
        _c("source_repository", "text", "Address of the git repository the raw files came from (its `origin` remote).",
           null_means="not built from a clone with an origin remote"),
        _c("data_sha256", "text", "SHA-256 over the checksums of every other table: two builds of the same raw files give the "
           "same value, and `python -m civcas.checksum civcas.db` recomputes it from the file.", required=True),
        _c("table_sha256", "text", "JSON object: table name -> SHA-256 of its rows in primary-key order (see civcas/checksum.py).",
           required=True),
        _c("row_counts", "text", "JSON object: table name -> number of rows.", required=True),
    ),
)

DATA_DICTIONARY = Table(
    name="data_dictionary",
    description="Every column of every table: type, whether required, where derived columns come from, allowed values and what NULL means. Generated from civcas/schema.py.",
    pk="id",
    curated=False,
    indexes=(("table_name",),),
    columns=(
        _c("id", "text", "table_name.column_name.", required=True),
        _c("table_name", "text", "The table.", required=True),
        _c("column_name", "text", "The column.", required=True),
        _c("position", "integer", "Position of the column in the table, from 1.", required=True),
        _c("sql_type", "text", "SQLite type.", required=True),
        _c("kind", "text", "What the value is (slug, date, URL, ...).", required=True),
        _c("required", "flag", "1 when the column may not be empty.", required=True),
        _c("derived_from", "text", "For derived columns: the tables or columns the build computes it from.", null_means="curated in raw/"),
        _c("refers_to", "text", "table.column the value must exist in.", null_means="not a reference"),
        _c("allowed_values", "text", "The controlled vocabulary, ' | '-separated (meanings in `codes`).", null_means="free within its kind"),
        _c("null_means", "text", "What an empty value means in this column.", null_means="the column is required"),
        _c("description", "text", "What the column holds.", required=True),
    ),
)

CODES = Table(
    name="codes",
    description="The meaning of every allowed value of every controlled column (precision codes, gradings, metrics, qualifiers...).",
    pk="id",
    curated=False,
    indexes=(("table_name", "column_name"),),
    columns=(
        _c("id", "text", "table_name.column_name.code.", required=True),
        _c("table_name", "text", "The table.", required=True),
        _c("column_name", "text", "The column.", required=True),
        _c("code", "text", "An allowed value (numeric codes stored as text).", required=True),
        _c("meaning", "text", "What it means.", required=True),
    ),
)

FACET_COUNTS = Table(
    name="facet_counts",
    description="How many rows of the large tables hold each value of the columns their pages facet by, counted once by "
                "the build (civcas/pagedata.py) so an unfiltered page shows its facets without counting the whole table.",
    pk="id",
    curated=False,
    columns=(
        _c("id", "text", "table_name.column_name.rank.", required=True),
        _c("table_name", "text", "The table counted.", required=True),
        _c("column_name", "text", "The column counted.", required=True),
        _c("rank", "integer", "1 for the most frequent value, 2 for the next (ties in value order); 0 for the row that "
           "counts the column's distinct values. Only the 100 most frequent values are kept.", required=True),
        _c("value", "text", "The value (numbers stored as text).", null_means="the rank-0 row: count is the number of distinct values"),
        _c("label", "text", "The value's name, when the column refers to a table with names (actors, countries).",
           null_means="the column has no names to show"),
        _c("count", "integer", "Rows holding the value (rank 0: distinct non-empty values).", required=True),
    ),
)

# --- Summaries the build computes once (civcas/summaries.py) -----------------------------------
# The database never changes once built, so what a canned query would aggregate over every incident or figure on
# each request is computed once by the build; the canned queries in civcas/site.yml read these small tables.

_SUMMARY = " Computed by the build (civcas/summaries.py)."

DISAGREEMENT_GROUPS = Table(
    name="disagreement_groups",
    description="Where claims disagree: each incident and metric (or, for aggregate figures, each area, kind, perpetrator, "
                "period and date, and metric) with more than one distinct current number, the highest ratio first. "
                "Read by the canned query `disagreements`." + _SUMMARY,
    pk="rank",
    curated=False,
    columns=(
        _c("rank", "integer", "Position when sorted by ratio, highest first (then by `about` and metric).", required=True),
        _c("about", "text", "The incident's title, or the aggregate figures' area, perpetrator, kind and date.", required=True),
        _c("incident_id", "id", "The incident.", references="incidents.incident_id", null_means="aggregate figures"),
        _c("metric", "text", "What is counted.", required=True, values=METRICS),
        _c("claimants", "integer", "Distinct claimants giving a current figure.", required=True),
        _c("claims", "integer", "Current figures compared.", required=True),
        _c("lowest", "integer", "Lowest lower bound claimed.", null_means="no claim gives a lower bound"),
        _c("highest", "integer", "Highest number claimed (an upper bound, or the lower bound of an open-ended claim).",
           null_means="no number"),
        _c("spread", "integer", "highest minus lowest.", null_means="lowest or highest unknown"),
        _c("ratio", "real", "highest / lowest, to 2 decimals.", null_means="the lowest claim is 0 or unknown"),
        _c("who_said_what", "text", "Each claimant's number, '; '-separated, with the id of any correction.", required=True),
    ),
)

BELLIGERENT_GAPS = Table(
    name="belligerent_gaps",
    description="Incidents where the belligerent (or a body under it in the actors' parent chain) published a civilian death "
                "toll or assessed the allegation as non-credible: the deaths it conceded against the current claims of "
                "everyone else, largest gap first. Superseded and corrected figures are left out. Read by the canned "
                "query `belligerent_vs_monitors`." + _SUMMARY,
    pk="rank",
    curated=False,
    columns=(
        _c("rank", "integer", "Position when sorted by gap, largest first (then by incident id).", required=True),
        _c("incident_id", "id", "The incident.", required=True, references="incidents.incident_id"),
        _c("title", "text", "The incident's title.", required=True),
        _c("date_start", "date", "Earliest date of the incident.", required=True),
        _c("country", "country", "Country.", null_means="not known"),
        _c("belligerent", "id", "The actor credited with, or suspected of, the strike.", required=True,
           references="actors.actor_id"),
        _c("belligerent_assessment", "text", "The belligerent's own assessment of the allegation.", required=True,
           values=ASSESSMENTS),
        _c("conceded", "integer", "Highest civilian death toll the belligerent's side published (0 when it assessed the "
           "allegation non-credible and published none).", null_means="no toll published"),
        _c("conceded_by", "text", "The belligerent-side claimants, ','-separated.", null_means="no toll published"),
        _c("others_lowest", "integer", "Lowest current claim by everyone else.", null_means="no lower bound claimed"),
        _c("others_highest", "integer", "Highest current claim by everyone else.", null_means="no number claimed"),
        _c("other_claimants", "integer", "Distinct other claimants.", required=True),
        _c("gap", "integer", "others_highest minus conceded (minus 0 when nothing was conceded).",
           null_means="others_highest unknown"),
        _c("ratio", "real", "others_highest / conceded, to 1 decimal.", null_means="nothing or 0 conceded"),
    ),
)

BELLIGERENT_TOTALS = Table(
    name="belligerent_totals",
    description="Incidents and their derived civilian death tolls per belligerent. Minimums and maximums are summed "
                "separately. Read by the canned query `incidents_by_belligerent`." + _SUMMARY,
    pk="belligerent",
    curated=False,
    label_column="name",
    columns=(
        _c("belligerent", "id", "The belligerent.", required=True, references="actors.actor_id"),
        _c("name", "text", "Its name.", required=True),
        _c("incidents", "integer", "Incidents credited to it.", required=True),
        _c("civilians_killed_min", "integer", "Sum of the incidents' civilians_killed_min.",
           null_means="no incident has a lower bound"),
        _c("civilians_killed_max", "integer", "Sum of the incidents' civilians_killed_max.",
           null_means="at least one incident has an open-ended or unknown maximum"),
        _c("incidents_without_upper_bound", "integer", "Incidents whose civilians_killed_max is empty.", required=True),
        _c("first", "date", "Earliest date_start.", required=True),
        _c("last", "date", "Latest date_end.", required=True),
    ),
)

SOURCE_TYPE_TOTALS = Table(
    name="source_type_totals",
    description="How many sources of each type civcas holds, how many were read directly and how many are known only "
                "through a citing source. Read by the canned query `sources_by_type`." + _SUMMARY,
    pk="source_type",
    curated=False,
    columns=(
        _c("source_type", "text", "The type of source.", required=True, values=SOURCE_TYPES),
        _c("sources", "integer", "Sources of this type.", required=True),
        _c("read_directly", "integer", "Of which read directly (no `cited_in`).", required=True),
        _c("known_only_through_citation", "integer", "Of which known only through a citing source.", required=True),
        _c("publishers", "text", "Their distinct publishers, ','-separated.", null_means="no publisher recorded"),
    ),
)

COMPLETENESS_COUNTS = Table(
    name="completeness_counts",
    description="Share of incidents with each detail recorded (after Iraq Body Count's completeness table). Read by the "
                "canned query `completeness`." + _SUMMARY,
    pk="position",
    curated=False,
    columns=(
        _c("position", "integer", "Order of the detail in the table.", required=True),
        _c("detail", "text", "The detail.", required=True),
        _c("incidents", "integer", "Incidents with that detail recorded.", required=True),
        _c("percent", "real", "Their share of all incidents, in percent (1 decimal).", required=True),
    ),
)

PLACE_INCIDENTS = Table(
    name="place_incidents",
    description="Geolocated incidents per place, so that \"incidents near a point\" measures each distance once per "
                "place and reads the nearest places first. Read by the canned query `incidents_near`." + _SUMMARY,
    pk="place_id",
    curated=False,
    indexes=(("latitude", "longitude"),),
    columns=(
        _c("place_id", "id", "The place.", required=True, references="places.place_id"),
        _c("latitude", "real", "Latitude of its incidents, WGS84.", required=True),
        _c("longitude", "real", "Longitude of its incidents, WGS84.", required=True),
        _c("incidents", "integer", "Geolocated incidents at the place.", required=True),
    ),
)

SUMMARIES = (DISAGREEMENT_GROUPS, BELLIGERENT_GAPS, BELLIGERENT_TOTALS, SOURCE_TYPE_TOTALS, COMPLETENESS_COUNTS,
             PLACE_INCIDENTS)

GENERATED = (BUILD_INFO, DATA_DICTIONARY, CODES, FACET_COUNTS) + SUMMARIES
ALL_TABLES = TABLES + GENERATED
BY_NAME = {t.name: t for t in ALL_TABLES}
