"""The events `make bench-warehouse` loads: a Segment ecommerce source, as its clients would send it.

Each team's events are cut into chunks of consecutive time, so that, as in production, ids grow with time.
A chunk is made from its own seed (the same load every time) and written through the ingest code: each message
is checked by `validate_segment_message`, made a row by `event_row` and stored by `store_batch` (the COPY path
of /v1/batch), in batches.

The rule a newcomer must know: nothing here writes SQL; what is stored is what the API would have stored for
the same messages, so the warehouse meets the shapes it meets in production.
"""

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

# A message of each kind, out of 100: mostly product views and purchases, some sign-ups, identifies and pages.
MIX = (("Viewed Product", 45), ("Purchased an Item", 20), ("Signed Up", 5), ("identify", 10), ("page", 20))
USERS_PER_EVENTS = 25  # a team with 5 M events has 200,000 users
STORE_BATCH = 2000  # rows per store_batch call: one COPY each
CITIES = (
    ("New York", 10), ("Los Angeles", 8), ("Chicago", 6), ("Houston", 5), ("Boston", 5), ("Seattle", 4),
    ("Austin", 4), ("Denver", 3), ("Portland", 3), ("Miami", 3), ("Atlanta", 3), ("Philadelphia", 3),
    ("San Diego", 2), ("Nashville", 2), ("Detroit", 2), ("Minneapolis", 2),
)  # fmt: skip
SHIPPING = (("standard", 55), ("2-day", 25), ("overnight", 10), ("pickup", 10))
CURRENCIES = (("USD", 80), ("EUR", 12), ("GBP", 8))
CATEGORIES = ("Books", "Games", "Music", "Outdoors", "Kitchen", "Garden", "Toys", "Electronics")
PLANS = ("free", "starter", "pro", "enterprise")
PAGES = (("Home", "/"), ("Pricing", "/pricing"), ("Product", "/products"), ("Cart", "/cart"), ("Blog", "/blog"))
AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
)


@dataclass(frozen=True)
class Chunk:
    """`count` events of one team, numbered from `first`, spread evenly between `starts` and `ends`."""

    team_id: int
    team_slug: str
    first: int
    count: int
    users: int
    starts: datetime
    ends: datetime

    @property
    def seed(self) -> str:
        return f"{self.team_slug}-{self.first}"


def _weighted(choices: tuple[tuple[str, int], ...]) -> tuple[list[str], list[int]]:
    return [name for name, _ in choices], [weight for _, weight in choices]


_KINDS, _CITIES, _SHIPPING, _CURRENCIES = map(_weighted, (MIX, CITIES, SHIPPING, CURRENCIES))


def messages(chunk: Chunk) -> list[tuple[dict, datetime]]:
    """The chunk's Segment messages with the time each was received (a second or so after it happened)."""
    rng = random.Random(chunk.seed)
    step = (chunk.ends - chunk.starts) / chunk.count
    kinds = rng.choices(*_KINDS, k=chunk.count)
    made = []
    for n, kind in enumerate(kinds):
        happened = chunk.starts + step * n
        # Some users are far busier than others: the square skews the pool towards its first users.
        user = int(chunk.users * rng.random() ** 2)
        document = _message(rng, kind, user, happened)
        document["messageId"] = f"{chunk.team_slug}-{chunk.first + n:09d}"
        made.append((document, happened + timedelta(milliseconds=rng.randrange(50, 2000))))
    return made


def _context(rng: random.Random, user: int) -> dict[str, Any]:
    return {
        "library": {"name": "analytics.js", "version": "4.1.0"},
        "ip": f"203.0.{user % 250}.{user // 250 % 250}",
        "locale": "en-US",
        "userAgent": AGENTS[user % len(AGENTS)],
    }


def _product(rng: random.Random) -> dict:
    number = rng.randrange(5000)
    return {
        "productId": f"prod_{number:05d}",
        "sku": f"SKU-{number * 7919 % 100000:05d}",
        "category": CATEGORIES[number % len(CATEGORIES)],
        "price": round(5 + number % 200 + rng.choice((0.0, 0.49, 0.95, 0.99)), 2),
    }


def _address(rng: random.Random) -> dict:
    # Zip codes as strings, some with leading zeros ("02134"): they must stay text.
    return {"city": rng.choices(*_CITIES)[0], "zip": f"{rng.randrange(1000, 99999):05d}"}


