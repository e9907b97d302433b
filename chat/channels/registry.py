"""Channel registry: which adapter serves which channel (infrastructure).

The chat services ask ``adapter_for(conversation.channel)`` for every channel-specific
decision (the reply window, the initial delivery state, what happens at commit).  Built-in
adapters are listed in ``BUILTIN_ADAPTERS`` and loaded on first use; an app may add its own
from ``AppConfig.ready()`` with ``channel_register``.
"""

from __future__ import annotations

import importlib
import threading

from chat.channels.base import ChannelAdapter

BUILTIN_ADAPTERS = (
    "chat.channels.webchat.WebchatAdapter",
    "chat.channels.whatsapp.WhatsAppAdapter",
)

_adapters: dict[str, ChannelAdapter] = {}
_loaded = False
_lock = threading.Lock()


def _load_builtins() -> None:
    global _loaded
    with _lock:
        if _loaded:
            return
        for path in BUILTIN_ADAPTERS:
            module, _, name = path.rpartition(".")
            adapter = getattr(importlib.import_module(module), name)()
            _adapters.setdefault(adapter.channel, adapter)
        _loaded = True


def channel_register(adapter: ChannelAdapter) -> ChannelAdapter:
    """Register (or replace) the adapter of ``adapter.channel``."""
    if not _loaded:
        _load_builtins()
    _adapters[adapter.channel] = adapter
    return adapter


def adapter_for(channel: str) -> ChannelAdapter:
    """The adapter of a channel; LookupError for a channel nobody registered."""
    if not _loaded:
        _load_builtins()
    try:
        return _adapters[channel]
    except KeyError:
        raise LookupError(f"no adapter for channel {channel!r}") from None


def adapters() -> list[ChannelAdapter]:
    if not _loaded:
        _load_builtins()
    return list(_adapters.values())
