"""Property test of the routing policy (``routing.services.operator_pick`` and the queue it
feeds): hypothesis generates a team (presence, capacity 0 to 4, skills among three query
types or none, time since last assignment, conversations already held) and a sequence of
arriving conversations and closes, drives the real chat and routing services on the test
database, and checks the policy's promises after every step:

1. no operator holds more conversations than their capacity;
2. no conversation is assigned to an operator who is not online or does not serve its type;
3. nothing waits in the queue while an online operator who serves its type has a free slot;
4. each assignment went to a least-loaded eligible operator, ties to the one assigned
   longest ago (never assigned counts as oldest); a slot freed by a close takes the queue's
   head for that operator (type priority, then age).

How hypothesis meets pytest-django here: the test takes the ``db`` fixture (one transaction
around the whole test, rolled back at the end) and creates the staff users and query types
once.  The ``@given`` function runs inside that test and wraps each example in its own
``transaction.atomic()`` block, rolled back at its end (a savepoint), so every example
starts from the same empty hub without flushing tables.  Django discards the on-commit
doorbells registered inside a rolled-back savepoint, and the examples never share an
external id, so nothing leaks from one example to the next.  The function-scoped-fixture
health check does not apply: the fixture belongs to the outer test, not to the examples.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, example, given, settings, target
from hypothesis import strategies as st

from chat import services as chat
from chat.models import Channel, Conversation, ConversationStatus, Customer
from chat.store import identity_cache
from hub.roles import Role
from routing.models import Assignment, OperatorState, QueryType
from routing.services import operator_conversations_derive as derive
from routing.services import operator_state_get

pytestmark = pytest.mark.django_db

POOL = 6  # operators per example at most
TYPES = 3
# (code, priority): the first outranks the two others, which tie (then age decides).
TYPE_SPECS = [("claims", 300), ("payments", 100), ("followup", 100)]
PRESENCES = ["online", "online", "away", "offline"]  # online twice: more to check

operator_spec = st.fixed_dictionaries(
    {
        "presence": st.sampled_from(PRESENCES),
        "capacity": st.integers(min_value=0, max_value=4),
        # Empty: no skills, which means every type.
        "skills": st.frozensets(st.integers(min_value=0, max_value=TYPES - 1), max_size=TYPES),
        # Minutes ago, from a few values so that ties happen; None: never assigned.
        "last_assigned": st.none() | st.integers(min_value=1, max_value=3),
        # Conversations already held (online operators, up to their capacity): load and
        # last assignment vary independently, so "least loaded" and "assigned longest ago"
        # disagree and the test can tell which one the policy applied first.
        "load": st.integers(min_value=0, max_value=4),
    }
)
step_spec = st.one_of(
    st.tuples(st.just("arrive"), st.integers(min_value=0, max_value=TYPES - 1)),
    st.tuples(st.just("close"), st.integers(min_value=0, max_value=50)),
)
scenario_spec = st.fixed_dictionaries(
    {
        "team": st.lists(operator_spec, min_size=1, max_size=POOL),
        "steps": st.lists(step_spec, min_size=1, max_size=24),
    }
)


def _spec(
    *,
    capacity: int,
    load: int = 0,
    skills: set[int] | None = None,
    last_assigned: int | None = None,
    presence: str = "online",
) -> dict[str, Any]:
    """An operator as ``operator_spec`` draws one, for the explicit examples."""
    return {
        "presence": presence,
        "capacity": capacity,
        "skills": frozenset(skills or ()),
        "last_assigned": last_assigned,
        "load": load,
    }


@dataclass
class Op:
    """An operator as the policy sees them before a step."""

    user_id: int
    online: bool
    capacity: int
    skills: frozenset[int]
    last_assigned_at: datetime | None
    load: int

    def serves(self, type_id: int | None) -> bool:
        return not self.skills or type_id in self.skills

    def has_room_for(self, type_id: int | None) -> bool:
        return self.online and self.serves(type_id) and self.load < self.capacity

    def rank(self) -> tuple[int, datetime]:
        """The policy's order: least loaded, then assigned longest ago (never: first)."""
        return (self.load, self.last_assigned_at or datetime.min.replace(tzinfo=UTC))


@dataclass
class World:
    """The hub's routing state, read from the database."""

    ops: dict[int, Op]
    assigned: dict[Any, tuple[int, int | None]]  # conversation id -> (operator, type)
    queued: list[tuple[int, datetime, Any, int | None]] = field(default_factory=list)
    # (-priority, created_at, conversation id, type): the queue's order


