"""chat.services: storing, routing, answering and announcing messages."""

from __future__ import annotations

import itertools

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from chat import selectors, services
from chat.events import operator_group
from chat.models import ConsoleEvent, Conversation, Message
from hub.exceptions import Conflict, ConversationClosed, ErrorCode, NotFound, ValidationFailed
from hub.roles import Role

pytestmark = pytest.mark.django_db


def _receive(visitor="v1", client_id="c1", text="hello"):
    return services.webchat_message_receive(visitor_id=visitor, client_id=client_id, text=text)


def test_first_message_opens_conversation_routed_to_online_operator(staff):
    op = staff("op", online=True)
    result = _receive()
    conversation = Conversation.objects.get()
    assert result.created
    assert conversation.operator_id == op.pk
    assert conversation.status == "assigned"
    assert conversation.last_customer_message_at is not None
    kinds = list(ConsoleEvent.objects.order_by("id").values_list("kind", "operator_id"))
    assert kinds == [
        ("routing.presence_changed", None),
        ("routing.conversation_assigned", op.pk),
        ("chat.message_created", op.pk),
    ]


def test_replayed_message_id_never_creates_a_second_message(staff):
    staff("op", online=True)
    first = _receive(client_id="same")
    again = _receive(client_id="same", text="hello (retried)")
    assert not again.created
    assert again.message["id"] == first.message["id"]
    assert Message.objects.count() == 1


def test_nobody_online_queues_then_operator_coming_online_takes_it(staff):
    op = staff("op")
    _receive()
    conversation = Conversation.objects.get()
    assert (conversation.status, conversation.operator_id) == ("queued", None)
    from routing.services import presence_set

    presence_set(actor=op, presence="online")
    conversation.refresh_from_db()
    assert (conversation.status, conversation.operator_id) == ("assigned", op.pk)


def test_least_loaded_operator_gets_the_next_conversation(staff):
    a = staff("a", online=True)
    b = staff("b", online=True)
    for visitor in ("v1", "v2", "v3"):
        _receive(visitor=visitor)
    loads = sorted(Conversation.objects.values_list("operator_id", flat=True), key=lambda x: x)
    assert loads.count(a.pk) + loads.count(b.pk) == 3
    assert abs(loads.count(a.pk) - loads.count(b.pk)) == 1


def test_operator_answers_and_retry_returns_same_message(staff):
    op = staff("op", online=True)
    conversation_id = _receive().conversation["id"]
    sent = services.operator_message_send(
        actor=op, conversation_id=conversation_id, client_id="r1", text="Hi!"
    )
    retried = services.operator_message_send(
        actor=op, conversation_id=conversation_id, client_id="r1", text="Hi!"
    )
    assert sent.created and not retried.created
    assert retried.message["id"] == sent.message["id"]
    conversation = Conversation.objects.get()
    assert conversation.first_operator_reply_at is not None
    assert Message.objects.filter(direction="out").count() == 1


def test_client_id_reused_for_another_conversation_is_a_conflict(staff):
    op = staff("op", online=True)
    first = _receive(visitor="v1").conversation["id"]
    second = _receive(visitor="v2").conversation["id"]
    services.operator_message_send(actor=op, conversation_id=first, client_id="x", text="a")
    with pytest.raises(Conflict):
        services.operator_message_send(actor=op, conversation_id=second, client_id="x", text="b")


def test_other_operator_and_supervisor_cannot_answer(staff):
    staff("owner", online=True)
    other = staff("other")
    coordinator = staff("coord", Role.COORDINATOR)
    conversation_id = _receive().conversation["id"]
    for actor in (other, coordinator):
        with pytest.raises(NotFound):
            services.operator_message_send(
                actor=actor, conversation_id=conversation_id, client_id="z", text="no"
            )
    assert Message.objects.filter(direction="out").count() == 0
    # …but the coordinator may watch it.
    history = selectors.conversation_history(
        actor=coordinator, conversation_id=conversation_id, before_id=None, limit=10
    )
    assert [m["text"] for m in history["messages"]] == ["hello"]
    with pytest.raises(NotFound):
        selectors.conversation_history(
            actor=other, conversation_id=conversation_id, before_id=None, limit=10
        )


