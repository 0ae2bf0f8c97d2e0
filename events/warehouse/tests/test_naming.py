"""events/warehouse/naming.py: schema, view and column names, and that any names a tenant sends still fit."""

import hashlib
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from accounts.models import Team
from events.warehouse.naming import (
    MAX_IDENTIFIER_BYTES,
    column_name_for,
    schema_name_for,
    snake_case,
    table_name_for,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("Purchased an Item", "purchased_an_item", id="words"),
        pytest.param("shippingMethod", "shipping_method", id="camel-case"),
        pytest.param("HTTPStatus", "http_status", id="acronym"),
        pytest.param("userID", "user_id", id="trailing-acronym"),
        pytest.param("item2Count", "item2_count", id="digit"),
        pytest.param("Café crème", "cafe_creme", id="accents"),
        pytest.param("$browser", "browser", id="dollar"),
        pytest.param("  Signed -- Up!  ", "signed_up", id="punctuation"),
        pytest.param("日本語", "", id="nothing-left"),
    ],
)
def test_snake_case(text, expected):
    assert snake_case(text) == expected


@pytest.mark.parametrize(
    "path, expected",
    [
        pytest.param(("address", "city"), "address_city", id="nested"),
        pytest.param(("shippingMethod",), "shipping_method", id="camel-case"),
        pytest.param(("order",), "order_", id="reserved-word"),
        pytest.param(("user",), "user_", id="reserved-user"),
        pytest.param(("timestamp",), "timestamp_", id="fixed-column"),
        pytest.param(("3ds",), "_3ds", id="leading-digit"),
        pytest.param(("🎉",), "property", id="no-letters"),
    ],
)
def test_property_column_names(path, expected):
    assert column_name_for(path, event_type="track", taken=set()) == expected


@pytest.mark.parametrize(
    "event, expected",
    [
        pytest.param("Purchased an Item", "purchased_an_item", id="segment-example"),
        pytest.param("Tracks", "tracks_", id="type-view-name"),
        pytest.param("Select", "select_", id="reserved-word"),
        pytest.param("🎉", "event", id="no-letters"),
    ],
)
def test_view_names(event, expected):
    assert table_name_for(event, taken=set()) == expected


def test_page_views_keep_name_and_category_for_the_page_itself():
    assert column_name_for(("name",), event_type="page", taken=set()) == "name_"
    assert column_name_for(("name",), event_type="track", taken=set()) == "name"


def test_names_are_cut_to_postgresqls_63_bytes():
    name = table_name_for("Checkout " * 20, taken=set())
    assert len(name.encode()) == MAX_IDENTIFIER_BYTES
    assert name.startswith("checkout_checkout_")


def test_the_name_seen_first_keeps_it_and_later_ones_get_a_digest():
    taken: set[str] = set()
    first = table_name_for("Signed Up", taken=taken)
    second = table_name_for("signed-up", taken=taken)
    assert first == "signed_up"
    assert second == "signed_up_" + hashlib.sha256(b"signed-up").hexdigest()[:8]
    # Deterministic: the same names in the same order give the same result.
    again: set[str] = set()
    assert [table_name_for(n, taken=again) for n in ("Signed Up", "signed-up")] == [first, second]


def test_a_long_clashing_name_still_fits_63_bytes():
    taken: set[str] = set()
    table_name_for("a" * 100, taken=taken)
    second = table_name_for("A" * 100, taken=taken)
    assert len(second) == MAX_IDENTIFIER_BYTES
    assert second.endswith("_" + hashlib.sha256(("A" * 100).encode()).hexdigest()[:8])


def test_property_paths_that_snake_case_alike_get_distinct_columns():
    taken: set[str] = set()
    flat = column_name_for(("address_city",), event_type="track", taken=taken)
    nested = column_name_for(("address", "city"), event_type="track", taken=taken)
    assert flat == "address_city"
    assert nested == "address_city_" + hashlib.sha256(json.dumps(["address", "city"]).encode()).hexdigest()[:8]