def _world(priority: dict[int, int]) -> World:
    states = OperatorState.objects.prefetch_related("query_types")
    ops = {
        s.user_id: Op(
            user_id=s.user_id,
            online=s.presence == "online",
            capacity=s.capacity,
            skills=frozenset(t.pk for t in s.query_types.all()),
            last_assigned_at=s.last_assigned_at,
            load=0,
        )
        for s in states
    }
    assigned: dict[Any, tuple[int, int | None]] = {}
    queued = []
    rows = Conversation.objects.exclude(status=ConversationStatus.CLOSED).values_list(
        "pk", "status", "operator_id", "query_type_id", "created_at"
    )
    for pk, status, operator_id, type_id, created_at in rows:
        if status == ConversationStatus.ASSIGNED:
            assigned[pk] = (operator_id, type_id)
            ops[operator_id].load += 1
        else:
            queued.append((-priority.get(type_id, 0), created_at, pk, type_id))
    queued.sort()
    return World(ops=ops, assigned=assigned, queued=queued)


def _check_invariants(world: World, where: str) -> None:
    for op in world.ops.values():
        assert op.load <= op.capacity, f"{where}: operator {op.user_id} over capacity: {op}"
    for conversation_id, (operator_id, type_id) in world.assigned.items():
        op = world.ops[operator_id]
        assert op.online and op.serves(type_id), (
            f"{where}: conversation {conversation_id} (type {type_id}) is with {op}"
        )
    for _, _, conversation_id, type_id in world.queued:
        free = [op for op in world.ops.values() if op.has_room_for(type_id)]
        assert not free, (
            f"{where}: conversation {conversation_id} (type {type_id}) queued while {free} had room"
        )


def _check_assignment(before: World, record: Assignment, type_id: int | None, where: str) -> None:
    """One change of hands against the state just before it: rule 4, and rules 1 and 2."""
    target = before.ops.get(record.to_operator_id)
    assert target is not None, f"{where}: assigned to unknown user {record.to_operator_id}"
    assert target.has_room_for(type_id), (
        f"{where}: assigned to {target}, who is not online, does not serve type {type_id} "
        "or is full"
    )
    candidates = [op for op in before.ops.values() if op.has_room_for(type_id)]
    best = min(op.rank() for op in candidates)
    assert target.rank() == best, (
        f"{where}: went to {target} although {[op for op in candidates if op.rank() == best]} "
        "ranked first (least loaded, then longest since last assignment)"
    )


@pytest.fixture
def hub_pool(staff) -> tuple[list[Any], list[QueryType]]:
    """The users and query types every example reuses (created once per test)."""
    users = [staff(f"prop{i}", Role.OPERATOR) for i in range(POOL)]
    for user in users:
        operator_state_get(user_id=user.pk)
    types = [
        QueryType.objects.create(code=code, name=code.title(), priority=priority, is_default=i == 1)
        for i, (code, priority) in enumerate(TYPE_SPECS)
    ]
    return users, types