def test_malformed_conversation_id_is_not_found_not_a_crash(staff):
    op = staff("op", online=True)
    with pytest.raises(NotFound):
        services.operator_message_send(actor=op, conversation_id="nope", client_id="a", text="b")


@pytest.mark.parametrize(("text", "field"), [("   ", "text"), ("x" * 5000, "text")])
def test_invalid_text_is_refused_and_nothing_stored(staff, text, field):
    staff("op", online=True)
    with pytest.raises(ValidationFailed) as caught:
        _receive(text=text)
    assert caught.value.data["field"] == field
    assert Message.objects.count() == 0
    assert Conversation.objects.count() == 0


def test_closed_conversation_refuses_answers_and_next_message_opens_new(staff):
    op = staff("op", online=True)
    conversation_id = _receive().conversation["id"]
    services.conversation_close(actor=op, conversation_id=conversation_id)
    with pytest.raises(ConversationClosed) as caught:
        services.operator_message_send(
            actor=op, conversation_id=conversation_id, client_id="late", text="hello?"
        )
    assert (caught.value.code, caught.value.status) == (ErrorCode.CONVERSATION_CLOSED, 409)
    new = _receive(client_id="c2").conversation["id"]
    assert new != conversation_id


def test_events_are_announced_only_after_commit(staff, django_capture_on_commit_callbacks):
    op = staff("op", online=True)
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(operator_group(op.pk), channel)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        _receive()
    # Nothing has rung yet: the doorbells wait in one commit hook.
    assert len(callbacks) == 1
    callbacks[0]()
    # assignment + message ring after commit, in that order.
    names = [async_to_sync(layer.receive)(channel)["event"]["name"] for _ in range(2)]
    assert names == ["routing.conversation_assigned", "chat.message_created"]


def test_failed_write_rolls_back_event_and_doorbell(staff, django_capture_on_commit_callbacks):
    staff("op", online=True)
    before = ConsoleEvent.objects.count()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with pytest.raises(ValidationFailed):
            _receive(text="")
    assert ConsoleEvent.objects.count() == before
    assert callbacks == []


def test_event_prev_ids_chain_each_stream(staff):
    a = staff("a", online=True)
    b = staff("b", online=True)
    for visitor in ("v1", "v2", "v3", "v4"):
        _receive(visitor=visitor)
    events = list(ConsoleEvent.objects.order_by("id"))
    for previous, event in itertools.pairwise(events):
        assert event.prev_all == previous.id
    for operator in (a, b):
        own = [e for e in events if e.operator_id == operator.pk]
        assert own[0].prev_operator == 0
        for previous, event in itertools.pairwise(own):
            assert event.prev_operator == previous.id


def test_replay_returns_missed_events_in_order_or_refuses(staff):
    op = staff("op", online=True)
    _receive(visitor="v1")
    mark = ConsoleEvent.objects.latest("id").id
    _receive(visitor="v1", client_id="c2")
    _receive(visitor="v2")
    missed = selectors.console_events_since(
        actor_id=op.pk, supervisor=False, last_event_id=mark, limit=100
    )
    assert [e.kind for e in missed] == [
        "chat.message_created",
        "routing.conversation_assigned",
        "chat.message_created",
    ]
    with pytest.raises(selectors.ReplayUnavailable, match="unknown_event_id"):
        selectors.console_events_since(
            actor_id=op.pk, supervisor=False, last_event_id=10**9, limit=100
        )
    with pytest.raises(selectors.ReplayUnavailable, match="too_many"):
        selectors.console_events_since(actor_id=op.pk, supervisor=True, last_event_id=0, limit=2)


def test_unread_counts_follow_reads(staff):
    op = staff("op", online=True)
    _receive(client_id="1")
    last = _receive(client_id="2")
    snapshot = selectors.console_snapshot(actor=op)
    assert snapshot["conversations"][0]["unread"] == 2
    services.conversation_mark_read(
        actor=op, conversation_id=last.conversation["id"], up_to_message_id=last.message["id"]
    )
    assert selectors.console_snapshot(actor=op)["conversations"][0]["unread"] == 0


