def test_healthz_answers_without_the_database(client):
    assert client.get("/healthz").json() == {"status": "ok"}


def test_readyz_checks_the_database(client, db):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"
