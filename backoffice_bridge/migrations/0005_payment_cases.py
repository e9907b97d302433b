"""Payment inquiry and claim cases (seed 002): the hub's case record, its tasks, the
payment admin's assignment rules and the accounts connector agents manage, with the
case permissions (docs/backoffice.md, "Payment cases")."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("backoffice_bridge", "0004_request_cancelled"),
        ("chat", "0006_conversation_language"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Case",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("reference", models.CharField(max_length=64, unique=True)),
                (
                    "kind",
                    models.CharField(
                        choices=[("inquiry", "Payment inquiry"), ("claim", "Claim")], max_length=16
                    ),
                ),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("open", "Open"),
                            ("in_progress", "In progress"),
                            ("awaiting_debit_approval", "Awaiting debit approval"),
                            ("resolved", "Resolved"),
                        ],
                        default="open",
                        max_length=32,
                    ),
                ),
                (
                    "resolution",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("answered", "Answered"),
                            ("credited", "Credited"),
                            ("declined", "Declined"),
                        ],
                        default="",
                        max_length=16,
                    ),
                ),
                ("subject", models.CharField(max_length=200)),
                ("params", models.JSONField(default=dict)),
                (
                    "amount",
                    models.DecimalField(blank=True, decimal_places=2, max_digits=14, null=True),
                ),
                ("currency", models.CharField(blank=True, default="", max_length=3)),
                ("bank_user_id", models.CharField(max_length=64)),
                ("opened_at", models.DateTimeField()),
                ("updated_at", models.DateTimeField()),
                ("resolved_at", models.DateTimeField(blank=True, null=True)),
                (
                    "conversation",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="chat.conversation",
                    ),
                ),
                (
                    "customer",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="chat.customer",
                    ),
                ),
                (
                    "opened_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "request",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="case",
                        to="backoffice_bridge.actionrequest",
                    ),
                ),
            ],
            options={
                "permissions": [
                    (
                        "open_cases",
                        "Can open payment inquiry and claim cases (payment contributor)",
                    ),
                    ("work_inquiry_tasks", "Can work on payment inquiry tasks (inquiry agent)"),
                    ("work_claim_tasks", "Can work on claim tasks (claim agent)"),
                    ("approve_debits", "Can approve or reject the debit of a claim"),
                    (
                        "work_managed_accounts_only",
                        "Works only on cases of the bank accounts they manage (connector agent)",
                    ),
                    (
                        "manage_case_rules",
                        "Can configure case routing rules and connectors' accounts (payment admin)",
                    ),
                    ("view_all_cases", "Can read every payment case"),
                ],
            },
        ),
        migrations.CreateModel(
            name="TaskAssignmentRule",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=100)),
                ("position", models.PositiveIntegerField()),
                (
                    "case_kind",
                    models.CharField(
                        blank=True,
                        choices=[("inquiry", "Payment inquiry"), ("claim", "Claim")],
                        default="",
                        max_length=16,
                    ),
                ),
                (
                    "task_kind",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("investigate", "Investigate"),
                            ("respond", "Respond to the customer"),
                            ("debit_approval", "Approve the debit"),
                            ("settle", "Settle and credit"),
                        ],
                        default="",
                        max_length=32,
                    ),
                ),
                (
                    "min_amount",
                    models.DecimalField(blank=True, decimal_places=2, max_digits=14, null=True),
                ),
                (
                    "max_amount",
                    models.DecimalField(blank=True, decimal_places=2, max_digits=14, null=True),
                ),
                ("currency", models.CharField(blank=True, default="", max_length=3)),
                ("bank_user_id", models.CharField(blank=True, default="", max_length=64)),
                ("target_role", models.CharField(blank=True, default="", max_length=150)),
                ("created_at", models.DateTimeField()),
                ("updated_at", models.DateTimeField()),
                (
                    "created_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "target_agent",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "updated_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="CaseTask",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("investigate", "Investigate"),
                            ("respond", "Respond to the customer"),
                            ("debit_approval", "Approve the debit"),
                            ("settle", "Settle and credit"),
                        ],
                        max_length=32,
                    ),
                ),
                ("position", models.PositiveSmallIntegerField()),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("queued", "Waiting for an agent"),
                            ("assigned", "Assigned"),
                            ("in_progress", "In progress"),
                            ("done", "Done"),
                        ],
                        default="queued",
                        max_length=16,
                    ),
                ),
                ("routed_by", models.CharField(blank=True, default="", max_length=200)),
                ("created_at", models.DateTimeField()),
                ("assigned_at", models.DateTimeField(blank=True, null=True)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("completed_at", models.DateTimeField(blank=True, null=True)),
                ("outcome", models.CharField(blank=True, default="", max_length=16)),
                ("note", models.TextField(blank=True, default="")),
                (
                    "assignee",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "case",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="tasks",
                        to="backoffice_bridge.case",
                    ),
                ),
                (
                    "completed_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "rule",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="backoffice_bridge.taskassignmentrule",
                    ),
                ),
            ],
        ),
        migrations.CreateModel(
            name="AgentAccount",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("bank_user_id", models.CharField(max_length=64)),
                ("added_at", models.DateTimeField()),
                (
                    "added_by",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "agent",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="managed_accounts",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["bank_user_id"], name="backoffice_agent_acct_user")
                ],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("agent", "bank_user_id"), name="backoffice_agent_account_once"
                    )
                ],
            },
        ),
        migrations.AddIndex(
            model_name="case",
            index=models.Index(fields=["bank_user_id", "state"], name="backoffice_case_user_state"),
        ),
        migrations.AddIndex(
            model_name="case",
            index=models.Index(fields=["conversation", "opened_at"], name="backoffice_case_conv"),
        ),
        migrations.AddConstraint(
            model_name="taskassignmentrule",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("target_role", ""), ("target_agent__isnull", False)),
                    models.Q(
                        models.Q(("target_role", ""), _negated=True), ("target_agent__isnull", True)
                    ),
                    _connector="OR",
                ),
                name="backoffice_rule_one_target",
            ),
        ),
        migrations.AddConstraint(
            model_name="taskassignmentrule",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("min_amount__isnull", True),
                    ("max_amount__isnull", True),
                    ("min_amount__lte", models.F("max_amount")),
                    _connector="OR",
                ),
                name="backoffice_rule_amount_range",
            ),
        ),
        migrations.AddIndex(
            model_name="casetask",
            index=models.Index(fields=["assignee", "state"], name="backoffice_task_assignee"),
        ),
        migrations.AddConstraint(
            model_name="casetask",
            constraint=models.UniqueConstraint(
                fields=("case", "kind"), name="backoffice_task_once_per_case"
            ),
        ),
        migrations.AddConstraint(
            model_name="casetask",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("state__in", ["assigned", "in_progress"]), _negated=True),
                    ("assignee__isnull", False),
                    _connector="OR",
                ),
                name="backoffice_task_held_has_assignee",
            ),
        ),
    ]
