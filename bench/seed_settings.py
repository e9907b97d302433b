"""Bench seeding settings: the hub's settings with a cheap password hasher.

Only the seeding process (bench.seed) uses this module.  Hashing 1,000 passwords with the
production hasher would take minutes; the hub processes never check these passwords, since
the benchmark authenticates with API tokens issued here.
"""

from hub.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LOGGING = {"version": 1, "disable_existing_loggers": False}