# ~30 s when the policy holds (40 examples on 2 CPUs).  A failure is shrunk to a minimal
# team and traffic, which may take Hypothesis up to five more minutes: worth waiting for.
@pytest.mark.timeout(900)
def test_assignment_policy_invariants_hold_for_any_team_and_traffic(hub_pool):
    users, types = hub_pool
    priority = {t.pk: t.priority for t in types}

    @settings(
        max_examples=40,
        deadline=None,
        database=None,  # no .hypothesis/ in the checkout; failures print their blob
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(scenario=scenario_spec)
    # Always run, whatever the search finds: the queue's order (priority, then age), load
    # before last assignment, and skills narrowing the choice.
    @example(
        scenario={
            "team": [_spec(capacity=1, load=1)],
            "steps": [("arrive", 2), ("arrive", 1), ("arrive", 0)] + [("close", 0)] * 4,
        }
    )
    @example(
        scenario={
            "team": [_spec(capacity=3, load=2), _spec(capacity=3, last_assigned=1)],
            "steps": [("arrive", 0)] * 4,
        }
    )
    @example(
        scenario={
            "team": [_spec(capacity=2, skills={0}), _spec(capacity=2, load=1)],
            "steps": [("arrive", 1), ("arrive", 0), ("arrive", 0), ("arrive", 2)],
        }
    )
    def check(scenario: dict[str, Any]) -> None:
        identity_cache.clear()  # customers of rolled-back examples do not exist
        with transaction.atomic():
            try:
                _run(scenario, users, types, priority)
            finally:
                transaction.set_rollback(True)

    check()


def _run(
    scenario: dict[str, Any], users: list[Any], types: list[QueryType], priority: dict[int, int]
) -> None:
    now = timezone.now()
    team = scenario["team"]
    for index, user in enumerate(users):
        spec = team[index] if index < len(team) else None
        state = OperatorState.objects.get(user_id=user.pk)
        state.presence = spec["presence"] if spec else "offline"
        state.capacity = spec["capacity"] if spec else 0
        minutes = spec["last_assigned"] if spec else None
        state.last_assigned_at = now - timedelta(minutes=minutes) if minutes else None
        state.save(update_fields=["presence", "capacity", "last_assigned_at"])
        state.query_types.set([types[i] for i in spec["skills"]] if spec else [])
        if spec and spec["presence"] == "online":
            # Held before the example starts: rows, not routing (what routing does is the
            # subject); each of a type the operator serves.
            held = types[min(spec["skills"])] if spec["skills"] else types[index % TYPES]
            for _ in range(min(spec["load"], spec["capacity"])):
                Conversation.objects.create(
                    customer=Customer.objects.create(display_name="held"),
                    channel=Channel.WEBCHAT,
                    status=ConversationStatus.ASSIGNED,
                    operator=user,
                    query_type=held,
                    assigned_at=now,
                )
    by_id = {u.pk: u for u in users}
    tag = uuid.uuid4().hex[:8]
    last_record = Assignment.objects.order_by("-id").values_list("id", flat=True).first() or 0
    world = _world(priority)
    _check_invariants(world, "start")
    longest_queue = 0

    for number, (action, arg) in enumerate(scenario["steps"]):
        where = f"step {number} {action}({arg}) of {scenario}"
        if action == "arrive":
            chat.webchat_message_receive(
                visitor_id=f"{tag}-{number}",
                client_id="1",
                text="hello",
                entry_point=types[arg].code,
            )
        else:
            if not world.assigned:
                continue
            conversation_id = sorted(world.assigned, key=str)[arg % len(world.assigned)]
            operator_id, _ = world.assigned[conversation_id]
            chat.conversation_close(actor=by_id[operator_id], conversation_id=conversation_id)
            world.ops[operator_id].load -= 1  # the freed slot, before any queued one fills it
            del world.assigned[conversation_id]
        records = list(Assignment.objects.filter(id__gt=last_record).order_by("id"))
        type_of = dict(
            Conversation.objects.filter(pk__in=[r.conversation_id for r in records]).values_list(
                "pk", "query_type_id"
            )
        )
        queued_ids = [c for _, _, c, _ in world.queued]
        for record in records:
            type_id = type_of[record.conversation_id]
            if record.to_operator_id is None:
                assert action == "arrive", f"{where}: unexpected {record.kind} record"
                candidates = [op for op in world.ops.values() if op.has_room_for(type_id)]
                assert not candidates, f"{where}: queued although {candidates} had room"
                continue
            _check_assignment(world, record, type_id, where)
            if action == "close":
                # Rule 4 for the queue: the operator whose slot freed takes the first
                # conversation of the queue (priority, then age) among the types they serve.
                op = world.ops[record.to_operator_id]
                head = next((c for _, _, c, t in world.queued if op.serves(t)), None)
                assert record.conversation_id == head, (
                    f"{where}: the freed slot took {record.conversation_id}, not the head {head}"
                )
                assert record.conversation_id in queued_ids
            world.ops[record.to_operator_id].load += 1
        last_record = records[-1].id if records else last_record
        world = _world(priority)
        _check_invariants(world, where)
        longest_queue = max(longest_queue, len(world.queued))
    # Steer the search towards long queues: the queue's order is only tested when a slot
    # frees while several conversations wait.
    target(longest_queue, label="longest queue")


def test_derivation_from_an_online_operator_gives_the_freed_slots_to_the_queue(hub_pool):
    """Rule 3 after a batch derivation: the source, still online, now has room."""
    users, types = hub_pool
    a, b = users[0], users[1]
    claims, payments = types[0], types[1]
    for user, capacity, skills in ((a, 1, []), (b, 5, [payments])):
        state = OperatorState.objects.get(user_id=user.pk)
        state.presence, state.capacity = "online", capacity
        state.save(update_fields=["presence", "capacity"])
        state.query_types.set(skills)
    chat.webchat_message_receive(visitor_id="d1", client_id="1", text="x", entry_point="payments")
    # A is full and B does not serve claims: this one waits.
    chat.webchat_message_receive(visitor_id="d2", client_id="1", text="x", entry_point="claims")
    waiting = Conversation.objects.get(status=ConversationStatus.QUEUED)
    admin = get_user_model().objects.create_superuser("prop-admin", password="x")
    derive(actor=admin, from_operator_id=a.pk, to_operator_id=b.pk)
    waiting.refresh_from_db()
    assert (waiting.status, waiting.operator_id) == ("assigned", a.pk), (
        "queued although its type's operator A is online with a free slot"
    )
    assert claims.pk == waiting.query_type_id
