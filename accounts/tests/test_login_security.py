"""Login throttling and lockout (django-axes), session fixation, and the security headers of every page."""

import pytest
from axes.models import AccessAttempt, AccessFailureLog
from django.test import Client

from conftest import PASSWORD
from events.tokens import secret

WRONG = "not the password"


def _login(client: Client, email: str, password: str, path: str = "/accounts/login/"):
    return client.post(path, {"username": email, "password": password})


def test_five_wrong_passwords_lock_the_account_even_with_the_right_one(client, alice, settings):
    answers = [_login(client, alice.email, WRONG).status_code for _ in range(settings.AXES_FAILURE_LIMIT)]
    assert answers == [200] * (settings.AXES_FAILURE_LIMIT - 1) + [429]

    locked = _login(client, alice.email, PASSWORD)

    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert client.get("/settings/").status_code == 302  # still logged out


def test_the_admin_login_is_throttled_by_the_same_lockout(client, alice, settings):
    alice.is_staff = True
    alice.save()
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, alice.email, WRONG, path="/admin/login/")

    assert _login(client, alice.email, PASSWORD, path="/admin/login/").status_code == 429


def test_a_lockout_of_one_account_does_not_lock_another(client, alice, bob, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(client, alice.email, WRONG)

    assert _login(client, bob.email, PASSWORD).status_code == 302


def test_logging_in_rotates_the_session_key(client, alice):
    client.get("/accounts/login/")  # an anonymous session, e.g. planted by an attacker
    client.session.save()
    before = client.session.session_key

    _login(client, alice.email, PASSWORD)

    assert client.session.session_key != before


def test_pages_carry_a_content_security_policy_without_inline_scripts(client, alice):
    client.force_login(alice)

    policy = client.get("/settings/general/")["Content-Security-Policy"]

    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'"
    assert "unsafe-inline" not in directives["script-src"]
    assert directives["frame-ancestors"] == "'none'"


@pytest.mark.parametrize("path", ["/accounts/login/", "/settings/"])
def test_pages_have_no_inline_script(client, alice, path):
    client.force_login(alice)
    html = client.get(path, follow=True).content.decode()

    for chunk in html.split("<script")[1:]:
        tag = chunk.split(">", 1)[0]
        assert "src=" in tag, f"inline script on {path}: <script{tag}>"


def test_a_token_typed_into_the_login_form_or_address_is_not_kept(client, alice):
    token = secret.generate()
    client.post(
        f"/accounts/login/?next=/settings/&t={token}",
        {"username": token, "password": token},
        HTTP_USER_AGENT=f"curl {token}",
    )
    client.post("/accounts/login/", {"username": f"alice@acme.test {token}", "password": "wrong"})

    kept = [
        str(list(model.objects.values()))  # every column of every record axes keeps
        for model in (AccessAttempt, AccessFailureLog)
    ]
    assert AccessAttempt.objects.exists()
    assert all(token not in text and token[4:36] not in text for text in kept)
    assert secret.hint(token) in kept[0]
