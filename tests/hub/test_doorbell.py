"""hub.doorbell: doorbells rung in one transaction leave after commit, in order, through one
commit hook per savepoint level, and never when their savepoint rolls back."""

from __future__ import annotations

import uuid

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from hub.doorbell import publish_on_commit

pytestmark = pytest.mark.django_db


def _listen() -> tuple[str, str]:
    layer = get_channel_layer()
    group = f"test.doorbell.{uuid.uuid4().hex}"
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    return group, channel


def _received(channel: str, count: int) -> list[int]:
    layer = get_channel_layer()
    return [async_to_sync(layer.receive)(channel)["n"] for _ in range(count)]


def test_one_commit_hook_carries_every_doorbell_in_order(django_capture_on_commit_callbacks):
    group, channel = _listen()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with transaction.atomic():
            for n in range(5):
                publish_on_commit([(group, {"type": "test.bell", "n": n})])
    assert len(callbacks) == 1
    callbacks[0]()
    assert _received(channel, 5) == [0, 1, 2, 3, 4]


def test_a_rolled_back_savepoint_takes_only_its_own_doorbells(
    django_capture_on_commit_callbacks,
):
    group, channel = _listen()
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            publish_on_commit([(group, {"type": "test.bell", "n": 1})])
            try:
                with transaction.atomic():
                    publish_on_commit([(group, {"type": "test.bell", "n": 2})])
                    raise RuntimeError("roll the savepoint back")
            except RuntimeError:
                pass
            publish_on_commit([(group, {"type": "test.bell", "n": 3})])
    assert _received(channel, 2) == [1, 3]


def test_other_commit_hooks_keep_their_place(django_capture_on_commit_callbacks):
    group, channel = _listen()
    order: list[str] = []
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        with transaction.atomic():
            publish_on_commit([(group, {"type": "test.bell", "n": 1})])
            transaction.on_commit(lambda: order.append("other"))
            publish_on_commit([(group, {"type": "test.bell", "n": 2})])
    # The bell after the other hook is not folded into the first: three hooks, in order.
    assert len(callbacks) == 3
    for callback in callbacks:
        callback()
        order.append("hook")
    assert order == ["hook", "other", "hook", "hook"]
    assert _received(channel, 2) == [1, 2]
