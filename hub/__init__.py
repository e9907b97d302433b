"""The hub: project package (settings, ASGI entry point, accounts, roles and error model)."""
