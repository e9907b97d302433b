"""``manage.py derive_operator``: the plan, the confirmation, the progress bar and the errors."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from chat import services
from chat.models import Conversation
from hub.roles import Role
from routing.models import Assignment, DerivationBatch
from routing.services import operator_state_get, presence_set

pytestmark = pytest.mark.django_db


def operator(staff, name, *, capacity=5, online=True):
    user = staff(name, Role.OPERATOR, online=online)
    state = operator_state_get(user_id=user.pk)
    state.capacity = capacity
    state.save()
    return user


def absent_with(staff, n):
    absent = operator(staff, "absent", capacity=20)
    for index in range(n):
        services.webchat_message_receive(visitor_id=f"c{index}", client_id="1", text="hi")
    presence_set(actor=absent, presence="offline")
    return absent


def derive(*args: str, answer: str | None = None) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    extra = {} if answer is None else {"stdin": StringIO(answer)}
    call_command("derive_operator", *args, stdout=out, stderr=err, **extra)
    return out.getvalue(), err.getvalue()


def test_yes_derives_without_asking_and_draws_progress(staff):
    absent = absent_with(staff, 3)
    bob = operator(staff, "bob", capacity=10)
    out, err = derive("--from", "absent", "--to", "bob", "--note", "sick leave", "--yes")
    assert "absent has 3 active conversation(s):" in out
    assert "3  → bob" in out
    assert "[y/N]" not in out
    assert "Derived 3 conversation(s) from absent" in out
    # The bar is redrawn in place and ends full.
    assert err.startswith("\r[") and err.rstrip().endswith("] 3/3")
    assert "#" * 30 in err
    assert Conversation.objects.filter(operator=bob, status="assigned").count() == 3
    assert not Conversation.objects.filter(operator=absent, status="assigned").exists()
    batch = DerivationBatch.objects.get()
    assert (batch.actor_id, batch.note, batch.count) == (None, "sick leave", 3)
    assert Assignment.objects.filter(batch=batch, actor__isnull=True).count() == 3


def test_confirmed_spread_reports_the_queue(staff):
    absent_with(staff, 3)
    operator(staff, "bob", capacity=2)
    out, _ = derive("--from", "absent", "--spread", answer="y\n")
    assert "Derive 3 conversation(s)? [y/N]" in out
    assert "2  → bob" in out
    assert "1  → the queue" in out
    assert Conversation.objects.filter(status="queued").count() == 1


@pytest.mark.parametrize("answer", ["n\n", "\n", ""])
def test_refused_or_unanswered_confirmation_moves_nothing(staff, answer):
    absent = absent_with(staff, 2)
    operator(staff, "bob")
    with pytest.raises(CommandError, match="Cancelled: nothing was derived"):
        derive("--from", "absent", "--to", "bob", answer=answer)
    assert Conversation.objects.filter(operator=absent, status="assigned").count() == 2
    assert not DerivationBatch.objects.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "ghost", "--to", "bob"], "No user named 'ghost'."),
        (["--from", "absent", "--to", "ghost"], "No user named 'ghost'."),
    ],
)
def test_unknown_user_is_a_clear_error(staff, args, message):
    absent_with(staff, 1)
    operator(staff, "bob")
    with pytest.raises(CommandError) as excinfo:
        derive(*args, "--yes")
    assert str(excinfo.value) == message


def test_service_refusals_print_code_and_message(staff):
    absent_with(staff, 3)
    operator(staff, "small", capacity=2)
    operator(staff, "idle")
    operator(staff, "offline", online=False)
    with pytest.raises(CommandError, match=r"^operator_at_capacity: The operator has 0 of 2"):
        derive("--from", "absent", "--to", "small", "--yes")
    with pytest.raises(CommandError, match=r"^nothing_to_derive: "):
        derive("--from", "idle", "--to", "small", "--yes")
    with pytest.raises(CommandError, match=r"^operator_unavailable: "):
        derive("--from", "absent", "--to", "offline", "--yes")
    assert not DerivationBatch.objects.exists()


def test_force_goes_beyond_capacity(staff):
    absent_with(staff, 3)
    small = operator(staff, "small", capacity=2)
    derive("--from", "absent", "--to", "small", "--force", "--yes")
    assert Conversation.objects.filter(operator=small, status="assigned").count() == 3
    assert DerivationBatch.objects.get().forced is True


def test_to_and_spread_are_exclusive_and_one_is_required(staff):
    with pytest.raises(CommandError):
        derive("--from", "absent")
    with pytest.raises(CommandError):
        derive("--from", "absent", "--to", "bob", "--spread")
