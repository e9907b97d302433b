"""Knowledge base models: the default replies coordinators write and operators reuse.

``Reply`` holds what a coordinator edits plus three columns the services derive for search
(``search_title``, ``search_body``: case- and accent-folded words; ``search_types``: the query
type ids as ``,3,7,``).  ``Term`` is the vocabulary of those folded words, which the search
uses to correct small typos.  The search structures themselves (a narrow table of the live
replies: FTS5 on SQLite, ``tsvector`` columns with GIN on PostgreSQL; trigram indexes over
the vocabulary) live outside the ORM, created by the migrations and kept in sync by
database triggers on every write (``knowledge_base/search.py``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class Reply(models.Model):
    """A default reply.  ``version`` is bumped by every edit (optimistic concurrency);
    ``retired_at`` hides it for good and frees its shortcut; ``active`` hides it from
    operators for now."""

    title = models.CharField(max_length=200)
    shortcut = models.CharField(
        max_length=64, help_text="Typed in the composer after a slash, e.g. /card-blocked."
    )
    body = models.TextField(help_text='May hold variables, e.g. {{customer.first_name | "there"}}.')
    language = models.CharField(max_length=16, default="en")
    query_types = models.ManyToManyField(
        "routing.QueryType",
        blank=True,
        related_name="kb_replies",
        help_text="Leave empty to offer this reply for every type.",
    )
    active = models.BooleanField(default=True)
    position = models.PositiveIntegerField(default=0)
    usage_count = models.PositiveIntegerField(default=0)
    version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Derived by the services, read by the search backends (see the module docstring).
    search_title = models.TextField(blank=True, default="", editable=False)
    search_body = models.TextField(blank=True, default="", editable=False)
    search_types = models.CharField(max_length=500, blank=True, default="", editable=False)

    class Meta:
        ordering = ("position", "id")
        permissions = [("manage_replies", "Write, retire and reorder knowledge-base replies")]
        constraints = [
            models.UniqueConstraint(
                fields=["shortcut"],
                condition=Q(retired_at__isnull=True),
                name="kb_reply_shortcut_unique_live",
            )
        ]
        indexes = [models.Index(fields=["active", "position"], name="kb_reply_active_pos")]

    def __str__(self) -> str:
        return f"{self.shortcut} · {self.title}"


class Term(models.Model):
    """One folded word found in a reply; the vocabulary typo correction searches.

    Only ever grows between rebuilds (``kb_index_rebuild``): a word no reply uses any more
    can only suggest a correction that matches nothing.
    """

    word = models.CharField(max_length=64, unique=True)

    def __str__(self) -> str:
        return self.word
