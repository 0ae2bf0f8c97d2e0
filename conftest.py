"""Shared personas: Alice owns Acme, Bob is a Member of Acme, Charlie owns Globex and must see nothing of Acme."""

import pytest
from django.core.cache import cache

from accounts.models import Membership, Role, Team, User
from events.ingest import group_commit, rejections, storage, throttling
from events.tokens import lookup

PASSWORD = "correct horse battery staple"


def make_user(email: str, **extra) -> User:
    return User.objects.create_user(email, PASSWORD, **extra)


@pytest.fixture(scope="session", autouse=True)
def _release_group_commit_connection(django_db_setup, django_db_blocker):
    """The committer holds its own connection; let it go before the test database is dropped."""
    yield
    group_commit.close()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # PBKDF2 costs ~0.5 s per user on this machine; the tests are about access, not hashing strength.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_caches():
    cache.clear()
    lookup.clear_local()
    throttling.reset()
    storage.drop_reserved_ids()
    rejections.forget_tallies()
    yield
    lookup.clear_local()


class StoppedClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def stop_monotonic_clock(monkeypatch):
    """Stop the monotonic clock of a module that imports `monotonic` by name, and return it to move on by hand.

    time-machine freezes the wall clock (time.time, datetime.now) but leaves time.monotonic alone, on purpose.
    """

    def stop(module) -> StoppedClock:
        clock = StoppedClock()
        monkeypatch.setattr(module, "monotonic", clock)
        return clock

    return stop


@pytest.fixture
def acme(db) -> Team:
    return Team.objects.create(name="Acme", slug="acme", events_api_enabled=True)


@pytest.fixture
def globex(db) -> Team:
    return Team.objects.create(name="Globex", slug="globex", events_api_enabled=True)


@pytest.fixture
def alice(acme) -> User:
    user = make_user("alice@acme.test")
    Membership.objects.create(user=user, team=acme, role=Role.OWNER)
    return user


@pytest.fixture
def bob(acme) -> User:
    user = make_user("bob@acme.test")
    Membership.objects.create(user=user, team=acme, role=Role.MEMBER)
    return user


@pytest.fixture
def charlie(globex) -> User:
    user = make_user("charlie@globex.test")
    Membership.objects.create(user=user, team=globex, role=Role.OWNER)
    return user


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def bob_client(client, bob):
    client.force_login(bob)
    return client


@pytest.fixture
def charlie_client(client, charlie):
    client.force_login(charlie)
    return client
