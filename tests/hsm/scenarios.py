"""Scenarios run on both databases: the same writes, the same expected results
(tests/hsm/test_scenarios_postgres.py in process on PostgreSQL, test_scenarios_sqlite.py
through sqlite_probe on a freshly migrated SQLite file).  They exercise what depends on the
database: JSON columns, the partial unique constraint, row locks and the language filter."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction

from hsm import selectors, services
from hsm.models import Status, Template
from hub.exceptions import HubError
from tests.hsm.factories import template_fields, template_make


def _error(call: Any) -> dict[str, Any]:
    try:
        call()
    except HubError as error:
        return {"code": str(error.code), "field": error.data.get("field")}
    return {"code": None, "field": None}


def _roundtrip(actor: Any) -> Any:
    created = template_make(
        actor,
        name="round_trip",
        body_examples=["Ñandú “quoted”", "R-42"],
        buttons=[
            {"type": "quick_reply", "text": "Sí"},
            {"type": "url", "text": "Abrir", "url": "https://bank.example/a?b=1"},
        ],
    )
    stored = selectors.template_dict(Template.objects.get(pk=created["id"]))
    keys = ("name", "language", "header", "body", "body_examples", "buttons", "status")
    return {key: stored[key] for key in keys}


def _duplicate(actor: Any) -> Any:
    template_make(actor, name="dup_check")
    return _error(lambda: template_make(actor, name="dup_check"))


def _constraint(actor: Any) -> Any:
    """The partial unique index itself, under the services' check."""
    template_make(actor, name="constraint_check")
    try:
        with transaction.atomic():
            Template.objects.create(**template_fields(name="constraint_check"))
    except IntegrityError:
        return "refused"
    return "accepted"


def _retired_name_is_free(actor: Any) -> Any:
    first = template_make(actor, name="retire_check")
    services.template_retire(actor=actor, template_id=first["id"], version=first["version"])
    second = template_make(actor, name="retire_check")
    return second["id"] != first["id"]


def _bad_input_saves_nothing(actor: Any) -> Any:
    before = Template.objects.count()
    error = _error(lambda: template_make(actor, name="gap_check", body="Hola {{1}} y {{3}}"))
    return {**error, "saved": Template.objects.count() - before}


def _stale(actor: Any) -> Any:
    created = template_make(actor, name="stale_check")
    services.template_update(
        actor=actor, template_id=created["id"], version=created["version"], footer="First"
    )
    return _error(
        lambda: services.template_update(
            actor=actor, template_id=created["id"], version=created["version"], footer="Second"
        )
    )


def _edit_approved(actor: Any) -> Any:
    created = template_make(actor, Status.APPROVED, name="edit_check")
    edited = services.template_update(
        actor=actor,
        template_id=created["id"],
        version=created["version"],
        body="Hola {{1}}, novedades de {{2}}.",
    )
    return [created["status"], edited["status"], edited["version"] - created["version"]]


def _sendable(actor: Any) -> Any:
    for name, language, status in [
        ("lang_a", "es", Status.APPROVED),
        ("lang_b", "es_ES", Status.APPROVED),
        ("lang_c", "es_MX", Status.APPROVED),
        ("lang_d", "en_US", Status.APPROVED),
        ("lang_e", "es_ES", Status.PAUSED),
        ("lang_f", "es_ES", Status.DRAFT),
    ]:
        template_make(actor, status, name=name, language=language)
    return {
        wanted: [
            f"{t['name']}/{t['language']}"
            for t in selectors.templates_sendable(wanted)
            if t["name"].startswith("lang_")
        ]
        for wanted in ("es_ES", "es", "en")
    }


SCENARIOS = {
    "roundtrip": (
        _roundtrip,
        {
            "name": "round_trip",
            "language": "es",
            "header": "Reclamación {{1}}",
            "body": "Hola {{1}}, su reclamación {{2}} tiene novedades.",
            "body_examples": ["Ñandú “quoted”", "R-42"],
            "buttons": [
                {"type": "quick_reply", "text": "Sí"},
                {"type": "url", "text": "Abrir", "url": "https://bank.example/a?b=1"},
            ],
            "status": "draft",
        },
    ),
    "duplicate": (_duplicate, {"code": "conflict", "field": "name"}),
    "constraint": (_constraint, "refused"),
    "retired_name_is_free": (_retired_name_is_free, True),
    "bad_input_saves_nothing": (
        _bad_input_saves_nothing,
        {"code": "invalid_value", "field": "body", "saved": 0},
    ),
    "stale": (_stale, {"code": "stale_version", "field": None}),
    "edit_approved": (_edit_approved, ["approved", "draft", 1]),
    "sendable": (
        _sendable,
        {
            "es_ES": ["lang_b/es_ES", "lang_a/es", "lang_c/es_MX"],
            "es": ["lang_a/es", "lang_b/es_ES", "lang_c/es_MX"],
            "en": ["lang_d/en_US"],
        },
    ),
}


def run(actor: Any) -> dict[str, Any]:
    return {name: scenario(actor) for name, (scenario, _) in SCENARIOS.items()}


def check(name: str, result: Any) -> None:
    assert result == SCENARIOS[name][1], (name, result)
