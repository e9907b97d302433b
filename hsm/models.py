"""HSM models (model layer): the WhatsApp message templates coordinators keep, and the
history of who changed each one.

A ``Template`` is the only kind of message a business may send once 24 hours have passed
since the customer last wrote.  Its content is checked by ``hsm.rules`` when the services
save it, so a stored template is always well formed; the status records where it stands with
WhatsApp (draft → submitted → approved/rejected, approved ↔ paused; see docs/hsm.md).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Category(models.TextChoices):
    UTILITY = "utility", "Utility"
    MARKETING = "marketing", "Marketing"
    AUTHENTICATION = "authentication", "Authentication"


class Status(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"
    PAUSED = "paused", "Paused"


class Template(models.Model):
    """One template in one language.  ``version`` is bumped by every write (optimistic
    concurrency); ``retired_at`` removes it for good and frees its (name, language)."""

    name = models.CharField(max_length=512, help_text="Lower-case letters, digits, underscores.")
    language = models.CharField(max_length=16, help_text="WhatsApp code, e.g. es, en_US.")
    category = models.CharField(max_length=16, choices=Category.choices)
    header = models.CharField(max_length=60, blank=True, default="")
    header_example = models.CharField(max_length=60, blank=True, default="")
    body = models.TextField(help_text="Placeholders {{1}}, {{2}}… numbered from 1, no gaps.")
    body_examples = models.JSONField(default=list, blank=True)
    footer = models.CharField(max_length=60, blank=True, default="")
    buttons = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    rejection_reason = models.TextField(blank=True, default="")
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    status_changed_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ("name", "language")
        permissions = [("manage_templates", "Write, submit, approve and retire HSM templates")]
        constraints = [
            models.UniqueConstraint(
                fields=["name", "language"],
                condition=Q(retired_at__isnull=True),
                name="hsm_template_name_language_unique_live",
            ),
            models.CheckConstraint(
                condition=Q(status__in=[s.value for s in Status]), name="hsm_template_status_valid"
            ),
        ]
        indexes = [models.Index(fields=["status", "language"], name="hsm_template_status_lang")]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"


class Action(models.TextChoices):
    CREATED = "created", "Created"
    UPDATED = "updated", "Updated"
    STATUS_CHANGED = "status_changed", "Status changed"
    RETIRED = "retired", "Retired"


class TemplateHistory(models.Model):
    """Who did what to a template, one row per write (the services append it in the same
    transaction as the change)."""

    template = models.ForeignKey(Template, on_delete=models.CASCADE, related_name="history")
    action = models.CharField(max_length=16, choices=Action.choices)
    from_status = models.CharField(max_length=16, blank=True, default="")
    to_status = models.CharField(max_length=16, blank=True, default="")
    note = models.TextField(blank=True, default="")
    version = models.PositiveIntegerField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("template_id", "id")
        verbose_name_plural = "template history"

    def __str__(self) -> str:
        return f"{self.template_id} v{self.version} {self.action}"