def test_schema_names_replace_dashes_and_avoid_another_teams_schema(db):
    team = Team.objects.create(name="Acme Corp", slug="acme-corp")
    assert schema_name_for(team, taken=set()) == "team_acme_corp"
    assert schema_name_for(team, taken={"team_acme_corp"}) == f"team_acme_corp_{team.pk}"
    taken = {"team_acme_corp", f"team_acme_corp_{team.pk}"}  # another team's slug was acme-corp-<our id>
    assert schema_name_for(team, taken=taken) == f"team_acme_corp_{team.pk}_2"


_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")


def _assert_usable_identifiers(names: list[str]) -> None:
    """What PostgreSQL needs of every name the warehouse makes: at most 63 bytes, and no two alike."""
    assert len(set(names)) == len(names)
    for name in names:
        assert len(name.encode()) <= MAX_IDENTIFIER_BYTES, name
        assert _IDENTIFIER.fullmatch(name), name


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=200), max_size=30))
def test_any_event_names_get_distinct_identifiers_that_fit(event_names):
    taken: set[str] = set()
    _assert_usable_identifiers([table_name_for(name, taken=taken) for name in event_names])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(st.text(max_size=80), min_size=1, max_size=4).map(tuple), max_size=30))
def test_any_property_paths_get_distinct_columns_that_fit(paths):
    taken: set[str] = set()
    _assert_usable_identifiers([column_name_for(path, event_type="track", taken=taken) for path in paths])


def _digest(text: str, length: int) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@st.composite
def colliding_names(draw) -> list[str]:
    """Names a tenant picks to collide with what the rules make: names already given, sent again in other
    letters; and names given, plus the digest suffixes the rules would add for a name still to come."""
    names: list[str] = []
    given_names: list[str] = []
    taken: set[str] = set()
    for _ in range(draw(st.integers(1, 25))):
        move = draw(st.sampled_from(["fresh", "again", "upper", "suffix", "long"]))
        if move == "fresh" or not given_names:
            name = draw(st.text(min_size=1, max_size=70))
        elif move == "again":
            name = draw(st.sampled_from(given_names))
        elif move == "upper":
            name = draw(st.sampled_from(given_names)).upper()
        elif move == "long":
            name = draw(st.sampled_from(given_names)) + "_" + "x" * draw(st.integers(0, 70))
        else:
            stem = draw(st.sampled_from(given_names))
            future = draw(st.sampled_from(names))
            parts = [_digest(future, length) for length in draw(st.lists(st.sampled_from([8, 16, 64]), max_size=3))]
            name = "_".join([stem, *parts])
        names.append(name)
        given_names.append(table_name_for(name, taken=taken))
    return names


@settings(max_examples=500, deadline=None)
@given(colliding_names())
def test_names_built_to_collide_still_get_distinct_identifiers_that_fit(names):
    taken: set[str] = set()
    _assert_usable_identifiers([table_name_for(name, taken=taken) for name in names])


def test_a_chain_of_names_taking_each_digest_suffix_in_turn_still_fits():
    a_digest = hashlib.sha256(b"A").hexdigest()
    # "a" takes its name, then a tenant takes both names the rules would give "A" next.
    chain = ["a", f"a_{a_digest[:8]}", f"a_{a_digest[:16]}", f"a_{a_digest[:8]}_{a_digest[:16]}", "A"]
    taken: set[str] = set()
    names = [table_name_for(name, taken=taken) for name in chain]
    _assert_usable_identifiers(names)
    assert names[-1] == f"a_{a_digest[:16]}_2"


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.characters(), min_size=1, max_size=50), st.integers(1, 10**9))
def test_schema_names_fit_for_any_slug(slug, team_id):
    team = Team(pk=team_id, slug=slug)
    taken: set[str] = set()
    names = []
    for _ in range(4):  # other teams whose slugs give the same schema name
        names.append(schema_name_for(team, taken=taken))
        taken.add(names[-1])
    _assert_usable_identifiers(names)
