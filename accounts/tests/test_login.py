from accounts.models import User
from conftest import PASSWORD


def test_a_user_logs_in_by_email_and_out_again(client, alice):
    response = client.post("/accounts/login/", {"username": "alice@acme.test", "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/settings/general/").status_code == 200
    client.post("/accounts/logout/")
    assert client.get("/settings/").status_code == 302


def test_a_wrong_password_shows_an_error_not_a_500(client, alice):
    response = client.post("/accounts/login/", {"username": "alice@acme.test", "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct email and password" in response.content.decode()


def test_email_is_case_insensitive_at_sign_up(db):
    user = User.objects.create_user("Mixed.Case@Example.TEST", PASSWORD)
    assert user.email == "mixed.case@example.test"


def test_a_user_changes_their_password(client, alice):
    new = "a much longer new secret"
    client.force_login(alice)
    response = client.post(
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "a much longer new secret",
            "new_password2": "a much longer new secret",
        },
    )
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(new)
