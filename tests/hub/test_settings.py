"""Settings are read from the environment: the two shapes of the hub."""

from hub.settings import channel_layer_from_url, database_from_url


def test_no_database_url_is_sqlite_under_var():
    db = database_from_url(None)
    assert db["ENGINE"] == "django.db.backends.sqlite3"
    assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"


def test_database_url_is_postgres_with_persistent_connections(monkeypatch):
    monkeypatch.delenv("HUB_DB_CONN_MAX_AGE", raising=False)
    db = database_from_url("postgres://hub:s3cr%40t@db.internal:6543/hubdb?sslmode=require")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "hub",
        "s3cr@t",
        "db.internal",
        "6543",
        "hubdb",
    )
    assert db["OPTIONS"] == {"sslmode": "require"}
    assert db["CONN_MAX_AGE"] == 600


def test_no_redis_url_is_in_memory_layer():
    assert channel_layer_from_url(None)["BACKEND"] == "hub.layers.EmbeddedChannelLayer"


def test_redis_url_is_pubsub_layer_without_socket_timeout():
    layer = channel_layer_from_url("redis://127.0.0.1:6379/0")
    assert layer["BACKEND"] == "hub.layers.ResilientPubSubChannelLayer"
    host = layer["CONFIG"]["hosts"][0]
    assert host["socket_timeout"] is None
    assert host["max_connections"] >= 1000
