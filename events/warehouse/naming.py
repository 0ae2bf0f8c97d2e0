"""The names the warehouse gives: a team's schema, a track event's view, a property's column.

1. snake_case: accents are dropped (é -> e), camelCase is split (shippingMethod -> shipping_method), every
   run of other characters becomes one underscore, nested keys are joined with `_` (address.city ->
   address_city). A name that starts with a digit gets a leading underscore (3ds -> _3ds); a name with no
   letter or digit left becomes `event` (views) or `property` (columns).
2. A PostgreSQL reserved word (order, user, select, ...), a type view's name (tracks, ...) or one of the
   view's own columns (id, timestamp, user_id, ...) gets a trailing underscore: order -> order_.
3. Names are cut to 63 bytes, PostgreSQL's limit.
4. Two event names (or two property paths of one view) that end up with the same name: the one seen first
   keeps it, each later one gets `_` + the first 8 hex digits of the SHA-256 of its original name (or of its
   path as a JSON array) in place of its last 9 characters; if that is taken too (names can be chosen to
   collide), 16 hex digits, then 16 hex digits and a number.
A team's schema is `team_<slug>` (lower case, dashes become underscores), or `team_<slug>_<team id>` if another
team already holds that name; it is chosen when the team's TeamWarehouse is first needed (`warehouse_for_team`).

The rule a newcomer must know: a name is given once, by the catalog in the order events were first stored, and
kept (CatalogEvent.table_name, CatalogProperty.column_name); so names are deterministic and never move, and
whatever names a tenant sends, every identifier fits and no two collide.
"""

import hashlib
import itertools
import json
import re
import unicodedata
from collections.abc import Iterable

from accounts.models import Team
from events.models import TeamWarehouse
from events.warehouse.view_definitions import MAX_COLUMNS_PER_VIEW, MAX_EVENT_VIEWS, TYPE_VIEWS, fixed_column_names

MAX_IDENTIFIER_BYTES = 63

# SELECT word FROM pg_get_keywords() WHERE catcode IN ('R', 'T'): words that cannot be a column name unquoted.
# fmt: off
RESERVED_WORDS = frozenset([
    "all", "analyse", "analyze", "and", "any", "array", "as", "asc", "asymmetric", "authorization", "binary",
    "both", "case", "cast", "check", "collate", "collation", "column", "concurrently", "constraint", "create",
    "cross", "current_catalog", "current_date", "current_role", "current_schema", "current_time",
    "current_timestamp", "current_user", "default", "deferrable", "desc", "distinct", "do", "else", "end",
    "except", "false", "fetch", "for", "foreign", "freeze", "from", "full", "grant", "group", "having", "ilike",
    "in", "initially", "inner", "intersect", "into", "is", "isnull", "join", "lateral", "leading", "left",
    "like", "limit", "localtime", "localtimestamp", "natural", "not", "notnull", "null", "offset", "on", "only",
    "or", "order", "outer", "overlaps", "placing", "primary", "references", "returning", "right", "select",
    "session_user", "similar", "some", "symmetric", "table", "tablesample", "then", "to", "trailing", "true",
    "union", "unique", "user", "using", "variadic", "verbose", "when", "where", "window", "with",
])
# fmt: on


def snake_case(text: str) -> str:
    """`Purchased an Item` -> `purchased_an_item`, `shippingMethod` -> `shipping_method`, `Café` -> `cafe`."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", text)  # HTTPStatus -> HTTP_Status
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", text)  # shippingMethod -> shipping_Method
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def path_key(path: Iterable[str]) -> str:
    """A property path as one string: its JSON array (keys may contain dots)."""
    return json.dumps(list(path), ensure_ascii=False)


def path_digest(path: Iterable[str]) -> str:
    return _sha256(path_key(path))


def unique_identifier(base: str, *, original: str, fallback: str, reserved: Iterable[str], taken: set[str]) -> str:
    """Rules 2-4 of the module docstring, applied to a snake_case `base`; adds the result to `taken`.

    The result always fits MAX_IDENTIFIER_BYTES and is never in `taken`, whatever names came before: each
    suffix replaces the end of the same stem (suffixes never pile up), and a numbered one ends the search.
    """
    name = base or fallback
    if name[0].isdigit():
        name = "_" + name
    if name in RESERVED_WORDS or name in reserved:
        name += "_"
    stem = name = _cut(name, MAX_IDENTIFIER_BYTES)
    if name in taken:
        digest = _sha256(original)
        numbered = (f"_{digest[:16]}_{number}" for number in itertools.count(2))
        for suffix in itertools.chain((f"_{digest[:8]}", f"_{digest[:16]}"), numbered):
            name = _cut(stem, MAX_IDENTIFIER_BYTES - len(suffix)) + suffix
            if name not in taken:
                break
    taken.add(name)
    return name


def _cut(name: str, size: int) -> str:
    """At most `size` bytes of `name` in UTF-8, never splitting a character."""
    return name.encode("utf-8")[:size].decode("utf-8", "ignore")


def table_name_for(event_name: str, *, taken: set[str]) -> str:
    """The view name of a track event; '' once the team has MAX_EVENT_VIEWS of them."""
    if len(taken) >= MAX_EVENT_VIEWS:
        return ""
    return unique_identifier(
        snake_case(event_name), original=event_name, fallback="event", reserved=TYPE_VIEWS.values(), taken=taken
    )


def column_name_for(path: tuple[str, ...], *, event_type: str, taken: set[str]) -> str:
    """The column of a property path in a view; '' once the view has MAX_COLUMNS_PER_VIEW property columns."""
    if len(taken) >= MAX_COLUMNS_PER_VIEW:
        return ""
    base = "_".join(part for part in (snake_case(key) for key in path) if part)
    return unique_identifier(
        base, original=path_key(path), fallback="property", reserved=fixed_column_names(event_type), taken=taken
    )


def schema_name_for(team: Team, *, taken: Iterable[str]) -> str:
    """`team_<slug>`, or `team_<slug>_<team id>` when another team has it (slugs `a-b` and `a_b`, say)."""
    taken = set(taken)
    base = name = ("team_" + re.sub(r"[^a-z0-9_]", "_", team.slug.lower()))[:MAX_IDENTIFIER_BYTES]
    attempt = 0
    while name in taken:
        attempt += 1
        suffix = f"_{team.pk}" if attempt == 1 else f"_{team.pk}_{attempt}"
        name = base[: MAX_IDENTIFIER_BYTES - len(suffix)] + suffix
    return name


def warehouse_for_team(*, team: Team) -> TeamWarehouse:
    """The team's warehouse record, created (and its schema name chosen) the first time it is needed."""
    existing = TeamWarehouse.objects.filter(team=team).first()
    if existing is not None:
        return existing
    warehouse, _ = TeamWarehouse.objects.get_or_create(team=team, defaults={"schema_name": unused_schema_name(team)})
    return warehouse


def unused_schema_name(team: Team) -> str:
    """The schema name the team would get now, past those other teams' warehouses hold."""
    base = schema_name_for(team, taken=())
    taken = TeamWarehouse.objects.filter(schema_name__startswith=base).values_list("schema_name", flat=True)
    return schema_name_for(team, taken=taken)