def _message(rng: random.Random, kind: str, user: int, happened: datetime) -> dict[str, Any]:
    common: dict[str, Any] = {
        "userId": f"user_{user:07d}",
        "anonymousId": f"anon-{user * 2654435761 % 2**32:08x}",
        "timestamp": happened.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "context": _context(rng, user),
    }
    if kind == "identify":
        traits = {
            "email": f"user{user}@example.com",
            "name": f"User {user}",
            "plan": PLANS[user % len(PLANS)],
            "createdAt": "2025-06-01T12:00:00Z",
            "address": _address(rng),
            "logins": rng.randrange(1, 400),
        }
        return {"type": "identify", "traits": traits, **common}
    if kind == "page":
        name, path = rng.choice(PAGES)
        url = f"https://shop.example.com{path}"
        context = {**common["context"], "page": {"url": url, "path": path, "title": f"{name} | Shop", "referrer": ""}}
        page = {"url": url, "path": path, "title": name}
        return {"type": "page", "name": name, "properties": page, **common, "context": context}
    if kind == "Purchased an Item":
        products = [{**_product(rng), "quantity": rng.randrange(1, 4)} for _ in range(rng.randrange(1, 4))]
        properties: dict[str, Any] = {
            "orderId": f"ord_{rng.getrandbits(40):010x}",
            "revenue": round(sum(p["price"] * p["quantity"] for p in products), 2),
            "currency": rng.choices(*_CURRENCIES)[0],
            "shippingMethod": rng.choices(*_SHIPPING)[0],
            "address": _address(rng),
            "productIds": [p["productId"] for p in products],
            "products": products,
        }
    elif kind == "Viewed Product":
        properties = {**_product(rng), "brand": f"Brand {rng.randrange(40)}", "inStock": rng.random() < 0.9}
    else:
        properties = {"plan": rng.choice(PLANS), "method": rng.choice(("email", "google", "github"))}
    return {"type": "track", "event": kind, "properties": properties, **common}


def store_chunk(chunk: Chunk) -> int:
    """Validate, build and store the chunk's events as /v1/batch would; returns how many were stored.
    Runs in a process where Django is set up (imports here, so that this module needs no settings)."""
    from events.ingest.storage import event_row, store_batch
    from events.ingest.validation import validate_segment_message

    rows, stored = [], 0
    for document, received_at in messages(chunk):
        payload, problems = validate_segment_message(document, received_at=received_at)
        if payload is None:
            raise ValueError(f"the ingest code refused a benchmark message: {problems} {document}")
        rows.append(event_row(team_id=chunk.team_id, token_id=None, payload=payload, received_at=received_at))
        if len(rows) == STORE_BATCH:
            stored += sum(not result.duplicate for result in store_batch(rows))
            rows = []
    if rows:
        stored += sum(not result.duplicate for result in store_batch(rows))
    return stored


def start_django(env: dict[str, str]) -> None:
    """A pool process's initializer: the app's settings on the benchmark's database, then Django."""
    import os

    import django

    os.environ.clear()
    os.environ.update(env)
    django.setup()


def create_teams(slugs: tuple[str, ...]) -> dict[str, int]:
    """The benchmark's teams, by slug (their warehouse schemas are `team_<slug>`); their ids."""
    from accounts.models import Team

    return {slug: Team.objects.get_or_create(slug=slug, defaults={"name": slug.title()})[0].pk for slug in slugs}


def warehouse_login_and_owner(slug: str, password: str) -> tuple[str, str, str]:
    """The team's read-only warehouse login, made (or given a new password) as an Owner does it, and an Owner
    with `password` for the Events page. Returns the login's URL, its role and the Owner's email."""
    from accounts.models import Membership, Role, Team, User
    from events.models import TeamWarehouse
    from events.warehouse.credentials import warehouse_credentials_rotate

    team = Team.objects.get(slug=slug)
    email = f"owner@{slug}.bench.test"
    owner = User.objects.filter(email=email).first() or User.objects.create_user(email, password)
    owner.set_password(password)
    owner.save()
    Membership.objects.get_or_create(team=team, user=owner, defaults={"role": Role.OWNER})
    url = warehouse_credentials_rotate(team=team, by=owner)
    return url, TeamWarehouse.objects.get(team=team).role_name, email