def test_read_marker_never_passes_the_conversations_own_messages(staff):
    op = staff("op", online=True)
    first = _receive(client_id="1")
    services.conversation_mark_read(
        actor=op, conversation_id=first.conversation["id"], up_to_message_id=10**12
    )
    _receive(client_id="2")
    assert selectors.console_snapshot(actor=op)["conversations"][0]["unread"] == 1


def test_snapshot_rows_carry_operator_name_and_last_message(staff):
    op = staff("op", online=True)
    op.first_name, op.last_name = "Omar", "One"
    op.save()
    received = _receive(text="my card is blocked")
    services.operator_message_send(
        actor=op, conversation_id=received.conversation["id"], client_id="r", text="On it"
    )
    snapshot = selectors.console_snapshot(actor=op)
    (row,) = snapshot["conversations"]
    assert row["operator"] == {"id": op.pk, "name": "Omar One"}
    assert row["last_message"]["text"] == "On it"
    assert row["last_message"]["direction"] == "out"
    assert snapshot["truncated"] is False


def test_pruned_log_sends_old_cursors_to_a_snapshot(staff):
    from datetime import timedelta

    op = staff("op", online=True)
    _receive(client_id="old")
    cursor = ConsoleEvent.objects.latest("id").id
    ConsoleEvent.objects.update(created_at=timezone.now() - timedelta(days=40))
    _receive(client_id="new")
    deleted = services.console_log_prune(older_than=timedelta(days=30))
    assert deleted >= 2
    assert not ConsoleEvent.objects.filter(id__lte=cursor).exists()
    with pytest.raises(selectors.ReplayUnavailable, match="event_id_too_old"):
        selectors.console_events_since(
            actor_id=op.pk, supervisor=False, last_event_id=cursor - 1, limit=100
        )
    # A cursor at the horizon still replays what is left, in full.
    remaining = selectors.console_events_since(
        actor_id=op.pk, supervisor=False, last_event_id=cursor, limit=100
    )
    assert [e.kind for e in remaining] == ["chat.message_created"]


def test_closing_frees_a_slot_for_the_oldest_queued_conversation(staff):
    from routing.services import operator_state_get

    op = staff("op", online=True)
    state = operator_state_get(user_id=op.pk)
    state.capacity = 1
    state.save()
    first = _receive(visitor="v1").conversation["id"]
    _receive(visitor="v2")
    _receive(visitor="v3")
    assert Conversation.objects.filter(status="queued").count() == 2
    services.conversation_close(actor=op, conversation_id=first)
    taken = Conversation.objects.get(status="assigned")
    assert taken.customer.identities.get().external_id == "v2"
    assert Conversation.objects.filter(status="queued").count() == 1


@pytest.mark.parametrize(
    ("declared", "tag"),
    [("es-ES", "es"), ("EN_us", "en"), ("de", "de"), ("", ""), (None, ""), ("1234", "")],
)
def test_language_tag_keeps_the_primary_subtag(declared, tag):
    assert services.language_tag(declared) == tag


def test_a_new_conversation_keeps_the_language_its_channel_declared(staff):
    from knowledge_base.selectors import conversation_language

    staff("op", online=True)
    services.webchat_message_receive(
        visitor_id="v-lang", client_id="c1", text="hello, my card is blocked", language="es-ES"
    )
    conversation = Conversation.objects.get()
    assert conversation.language == "es"
    assert selectors.conversation_dict(conversation)["language"] == "es"
    # The declared language wins over a guess from the (English) text.
    assert conversation_language(conversation) == "es"
    # Later messages on the open conversation do not change it.
    services.webchat_message_receive(
        visitor_id="v-lang", client_id="c2", text="still blocked", language="en-GB"
    )
    conversation.refresh_from_db()
    assert conversation.language == "es"


def test_without_a_declared_language_the_knowledge_base_guesses(staff):
    from knowledge_base.selectors import conversation_language

    staff("op", online=True)
    services.webchat_message_receive(
        visitor_id="v-guess",
        client_id="c1",
        text="hola, necesito ayuda con mi tarjeta bloqueada, por favor",
    )
    conversation = Conversation.objects.get()
    assert conversation.language == ""
    assert selectors.conversation_dict(conversation)["language"] is None
    assert conversation_language(conversation) == "es"
