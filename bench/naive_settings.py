"""Bench baseline settings: the naive Channels relay (bench.naive_relay), nothing else.

No database, no auth, no sessions: what a Channels tutorial needs.  The channel layer is the
classic ``RedisChannelLayer`` with its defaults (capacity 100, expiry 60) on
``BENCH_REDIS_URL``, with one change: redis-py's connection pool is raised to the hub's
10,000 connections.  With the stock pool (100) the relay answers HTTP 500
(``MaxConnectionsError``) to the 101st of 200 concurrent handshakes, and a baseline that
cannot hold the connections measures nothing.
"""

import os

SECRET_KEY = "bench-naive-relay-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
INSTALLED_APPS = ["channels"]
DATABASES: dict = {}
ASGI_APPLICATION = "bench.naive_relay.application"
CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            "hosts": [
                {
                    "address": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0"),
                    "max_connections": 10_000,
                }
            ]
        },
    }
}
USE_TZ = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
