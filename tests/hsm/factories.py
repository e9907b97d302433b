"""Test factories for hsm: templates made through the services, as a coordinator would."""

from __future__ import annotations

from typing import Any

from hsm import services
from hsm.models import Status

# The path the services allow from a new draft to each status.
PATHS: dict[str, list[str]] = {
    Status.DRAFT: [],
    Status.SUBMITTED: [Status.SUBMITTED],
    Status.APPROVED: [Status.SUBMITTED, Status.APPROVED],
    Status.REJECTED: [Status.SUBMITTED, Status.REJECTED],
    Status.PAUSED: [Status.SUBMITTED, Status.APPROVED, Status.PAUSED],
}


def template_fields(**overrides: Any) -> dict[str, Any]:
    """A valid template with a header placeholder, two body placeholders and buttons."""
    fields: dict[str, Any] = {
        "name": "claim_follow_up",
        "language": "es",
        "category": "utility",
        "header": "Reclamación {{1}}",
        "header_example": "R-42",
        "body": "Hola {{1}}, su reclamación {{2}} tiene novedades.",
        "body_examples": ["Ana", "R-42"],
        "footer": "Banco Demo",
        "buttons": [{"type": "quick_reply", "text": "Continuar"}],
    }
    fields.update(overrides)
    return fields


def template_make(actor: Any, status: str = Status.DRAFT, **overrides: Any) -> dict[str, Any]:
    """Create a template and move it to ``status`` through the allowed transitions."""
    template = services.template_create(actor=actor, **template_fields(**overrides))
    for step in PATHS[status]:
        template = services.template_status_change(
            actor=actor,
            template_id=template["id"],
            version=template["version"],
            status=step,
            rejection_reason="Example values missing" if step == Status.REJECTED else None,
        )
    return template
