/*
 * Staff console (browser transport of /ws/console/).
 *
 * State comes from the server only: a `snapshot` (current to a position in the event log,
 * `last_event_id`), then `event` frames.  Each event names the previous event of this console's
 * stream (`prev`).  prev <= the position applied here means nothing is missing, so the event is
 * applied and becomes the new position; prev > position means one of our events never arrived,
 * so the console sends `resume` from its position and drops frames until the replay brings
 * them again.  Events are applied idempotently (one racing a snapshot is sent again after it).
 * The position lives in memory (mirrored to sessionStorage); after a dropped socket the console
 * reconnects with backoff and `?last_event_id=` so only the missed events are replayed.  A fresh
 * page load has no state to resume, so it always starts from a snapshot.
 *
 * Outgoing replies carry a client_id and stay in an outbox (also in sessionStorage) until the
 * server acknowledges them; the outbox is re-sent on every reconnect, and the server treats a
 * repeated client_id as the same message, so nothing is ever delivered twice.
 *
 * The list's previews come with the data: snapshot rows carry `last_message`, and
 * chat.message_created events move them forward.  A conversation that arrives by an event with
 * messages the console has not seen shows a placeholder until it is opened (its history load
 * then fills the preview); no request is ever made per row.
 *
 * Routing (query types, transfers, derivations, resolution reasons) is driven by
 * `routing.options`, asked again on every (re)connect and whenever a dialog opens: the types
 * and reasons everyone needs, and the operators only for users who may move conversations
 * (that list is what shows the Transfer and Derive controls; the server still decides).
 * Conversations that leave this operator (a transfer, a derivation, a type correction) arrive
 * as `routing.conversation(s)_unassigned` and are dropped from the list; a supervisor ignores
 * those because the matching assigned/queued event carries the new holder.
 *
 * Working aids (docs/architecture.md, "Console"): waiting times, search and sort in the list,
 * the queue each user may see (supervisors from their events, operators from
 * GET /api/routing/queue/), opt-in new-query alerts (WebAudio tone, desktop notification) and
 * keyboard shortcuts ("?" lists them).
 *
 * Internal notes (`note.send`, `chat.note_added`): staff-only text on a conversation, written
 * in the composer's Note mode (Alt+O).  They ride the same outbox as replies (a kind of
 * entry that sends `note.send` instead of `message.send`), arrive in the history frame's
 * `notes` and live as events, and are drawn as yellow "Internal note" cards, never as a
 * message bubble.  The customer's side has no path to them (the server keeps them apart).
 *
 * User-provided text is only ever written with textContent.
 */
(function () {
  "use strict";

  var root = document.getElementById("console");
  if (!root) return;

  // ---------------------------------------------------------------- constants and helpers
  var STORE_EVENT = "hub.console.lastEventId";
  var STORE_OUTBOX = "hub.console.outbox";
  var PING_EVERY_MS = 20000;
  var SILENT_LIMIT_MS = 50000; // no frame at all for this long: the socket is dead
  var RESEND_AFTER_MS = 10000; // an unacknowledged reply is sent again (same client_id)
  var MAX_TEXT = 4096;
  var NOTE_MAX = 2000; // chat.models.NOTE_MAX_CHARS
  var NOTE_LABEL = "Internal note \u2014 only staff see this";
  var HISTORY_PAGE = 50;
  var PRESENCES = ["online", "away", "offline"];
  var PRESENCE_LABEL = { online: "online", away: "away", offline: "offline" };
  // Author of the hub's own messages (queue position, type menu).  History rows of those
  // messages carry no author at all, so an outbound message without one is the bank's too.
  var SYSTEM_AUTHOR = "Bank";
  // Channels (chat/channels): how each is named, and the delivery states of outbound
  // messages with their ticks.  Ranks only grow; failed is terminal (chat.delivery).
  var CHANNEL_LABEL = { webchat: "Web chat", whatsapp: "WhatsApp" };
  var DELIVERY = {
    pending: { rank: 0, tick: "\u25F7", label: "Sending to the customer" },
    sent: { rank: 1, tick: "\u2713", label: "Sent" },
    delivered: { rank: 2, tick: "\u2713\u2713", label: "Delivered" },
    read: { rank: 3, tick: "\u2713\u2713", label: "Read" },
    failed: { rank: 9, tick: "!", label: "Not delivered" },
  };
  var WINDOW_CLOSED_TEXT = "24-hour window closed \u2014 send an approved template";
  // Closing reasons (a `closing` frame before close code 4401) that mean this login is over:
  // the console stops instead of reconnecting.
  var SIGNED_OUT = {
    logged_out: "You signed out in another window.",
    account_disabled: "Your account has been disabled.",
    session_ended: "Your session has ended.",
  };

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function uuid4() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    // randomUUID needs a secure context; getRandomValues does not (plain http on a LAN).
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) {
      return (x + 0x100).toString(16).slice(1);
    }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" +
      h.slice(16, 20) + "-" + h.slice(20);
  }

  // JSON in Web Storage: this tab's session (resume id, outbox) or the browser's local
  // storage (list preferences, alerts).  Storage full or disabled: memory still works.
  function storageGet(area, key) {
    try {
      var raw = window[area].getItem(key);
      return raw ? JSON.parse(raw) : null;
    } catch (e) {
      return null;
    }
  }

  function storageSet(area, key, value) {
    try {
      window[area].setItem(key, JSON.stringify(value));
    } catch (e) {
      /* storage full or disabled */
    }
  }

  function storeGet(key) {
    return storageGet("sessionStorage", key);
  }

  function storeSet(key, value) {
    storageSet("sessionStorage", key, value);
  }

  function parseTime(iso) {
    if (!iso) return null;
    var t = Date.parse(iso);
    return isNaN(t) ? null : t;
  }

  function pad2(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function clockTime(ms) {
    var d = new Date(ms);
    return pad2(d.getHours()) + ":" + pad2(d.getMinutes());
  }

  function dayLabel(ms) {
    var d = new Date(ms);
    var today = new Date();
    var yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
    if (d.toDateString() === today.toDateString()) return "Today";
    if (d.toDateString() === yesterday.toDateString()) return "Yesterday";
    return d.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short" });
  }

  function shortDuration(ms) {
    var s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + "s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + "m";
    var h = Math.floor(m / 60);
    if (h < 24) return h + "h " + pad2(m % 60) + "m";
    return Math.floor(h / 24) + "d " + (h % 24) + "h";
  }

  // ---------------------------------------------------------------- elements and state
  var els = {
    conn: $("conn"),
    connText: document.querySelector("#conn .conn-text"),
    presence: $("presence"),
    presenceDot: document.querySelector(".presence-dot"),
    notices: $("notices"),
    workspace: document.querySelector(".workspace"),
    listTitle: $("list-title"),
    listCount: $("list-count"),
    list: $("conv-list"),
    listEmpty: $("list-empty"),
    listTruncated: $("list-truncated"),
    threadEmpty: $("thread-empty"),
    threadMain: $("thread-main"),
    threadTitle: $("thread-title"),
    threadMeta: $("thread-meta"),
    back: $("back"),
    closeBtn: $("close-conv"),
    threadType: $("thread-type"),
    typeField: $("type-field"),
    convType: $("conv-type"),
    transferOpen: $("transfer-open"),
    noteOpen: $("note-open"),
    noteToggle: $("note-toggle"),
    noteLabel: $("composer-note-label"),
    composerLabel: $("composer-label"),
    hintReply: $("composer-hint-reply"),
    hintNote: $("composer-hint-note"),
    deriveOpen: $("derive-open"),
    closeDialog: $("close-dialog"),
    closeForm: $("close-form"),
    closeLead: $("close-dialog-lead"),
    closeReasonField: $("close-reason-field"),
    closeReason: $("close-reason"),
    closeError: $("close-error"),
    closeConfirm: $("close-confirm"),
    transferDialog: $("transfer-dialog"),
    transferForm: $("transfer-form"),
    transferLead: $("transfer-lead"),
    transferTarget: $("transfer-target"),
    transferHint: $("transfer-hint"),
    transferNote: $("transfer-note"),
    transferForceField: $("transfer-force-field"),
    transferForce: $("transfer-force"),
    transferError: $("transfer-error"),
    transferConfirm: $("transfer-confirm"),
    deriveDialog: $("derive-dialog"),
    deriveForm: $("derive-form"),
    deriveFrom: $("derive-from"),
    deriveTo: $("derive-to"),
    deriveNote: $("derive-note"),
    deriveForceField: $("derive-force-field"),
    deriveForce: $("derive-force"),
    deriveResult: $("derive-result"),
    deriveError: $("derive-error"),
    deriveCancel: $("derive-cancel"),
    derivePreview: $("derive-preview"),
    deriveConfirm: $("derive-confirm"),
    messages: $("messages"),
    messageList: $("message-list"),
    loadEarlier: $("load-earlier"),
    banner: $("thread-banner"),
    composer: $("composer"),
    text: $("composer-text"),
    send: $("send"),
    kbPicker: $("kb-picker"),
    kbList: $("kb-list"),
    kbStatus: $("kb-status"),
    countdown: $("window-countdown"),
    tplPanel: $("tpl-panel"),
    tplLang: $("tpl-lang"),
    tplForm: $("tpl-form"),
    tplError: $("tpl-error"),
    tplSend: $("tpl-send"),
    outreachOpen: $("outreach-open"),
    outreachDialog: $("outreach-dialog"),
    outreachForm: $("outreach-form"),
    outreachSearch: $("outreach-search"),
    outreachStatus: $("outreach-search-status"),
    outreachResults: $("outreach-results"),
    outreachTpl: $("outreach-tpl"),
    outreachError: $("outreach-error"),
    outreachSend: $("outreach-send"),
    search: $("conv-search"),
    sort: $("conv-sort"),
    view: $("conv-view"),
    viewField: $("conv-view-field"),
    queueInfo: $("queue-info"),
    listNoMatch: $("list-nomatch"),
    notifyToggle: $("notify-toggle"),
    alertStatus: $("alert-status"),
    keysOpen: $("keys-open"),
    keysDialog: $("keys-dialog"),
  };

  var state = {
    me: null, // {id, username}
    myName: root.getAttribute("data-display-name") || "",
    supervisor: root.getAttribute("data-role") !== "Operator",
    role: root.getAttribute("data-role") || "Operator",
    // routing.options: {query_types, resolutions, operators}; null until the first answer.
    options: null,
    optionsUnsupported: false, // the server does not know routing.options: routing UI stays off
    typePending: null, // conversation id whose type change awaits its ack
    closeFor: null, // conversation id the close dialog is for
    transferFor: null, // conversation id the transfer dialog is for
    derive: { preview: null, key: "", busy: false, done: false },
    // First paint from the page; every hello frame (each (re)connect) brings the stored value.
    presence: root.getAttribute("data-presence") || "offline",
    convs: new Map(), // id -> conversation summary (+ unread, last_message_id, preview)
    truncated: false, // the snapshot listed only the newest conversations
    threads: new Map(), // id -> {messages: Map(id -> message), hasMore, loading, loaded}
    selectedId: null,
    closedSelected: null, // summary of a selected conversation that has left the list
    lastEventId: null, // null until the first snapshot: events before it are meaningless
    resuming: false,
    resumeStartedAt: 0,
    outbox: new Map(), // client_id -> {client_id, conversation_id, text, status, sentAt, error}
    drafts: new Map(),
    requests: new Map(), // request_id -> what it was for
    noteMode: false, // the composer writes an internal note instead of a reply
  };

  var sock = {
    ws: null,
    live: false,
    everLive: false,
    attempt: 0,
    timer: null,
    lastFrameAt: 0,
    stopped: false, // the server told us to stop (signed out / no access)
    closingReason: "", // from a `closing` frame, read when the close code arrives
  };

  var rid = 0;
  function nextRequestId(kind) {
    rid += 1;
    return kind + ":" + rid;
  }

  // ---------------------------------------------------------------- notices
  function showNotice(message, opts) {
    opts = opts || {};
    var kind = opts.kind || "error";
    var existing = els.notices.querySelector('.notice[data-key="' + CSS.escape(message) + '"]');
    if (existing) {
      var n = Number(existing.getAttribute("data-count") || "1") + 1;
      existing.setAttribute("data-count", String(n));
      existing.querySelector(".notice-count").textContent = "×" + n;
      return existing;
    }
    var box = el("div", "notice notice-" + kind);
    box.setAttribute("role", kind === "error" ? "alert" : "status");
    box.setAttribute("data-key", message);
    box.appendChild(el("span", "notice-text", message));
    if (opts.link) {
      var a = el("a", "notice-link", opts.link.text);
      a.href = opts.link.href;
      box.appendChild(a);
    }
    box.appendChild(el("span", "notice-count", ""));
    var dismiss = el("button", "notice-dismiss", "×");
    dismiss.type = "button";
    dismiss.setAttribute("aria-label", "Dismiss notice");
    dismiss.addEventListener("click", function () {
      box.remove();
    });
    box.appendChild(dismiss);
    els.notices.appendChild(box);
    while (els.notices.children.length > 4) els.notices.firstElementChild.remove();
    if (opts.timeout) {
      setTimeout(function () {
        box.remove();
      }, opts.timeout);
    }
    return box;
  }

  function errorText(frame) {
    var text = frame.message || "Something went wrong.";
    if (frame.code) text += " (" + frame.code + ")";
    return text;
  }

  // ---------------------------------------------------------------- connection indicator
  var CONN_TEXT = {
    connecting: "Connecting…",
    live: "Live",
    reconnecting: "Reconnecting…",
    offline: "Offline",
  };

  function setConn(stateName, detail) {
    els.conn.setAttribute("data-state", stateName);
    els.connText.textContent = detail || CONN_TEXT[stateName];
    els.conn.title = detail || CONN_TEXT[stateName];
    updateComposer();
  }

  // ---------------------------------------------------------------- socket
  function wsUrl() {
    var url = new URL("/ws/console/", window.location.href);
    url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
    if (state.lastEventId !== null) url.searchParams.set("last_event_id", String(state.lastEventId));
    return url.toString();
  }

  function connect() {
    if (sock.stopped) return;
    clearTimeout(sock.timer);
    sock.timer = null;
    setConn(sock.everLive ? "reconnecting" : "connecting");
    var ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch (e) {
      scheduleReconnect();
      return;
    }
    sock.ws = ws;
    sock.lastFrameAt = Date.now();
    ws.onmessage = function (msg) {
      if (sock.ws !== ws) return;
      sock.lastFrameAt = Date.now();
      var frame;
      try {
        frame = JSON.parse(msg.data);
      } catch (e) {
        return;
      }
      handleFrame(frame);
    };
    ws.onclose = function (ev) {
      if (sock.ws !== ws) return;
      onSocketGone(ev.code);
    };
    ws.onerror = function () {
      /* onclose follows and handles it */
    };
  }

  function onSocketGone(code) {
    var reason = sock.closingReason;
    sock.closingReason = "";
    sock.ws = null;
    sock.live = false;
    state.resuming = false;
    failRequestsInFlight();
    if (code === 4401 || Object.prototype.hasOwnProperty.call(SIGNED_OUT, reason)) {
      var why = SIGNED_OUT[reason] || SIGNED_OUT.session_ended;
      stop("Signed out", why + " Sign in again to keep working.", {
        text: "Sign in",
        href: "/accounts/login/?next=/console/",
      });
      return;
    }
    if (code === 4403) {
      stop("No access", "This account may not use the console.");
      return;
    }
    if (reason) showNotice("The server closed the connection (" + reason + "). Reconnecting…", { kind: "info", timeout: 6000 });
    scheduleReconnect();
  }

  function stop(connText, message, link) {
    sock.stopped = true;
    clearTimeout(sock.timer);
    setConn("offline", connText);
    showNotice(message, { kind: "error", link: link });
  }

  function scheduleReconnect() {
    if (sock.stopped) return;
    clearTimeout(sock.timer);
    if (navigator.onLine === false) {
      setConn("offline", "Offline — waiting for network");
      return; // the "online" event reconnects
    }
    setConn("reconnecting");
    // 0.5 s, 1 s, 2 s … capped at 15 s, with jitter so a fleet of consoles does not stampede.
    var base = Math.min(15000, 500 * Math.pow(2, sock.attempt));
    var delay = base / 2 + Math.random() * base / 2;
    sock.attempt += 1;
    sock.timer = setTimeout(connect, delay);
  }

  function dropSocket() {
    var ws = sock.ws;
    if (!ws) return;
    sock.ws = null;
    ws.onclose = null;
    ws.onmessage = null;
    try {
      ws.close();
    } catch (e) {
      /* already closed */
    }
    onSocketGone(1006);
  }

  function send(frame) {
    if (!sock.ws || sock.ws.readyState !== WebSocket.OPEN) return false;
    sock.ws.send(JSON.stringify(frame));
    return true;
  }

  function request(kind, frame, info) {
    var id = nextRequestId(kind);
    frame.request_id = id;
    if (!send(frame)) return null;
    info.kind = kind;
    state.requests.set(id, info);
    return id;
  }

  function failRequestsInFlight() {
    state.requests.forEach(function (info) {
      if (info.kind === "history") {
        var t = state.threads.get(info.conversationId);
        if (t) t.loading = false;
      } else if (info.kind === "presence") {
        renderPresence();
      } else if (info.kind === "kb-search" || info.kind === "kb-render") {
        kb.pending = null;
        kb.rendering = null;
        if (kb.open) kbStatus("The connection dropped; keep typing to search again.");
      } else if (info.kind === "settype") {
        state.typePending = null;
        renderThread();
      } else if (info.kind.indexOf("template-") === 0 || info.kind.indexOf("outreach") === 0) {
        templateRequestLost(info);
      } else if (info.kind === "close") {
        dialogFailed(els.closeDialog, els.closeError, els.closeConfirm, "The connection dropped before the server answered. Check the list, then try again.");
      } else if (info.kind === "transfer") {
        dialogFailed(els.transferDialog, els.transferError, els.transferConfirm, "The connection dropped before the server answered. Check the list, then try again.");
      } else if (info.kind === "derive-preview" || info.kind === "derive-run") {
        state.derive.busy = false;
        dialogFailed(
          els.deriveDialog,
          els.deriveError,
          null,
          info.kind === "derive-run"
            ? "The connection dropped before the server answered: the derivation may or may not have run. Check the list before trying again."
            : "The connection dropped before the preview arrived. Try again."
        );
        renderDeriveButtons();
      }
    });
    state.requests.clear();
  }

  function goLive() {
    sock.live = true;
    sock.everLive = true;
    sock.attempt = 0;
    setConn("live");
    flushOutbox(true);
    ensureSelectedLoaded();
    requestOptions();
  }

  setInterval(function () {
    if (!sock.ws) return;
    if (Date.now() - sock.lastFrameAt > SILENT_LIMIT_MS) {
      dropSocket();
      return;
    }
    if (sock.ws.readyState === WebSocket.OPEN) send({ type: "ping" });
  }, PING_EVERY_MS);

  window.addEventListener("online", function () {
    if (!sock.ws && !sock.stopped) {
      sock.attempt = 0;
      connect();
    }
  });
  window.addEventListener("offline", function () {
    if (!sock.ws) setConn("offline", "Offline — waiting for network");
  });

  // ---------------------------------------------------------------- frames
  function handleFrame(frame) {
    switch (frame.type) {
      case "hello":
        onHello(frame);
        break;
      case "snapshot":
        onSnapshot(frame);
        break;
      case "resync":
        // A snapshot follows at once; nothing to do but let the user know why things moved.
        break;
      case "resumed":
        state.resuming = false;
        if (typeof frame.last_event_id === "number" && frame.last_event_id > state.lastEventId) {
          setLastEventId(frame.last_event_id);
        }
        if (!sock.live) goLive();
        break;
      case "event":
        onEvent(frame);
        break;
      case "ack":
        onAck(frame);
        break;
      case "history":
        onHistory(frame);
        break;
      case "routing_options":
        onRoutingOptions(frame);
        break;
      case "derivation_preview":
        onDerivationPreview(frame);
        break;
      case "kb_results":
        onKbResults(frame);
        break;
      case "kb_rendered":
        onKbRendered(frame);
        break;
      case "template_options":
        onTemplateOptions(frame);
        break;
      case "outreach_customers":
        onOutreachCustomers(frame);
        break;
      case "error":
        onError(frame);
        break;
      case "closing":
        // The close code that follows decides what happens (4401, or a reason in
        // SIGNED_OUT: signed out, stop).
        sock.closingReason = frame.reason || "";
        break;
      case "pong":
        // The server's stream is ahead of us and no doorbell arrived: catch up.
        if (
          typeof frame.last_event_id === "number" &&
          state.lastEventId !== null &&
          frame.last_event_id > state.lastEventId
        ) {
          requestResume();
        }
        break;
      default:
        break;
    }
  }

  function onHello(frame) {
    if (state.me && state.me.id !== frame.user.id) {
      // The session now belongs to someone else (signed in again in another tab): this
      // page's state is theirs no longer.
      window.location.reload();
      return;
    }
    state.me = frame.user;
    state.supervisor = !!frame.supervisor;
    if (frame.role) state.role = frame.role;
    if (PRESENCES.indexOf(frame.presence) >= 0) {
      // The stored presence, current at every (re)connect (the page's value may be old).
      state.presence = frame.presence;
      renderPresence();
    }
    els.listTitle.textContent = state.supervisor ? "All open conversations" : "My conversations";
    var stored = storeGet(STORE_EVENT);
    if (stored && stored.user !== frame.user.id) {
      // Another user's leftovers in this tab: start clean.
      storeSet(STORE_EVENT, null);
      state.outbox.clear();
      saveOutbox();
    }
  }

  function setLastEventId(id) {
    state.lastEventId = id;
    storeSet(STORE_EVENT, { user: state.me ? state.me.id : null, id: id });
  }

  function onSnapshot(frame) {
    state.resuming = false;
    var fresh = new Map();
    (frame.conversations || []).forEach(function (c) {
      var last = c.last_message;
      c.preview = last
        ? { id: last.id, text: last.text || "", direction: last.direction, system: !!last.system }
        : { id: 0, text: "", direction: null };
      delete c.last_message; // the preview is the one place that knows the newest message
      fresh.set(c.id, c);
    });
    state.truncated = !!frame.truncated;
    if (state.selectedId && !fresh.has(state.selectedId)) {
      // It was closed or moved while we were away: keep showing it, read-only.
      // The history reload (ensureSelectedLoaded) brings its current status.
      var prev = state.convs.get(state.selectedId) || state.closedSelected;
      if (prev) state.closedSelected = Object.assign({}, prev);
    }
    state.convs = fresh;
    // Events may have been lost: thread caches are rebuilt from history on demand.
    state.threads.forEach(function (t) {
      t.stale = true;
    });
    setLastEventId(frame.last_event_id);
    renderList();
    renderThread();
    if (!sock.live) goLive();
    else ensureSelectedLoaded();
    boOnSnapshot();
    queueRefresh();
  }

  function requestResume() {
    if (state.lastEventId === null) return;
    if (state.resuming && Date.now() - state.resumeStartedAt < 10000) return;
    state.resuming = true;
    state.resumeStartedAt = Date.now();
    send({ type: "resume", last_event_id: state.lastEventId });
  }

  function onEvent(ev) {
    if (state.lastEventId === null) return; // before the first snapshot
    if (ev.id <= state.lastEventId) return; // already applied (replay overlap)
    // The cursor is a position in the whole log; `prev` is the previous event of *this*
    // console's stream.  prev <= cursor: nothing of ours lies in between, apply it.
    // prev > cursor: an event of ours never reached us; replay from the cursor.
    if (ev.prev > state.lastEventId) {
      requestResume();
      return;
    }
    setLastEventId(ev.id);
    applyEvent(ev);
  }

  function applyEvent(ev) {
    var data = ev.data || {};
    switch (ev.name) {
      case "chat.message_created":
        onMessageCreated(data.message, data.conversation);
        break;
      case "routing.conversation_assigned":
      case "routing.conversation_queued":
      case "routing.conversation_type_changed":
        if (data.assignment) addTimelineEntry(ev.conversation_id, timelineFromAssignment(data.assignment));
        if (data.conversation) upsertConversation(data.conversation);
        break;
      case "routing.conversations_assigned":
      case "routing.conversations_queued":
        (data.conversations || []).forEach(function (c) {
          upsertConversation(c, { render: false });
        });
        renderList();
        renderThread();
        break;
      case "routing.conversation_unassigned":
        if (data.assignment) addTimelineEntry(ev.conversation_id, timelineFromAssignment(data.assignment));
        onUnassigned([data.conversation_id || ev.conversation_id], data.assignment || null);
        break;
      case "routing.conversations_unassigned":
        onUnassigned(data.conversation_ids || [], null);
        break;
      case "routing.derivation_completed":
        onDerivationCompleted(data.batch || {});
        break;
      case "chat.conversation_closed":
        if (data.conversation) upsertConversation(data.conversation);
        break;
      case "chat.conversation_read":
        onRead(data.conversation_id || ev.conversation_id, data.read_up_to);
        break;
      case "chat.message_status":
        onMessageStatus(data.message);
        break;
      case "chat.note_added":
        onNoteAdded(data.note);
        break;
      case "routing.presence_changed":
        if (state.me && data.user_id === state.me.id && data.presence) {
          state.presence = data.presence;
          renderPresence();
        }
        onOperatorPresence(data.user_id, data.presence);
        break;
      default:
        if (ev.name && ev.name.indexOf("backoffice.") === 0) boOnEvent(ev);
        break;
    }
  }

  function belongsInList(c) {
    if (c.status === "closed") return false;
    return state.supervisor || (state.me && c.operator_id === state.me.id);
  }

  function upsertConversation(summary, opts) {
    var render = !opts || opts.render !== false;
    var existing = state.convs.get(summary.id);
    if (!belongsInList(summary)) {
      if (existing) {
        state.convs.delete(summary.id);
        if (state.selectedId === summary.id) {
          state.closedSelected = Object.assign({}, existing, summary);
        }
      } else if (state.selectedId === summary.id && state.closedSelected) {
        Object.assign(state.closedSelected, summary);
      }
      if (render) {
        renderList();
        if (state.selectedId === summary.id) renderThread();
      }
      return null;
    }
    var conv;
    if (existing) {
      conv = Object.assign(existing, summary);
    } else {
      conv = Object.assign({ unread: null, last_message_id: null, preview: null }, summary);
      alertNewQuery(conv);
      // A brand-new conversation has no messages yet; one pulled from the queue may have some,
      // unknown here until it is opened (preview stays null: a placeholder).
      if (!summary.last_message_at) {
        conv.unread = 0;
        emptyPreviewIfNone(conv);
      }
      state.convs.set(conv.id, conv);
      if (state.selectedId === conv.id) {
        // Back in this console (a transfer or derivation returned it): its thread cache
        // missed the events of the meantime, so the history is read again.
        state.closedSelected = null;
        ensureSelectedLoaded();
      }
    }
    if (render) {
      renderList();
      if (state.selectedId === conv.id) renderThread();
    }
    return conv;
  }

  function onUnassigned(ids, assignment) {
    // Supervisors get the matching assigned/queued event, which carries the new holder.
    if (state.supervisor) return;
    var moved = [];
    ids.forEach(function (id) {
      if (!id) return;
      // From now on this console gets none of its events: a cached thread is out of date.
      var thread = state.threads.get(id);
      if (thread) thread.stale = true;
      var conv = state.convs.get(id);
      if (!conv) {
        // Already gone by the ack of our own action (a type correction): just mark it.
        if (state.selectedId === id && state.closedSelected) {
          state.closedSelected.movedAway = true;
          renderThread();
        }
        return;
      }
      state.convs.delete(id);
      moved.push(conv);
      if (state.selectedId === id) {
        state.closedSelected = Object.assign({}, conv, { movedAway: true });
      }
    });
    if (!moved.length) return;
    renderList();
    if (state.selectedId && moved.some(function (c) { return c.id === state.selectedId; })) {
      if (state.closeFor === state.selectedId) dismissDialog(els.closeDialog);
      renderThread();
    }
    var text;
    if (moved.length === 1) {
      var toQueue = assignment && assignment.to_operator_id === null;
      text = displayName(moved[0]) + (toQueue ? " went back to the queue." : " was moved to another operator.");
    } else {
      text = moved.length + " conversations were moved to other operators.";
    }
    showNotice(text, { kind: "info", timeout: 8000 });
  }

  function onDerivationCompleted(batch) {
    // The admin who ran it reads the result in the dialog; other supervisors get a note.
    if (!state.supervisor || els.deriveDialog.open) return;
    var from = operatorById(batch.from_operator_id);
    var text = "Derivation finished: " + (batch.count || 0) + " conversation" + (batch.count === 1 ? "" : "s") +
      " moved from " + (from ? from.name : "operator #" + batch.from_operator_id) + ".";
    showNotice(text, { kind: "info", timeout: 8000 });
  }

  function emptyPreviewIfNone(conv) {
    if (!conv.preview) conv.preview = { id: 0, text: "", direction: null };
  }

  function setPreview(conv, message) {
    // Only ever move the preview forward (history answers can be older than events).
    if (conv.preview && conv.preview.id > message.id) return;
    conv.preview = { id: message.id, text: message.text, direction: message.direction, system: isSystemMessage(message) };
  }

  // --- the routing timeline: every change of hands, between the messages -------------------
  function personName(id) {
    if (id === null || id === undefined) return null;
    if (state.me && id === state.me.id) return "you";
    var op = operatorById(id);
    return op ? op.name : "operator #" + id;
  }

  function timelineFromAssignment(a) {
    // An event's assignment names people by id; the options list resolves the names.
    function who(id) {
      return id === null || id === undefined ? null : { id: id, name: personName(id) };
    }
    return {
      id: a.id,
      kind: a.kind,
      from: who(a.from_operator_id),
      to: who(a.to_operator_id),
      actor: who(a.actor_id),
      note: a.note || "",
      batch_id: a.batch_id,
      created_at: a.created_at,
    };
  }

  function addTimelineEntry(conversationId, entry) {
    var thread = state.threads.get(conversationId);
    if (!thread || !thread.loaded) return; // the next history page brings it
    if (!thread.timeline) thread.timeline = new Map();
    thread.timeline.set(entry.id, entry);
  }

  function describeTimeline(t) {
    function name(p) {
      return p ? p.name : null;
    }
    var to = name(t.to) || "the queue";
    var by = t.actor ? " by " + name(t.actor) : "";
    var text;
    switch (t.kind) {
      case "routed":
        text = "Assigned to " + to;
        break;
      case "queued":
        text = "Waiting in the queue";
        break;
      case "transferred":
        text = "Transferred from " + (name(t.from) || "the queue") + " to " + to + by;
        break;
      case "requeued":
        text = "Sent back to routing" + by + (t.to ? ", now with " + to : ", waiting in the queue");
        break;
      case "batch":
        text = "Derived from " + name(t.from) + " to " + to + by + (t.batch_id ? " (batch #" + t.batch_id + ")" : "");
        break;
      case "absence":
        text = name(t.from) + " is absent: moved to " + to;
        break;
      case "unanswered":
        text = "Not answered in time: moved from " + name(t.from) + " to " + to;
        break;
      case "type_changed":
        text = "Query type corrected" + by + ": now with " + to;
        break;
      case "reopened":
        text = "Reopened by the customer: " + (t.to ? "back with " + to : "waiting in the queue");
        break;
      default:
        text = t.kind;
    }
    return t.note ? text + " — note: " + t.note : text;
  }

  function isSystemMessage(m) {
    return m.direction === "out" && (!m.author || m.author === SYSTEM_AUTHOR);
  }

  function onMessageCreated(message, summary) {
    if (!message) return;
    var conv = summary ? upsertConversation(summary) : state.convs.get(message.conversation_id);
    if (conv) {
      // Events are applied idempotently: one racing a snapshot arrives again after it, and
      // the snapshot's last_message_id already counts it.
      var counted = conv.last_message_id && message.id <= conv.last_message_id;
      setPreview(conv, message);
      var watching = state.selectedId === conv.id && canAct(conv) &&
        document.visibilityState === "visible";
      if (!counted) conv.last_message_id = message.id;
      if (message.direction === "in") {
        // An open, visible thread is read at once (scheduleMarkRead below tells the server).
        if (!counted && message.id > (conv.read_up_to || 0) && !watching) {
          conv.unread = (conv.unread || 0) + 1;
        }
      } else if (!isSystemMessage(message)) {
        // The service counts a reply as having read everything before it (the hub's own
        // messages read nothing).
        conv.read_up_to = Math.max(conv.read_up_to || 0, message.id);
        conv.unread = 0;
      }
    }
    var thread = state.threads.get(message.conversation_id);
    if (thread && thread.loaded && !thread.stale) putMessage(thread, message);
    renderList();
    if (state.selectedId === message.conversation_id) {
      renderMessages();
      scheduleMarkRead();
    }
  }

  // A message with its newest delivery state: an ack or a replayed event carrying an
  // older state never moves a message back (failed stays failed).
  function putMessage(thread, m) {
    var old = thread.messages.get(m.id);
    if (old && old.status && m.status && old.status !== m.status) {
      var was = DELIVERY[old.status] ? DELIVERY[old.status].rank : 0;
      var now = DELIVERY[m.status] ? DELIVERY[m.status].rank : 0;
      if (was > now) return;
    }
    thread.messages.set(m.id, m);
  }

  function onMessageStatus(message) {
    if (!message) return;
    var thread = state.threads.get(message.conversation_id);
    if (thread && thread.loaded && !thread.stale) putMessage(thread, message);
    if (state.selectedId === message.conversation_id) renderMessages();
    if (message.status === "failed" && state.selectedId === message.conversation_id) {
      showNotice("A reply was not delivered: " + deliveryError(message), { kind: "warning", timeout: 8000 });
    }
  }

  function deliveryError(m) {
    if (!m.error) return "the provider gave no reason";
    return (m.error.code ? "error " + m.error.code : "") + (m.error.text ? " \u2014 " + m.error.text : "");
  }

  function windowClosesAt(conv) {
    return conv && conv.reply_window_closes_at ? parseTime(conv.reply_window_closes_at) : null;
  }

  function windowClosed(conv, now) {
    var closes = windowClosesAt(conv);
    return closes !== null && (now || Date.now()) >= closes;
  }

  function onRead(conversationId, readUpTo) {
    var conv = state.convs.get(conversationId);
    if (!conv || typeof readUpTo !== "number") return;
    conv.read_up_to = Math.max(conv.read_up_to || 0, readUpTo);
    recountUnread(conv);
    renderList();
  }

  function recountUnread(conv) {
    var thread = state.threads.get(conv.id);
    if (conv.last_message_id && conv.read_up_to >= conv.last_message_id) {
      conv.unread = 0;
    } else if (thread && thread.loaded && !thread.stale && !thread.hasMore) {
      var n = 0;
      thread.messages.forEach(function (m) {
        if (m.direction === "in" && m.id > conv.read_up_to) n += 1;
      });
      conv.unread = n;
    }
  }

  function onAck(frame) {
    var info = frame.request_id !== undefined ? state.requests.get(frame.request_id) : null;
    if (info) state.requests.delete(frame.request_id);
    if (info && info.kind === "template-send") templateSent(info);
    if (info && info.kind === "outreach-start") {
      outreachStarted(frame, info);
      return;
    }
    if (frame.note && frame.request_id !== undefined) {
      var noteEntry = state.outbox.get(String(frame.request_id));
      if (noteEntry) {
        state.outbox.delete(noteEntry.client_id);
        saveOutbox();
      }
      onNoteAdded(frame.note);
      return;
    }
    if (frame.message && frame.request_id !== undefined) {
      var entry = state.outbox.get(String(frame.request_id));
      var m = frame.message;
      if (entry) {
        state.outbox.delete(entry.client_id);
        saveOutbox();
      }
      var thread = state.threads.get(m.conversation_id);
      if (thread && thread.loaded && !thread.stale) putMessage(thread, m);
      var conv = state.convs.get(m.conversation_id);
      if (conv) {
        setPreview(conv, m);
        if (!conv.last_message_id || m.id >= conv.last_message_id) {
          conv.last_message_id = m.id;
          conv.read_up_to = Math.max(conv.read_up_to || 0, m.id);
          conv.unread = 0;
        }
        renderList();
      }
      if (state.selectedId === m.conversation_id) renderMessages();
      return;
    }
    if (!info) return;
    if (info.kind === "presence") {
      state.presence = frame.presence || info.presence;
      renderPresence();
      queueRefresh();
    } else if (info.kind === "read") {
      if (frame.conversation) {
        var c = state.convs.get(frame.conversation.id);
        if (c) {
          c.read_up_to = Math.max(c.read_up_to || 0, frame.conversation.read_up_to || 0);
          recountUnread(c);
          renderList();
        }
      }
    } else if (info.kind === "close") {
      if (frame.conversation) upsertConversation(frame.conversation);
      if (state.closeFor === info.conversationId) {
        state.closeFor = null;
        setBusy(els.closeConfirm, false);
        dismissDialog(els.closeDialog);
      }
      var reason = frame.conversation && frame.conversation.resolution;
      showNotice("Conversation closed" + (reason ? " · " + reason.name : "") + ".", { kind: "info", timeout: 4000 });
    } else if (info.kind === "settype") {
      state.typePending = null;
      if (frame.conversation) upsertConversation(frame.conversation);
      renderThread();
      var qt = frame.conversation && frame.conversation.query_type;
      var away = frame.conversation && !belongsInList(frame.conversation);
      showNotice(
        "Query type set to " + (qt ? qt.name : "none") + "." +
          (away ? " It moved to an operator who serves that type." : ""),
        { kind: "info", timeout: 6000 }
      );
    } else if (info.kind === "transfer") {
      onTransferred(frame.conversation, info);
    } else if (info.kind === "derive-run") {
      onDerivationRun(frame.derivation || {}, info);
    }
  }

  function onHistory(frame) {
    var info = state.requests.get(frame.request_id);
    if (info) state.requests.delete(frame.request_id);
    var summary = frame.conversation;
    var messages = frame.messages || [];
    if (!info || !summary) return;
    var conv = state.convs.get(summary.id);
    if (conv) {
      // Merge the fresh facts but keep the console's own counters.
      ["status", "operator_id", "operator", "last_customer_message_at", "last_message_at", "read_up_to", "closed_at",
        "channel", "reply_window_closes_at"].forEach(
        function (k) {
          if (k in summary) conv[k] = summary[k];
        }
      );
    } else if (state.selectedId === summary.id) {
      state.closedSelected = Object.assign({}, state.closedSelected || {}, summary);
    }
    // A thread page.
    var thread = state.threads.get(summary.id);
    if (!thread) return;
    thread.loading = false;
    if (info.beforeId) {
      thread.hasMore = !!frame.has_more;
    } else {
      thread.messages = new Map();
      thread.hasMore = !!frame.has_more;
      thread.loaded = true;
      thread.stale = false;
    }
    messages.forEach(function (m) {
      thread.messages.set(m.id, m);
    });
    if (!info.beforeId || !thread.notes) thread.notes = new Map();
    (frame.notes || []).forEach(function (n) {
      thread.notes.set(n.id, n);
    });
    if (!info.beforeId && frame.timeline) {
      thread.timeline = new Map();
      frame.timeline.forEach(function (entry) {
        thread.timeline.set(entry.id, entry);
      });
    }
    if (conv && !info.beforeId) {
      // The newest page: it settles the preview of a conversation that arrived by an event.
      var newest = messages[messages.length - 1];
      if (newest) {
        setPreview(conv, newest);
        if (!conv.last_message_id || newest.id > conv.last_message_id) conv.last_message_id = newest.id;
      } else {
        emptyPreviewIfNone(conv);
      }
      if (conv.unread === null) recountUnread(conv);
      renderList();
    } else if (conv && messages.length) {
      if (conv.unread === null) recountUnread(conv);
      renderList();
    }
    if (state.selectedId === summary.id) {
      renderThread({ keepScroll: !!info.beforeId });
      scheduleMarkRead();
    }
  }

  function onError(frame) {
    var info = frame.request_id !== undefined ? state.requests.get(frame.request_id) : null;
    if (info) state.requests.delete(frame.request_id);
    var entry = frame.request_id !== undefined ? state.outbox.get(String(frame.request_id)) : null;
    if (entry) {
      // The server refused this reply for good (closed, not yours, invalid): stop retrying.
      if (frame.code === "not_found") {
        // The conversation is gone from this operator (moved or never theirs): nothing to retry.
        state.outbox.delete(entry.client_id);
      } else if (frame.code === "reply_window_closed") {
        // Nothing was stored: the text goes back to the composer once the customer writes.
        entry.status = "failed";
        entry.error = WINDOW_CLOSED_TEXT;
        var closedConv = state.convs.get(entry.conversation_id);
        if (closedConv && frame.data && frame.data.closed_at) {
          closedConv.reply_window_closes_at = frame.data.closed_at;
          if (state.selectedId === closedConv.id) renderThread();
        }
      } else {
        entry.status = "failed";
        entry.error = frame.message || frame.code;
      }
      saveOutbox();
      if (state.selectedId === entry.conversation_id) renderMessages();
      showNotice((entry.kind === "note" ? "Note not saved: " : "Reply not sent: ") + errorText(frame));
      return;
    }
    if (info && info.kind === "history") {
      var t = state.threads.get(info.conversationId);
      if (t) t.loading = false;
      var sel = selectedConversation();
      if (frame.code === "not_found" && sel && sel.id === info.conversationId && sel.movedAway) {
        // It left this operator: the banner says so, what was loaded stays readable.
        renderThread();
        return;
      }
      if (state.selectedId === info.conversationId) renderThread();
    }
    if (info && info.kind === "presence") renderPresence();
    if (info && (info.kind === "kb-search" || info.kind === "kb-render")) {
      onKbRefused(frame, info);
      return;
    }
    if (info && (info.kind.indexOf("template-") === 0 || info.kind.indexOf("outreach") === 0)) {
      onTemplateRefused(frame, info);
      return;
    }
    if (info && info.kind === "options") {
      // An older server without routing frames: the routing controls stay hidden.
      if (frame.code === "unknown_type") state.optionsUnsupported = true;
      return;
    }
    if (info && info.kind === "close") {
      onCloseRefused(frame, info);
      return;
    }
    if (info && info.kind === "settype") {
      state.typePending = null;
      renderThread();
    }
    if (info && info.kind === "transfer") {
      showDialogError(els.transferError, errorText(frame));
      setBusy(els.transferConfirm, false);
      if (frame.code === "not_found" || frame.code === "conversation_closed") requestOptions();
      return;
    }
    if (info && (info.kind === "derive-preview" || info.kind === "derive-run")) {
      state.derive.busy = false;
      showDialogError(els.deriveError, errorText(frame));
      renderDeriveButtons();
      return;
    }
    if (frame.code === "rate_limited") {
      showNotice("Too many actions at once; the console will retry in a moment.", {
        kind: "warning",
        timeout: 6000,
      });
      return;
    }
    showNotice(errorText(frame));
  }

  // ---------------------------------------------------------------- outbox
  function loadOutbox() {
    var saved = storeGet(STORE_OUTBOX);
    if (!Array.isArray(saved)) return;
    saved.forEach(function (e) {
      if (e && e.client_id && e.conversation_id && typeof e.text === "string") {
        e.sentAt = 0;
        state.outbox.set(e.client_id, e);
      }
    });
  }

  function saveOutbox() {
    var list = [];
    state.outbox.forEach(function (e) {
      list.push({
        client_id: e.client_id,
        conversation_id: e.conversation_id,
        text: e.text,
        status: e.status,
        error: e.error || null,
        createdAt: e.createdAt,
        kind: e.kind || "reply",
      });
    });
    storeSet(STORE_OUTBOX, list);
  }

  function transmit(entry) {
    if (!sock.live) return;
    var ok = send({
      type: entry.kind === "note" ? "note.send" : "message.send",
      request_id: entry.client_id,
      conversation_id: entry.conversation_id,
      client_id: entry.client_id,
      text: entry.text,
    });
    if (ok) entry.sentAt = Date.now();
  }

  function flushOutbox(all) {
    var now = Date.now();
    state.outbox.forEach(function (entry) {
      if (entry.status !== "sending") return;
      if (all || now - entry.sentAt > RESEND_AFTER_MS) transmit(entry);
    });
  }

  setInterval(function () {
    if (sock.live) flushOutbox(false);
  }, 3000);

  function sendReply() {
    var conv = selectedConversation();
    if (noteModeOn(conv)) {
      sendNote(conv);
      return;
    }
    if (!conv || !canAct(conv)) return;
    if (windowClosed(conv)) {
      showNotice(WINDOW_CLOSED_TEXT + ".", { kind: "warning", timeout: 6000 });
      return;
    }
    var text = els.text.value.trim();
    if (!text) return;
    if (text.length > MAX_TEXT) {
      showNotice("A reply can be at most " + MAX_TEXT + " characters.", { kind: "warning", timeout: 6000 });
      return;
    }
    var entry = {
      client_id: uuid4(),
      conversation_id: conv.id,
      text: text,
      status: "sending",
      sentAt: 0,
      createdAt: new Date().toISOString(),
    };
    state.outbox.set(entry.client_id, entry);
    saveOutbox();
    els.text.value = "";
    kbClose();
    state.drafts.delete(conv.id);
    autoGrow();
    transmit(entry);
    renderMessages({ toBottom: true });
  }

  // ---------------------------------------------------------------- internal notes
  function canNote(conv) {
    // Whoever sees the conversation here may note it: its operator and supervisors (the
    // server decides; advisors never reach this console).
    return !!(conv && state.me && !conv.movedAway && (state.supervisor || conv.operator_id === state.me.id));
  }

  function noteModeOn(conv) {
    return !!(state.noteMode && canNote(conv));
  }

  function setNoteMode(on) {
    var conv = selectedConversation();
    state.noteMode = !!on && canNote(conv);
    kbClose();
    renderThread();
    if (state.noteMode || (conv && canAct(conv))) {
      if (!els.text.disabled) els.text.focus();
    } else {
      els.messages.focus();
    }
  }

  function sendNote(conv) {
    var text = els.text.value.trim();
    if (!text) return;
    if (text.length > NOTE_MAX) {
      showNotice("A note can be at most " + NOTE_MAX + " characters.", { kind: "warning", timeout: 6000 });
      return;
    }
    var entry = {
      client_id: uuid4(),
      conversation_id: conv.id,
      text: text,
      status: "sending",
      sentAt: 0,
      createdAt: new Date().toISOString(),
      kind: "note",
    };
    state.outbox.set(entry.client_id, entry);
    saveOutbox();
    els.text.value = "";
    state.drafts.delete(conv.id);
    autoGrow();
    transmit(entry);
    renderMessages({ toBottom: true });
  }

  function onNoteAdded(note) {
    if (!note || !note.conversation_id) return;
    var thread = state.threads.get(note.conversation_id);
    if (!thread || !thread.loaded) return; // the next history load brings it
    if (!thread.notes) thread.notes = new Map();
    thread.notes.set(note.id, note);
    if (state.selectedId === note.conversation_id) renderMessages();
  }

  els.noteToggle.addEventListener("click", function () {
    setNoteMode(!state.noteMode);
  });
  els.noteOpen.addEventListener("click", function () {
    setNoteMode(!state.noteMode);
  });

  // ---------------------------------------------------------------- reading, closing, presence
  var markReadTimer = null;
  function scheduleMarkRead() {
    clearTimeout(markReadTimer);
    markReadTimer = setTimeout(markRead, 250);
  }

  function markRead() {
    var conv = state.convs.get(state.selectedId);
    if (!conv || !canAct(conv) || !sock.live) return;
    if (document.visibilityState === "hidden") return;
    var thread = state.threads.get(conv.id);
    if (!thread || !thread.loaded) return;
    var newest = conv.last_message_id || 0;
    thread.messages.forEach(function (m) {
      if (m.id > newest) newest = m.id;
    });
    if (newest > (conv.read_up_to || 0)) {
      request(
        "read",
        { type: "conversation.read", conversation_id: conv.id, up_to_message_id: newest },
        { conversationId: conv.id }
      );
      // Optimistic: the ack (or the read event) confirms it.
      conv.unread = 0;
      renderList();
    }
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") scheduleMarkRead();
  });

  els.closeBtn.addEventListener("click", function () {
    var conv = selectedConversation();
    if (!conv || !canAct(conv)) return;
    openCloseDialog(conv);
  });

  function renderPresence() {
    els.presence.setAttribute("aria-busy", "false");
    els.presence.value = state.presence;
    if (els.presenceDot) els.presenceDot.setAttribute("data-presence", state.presence);
  }

  els.presence.addEventListener("change", function () {
    var wanted = els.presence.value;
    var id = request("presence", { type: "presence.set", presence: wanted }, { presence: wanted });
    if (!id) {
      renderPresence();
      showNotice("Not connected: your status was not changed.", { kind: "warning", timeout: 6000 });
      return;
    }
    // aria-busy until the server confirms (ack) or refuses (error): both call renderPresence.
    els.presence.setAttribute("aria-busy", "true");
    if (els.presenceDot) els.presenceDot.setAttribute("data-presence", wanted);
  });

  // ---------------------------------------------------------------- routing: options
  function displayName(conv) {
    return conv.customer && conv.customer.name ? conv.customer.name : "Customer";
  }

  function typeLabel(conv) {
    if (conv.awaiting_type) return "Choosing type";
    return conv.query_type ? conv.query_type.name : "";
  }

  function requestOptions() {
    if (state.optionsUnsupported || !sock.live) return;
    request("options", { type: "routing.options" }, {});
  }

  function onRoutingOptions(frame) {
    if (frame.request_id !== undefined) state.requests.delete(frame.request_id);
    state.options = {
      query_types: frame.query_types || [],
      resolutions: frame.resolutions || [],
      operators: frame.operators || [],
      can: frame.can || {},
    };
    renderDeriveOpen();
    renderThread();
    if (els.transferDialog.open && state.transferFor) {
      var conv = state.convs.get(state.transferFor);
      if (conv) renderTransferTargets(conv);
    }
    if (els.deriveDialog.open) renderDeriveSelects();
  }

  function canTransfer() {
    // routing.options lists operators only to users allowed to move conversations.
    return !!(state.options && state.options.operators.length);
  }

  function canBatchDerive() {
    // routing.options says what this user may do; the server checks it again.
    return canTransfer() && !!state.options.can.batch_derive;
  }

  function canForce() {
    return canTransfer() && !!state.options.can.force;
  }

  function operatorById(id) {
    if (!state.options || id === null || id === undefined) return null;
    for (var i = 0; i < state.options.operators.length; i++) {
      if (state.options.operators[i].id === id) return state.options.operators[i];
    }
    return null;
  }

  function liveLoad(op) {
    // A supervisor's list holds every open conversation (unless truncated): count from it, so
    // the numbers follow the events instead of the last routing.options answer.
    if (!state.supervisor || state.truncated || state.lastEventId === null) return op.load || 0;
    var n = 0;
    state.convs.forEach(function (c) {
      if (c.status === "assigned" && c.operator_id === op.id) n += 1;
    });
    return n;
  }

  function operatorLine(op) {
    return op.name + " (" + (PRESENCE_LABEL[op.presence] || op.presence) + ", " + liveLoad(op) + "/" + op.capacity + ")";
  }

  function onOperatorPresence(userId, presence) {
    var op = operatorById(userId);
    if (!op || !presence) return;
    op.presence = presence;
    if (els.transferDialog.open && state.transferFor) {
      var conv = state.convs.get(state.transferFor);
      if (conv) renderTransferTargets(conv);
    }
    if (els.deriveDialog.open) renderDeriveSelects();
  }

  function option(value, text, disabled) {
    var o = el("option", null, text);
    o.value = value;
    if (disabled) o.disabled = true;
    return o;
  }

  // ---------------------------------------------------------------- routing: type
  var typeSelectKey = "";

  function renderThreadType(conv) {
    var types = state.options ? state.options.query_types : [];
    var editable = !!(types.length && conv.status !== "closed" && !conv.movedAway && (canAct(conv) || state.supervisor));
    var label = typeLabel(conv);
    // The select shows the current type; the badge stays for read-only views and the menu.
    els.threadType.hidden = !label || (editable && !conv.awaiting_type);
    els.threadType.textContent = label;
    els.threadType.classList.toggle("awaiting", !!conv.awaiting_type);
    els.typeField.hidden = !editable;
    if (!editable) return;
    var current = conv.query_type ? String(conv.query_type.id) : "";
    var key = conv.id + "|" + current + "|" + types.map(function (t) { return t.id + ":" + t.name; }).join(",");
    if (key !== typeSelectKey) {
      typeSelectKey = key;
      els.convType.textContent = "";
      if (!current) els.convType.appendChild(option("", "Set type…", true));
      types.forEach(function (t) {
        els.convType.appendChild(option(String(t.id), t.name));
      });
      els.convType.value = current;
    }
    var pending = state.typePending === conv.id;
    els.convType.disabled = pending || !sock.live;
    els.convType.setAttribute("aria-busy", pending ? "true" : "false");
  }

  els.convType.addEventListener("change", function () {
    var conv = selectedConversation();
    var typeId = Number(els.convType.value);
    if (!conv || !typeId) return;
    var id = request(
      "settype",
      { type: "conversation.set_type", conversation_id: conv.id, query_type_id: typeId },
      { conversationId: conv.id }
    );
    typeSelectKey = ""; // redraw from the conversation on the answer (or now, if not sent)
    if (!id) {
      showNotice("Not connected: the query type was not changed.", { kind: "warning", timeout: 6000 });
      renderThread();
      return;
    }
    state.typePending = conv.id;
    renderThreadType(conv);
  });

  // ---------------------------------------------------------------- routing: dialogs
  var dialogOpener = new Map(); // dialog -> the element focused before it opened

  function openModal(dialog, focusTarget) {
    dialogOpener.set(dialog, document.activeElement);
    if (!dialog.open) dialog.showModal();
    if (focusTarget) focusTarget.focus();
  }

  function dismissDialog(dialog) {
    if (dialog.open) dialog.close();
  }

  [els.closeDialog, els.transferDialog, els.deriveDialog, els.outreachDialog].forEach(function (dialog) {
    dialog.addEventListener("close", function () {
      if (dialog === els.closeDialog) state.closeFor = null;
      if (dialog === els.transferDialog) state.transferFor = null;
      var opener = dialogOpener.get(dialog);
      dialogOpener.delete(dialog);
      // Back to what opened it; when that is gone (the conversation closed or moved),
      // to the messages, so keyboard users are not dropped at the top of the page.
      if (opener && opener.isConnected && !opener.hidden && !opener.disabled && opener.offsetParent) opener.focus();
      else if (!els.threadMain.hidden) els.messages.focus();
    });
    dialog.addEventListener("click", function (e) {
      if (e.target.closest && e.target.closest("[data-dismiss]")) dismissDialog(dialog);
    });
  });

  function setBusy(button, busy, busyText) {
    if (!button) return;
    if (busy) {
      if (!button.hasAttribute("data-label")) button.setAttribute("data-label", button.textContent);
      button.textContent = busyText || "Working…";
    } else if (button.hasAttribute("data-label")) {
      button.textContent = button.getAttribute("data-label");
      button.removeAttribute("data-label");
    }
    button.disabled = !!busy;
    button.setAttribute("aria-busy", busy ? "true" : "false");
  }

  function showDialogError(box, text, items) {
    box.textContent = "";
    box.appendChild(el("p", null, text));
    if (items && items.length) {
      var ul = el("ul", "dialog-error-list");
      items.forEach(function (t) {
        ul.appendChild(el("li", null, t));
      });
      box.appendChild(ul);
    }
    box.hidden = false;
  }

  function hideDialogError(box) {
    box.hidden = true;
    box.textContent = "";
  }

  function dialogFailed(dialog, box, button, text) {
    setBusy(button, false);
    if (dialog.open) showDialogError(box, text);
  }

  // ---------------------------------------------------------------- routing: closing
  function reasonsFor(conv) {
    if (!state.options) return null; // unknown: the server will say if one is needed
    var typeId = conv.query_type ? conv.query_type.id : null;
    return state.options.resolutions.filter(function (r) {
      var ids = r.query_type_ids || [];
      return ids.length === 0 || (typeId !== null && ids.indexOf(typeId) >= 0);
    });
  }

  function fillReasons(reasons) {
    var keep = els.closeReason.value;
    els.closeReason.textContent = "";
    els.closeReason.appendChild(option("", "Choose a reason…"));
    (reasons || []).forEach(function (r) {
      els.closeReason.appendChild(option(String(r.id), r.name));
    });
    els.closeReason.value = keep;
    if (els.closeReason.value !== keep) els.closeReason.value = "";
    els.closeReasonField.hidden = !(reasons && reasons.length);
  }

  function openCloseDialog(conv) {
    state.closeFor = conv.id;
    els.closeReason.value = "";
    var reasons = reasonsFor(conv);
    fillReasons(reasons);
    var lead = "Closing the conversation with " + displayName(conv) +
      (conv.query_type ? " (" + conv.query_type.name + ")" : "") + ". ";
    lead += reasons && reasons.length
      ? "How was the query resolved?"
      : "No resolution reasons are set up for this type.";
    els.closeLead.textContent = lead;
    hideDialogError(els.closeError);
    setBusy(els.closeConfirm, false);
    openModal(els.closeDialog, reasons && reasons.length ? els.closeReason : els.closeConfirm);
  }

  els.closeForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var id = state.closeFor;
    var conv = id ? selectedConversation() : null;
    if (!conv || conv.id !== id || !canAct(conv)) {
      dismissDialog(els.closeDialog);
      return;
    }
    var reason = els.closeReason.value;
    if (!els.closeReasonField.hidden && !reason) {
      showDialogError(els.closeError, "Choose a resolution reason.");
      els.closeReason.focus();
      return;
    }
    var frame = { type: "conversation.close", conversation_id: id };
    if (reason) frame.resolution_id = Number(reason);
    if (!request("close", frame, { conversationId: id })) {
      showDialogError(els.closeError, "Not connected: the conversation was not closed.");
      return;
    }
    hideDialogError(els.closeError);
    setBusy(els.closeConfirm, true, "Closing…");
  });

  function onCloseRefused(frame, info) {
    var open = els.closeDialog.open && state.closeFor === info.conversationId;
    setBusy(els.closeConfirm, false);
    if (frame.code === "resolution_required" && frame.data && Array.isArray(frame.data.allowed)) {
      // The server's list wins over ours (reasons changed since routing.options).
      var allowed = frame.data.allowed;
      if (!open) {
        var conv = selectedConversation();
        if (!conv || conv.id !== info.conversationId) {
          showNotice(errorText(frame));
          return;
        }
        openCloseDialog(conv);
      }
      fillReasons(allowed);
      showDialogError(
        els.closeError,
        allowed.length
          ? "Choose one of the reasons allowed for this conversation's type:"
          : frame.message || "No reason is allowed for this type.",
        allowed.map(function (r) { return r.name; })
      );
      requestOptions();
      els.closeReason.focus();
      return;
    }
    if (open) showDialogError(els.closeError, errorText(frame));
    else showNotice(errorText(frame));
  }

  // ---------------------------------------------------------------- routing: transfer
  els.transferOpen.addEventListener("click", function () {
    var conv = selectedConversation();
    if (!conv || conv.status === "closed" || !canTransfer()) return;
    state.transferFor = conv.id;
    els.transferNote.value = "";
    els.transferForce.checked = false;
    els.transferForceField.hidden = !canForce();
    var where = conv.status === "queued" ? "waiting in the queue" : "with " + operatorName(conv);
    els.transferLead.textContent = displayName(conv) +
      (conv.query_type ? " · " + conv.query_type.name : "") + " · now " + where + ".";
    hideDialogError(els.transferError);
    setBusy(els.transferConfirm, false);
    els.transferTarget.value = "";
    renderTransferTargets(conv);
    openModal(els.transferDialog, els.transferTarget);
    requestOptions(); // fresh presence and load; the answer redraws the choices
  });

  function transferBlocker(op, conv) {
    var typeId = conv.query_type ? conv.query_type.id : null;
    var skills = op.query_type_ids || [];
    if (op.presence !== "online") return PRESENCE_LABEL[op.presence] || op.presence;
    if (typeId !== null && skills.length && skills.indexOf(typeId) < 0) {
      return "does not serve " + conv.query_type.name;
    }
    if (liveLoad(op) >= op.capacity && !(canForce() && els.transferForce.checked)) return "full";
    return "";
  }

  function renderTransferTargets(conv) {
    var sel = els.transferTarget;
    var keep = sel.value;
    sel.textContent = "";
    var ready = [];
    var blocked = [];
    (state.options ? state.options.operators : []).forEach(function (op) {
      if (op.id === conv.operator_id) return;
      var why = transferBlocker(op, conv);
      (why ? blocked : ready).push({ op: op, why: why });
    });
    ready.sort(function (a, b) {
      return liveLoad(a.op) / (a.op.capacity || 1) - liveLoad(b.op) / (b.op.capacity || 1);
    });
    ready.forEach(function (x) {
      sel.appendChild(option(String(x.op.id), operatorLine(x.op)));
    });
    if (conv.status === "assigned") {
      sel.appendChild(option("queue", "Back to the queue (the next free operator takes it)"));
    }
    if (blocked.length) {
      var group = el("optgroup");
      group.label = "Not available";
      blocked.forEach(function (x) {
        group.appendChild(option(String(x.op.id), x.op.name + " — " + x.why, true));
      });
      sel.appendChild(group);
    }
    var values = Array.from(sel.options).filter(function (o) { return !o.disabled; }).map(function (o) { return o.value; });
    sel.value = values.indexOf(keep) >= 0 ? keep : values[0] || "";
    els.transferConfirm.disabled = !values.length || els.transferConfirm.getAttribute("aria-busy") === "true";
    els.transferHint.textContent = conv.query_type
      ? "Online operators who serve " + conv.query_type.name + ", least busy first."
      : "Online operators, least busy first.";
  }

  els.transferForce.addEventListener("change", function () {
    var conv = state.convs.get(state.transferFor);
    if (conv) renderTransferTargets(conv);
  });

  els.transferForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var id = state.transferFor;
    var choice = els.transferTarget.value;
    if (!id || !choice) {
      showDialogError(els.transferError, "Choose where the conversation goes.");
      els.transferTarget.focus();
      return;
    }
    var frame = {
      type: "conversation.transfer",
      conversation_id: id,
      to_operator_id: choice === "queue" ? null : Number(choice),
    };
    var note = els.transferNote.value.trim();
    if (note) frame.note = note;
    if (canForce() && els.transferForce.checked) frame.force = true;
    if (!request("transfer", frame, { conversationId: id, target: frame.to_operator_id })) {
      showDialogError(els.transferError, "Not connected: nothing was transferred.");
      return;
    }
    hideDialogError(els.transferError);
    setBusy(els.transferConfirm, true, "Transferring…");
  });

  function onTransferred(summary, info) {
    setBusy(els.transferConfirm, false);
    if (summary) upsertConversation(summary);
    if (state.transferFor === info.conversationId) dismissDialog(els.transferDialog);
    var text = summary ? displayName(summary) : "The conversation";
    if (!summary) text += " was transferred.";
    else if (summary.status === "queued") text += " is back in the queue.";
    else text += " is now with " + operatorName(summary) + ".";
    showNotice(text, { kind: "info", timeout: 5000 });
  }

  // ---------------------------------------------------------------- routing: derivation
  function renderDeriveOpen() {
    els.deriveOpen.hidden = !canBatchDerive();
  }

  els.deriveOpen.addEventListener("click", function () {
    if (!canBatchDerive()) return;
    state.derive = { preview: null, key: "", busy: false, done: false };
    els.deriveFrom.value = "";
    els.deriveTo.value = "spread";
    els.deriveNote.value = "";
    els.deriveForce.checked = false;
    els.deriveResult.hidden = true;
    els.deriveResult.classList.remove("done");
    hideDialogError(els.deriveError);
    renderDeriveSelects();
    renderDeriveButtons();
    openModal(els.deriveDialog, els.deriveFrom);
    requestOptions();
  });

  function renderDeriveSelects() {
    var ops = state.options ? state.options.operators.slice() : [];
    ops.sort(function (a, b) {
      return a.name.localeCompare(b.name);
    });
    var from = els.deriveFrom.value;
    els.deriveFrom.textContent = "";
    els.deriveFrom.appendChild(option("", "Choose an operator…", true));
    ops.forEach(function (op) {
      els.deriveFrom.appendChild(option(String(op.id), operatorLine(op)));
    });
    els.deriveFrom.value = from;
    if (els.deriveFrom.value !== from) els.deriveFrom.value = "";
    var to = els.deriveTo.value || "spread";
    els.deriveTo.textContent = "";
    els.deriveTo.appendChild(option("spread", "Spread over online operators"));
    ops.forEach(function (op) {
      if (String(op.id) === els.deriveFrom.value) return;
      var off = op.presence !== "online";
      els.deriveTo.appendChild(option(String(op.id), operatorLine(op) + (off ? " — not online" : ""), off));
    });
    els.deriveTo.value = to;
    if (els.deriveTo.value !== to || els.deriveTo.selectedOptions[0].disabled) els.deriveTo.value = "spread";
  }

  function deriveSelection() {
    var from = els.deriveFrom.value;
    var to = els.deriveTo.value;
    var force = canBatchDerive() && els.deriveForce.checked;
    return {
      from_operator_id: from ? Number(from) : null,
      to_operator_id: to && to !== "spread" ? Number(to) : null,
      force: force,
      key: from + ">" + (to || "spread") + (force ? "!" : ""),
    };
  }

  function renderDeriveButtons() {
    var d = state.derive;
    var sel = deriveSelection();
    var ready = !!(d.preview && d.key === sel.key);
    if (!d.busy) setBusy(els.deriveConfirm, false);
    els.derivePreview.hidden = d.done;
    els.deriveConfirm.hidden = d.done;
    els.derivePreview.disabled = d.busy || !sel.from_operator_id;
    els.deriveConfirm.disabled = d.busy || !ready || !d.preview.count;
    els.deriveConfirm.textContent = ready && d.preview.count
      ? "Confirm: move " + d.preview.count
      : "Confirm";
    els.deriveCancel.textContent = d.done ? "Done" : "Cancel";
    [els.deriveFrom, els.deriveTo, els.deriveForce, els.deriveNote].forEach(function (f) {
      f.disabled = d.busy || d.done;
    });
  }

  [els.deriveFrom, els.deriveTo, els.deriveForce].forEach(function (field) {
    field.addEventListener("change", function () {
      // A preview answers one exact choice: any change means previewing again.
      state.derive.preview = null;
      els.deriveResult.hidden = true;
      hideDialogError(els.deriveError);
      if (field === els.deriveFrom) renderDeriveSelects();
      renderDeriveButtons();
    });
  });

  function targetName(key) {
    if (key === "queue") return "Back to the queue (nobody free serves the type)";
    var op = operatorById(Number(key));
    return op ? op.name : "Operator #" + key;
  }

  function renderPerTarget(title, result) {
    els.deriveResult.textContent = "";
    els.deriveResult.appendChild(el("p", "derive-result-title", title));
    var ul = el("ul", "derive-targets");
    Object.keys(result.per_target || {}).forEach(function (key) {
      var li = el("li", "derive-target");
      li.setAttribute("data-target", key);
      li.appendChild(el("span", "derive-target-name", targetName(key)));
      li.appendChild(el("span", "derive-target-count", result.per_target[key]));
      ul.appendChild(li);
    });
    els.deriveResult.appendChild(ul);
    els.deriveResult.hidden = false;
  }

  els.derivePreview.addEventListener("click", function () {
    var sel = deriveSelection();
    if (!sel.from_operator_id) {
      showDialogError(els.deriveError, "Choose the operator whose conversations move.");
      els.deriveFrom.focus();
      return;
    }
    var frame = {
      type: "derivation.preview",
      from_operator_id: sel.from_operator_id,
      to_operator_id: sel.to_operator_id,
    };
    if (sel.force) frame.force = true;
    if (!request("derive-preview", frame, { key: sel.key })) {
      showDialogError(els.deriveError, "Not connected: try again when the console is live.");
      return;
    }
    hideDialogError(els.deriveError);
    state.derive.busy = true;
    state.derive.preview = null;
    renderDeriveButtons();
  });

  function onDerivationPreview(frame) {
    var info = frame.request_id !== undefined ? state.requests.get(frame.request_id) : null;
    if (info) state.requests.delete(frame.request_id);
    if (!info || !els.deriveDialog.open) return;
    state.derive.busy = false;
    if (info.key !== deriveSelection().key) {
      renderDeriveButtons(); // the choice changed meanwhile: this answer is for another one
      return;
    }
    state.derive.preview = frame;
    state.derive.key = info.key;
    var from = operatorById(frame.from_operator_id);
    var n = frame.count || 0;
    renderPerTarget(
      n + " conversation" + (n === 1 ? "" : "s") + " of " + (from ? from.name : "this operator") + " would move:",
      frame
    );
    renderDeriveButtons();
    if (n) els.deriveConfirm.focus();
  }

  els.deriveForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var d = state.derive;
    var sel = deriveSelection();
    if (d.busy || d.done || !d.preview || d.key !== sel.key) return;
    var frame = {
      type: "derivation.run",
      from_operator_id: sel.from_operator_id,
      to_operator_id: sel.to_operator_id,
    };
    if (sel.force) frame.force = true;
    var note = els.deriveNote.value.trim();
    if (note) frame.note = note;
    if (!request("derive-run", frame, { key: sel.key })) {
      showDialogError(els.deriveError, "Not connected: nothing was moved.");
      return;
    }
    hideDialogError(els.deriveError);
    d.busy = true;
    renderDeriveButtons();
    setBusy(els.deriveConfirm, true, "Moving…");
  });

  function onDerivationRun(result) {
    state.derive.busy = false;
    state.derive.done = true;
    setBusy(els.deriveConfirm, false);
    var n = result.count || 0;
    renderPerTarget(
      "Done: " + n + " conversation" + (n === 1 ? "" : "s") + " moved" + (result.batch_id ? " (batch #" + result.batch_id + ")" : "") + ".",
      result
    );
    els.deriveResult.classList.add("done");
    renderDeriveButtons();
    els.deriveCancel.focus();
    requestOptions(); // loads changed
  }

  // ---------------------------------------------------------------- selection and history
  function selectedConversation() {
    if (!state.selectedId) return null;
    return state.convs.get(state.selectedId) || state.closedSelected;
  }

  function canAct(conv) {
    return !!(conv && state.me && !conv.movedAway && conv.operator_id === state.me.id && conv.status !== "closed");
  }

  function select(id, opts) {
    opts = opts || {};
    if (state.selectedId && state.selectedId !== id) {
      if (els.text.value) state.drafts.set(state.selectedId, els.text.value);
      else state.drafts.delete(state.selectedId);
    }
    if (state.selectedId !== id) state.closedSelected = null;
    if (state.selectedId !== id) kbClose();
    state.selectedId = id;
    els.text.value = state.drafts.get(id) || "";
    autoGrow();
    els.workspace.setAttribute("data-view", "thread");
    renderList();
    renderThread({ toBottom: true });
    ensureSelectedLoaded();
    scheduleMarkRead();
    if (opts.focus !== false) {
      var conv = selectedConversation();
      if (canAct(conv) && !els.text.disabled) els.text.focus();
      else els.messages.focus();
    }
  }

  function ensureSelectedLoaded() {
    var id = state.selectedId;
    if (!id || !sock.live) return;
    var thread = state.threads.get(id);
    if (!thread) {
      thread = { messages: new Map(), hasMore: false, loading: false, loaded: false, stale: false };
      state.threads.set(id, thread);
    }
    if ((thread.loaded && !thread.stale) || thread.loading) return;
    thread.loading = true;
    var sent = request(
      "history",
      { type: "conversation.history", conversation_id: id, limit: HISTORY_PAGE },
      { conversationId: id, beforeId: null }
    );
    if (!sent) thread.loading = false;
    renderThread();
  }

  function loadEarlier() {
    var id = state.selectedId;
    var thread = state.threads.get(id);
    if (!thread || thread.loading || !thread.hasMore) return;
    var oldest = Infinity;
    thread.messages.forEach(function (m) {
      if (m.id < oldest) oldest = m.id;
    });
    if (oldest === Infinity) return;
    thread.loading = true;
    request(
      "history",
      { type: "conversation.history", conversation_id: id, before_id: oldest, limit: HISTORY_PAGE },
      { conversationId: id, beforeId: oldest }
    );
  }

  // ---------------------------------------------------------------- rendering: list
  var listNodes = new Map(); // id -> {li, button, name, time, preview, unread, wait, status}

  function sortedConversations() {
    var list = Array.from(state.convs.values());
    var byWaiting = listPrefs.sort === "waiting";
    list.sort(function (a, b) {
      if (byWaiting) {
        // Those waiting for an answer first, the longest waiting on top; then the rest.
        var wa = isAwaitingReply(a) ? parseTime(a.last_customer_message_at) : null;
        var wb = isAwaitingReply(b) ? parseTime(b.last_customer_message_at) : null;
        if (wa !== null && wb !== null && wa !== wb) return wa - wb;
        if (wa !== null && wb === null) return -1;
        if (wa === null && wb !== null) return 1;
      }
      var ta = parseTime(a.last_message_at) || parseTime(a.created_at) || 0;
      var tb = parseTime(b.last_message_at) || parseTime(b.created_at) || 0;
      return tb - ta;
    });
    return list;
  }

  function operatorName(conv) {
    // Staff names are user-provided text too: callers write this with textContent.
    if (conv.operator && conv.operator.name) return conv.operator.name;
    return "Operator #" + conv.operator_id;
  }

  function isAwaitingReply(conv) {
    // The customer spoke last, or only the hub's own messages (queue position, type menu,
    // out-of-hours reply) came after them: they are waiting for a person.
    if (!conv.last_customer_message_at) return false;
    if (conv.last_customer_message_at === conv.last_message_at) return true;
    var p = conv.preview;
    if (p && p.id) return p.direction === "in" || !!p.system;
    // The newest message is not known here (the conversation came by a routing event):
    // nobody of the staff has answered it yet, so the customer is still waiting.
    return !conv.first_operator_reply_at;
  }

  function waitingInfo(conv, now) {
    var since = parseTime(conv.last_customer_message_at);
    if (since === null) return null;
    var ms = Math.max(0, now - since);
    var awaiting = isAwaitingReply(conv);
    var level = "calm";
    if (awaiting) level = ms >= 300000 ? "late" : ms >= 120000 ? "due" : "fresh";
    return { ms: ms, awaiting: awaiting, level: level };
  }

  function buildListItem(conv) {
    var li = el("li", "conv-item");
    var button = el("button", "conv");
    button.type = "button";
    button.setAttribute("data-id", conv.id);
    var top = el("span", "conv-top");
    var name = el("span", "conv-name");
    var qtype = el("span", "type-badge");
    var channel = el("span", "channel-badge");
    var time = el("span", "conv-time");
    top.appendChild(name);
    top.appendChild(channel);
    top.appendChild(qtype);
    top.appendChild(time);
    var bottom = el("span", "conv-bottom");
    var preview = el("span", "conv-preview");
    var unread = el("span", "badge badge-unread");
    bottom.appendChild(preview);
    bottom.appendChild(unread);
    var meta = el("span", "conv-meta");
    var wait = el("span", "wait");
    var status = el("span", "conv-status");
    meta.appendChild(wait);
    meta.appendChild(status);
    button.appendChild(top);
    button.appendChild(bottom);
    button.appendChild(meta);
    li.appendChild(button);
    button.addEventListener("click", function () {
      select(conv.id);
    });
    button.addEventListener("keydown", onListKey);
    return { li: li, button: button, name: name, time: time, preview: preview, unread: unread, wait: wait, qtype: qtype, status: status, channel: channel };
  }

  function onListKey(e) {
    if (e.key !== "ArrowDown" && e.key !== "ArrowUp" && e.key !== "Home" && e.key !== "End") return;
    var buttons = visibleRows();
    var i = buttons.indexOf(e.currentTarget);
    if (i < 0) return;
    e.preventDefault();
    var j = e.key === "ArrowDown" ? i + 1 : e.key === "ArrowUp" ? i - 1 : e.key === "Home" ? 0 : buttons.length - 1;
    if (j >= 0 && j < buttons.length) buttons[j].focus();
  }

  function updateListItem(node, conv, now) {
    node.name.textContent = conv.customer && conv.customer.name ? conv.customer.name : "Customer";
    var last = parseTime(conv.last_message_at) || parseTime(conv.created_at);
    node.time.textContent = last ? clockTime(last) : "";
    if (last) node.time.title = new Date(last).toLocaleString();
    var preview = conv.preview;
    node.preview.classList.toggle("muted", !preview || !preview.text);
    if (preview && preview.text) {
      node.preview.textContent = (preview.direction === "out" ? "You: " : "") + preview.text;
      if (preview.direction === "out" && state.supervisor) {
        node.preview.textContent = "Reply: " + preview.text;
      }
      if (preview.system) node.preview.textContent = SYSTEM_AUTHOR + ": " + preview.text;
    } else {
      // No preview: it came by an event with messages this console has not seen yet.
      node.preview.textContent = preview ? "No messages yet" : "Open to read the messages";
    }
    var unread = conv.unread || 0;
    node.unread.hidden = unread <= 0;
    node.unread.textContent = unread > 99 ? "99+" : String(unread);
    node.unread.setAttribute("aria-label", unread + " unread");
    var w = waitingInfo(conv, now);
    renderWait(node.wait, w);
    node.channel.textContent = CHANNEL_LABEL[conv.channel] || conv.channel || "";
    node.channel.className = "channel-badge channel-" + (conv.channel || "unknown");
    node.channel.title = "Channel";
    var typeText = typeLabel(conv);
    node.qtype.textContent = typeText;
    node.qtype.hidden = !typeText;
    node.qtype.title = conv.awaiting_type ? "The customer is choosing a query type from the menu" : "Query type";
    node.qtype.classList.toggle("awaiting", !!conv.awaiting_type);
    var statusText = "";
    if (state.supervisor) {
      if (conv.status === "queued") statusText = "In queue";
      else if (state.me && conv.operator_id === state.me.id) statusText = "Assigned to you";
      else if (conv.operator_id) statusText = operatorName(conv);
    }
    node.status.textContent = statusText;
    node.status.title = statusText;
    node.status.classList.toggle("queued", conv.status === "queued");
    node.button.classList.toggle("unread", unread > 0);
    var selected = state.selectedId === conv.id;
    node.button.classList.toggle("selected", selected);
    if (selected) node.button.setAttribute("aria-current", "true");
    else node.button.removeAttribute("aria-current");
    var label = node.name.textContent + ", " + (typeText ? typeText + ", " : "") + (unread ? unread + " unread, " : "") +
      (w && w.awaiting ? "waiting " + shortDuration(w.ms) : "answered");
    node.button.setAttribute("aria-label", label);
  }

  function renderWait(node, w) {
    if (!w) {
      node.textContent = "";
      node.className = "wait";
      return;
    }
    node.className = "wait wait-" + w.level;
    node.textContent = w.awaiting ? "Waiting " + shortDuration(w.ms) : "Replied · customer wrote " + shortDuration(w.ms) + " ago";
    node.title = w.awaiting ? "Time since the customer's last message, unanswered" : "Time since the customer's last message";
  }

  function renderList() {
    var now = Date.now();
    var list = sortedConversations();
    var shown = 0;
    var seen = new Set();
    var focused = els.list.contains(document.activeElement) ? document.activeElement : null;
    var before = els.list.firstChild;
    list.forEach(function (conv) {
      seen.add(conv.id);
      var node = listNodes.get(conv.id);
      if (!node) {
        node = buildListItem(conv);
        listNodes.set(conv.id, node);
      }
      updateListItem(node, conv, now);
      node.li.hidden = !listMatches(conv);
      if (!node.li.hidden) shown += 1;
      if (node.li !== before) els.list.insertBefore(node.li, before);
      before = node.li.nextSibling;
    });
    // Moving a row in the DOM blurs it; keyboard users keep their place.
    if (focused && focused.isConnected && document.activeElement !== focused) {
      focused.focus({ preventScroll: true });
    }
    listNodes.forEach(function (node, id) {
      if (!seen.has(id)) {
        var hadFocus = node.li.contains(document.activeElement);
        node.li.remove();
        listNodes.delete(id);
        if (hadFocus) els.messages.focus();
      }
    });
    els.list.setAttribute("aria-busy", state.lastEventId === null ? "true" : "false");
    els.listEmpty.hidden = list.length > 0 || state.lastEventId === null;
    els.listCount.textContent = String(list.length) + (state.truncated ? "+" : "");
    var filtering = listFiltering();
    els.listNoMatch.hidden = !filtering || shown > 0 || list.length === 0;
    els.listCount.setAttribute("aria-label", filtering ? shown + " of " + list.length + " conversations shown" : "Number of conversations");
    if (filtering) els.listCount.textContent = shown + "/" + els.listCount.textContent;
    renderQueueInfo(now);
    els.listTruncated.hidden = !state.truncated;
    var totalUnread = 0;
    list.forEach(function (c) {
      totalUnread += c.unread || 0;
    });
    document.title = (totalUnread ? "(" + totalUnread + ") " : "") + "Console · Customer service hub";
  }

  // ---------------------------------------------------------------- rendering: thread
  var messageNodes = new Map(); // key -> li

  function renderThread(opts) {
    opts = opts || {};
    var conv = selectedConversation();
    els.threadEmpty.hidden = !!conv;
    els.threadMain.hidden = !conv;
    if (!conv) {
      els.workspace.setAttribute("data-view", "list");
      boRender();
      return;
    }
    els.threadTitle.textContent = conv.customer && conv.customer.name ? conv.customer.name : "Customer";
    renderThreadMeta(conv, Date.now());
    var acting = canAct(conv);
    var noting = noteModeOn(conv);
    els.closeBtn.hidden = !acting;
    // Watchers (supervisors, a closed conversation's operator) get the composer only to
    // write a note: "Add note" (Alt+O) opens it in Note mode.
    els.composer.hidden = !(acting || noting);
    els.noteOpen.hidden = acting || !canNote(conv);
    els.noteOpen.setAttribute("aria-pressed", noting ? "true" : "false");
    els.noteOpen.textContent = noting ? "Cancel note" : "Add note";
    renderThreadType(conv);
    els.transferOpen.hidden = !(canTransfer() && conv.status !== "closed" && !conv.movedAway);
    var banner = "";
    if (conv.movedAway) {
      banner = "This conversation was moved away from you. You can read what was loaded, but no longer reply.";
    } else if (conv.status === "closed") {
      banner = "This conversation is closed. The customer starts a new one by writing again.";
    } else if (acting && windowClosed(conv)) {
      banner = WINDOW_CLOSED_TEXT + ". Free-form replies are possible again once the customer writes.";
    } else if (!acting) {
      if (conv.status === "queued") {
        banner = "Waiting in the queue for a free operator. You are watching; only the assigned operator can reply.";
      } else {
        banner = "You are watching this conversation. Only the assigned operator (" + operatorName(conv) + ") can reply.";
      }
    }
    els.banner.textContent = banner;
    els.banner.hidden = !banner;
    els.banner.classList.toggle("banner-closed", conv.status === "closed");
    els.banner.classList.toggle("banner-window", acting && conv.status !== "closed" && windowClosed(conv));
    state.windowShownClosed = windowClosed(conv);
    updateComposer();
    renderMessages(opts);
    boRender();
  }

  function renderThreadMeta(conv, now) {
    var parts = [];
    parts.push(CHANNEL_LABEL[conv.channel] || conv.channel || "");
    var closes = windowClosesAt(conv);
    if (closes !== null && conv.status !== "closed") {
      parts.push(closes > now ? "Reply window: " + shortDuration(closes - now) + " left" : "24-hour window closed");
    }
    if (conv.status === "closed") parts.push(conv.resolution ? "Closed: " + conv.resolution.name : "Closed");
    else if (conv.status === "queued") parts.push("In queue");
    else if (state.supervisor && conv.operator_id && (!state.me || conv.operator_id !== state.me.id)) {
      parts.push(operatorName(conv));
    }
    var w = waitingInfo(conv, now);
    if (w && w.awaiting && conv.status !== "closed") parts.push("Waiting " + shortDuration(w.ms));
    els.threadMeta.textContent = parts.filter(Boolean).join(" · ");
    renderCountdown(conv, now);
  }

  function updateComposer() {
    var conv = selectedConversation();
    var noting = noteModeOn(conv);
    var usable = canAct(conv) || noting;
    // The 24-hour window limits replies to the customer, never notes.
    var closed = usable && !noting && windowClosed(conv);
    els.send.disabled = !usable || closed;
    els.text.disabled = !usable || closed;
    els.composer.classList.toggle("offline", !sock.live);
    els.composer.classList.toggle("window-closed", closed);
    els.composer.classList.toggle("note-mode", noting);
    els.noteToggle.setAttribute("aria-pressed", noting ? "true" : "false");
    els.noteToggle.hidden = !canNote(conv);
    els.noteLabel.hidden = !noting;
    els.hintReply.hidden = noting;
    els.hintNote.hidden = !noting;
    els.composerLabel.textContent = noting ? NOTE_LABEL : "Reply";
    els.send.textContent = noting ? "Save note" : "Send";
    els.text.maxLength = noting ? NOTE_MAX : MAX_TEXT;
    renderTemplatePanel(conv);
    renderOutreachSend();
    els.text.placeholder = noting
      ? "Write an internal note for staff…"
      : closed
        ? WINDOW_CLOSED_TEXT
        : sock.live
          ? "Write a reply…"
          : "Write a reply… (sent when the connection is back)";
  }

  function buildMessageNode(key) {
    var li = el("li", "msg");
    li.setAttribute("data-key", key);
    var bubble = el("div", "bubble");
    var text = el("p", "bubble-text");
    var meta = el("div", "bubble-meta");
    bubble.appendChild(text);
    bubble.appendChild(meta);
    li.appendChild(bubble);
    li._text = text;
    li._meta = meta;
    return li;
  }

  function renderNote(node, text, created) {
    // A note card: its label first, so it reads as staff-only before anything else.
    node.className = "msg msg-note";
    node.setAttribute("aria-label", NOTE_LABEL);
    var tag = node._tag;
    if (!tag) {
      tag = el("span", "note-tag", NOTE_LABEL);
      node._text.parentNode.insertBefore(tag, node._text);
      node._tag = tag;
    }
    node._text.textContent = text;
  }

  function renderMessages(opts) {
    opts = opts || {};
    var conv = selectedConversation();
    if (!conv) return;
    var thread = state.threads.get(conv.id);
    var box = els.messages;
    var nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 80;
    var oldHeight = box.scrollHeight;
    var oldTop = box.scrollTop;

    var items = [];
    if (thread && thread.loaded) {
      Array.from(thread.messages.values())
        .sort(function (a, b) {
          return a.id - b.id;
        })
        .forEach(function (m) {
          items.push({ key: "m" + m.id, message: m });
        });
    }
    var boEntries = thread && thread.loaded ? boTimeline(conv.id) : [];
    var noteList = thread && thread.loaded && thread.notes ? Array.from(thread.notes.values()) : [];
    if (thread && thread.loaded && ((thread.timeline && thread.timeline.size) || boEntries.length || noteList.length)) {
      // Changes of hands and back-office steps sit between the messages at the time they
      // happened.
      var entries = Array.from(thread.timeline ? thread.timeline.values() : [])
        .sort(function (a, b) {
          return a.id - b.id;
        })
        .map(function (t, index) {
          return { key: "a" + t.id, timeline: t, at: parseTime(t.created_at) || 0, order: index };
        });
      boEntries.forEach(function (b, index) {
        entries.push({ key: b.key, bo: b, at: parseTime(b.at) || 0, order: 100000 + index });
      });
      noteList.forEach(function (n) {
        entries.push({ key: "n" + n.id, note: n, at: parseTime(n.created_at) || 0, order: 200000 + n.id });
      });
      entries.sort(function (a, b) {
        return a.at - b.at || a.order - b.order;
      });
      var merged = [];
      var i = 0;
      items.forEach(function (item) {
        var at = parseTime(item.message.created_at) || 0;
        while (i < entries.length && entries[i].at < at) {
          merged.push(entries[i]);
          i++;
        }
        merged.push(item);
      });
      for (; i < entries.length; i++) merged.push(entries[i]);
      items = merged;
    }
    state.outbox.forEach(function (entry) {
      if (entry.conversation_id === conv.id) items.push({ key: "c" + entry.client_id, pending: entry });
    });

    var seen = new Set();
    var before = els.messageList.firstChild;
    var lastDay = null;
    var customerName = conv.customer && conv.customer.name ? conv.customer.name : "Customer";
    items.forEach(function (item) {
      var created =
        parseTime(
          item.message
            ? item.message.created_at
            : item.timeline
              ? item.timeline.created_at
              : item.note
                ? item.note.created_at
                : item.bo
                  ? item.bo.at
                  : item.pending.createdAt
        ) || Date.now();
      var day = new Date(created).toDateString();
      if (day !== lastDay) {
        lastDay = day;
        var dkey = "d" + day;
        seen.add(dkey);
        var sep = messageNodes.get(dkey);
        if (!sep) {
          sep = el("li", "day-sep");
          sep.setAttribute("data-key", dkey);
          sep.appendChild(el("span", null, dayLabel(created)));
          messageNodes.set(dkey, sep);
        }
        if (sep !== before) els.messageList.insertBefore(sep, before);
        before = sep.nextSibling;
      }
      seen.add(item.key);
      var node = messageNodes.get(item.key);
      if (!node) {
        node = buildMessageNode(item.key);
        messageNodes.set(item.key, node);
      }
      if (item.note) {
        renderNote(node, item.note.text, created);
        var author = item.note.author || {};
        var mine = state.me && author.id === state.me.id;
        node._meta.textContent = (mine ? "You" : author.name || "Staff") + " · " + clockTime(created);
        node._meta.title = new Date(created).toLocaleString();
      } else if (item.pending && item.pending.kind === "note") {
        var pn = item.pending;
        renderNote(node, pn.text, created);
        node.className += " " + (pn.status === "failed" ? "msg-failed" : "msg-pending");
        node._meta.textContent = "";
        if (pn.status === "failed") {
          node._meta.appendChild(el("span", "msg-state", "Not saved" + (pn.error ? ": " + pn.error : "")));
          var discardNote = el("button", "link-btn", "Discard");
          discardNote.type = "button";
          discardNote.addEventListener("click", function () {
            state.outbox.delete(pn.client_id);
            saveOutbox();
            renderMessages();
          });
          node._meta.appendChild(discardNote);
        } else {
          node._meta.appendChild(el("span", "msg-state", sock.live ? "Saving…" : "Waiting for connection…"));
        }
      } else if (item.bo) {
        node.className = "msg msg-timeline msg-bo bo-tone-" + item.bo.tone;
        node._text.textContent = item.bo.text;
        node._meta.textContent = "Back office · " + clockTime(created);
        node._meta.title = new Date(created).toLocaleString();
      } else if (item.timeline) {
        node.className = "msg msg-timeline";
        node._text.textContent = describeTimeline(item.timeline);
        node._meta.textContent = clockTime(created);
        node._meta.title = new Date(created).toLocaleString();
      } else if (item.message) {
        var m = item.message;
        var system = isSystemMessage(m);
        node.className = "msg " + (system ? "msg-system" : m.direction === "out" ? "msg-out" : "msg-in");
        node._text.textContent = m.text;
        var who = m.direction === "out" ? (m.author && m.author === state.myName ? "You" : m.author || "Operator") : customerName;
        if (system) who = SYSTEM_AUTHOR + " (automatic)";
        node._meta.textContent = who + " · " + clockTime(created);
        node._meta.title = new Date(created).toLocaleString();
        if (m.direction === "out" && m.status && DELIVERY[m.status]) {
          var d = DELIVERY[m.status];
          var tick = el("span", "msg-status status-" + m.status, d.tick);
          tick.title = d.label + (m.status_at ? " · " + new Date(parseTime(m.status_at)).toLocaleString() : "");
          tick.setAttribute("aria-label", d.label);
          tick.setAttribute("data-status", m.status);
          node._meta.appendChild(document.createTextNode(" "));
          node._meta.appendChild(tick);
          if (m.status === "failed") {
            node.className += " msg-undelivered";
            node._meta.appendChild(el("span", "msg-state msg-delivery-error", "Not delivered: " + deliveryError(m)));
          }
        }
      } else {
        var p = item.pending;
        node.className = "msg msg-out " + (p.status === "failed" ? "msg-failed" : "msg-pending");
        node._text.textContent = p.text;
        node._meta.textContent = "";
        if (p.status === "failed") {
          node._meta.appendChild(el("span", "msg-state", "Not sent" + (p.error ? ": " + p.error : "")));
          var retry = el("button", "link-btn", "Retry");
          retry.type = "button";
          retry.addEventListener("click", function () {
            p.status = "sending";
            p.error = null;
            p.sentAt = 0;
            saveOutbox();
            transmit(p);
            renderMessages();
          });
          var discard = el("button", "link-btn", "Discard");
          discard.type = "button";
          discard.addEventListener("click", function () {
            state.outbox.delete(p.client_id);
            saveOutbox();
            renderMessages();
          });
          node._meta.appendChild(retry);
          node._meta.appendChild(discard);
        } else {
          node._meta.appendChild(el("span", "msg-state", sock.live ? "Sending…" : "Waiting for connection…"));
        }
      }
      if (node !== before) els.messageList.insertBefore(node, before);
      before = node.nextSibling;
    });
    messageNodes.forEach(function (node, key) {
      if (!seen.has(key)) {
        node.remove();
        messageNodes.delete(key);
      }
    });

    var loading = thread && thread.loading && !thread.loaded;
    els.messageList.classList.toggle("loading", !!loading);
    els.messageList.setAttribute("aria-busy", loading ? "true" : "false");
    els.loadEarlier.hidden = !(thread && thread.loaded && thread.hasMore);
    els.loadEarlier.disabled = !!(thread && thread.loading);
    els.loadEarlier.textContent = thread && thread.loading && thread.loaded ? "Loading…" : "Load earlier messages";

    if (opts.keepScroll) {
      box.scrollTop = oldTop + (box.scrollHeight - oldHeight);
    } else if (opts.toBottom || nearBottom) {
      box.scrollTop = box.scrollHeight;
    }
  }

  // The list's clocks and the thread's waiting time move every few seconds.
  setInterval(function () {
    var now = Date.now();
    state.convs.forEach(function (conv) {
      var node = listNodes.get(conv.id);
      if (node) renderWait(node.wait, waitingInfo(conv, now));
    });
    renderQueueInfo(now);
    // Waiting times change the order only when sorted by waiting.
    if (listPrefs.sort === "waiting") renderList();
    var conv = selectedConversation();
    if (conv) renderThreadMeta(conv, now);
    // The reply window closing while the thread is open disables the composer.
    if (conv && windowClosed(conv, now) !== !!state.windowShownClosed) renderThread();
  }, 5000);

  // ---------------------------------------------------------------- knowledge base picker
  // Typing "/" and words in the composer searches the saved replies (kb.search, debounced);
  // arrows choose, Enter (or a click) asks the server to fill the reply in for this
  // conversation (kb.render) and puts the text in the composer, to edit before sending.
  // Only the answer to the newest search is shown: an older one arriving late is ignored.
  var KB_DEBOUNCE_MS = 150;
  var KB_MAX_QUERY = 200;
  var kb = {
    open: false,
    query: "",
    results: [],
    active: -1,
    timer: null,
    pending: null, // request id of the newest kb.search in flight
    rendering: null, // request id of the kb.render in flight
  };

  function kbQueryOf(text) {
    // The whole composer is the query while it starts with "/" and is one short line.
    if (text.charAt(0) !== "/" || text.indexOf("\n") >= 0 || text.length > KB_MAX_QUERY) return null;
    return text;
  }

  function kbStatus(text) {
    els.kbStatus.textContent = text || "";
  }

  function kbShow(open) {
    kb.open = open;
    els.kbPicker.hidden = !open;
    els.text.setAttribute("aria-expanded", open ? "true" : "false");
    if (!open) {
      els.text.removeAttribute("aria-activedescendant");
      kb.active = -1;
    }
  }

  function kbClose() {
    clearTimeout(kb.timer);
    kb.pending = null;
    kb.results = [];
    kb.query = "";
    els.kbList.textContent = "";
    kbStatus("");
    kbShow(false);
  }

  function kbOnInput() {
    var conv = selectedConversation();
    // Saved replies are for the customer: a note never searches them.
    var query = conv && canAct(conv) && !noteModeOn(conv) ? kbQueryOf(els.text.value) : null;
    if (query === null) {
      if (kb.open || kb.pending) kbClose();
      return;
    }
    if (query === kb.query && kb.open) return;
    kb.query = query;
    kbShow(true);
    if (!kb.results.length) kbStatus("Searching…");
    clearTimeout(kb.timer);
    kb.timer = setTimeout(kbSearch, KB_DEBOUNCE_MS);
  }

  function kbSearch() {
    var conv = selectedConversation();
    if (!kb.open || !conv) return;
    if (!sock.live) {
      kbStatus("Waiting for connection…");
      return;
    }
    kb.pending = request(
      "kb-search",
      { type: "kb.search", query: kb.query, conversation_id: conv.id },
      { query: kb.query, conversationId: conv.id }
    );
  }

  function onKbResults(frame) {
    var info = frame.request_id !== undefined ? state.requests.get(frame.request_id) : null;
    if (info) state.requests.delete(frame.request_id);
    if (!kb.open || frame.request_id !== kb.pending) return; // superseded by newer typing
    kb.pending = null;
    kb.results = frame.replies || [];
    kb.active = kb.results.length ? 0 : -1;
    kbRender();
    kbStatus(kb.results.length ? "" : "No saved reply matches “" + kb.query + "”.");
  }

  function kbRender() {
    els.kbList.textContent = "";
    kb.results.forEach(function (reply, index) {
      var item = el("li", "kb-option");
      item.id = "kb-opt-" + index;
      item.setAttribute("role", "option");
      item.setAttribute("aria-selected", index === kb.active ? "true" : "false");
      item.setAttribute("data-reply-id", String(reply.id));
      item.appendChild(el("span", "kb-option-title", reply.title));
      var meta = el("span", "kb-option-meta");
      meta.appendChild(el("span", "kb-option-shortcut", reply.shortcut));
      meta.appendChild(document.createTextNode(" · " + reply.language));
      item.appendChild(meta);
      item.appendChild(el("span", "kb-option-snippet", reply.snippet));
      item.addEventListener("mousedown", function (e) {
        e.preventDefault(); // keep the focus in the composer
      });
      item.addEventListener("click", function () {
        kb.active = index;
        kbPick();
      });
      els.kbList.appendChild(item);
    });
    kbMark();
  }

  function kbMark() {
    Array.prototype.forEach.call(els.kbList.children, function (item, index) {
      item.setAttribute("aria-selected", index === kb.active ? "true" : "false");
    });
    if (kb.active >= 0) {
      var node = els.kbList.children[kb.active];
      els.text.setAttribute("aria-activedescendant", node.id);
      node.scrollIntoView({ block: "nearest" });
    } else {
      els.text.removeAttribute("aria-activedescendant");
    }
  }

  function kbPick() {
    var reply = kb.results[kb.active];
    var conv = selectedConversation();
    if (!reply || !conv || kb.rendering) return;
    kbStatus("Inserting “" + reply.title + "”…");
    kb.rendering = request(
      "kb-render",
      { type: "kb.render", reply_id: reply.id, conversation_id: conv.id },
      { conversationId: conv.id, replyId: reply.id }
    );
    if (!kb.rendering) kbStatus("Waiting for connection…");
  }

  function onKbRendered(frame) {
    var info = frame.request_id !== undefined ? state.requests.get(frame.request_id) : null;
    if (info) state.requests.delete(frame.request_id);
    if (frame.request_id !== kb.rendering) return;
    kb.rendering = null;
    kbClose();
    if (!info || info.conversationId !== state.selectedId) return; // the operator moved on
    els.text.value = frame.text;
    state.drafts.set(info.conversationId, frame.text);
    autoGrow();
    els.text.focus();
    els.text.setSelectionRange(frame.text.length, frame.text.length);
  }

  function onKbRefused(frame, info) {
    if (info.kind === "kb-render") {
      kb.rendering = null;
      kbStatus("");
      showNotice("The saved reply could not be inserted: " + errorText(frame), { kind: "warning", timeout: 6000 });
      return;
    }
    if (frame.request_id === kb.pending) {
      kb.pending = null;
      kbStatus("Search failed: " + errorText(frame));
    }
  }

  function kbKey(e) {
    // Keys the picker takes while it is open; true when the key was handled here.
    if (!kb.open) return false;
    if (e.key === "Escape") {
      e.preventDefault();
      e.stopPropagation();
      kbClose();
      return true;
    }
    if (!kb.results.length) return false;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      var step = e.key === "ArrowDown" ? 1 : -1;
      kb.active = (kb.active + step + kb.results.length) % kb.results.length;
      kbMark();
      return true;
    }
    if ((e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) || e.key === "Tab") {
      if (kb.active < 0) return false;
      e.preventDefault();
      kbPick();
      return true;
    }
    return false;
  }

  els.text.addEventListener("input", kbOnInput);
  els.text.addEventListener("blur", function () {
    // A click on an option keeps the focus (mousedown is prevented), so a blur means the
    // operator went elsewhere.
    setTimeout(function () {
      if (document.activeElement !== els.text) kbClose();
    }, 0);
  });

  // ---------------------------------------------------------------- WhatsApp templates
  // Once a conversation's 24-hour window has closed, the composer is disabled and the panel
  // offers the approved templates (template.options: the customer's language first).  The
  // operator fills each placeholder (its example value shown), sees the text as the customer
  // will, and sends it (template.send).  "New conversation" starts one with a known WhatsApp
  // customer the same way (outreach.customers, outreach.start).  A send keeps its client_id
  // until the server answers for good, so trying again after a dropped connection can never
  // deliver it twice.  The server renders the real text; the preview here only mirrors it.
  var tpl = { forId: null, options: null, loading: false, clientId: null, busy: false };
  var outreach = { customers: [], customer: null, clientId: null, busy: false, timer: null, pending: null };

  function durationWords(ms) {
    var m = Math.max(0, Math.floor(ms / 60000));
    if (m < 1) return "less than a minute";
    var h = Math.floor(m / 60);
    if (h === 0) return m + " min";
    return h + " h " + (m % 60) + " min";
  }

  function renderCountdown(conv, now) {
    var closes = windowClosesAt(conv);
    var show = canAct(conv) && closes !== null && closes > now;
    els.countdown.hidden = !show;
    if (!show) return;
    var left = closes - now;
    els.countdown.textContent = "Window closes in " + durationWords(left);
    els.countdown.classList.toggle("window-soon", left < 3600 * 1000);
    els.countdown.title = "Free-form replies are possible until " + new Date(closes).toLocaleString() +
      "; after that only approved templates.";
  }

  function paramSlots(t) {
    var slots = [];
    var i;
    for (i = 0; i < (t.header_parameters || 0); i++) slots.push({ part: "Header", n: i + 1, example: t.header_example || "" });
    for (i = 0; i < (t.body_parameters || 0); i++) {
      slots.push({ part: "Body", n: i + 1, example: (t.body_examples || [])[i] || "" });
    }
    return slots;
  }

  function currentTemplate(form) {
    if (!form.templates) return null;
    for (var i = 0; i < form.templates.length; i++) {
      if (form.templates[i].id === form.selected) return form.templates[i];
    }
    return null;
  }

  function formValues(form, t) {
    if (!form.values[t.id]) form.values[t.id] = [];
    return form.values[t.id];
  }

  function formReady(form) {
    var t = currentTemplate(form);
    if (!t) return false;
    var values = formValues(form, t);
    return paramSlots(t).every(function (_, i) {
      return !!(values[i] && values[i].trim());
    });
  }

  function formParameters(form) {
    var t = currentTemplate(form);
    var values = formValues(form, t);
    return paramSlots(t).map(function (_, i) {
      return (values[i] || "").trim();
    });
  }

  // A template picker, its placeholders and the live preview, in form.box.
  function buildTemplateForm(form) {
    var box = form.box;
    box.textContent = "";
    form.previewNode = null;
    if (!form.templates || !form.templates.length) {
      box.appendChild(el("p", "tpl-empty", form.templates
        ? "There are no approved templates yet: coordinators add them (WhatsApp templates)."
        : "Loading the approved templates…"));
      return;
    }
    if (!currentTemplate(form)) form.selected = form.templates[0].id;
    var t = currentTemplate(form);
    var pick = el("div", "field");
    var label = el("label", null, "Template");
    label.htmlFor = form.prefix + "-select";
    var sel = el("select");
    sel.id = form.prefix + "-select";
    form.templates.forEach(function (x) {
      sel.appendChild(option(String(x.id), x.name + " · " + x.language + " · " + x.category));
    });
    sel.value = String(t.id);
    sel.addEventListener("change", function () {
      form.selected = Number(sel.value);
      buildTemplateForm(form);
      form.onChange();
      var again = document.getElementById(form.prefix + "-select");
      if (again) again.focus();
    });
    pick.appendChild(label);
    pick.appendChild(sel);
    box.appendChild(pick);

    var values = formValues(form, t);
    var slots = paramSlots(t);
    if (slots.length) {
      var grid = el("div", "tpl-params");
      slots.forEach(function (slot, i) {
        var f = el("div", "field");
        var id = form.prefix + "-p" + i;
        var l = el("label", null, slot.part + " {{" + slot.n + "}}");
        l.htmlFor = id;
        var input = el("input");
        input.id = id;
        input.type = "text";
        input.maxLength = 200;
        input.value = values[i] || "";
        input.placeholder = slot.example;
        input.setAttribute("data-index", String(i));
        var hint = el("p", "field-hint", "Example: " + slot.example);
        hint.id = id + "-hint";
        input.setAttribute("aria-describedby", hint.id);
        input.addEventListener("input", function () {
          values[i] = input.value;
          input.removeAttribute("aria-invalid");
          renderPreview(form);
          form.onChange();
        });
        f.appendChild(l);
        f.appendChild(input);
        f.appendChild(hint);
        grid.appendChild(f);
      });
      box.appendChild(grid);
    }
    box.appendChild(el("span", "tpl-preview-label", "What the customer receives"));
    var preview = el("div", "tpl-preview");
    preview.id = form.prefix + "-preview";
    form.previewNode = preview;
    box.appendChild(preview);
    renderPreview(form);
  }

  function fillPart(node, text, values, offset) {
    var re = /\{\{(\d+)\}\}/g;
    var last = 0;
    var m;
    while ((m = re.exec(text))) {
      node.appendChild(document.createTextNode(text.slice(last, m.index)));
      var v = values[offset + Number(m[1]) - 1];
      if (v && v.trim()) node.appendChild(document.createTextNode(v.trim()));
      else node.appendChild(el("span", "tpl-slot", "{{" + m[1] + "}}"));
      last = re.lastIndex;
    }
    node.appendChild(document.createTextNode(text.slice(last)));
  }

  function renderPreview(form) {
    var t = currentTemplate(form);
    var node = form.previewNode;
    if (!t || !node) return;
    node.textContent = "";
    var values = formValues(form, t);
    var parts = [];
    if (t.header) parts.push({ text: t.header, offset: 0 });
    parts.push({ text: t.body, offset: t.header_parameters || 0 });
    if (t.footer) parts.push({ text: t.footer, offset: -1 });
    parts.forEach(function (p, i) {
      if (i) node.appendChild(document.createTextNode("\n\n"));
      if (p.offset < 0) node.appendChild(document.createTextNode(p.text));
      else fillPart(node, p.text, values, p.offset);
    });
    if (t.buttons && t.buttons.length) {
      var row = el("div", "tpl-buttons");
      t.buttons.forEach(function (b) {
        row.appendChild(el("span", null, b.text));
      });
      node.appendChild(row);
    }
  }

  // --- the panel of the open conversation
  var panelForm = { box: els.tplForm, prefix: "tpl", templates: null, selected: null, values: {}, onChange: renderTemplateSend };

  function renderTemplatePanel(conv) {
    var show = !!conv && canAct(conv) && windowClosed(conv);
    els.tplPanel.hidden = !show;
    if (!show) return;
    if (tpl.forId !== conv.id) {
      tpl.forId = conv.id;
      tpl.options = null;
      tpl.loading = false;
      tpl.clientId = null;
      tpl.busy = false;
      setBusy(els.tplSend, false);
      panelForm.templates = null;
      panelForm.selected = null;
      panelForm.values = {};
      els.tplLang.textContent = "";
      hideDialogError(els.tplError);
      buildTemplateForm(panelForm);
    }
    if (!tpl.options && !tpl.loading && sock.live) {
      tpl.loading = true;
      var sent = request("template-options", { type: "template.options", conversation_id: conv.id }, { conversationId: conv.id });
      if (!sent) tpl.loading = false;
    }
    renderTemplateSend();
  }

  function renderTemplateSend() {
    if (tpl.busy) return;
    els.tplSend.disabled = !(sock.live && formReady(panelForm));
  }

  function onTemplateOptions(frame) {
    var info = state.requests.get(frame.request_id);
    if (info) state.requests.delete(frame.request_id);
    if (info && info.kind === "outreach-templates") {
      outreachForm.templates = frame.templates || [];
      buildTemplateForm(outreachForm);
      renderOutreachSend();
      return;
    }
    if (!info || info.conversationId !== tpl.forId) return;
    tpl.loading = false;
    tpl.options = frame;
    panelForm.templates = frame.templates || [];
    els.tplLang.textContent = frame.language ? "The customer writes in " + frame.language + ": those come first" : "";
    buildTemplateForm(panelForm);
    renderTemplateSend();
  }

  els.tplSend.addEventListener("click", function () {
    var conv = selectedConversation();
    if (!conv || !canAct(conv) || tpl.busy || !formReady(panelForm)) return;
    hideDialogError(els.tplError);
    if (!tpl.clientId) tpl.clientId = uuid4();
    var t = currentTemplate(panelForm);
    var sent = request(
      "template-send",
      {
        type: "template.send",
        conversation_id: conv.id,
        template_id: t.id,
        parameters: formParameters(panelForm),
        client_id: tpl.clientId,
      },
      { conversationId: conv.id, templateId: t.id }
    );
    if (!sent) {
      showDialogError(els.tplError, "Not connected: try again once the console is live.");
      return;
    }
    tpl.busy = true;
    setBusy(els.tplSend, true, "Sending…");
  });

  function templateSent(info) {
    if (info.conversationId !== tpl.forId) return;
    tpl.busy = false;
    tpl.clientId = null;
    setBusy(els.tplSend, false);
    delete panelForm.values[info.templateId];
    buildTemplateForm(panelForm);
    renderTemplateSend();
  }

  function sendFailed(isOutreach, frame) {
    var form = isOutreach ? outreachForm : panelForm;
    var box = isOutreach ? els.outreachError : els.tplError;
    if (isOutreach) {
      outreach.busy = false;
      outreach.clientId = null;
    } else {
      tpl.busy = false;
      tpl.clientId = null;
    }
    setBusy(isOutreach ? els.outreachSend : els.tplSend, false);
    var data = frame.data || {};
    showDialogError(box, errorText(frame));
    if (data.field === "parameters" && typeof data.index === "number") {
      var input = form.box.querySelector('input[data-index="' + data.index + '"]');
      if (input) {
        input.setAttribute("aria-invalid", "true");
        input.focus();
      }
    }
    if (isOutreach && data.reason === "conversation_open" && data.conversation_id && state.convs.has(data.conversation_id)) {
      var go = el("button", "link-btn", "Go to the open conversation");
      go.type = "button";
      go.addEventListener("click", function () {
        goToConversation(data.conversation_id);
      });
      box.appendChild(go);
    }
    if (isOutreach) renderOutreachSend();
    else renderTemplateSend();
  }

  function onTemplateRefused(frame, info) {
    if (info.kind === "template-options") {
      tpl.loading = false;
      if (info.conversationId === tpl.forId) {
        tpl.options = { templates: [] };
        panelForm.templates = [];
        buildTemplateForm(panelForm);
        showDialogError(els.tplError, errorText(frame));
      }
      return;
    }
    if (info.kind === "outreach-templates") {
      outreachForm.templates = [];
      buildTemplateForm(outreachForm);
      showDialogError(els.outreachError, errorText(frame));
      return;
    }
    if (info.kind === "outreach-search") {
      outreach.pending = null;
      els.outreachStatus.textContent = errorText(frame);
      return;
    }
    if (info.kind === "template-send" && info.conversationId !== tpl.forId) {
      showNotice("Template not sent: " + errorText(frame));
      return;
    }
    sendFailed(info.kind === "outreach-start", frame);
  }

  // A request in flight when the socket dropped.  A send may or may not have gone: its
  // client_id is kept, so sending again answers the first one instead of a duplicate.
  function templateRequestLost(info) {
    if (info.kind === "template-options") {
      tpl.loading = false;
      return;
    }
    if (info.kind === "outreach-templates" || info.kind === "outreach-search") {
      outreach.pending = null;
      return;
    }
    var isOutreach = info.kind === "outreach-start";
    if (isOutreach) outreach.busy = false;
    else tpl.busy = false;
    setBusy(isOutreach ? els.outreachSend : els.tplSend, false);
    showDialogError(
      isOutreach ? els.outreachError : els.tplError,
      "The connection dropped before the server answered. Sending again is safe: it cannot go twice."
    );
  }

  // --- outreach: a new conversation with a known WhatsApp customer
  var outreachForm = { box: els.outreachTpl, prefix: "outreach-tpl", templates: null, selected: null, values: {}, onChange: renderOutreachSend };

  els.outreachOpen.addEventListener("click", function () {
    hideDialogError(els.outreachError);
    outreach.customer = null;
    outreach.customers = [];
    outreach.clientId = null;
    outreach.busy = false;
    setBusy(els.outreachSend, false);
    els.outreachSearch.value = "";
    els.outreachResults.textContent = "";
    els.outreachStatus.textContent = "";
    outreachForm.templates = null;
    outreachForm.selected = null;
    outreachForm.values = {};
    buildTemplateForm(outreachForm);
    request("outreach-templates", { type: "template.options" }, {});
    outreachSearchNow();
    renderOutreachSend();
    openModal(els.outreachDialog, els.outreachSearch);
  });

  els.outreachSearch.addEventListener("input", function () {
    clearTimeout(outreach.timer);
    outreach.timer = setTimeout(outreachSearchNow, 200);
  });

  function outreachSearchNow() {
    var query = els.outreachSearch.value.trim().slice(0, 100);
    els.outreachStatus.textContent = "Searching…";
    outreach.pending = request("outreach-search", { type: "outreach.customers", query: query, limit: 10 }, { query: query });
    if (!outreach.pending) els.outreachStatus.textContent = "Not connected.";
  }

  function onOutreachCustomers(frame) {
    var info = state.requests.get(frame.request_id);
    if (info) state.requests.delete(frame.request_id);
    if (frame.request_id !== outreach.pending) return; // an older search answered late
    outreach.pending = null;
    outreach.customers = frame.customers || [];
    if (outreach.customer && !outreach.customers.some(function (c) { return c.id === outreach.customer.id; })) {
      outreach.customer = null;
    }
    renderOutreachCustomers(frame.query);
    renderOutreachSend();
  }

  function renderOutreachCustomers(query) {
    var list = els.outreachResults;
    list.textContent = "";
    var n = outreach.customers.length;
    els.outreachStatus.textContent = n
      ? (query ? n + " found. Pick one:" : "Recent WhatsApp customers — type a name or number to search.")
      : "No WhatsApp customer matches. Search by name, or at least 3 digits of the number.";
    outreach.customers.forEach(function (c) {
      var li = el("li");
      var b = el("button", "outreach-customer");
      b.type = "button";
      b.setAttribute("data-customer-id", c.id);
      var who = el("span");
      who.appendChild(el("strong", null, c.name));
      who.appendChild(document.createTextNode(" "));
      who.appendChild(el("span", "outreach-customer-phone", "+" + c.phone));
      b.appendChild(who);
      var open = c.open_conversation;
      if (open) {
        var mine = !!(state.me && open.operator_id === state.me.id);
        var visible = state.convs.has(open.id);
        b.appendChild(el("span", "outreach-customer-note",
          mine ? "Already open with you — go to it"
            : "Already open" + (open.operator ? " with " + open.operator.name : ", in the queue")));
        if (visible) {
          b.addEventListener("click", function () {
            goToConversation(open.id);
          });
        } else {
          b.disabled = true;
        }
      } else {
        b.setAttribute("aria-pressed", outreach.customer && outreach.customer.id === c.id ? "true" : "false");
        b.addEventListener("click", function () {
          outreach.customer = c;
          outreach.clientId = null;
          renderOutreachCustomers(query);
          renderOutreachSend();
        });
      }
      li.appendChild(b);
      list.appendChild(li);
    });
  }

  function goToConversation(id) {
    dismissDialog(els.outreachDialog);
    if (state.convs.has(id)) select(id);
  }

  function renderOutreachSend() {
    if (outreach.busy) return;
    els.outreachSend.disabled = !(sock.live && outreach.customer && formReady(outreachForm));
  }

  els.outreachForm.addEventListener("submit", function (e) {
    e.preventDefault();
    if (outreach.busy || !outreach.customer || !formReady(outreachForm)) return;
    hideDialogError(els.outreachError);
    if (!outreach.clientId) outreach.clientId = uuid4();
    var t = currentTemplate(outreachForm);
    var sent = request(
      "outreach-start",
      {
        type: "outreach.start",
        customer_id: outreach.customer.id,
        template_id: t.id,
        parameters: formParameters(outreachForm),
        client_id: outreach.clientId,
      },
      { customerName: outreach.customer.name }
    );
    if (!sent) {
      showDialogError(els.outreachError, "Not connected: try again once the console is live.");
      return;
    }
    outreach.busy = true;
    setBusy(els.outreachSend, true, "Sending…");
  });

  function outreachStarted(frame, info) {
    outreach.busy = false;
    outreach.clientId = null;
    setBusy(els.outreachSend, false);
    dismissDialog(els.outreachDialog);
    if (frame.message && frame.conversation) onMessageCreated(frame.message, frame.conversation);
    if (frame.conversation && state.convs.has(frame.conversation.id)) select(frame.conversation.id);
    showNotice("Conversation started with " + (info.customerName || "the customer") + ".", { kind: "info", timeout: 4000 });
  }

  // ---------------------------------------------------------------- list: search, sort, queue
  // The search box filters the list as one types (customer name, the newest message, query
  // type, channel); the sort puts the longest-waiting customers on top; supervisors may show
  // only the queue or their own.  The sort and the view are remembered in this browser.
  var STORE_PREFS = "hub.console.listPrefs";
  var STORE_NOTIFY = "hub.console.notify";
  var QUEUE_POLL_MS = 10000;
  var listPrefs = { sort: "recent", view: "all" };

  function localGet(key) {
    return storageGet("localStorage", key);
  }

  function localSet(key, value) {
    storageSet("localStorage", key, value);
  }

  function fold(text) {
    // Case- and accent-blind, so "garcia" finds "García".
    return String(text || "").normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }

  function listQuery() {
    return fold(els.search.value).trim();
  }

  function listFiltering() {
    return !!listQuery() || (state.supervisor && listPrefs.view !== "all");
  }

  function listMatches(conv) {
    if (state.supervisor && listPrefs.view === "queue" && conv.status !== "queued") return false;
    if (state.supervisor && listPrefs.view === "mine" && !(state.me && conv.operator_id === state.me.id)) return false;
    var q = listQuery();
    if (!q) return true;
    var hay = fold(
      [
        conv.customer && conv.customer.name,
        conv.preview && conv.preview.text,
        typeLabel(conv),
        conv.query_type && conv.query_type.code,
        CHANNEL_LABEL[conv.channel] || conv.channel,
      ].join(" \u0001 ")
    );
    return q.split(/\s+/).every(function (word) {
      return hay.indexOf(word) >= 0;
    });
  }

  function visibleRows() {
    return Array.from(els.list.querySelectorAll("li:not([hidden]) > button.conv"));
  }

  function applyListPrefs() {
    els.sort.value = listPrefs.sort;
    els.view.value = listPrefs.view;
  }

  (function loadListPrefs() {
    var stored = localGet(STORE_PREFS);
    if (stored && (stored.sort === "recent" || stored.sort === "waiting")) listPrefs.sort = stored.sort;
    if (stored && (stored.view === "all" || stored.view === "queue" || stored.view === "mine")) listPrefs.view = stored.view;
    applyListPrefs();
  })();

  els.search.addEventListener("input", function () {
    renderList();
  });
  els.search.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && els.search.value) {
      e.preventDefault();
      e.stopPropagation();
      els.search.value = "";
      renderList();
    } else if (e.key === "ArrowDown") {
      var rows = visibleRows();
      if (rows.length) {
        e.preventDefault();
        rows[0].focus();
      }
    } else if (e.key === "Enter") {
      e.preventDefault();
      var first = visibleRows()[0];
      if (first) select(first.getAttribute("data-id"));
    }
  });
  els.sort.addEventListener("change", function () {
    listPrefs.sort = els.sort.value === "waiting" ? "waiting" : "recent";
    localSet(STORE_PREFS, listPrefs);
    renderList();
  });
  els.view.addEventListener("change", function () {
    listPrefs.view = ["all", "queue", "mine"].indexOf(els.view.value) >= 0 ? els.view.value : "all";
    localSet(STORE_PREFS, listPrefs);
    renderList();
  });

  // --- the queue I may see: supervisors count it from their list (they get every queue
  // event); operators get no queue events and ask GET /api/routing/queue/ for the waiting
  // conversations of the types they serve, on every (re)connect, presence change and
  // every few seconds while the console is live.
  var queue = { waiting: null, oldestAt: null, inFlight: false, timer: null };

  function queueRefresh() {
    if (state.supervisor || queue.inFlight || !sock.live) return;
    queue.inFlight = true;
    fetch("/api/routing/queue/", { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.ok ? response.json() : null;
      })
      .then(
        function (body) {
          queue.inFlight = false;
          if (body && typeof body.waiting === "number") {
            queue.waiting = body.waiting;
            queue.oldestAt = parseTime(body.oldest_at);
          }
          renderQueueInfo(Date.now());
        },
        function () {
          queue.inFlight = false; // offline: the connection indicator says so already
        }
      );
  }

  queue.timer = setInterval(function () {
    if (!document.hidden) queueRefresh();
  }, QUEUE_POLL_MS);

  function renderQueueInfo(now) {
    var count = 0;
    var oldest = null;
    if (state.supervisor) {
      state.convs.forEach(function (c) {
        if (c.status !== "queued" || c.awaiting_type) return;
        count += 1;
        var t = parseTime(c.last_customer_message_at) || parseTime(c.created_at);
        if (t !== null && (oldest === null || t < oldest)) oldest = t;
      });
      var label = els.view.querySelector('option[value="queue"]');
      if (label) label.textContent = "In the queue (" + count + ")";
    } else {
      if (queue.waiting === null) {
        els.queueInfo.hidden = true;
        return;
      }
      count = queue.waiting;
      oldest = queue.oldestAt;
    }
    var text;
    if (!count) text = state.supervisor ? "Nobody waits in the queue" : "Nobody waits in the queue for your types";
    else {
      text = count + (count === 1 ? " conversation waits" : " conversations wait") + " in the queue" + (state.supervisor ? "" : " for your types");
      if (oldest !== null) text += " · longest " + shortDuration(now - oldest);
    }
    els.queueInfo.textContent = text;
    els.queueInfo.setAttribute("data-waiting", String(count));
    els.queueInfo.classList.toggle("queue-busy", count > 0);
    els.queueInfo.hidden = false;
  }

  // ---------------------------------------------------------------- new-query alerts
  // Opt-in, per browser: a desktop notification (the permission is asked only when the user
  // switches alerts on) and a short two-note tone made with WebAudio.  A new query is a
  // conversation arriving in this console's list: assigned to an operator, or queued
  // (supervisors).  The page's own list already shows it; the alert is for a hidden tab.
  var alerts = { on: false, audio: null, count: 0 };

  function renderNotifyToggle() {
    els.notifyToggle.setAttribute("aria-pressed", alerts.on ? "true" : "false");
    els.notifyToggle.classList.toggle("on", alerts.on);
    var denied = "Notification" in window && Notification.permission === "denied";
    els.notifyToggle.title = alerts.on
      ? "Alerts for new queries are on (sound" + (denied ? "; desktop notifications are blocked in this browser" : " and desktop notification") + "). Click to turn them off."
      : "Alert me of new queries with a sound and a desktop notification";
    els.notifyToggle.querySelector(".notify-label").textContent = alerts.on ? "Alerts on" : "Alerts off";
  }

  function audioContext() {
    if (alerts.audio) return alerts.audio;
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    try {
      alerts.audio = new Ctx();
    } catch (e) {
      alerts.audio = null;
    }
    return alerts.audio;
  }

  function playTone() {
    var ctx = audioContext();
    if (!ctx) return false;
    try {
      if (ctx.state === "suspended") ctx.resume();
      var start = ctx.currentTime + 0.01;
      [880, 1320].forEach(function (freq, i) {
        var osc = ctx.createOscillator();
        var gain = ctx.createGain();
        var at = start + i * 0.16;
        osc.type = "sine";
        osc.frequency.value = freq;
        gain.gain.setValueAtTime(0.0001, at);
        gain.gain.exponentialRampToValueAtTime(0.2, at + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.14);
        osc.connect(gain);
        gain.connect(ctx.destination);
        osc.start(at);
        osc.stop(at + 0.15);
      });
      return true;
    } catch (e) {
      return false;
    }
  }

  function showDesktopNotification(conv) {
    if (!("Notification" in window) || Notification.permission !== "granted") return false;
    var parts = [CHANNEL_LABEL[conv.channel] || conv.channel || ""];
    if (typeLabel(conv)) parts.push(typeLabel(conv));
    if (conv.status === "queued") parts.push("waiting in the queue");
    try {
      var n = new Notification("New query: " + displayName(conv), {
        body: parts.filter(Boolean).join(" · "),
        tag: "hub-query-" + conv.id,
      });
      n.onclick = function () {
        window.focus();
        if (state.convs.has(conv.id)) select(conv.id);
        n.close();
      };
      return true;
    } catch (e) {
      return false; // some browsers allow notifications only from a service worker
    }
  }

  function alertNewQuery(conv) {
    if (!alerts.on || state.lastEventId === null) return;
    if (!state.supervisor && !(state.me && conv.operator_id === state.me.id)) return;
    if (state.supervisor && conv.status !== "queued") return;
    if (conv.awaiting_type) return; // not a query yet: the customer is choosing its type
    alerts.count += 1;
    playTone();
    showDesktopNotification(conv);
    els.notifyToggle.setAttribute("data-alerts", String(alerts.count));
    els.alertStatus.textContent = "New query from " + displayName(conv);
  }

  function setAlerts(on) {
    alerts.on = on;
    localSet(STORE_NOTIFY, on);
    renderNotifyToggle();
  }

  els.notifyToggle.addEventListener("click", function () {
    if (alerts.on) {
      setAlerts(false);
      return;
    }
    // The click is the user's gesture: the audio may start and the permission be asked.
    var ctx = audioContext();
    if (ctx && ctx.state === "suspended") ctx.resume();
    setAlerts(true);
    if ("Notification" in window && Notification.permission === "default") {
      Notification.requestPermission().then(renderNotifyToggle, renderNotifyToggle);
    }
  });
  alerts.on = localGet(STORE_NOTIFY) === true;
  renderNotifyToggle();

  // ---------------------------------------------------------------- keyboard shortcuts
  // Alt+↓/Alt+↑ next/previous conversation, Alt+W the longest waiting, Ctrl+K search,
  // Alt+R reply box, Alt+O note mode, Alt+C close, Alt+T transfer, Alt+N new conversation,
  // Alt+B back office, Alt+A approvals, "/" saved replies (in the reply box), "?" this list.  Letters
  // are read from e.code too, since Alt+letter types another character on some layouts.
  function typingIn(target) {
    if (!target || !target.tagName) return false;
    var tag = target.tagName.toLowerCase();
    return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable;
  }

  function altKey(e, letter) {
    return e.altKey && !e.ctrlKey && !e.metaKey && (e.code === "Key" + letter || (e.key || "").toUpperCase() === letter);
  }

  function stepConversation(delta) {
    var rows = visibleRows();
    if (!rows.length) return;
    var ids = rows.map(function (b) {
      return b.getAttribute("data-id");
    });
    var i = ids.indexOf(state.selectedId);
    var j = i < 0 ? (delta > 0 ? 0 : ids.length - 1) : i + delta;
    if (j < 0 || j >= ids.length) return;
    select(ids[j]);
  }

  function openLongestWaiting() {
    var best = null;
    var bestAt = Infinity;
    state.convs.forEach(function (c) {
      var node = listNodes.get(c.id);
      if (!isAwaitingReply(c) || (node && node.li.hidden)) return;
      var t = parseTime(c.last_customer_message_at);
      if (t !== null && t < bestAt) {
        bestAt = t;
        best = c;
      }
    });
    if (best) select(best.id);
    else showNotice("Nobody is waiting for an answer.", { kind: "info", timeout: 3000 });
  }

  function openKeys() {
    openModal(els.keysDialog, els.keysDialog.querySelector("[data-dismiss]"));
  }

  els.keysOpen.addEventListener("click", openKeys);
  els.keysDialog.addEventListener("click", function (e) {
    if (e.target.closest && e.target.closest("[data-dismiss]")) dismissDialog(els.keysDialog);
  });
  els.keysDialog.addEventListener("close", function () {
    var opener = dialogOpener.get(els.keysDialog);
    dialogOpener.delete(els.keysDialog);
    if (opener && opener.isConnected && opener.offsetParent) opener.focus();
  });

  document.addEventListener("keydown", function (e) {
    if (e.defaultPrevented || document.querySelector("dialog[open]")) return;
    var conv = selectedConversation();
    if (e.key === "?" && !e.ctrlKey && !e.metaKey && !e.altKey && !typingIn(e.target)) {
      e.preventDefault();
      openKeys();
    } else if (e.altKey && !e.ctrlKey && !e.metaKey && (e.key === "ArrowDown" || e.key === "ArrowUp") &&
        !(e.target && e.target.tagName === "SELECT")) {
      // (Alt+↓ on a select opens its options: left to the browser.)
      e.preventDefault();
      stepConversation(e.key === "ArrowDown" ? 1 : -1);
    } else if ((e.ctrlKey || e.metaKey) && !e.altKey && (e.code === "KeyK" || e.key === "k" || e.key === "K")) {
      e.preventDefault();
      els.workspace.setAttribute("data-view", "list");
      els.search.focus();
      els.search.select();
    } else if (altKey(e, "W")) {
      e.preventDefault();
      openLongestWaiting();
    } else if (altKey(e, "R")) {
      if (!conv) return;
      e.preventDefault();
      if (canAct(conv) && !els.text.disabled) els.text.focus();
      else els.messages.focus();
    } else if (altKey(e, "O")) {
      if (!canNote(conv)) return;
      e.preventDefault();
      setNoteMode(!state.noteMode);
    } else if (altKey(e, "C")) {
      if (!conv || !canAct(conv)) return;
      e.preventDefault();
      openCloseDialog(conv);
    } else if (altKey(e, "T")) {
      if (!conv || els.transferOpen.hidden) return;
      e.preventDefault();
      els.transferOpen.click();
    } else if (altKey(e, "N")) {
      if (els.outreachOpen.hidden || els.outreachOpen.disabled) return;
      e.preventDefault();
      els.outreachOpen.click();
    }
  });

  // ---------------------------------------------------------------- composer and keys
  function autoGrow() {
    els.text.style.height = "auto";
    els.text.style.height = Math.min(els.text.scrollHeight + 2, 200) + "px";
  }

  els.text.addEventListener("input", autoGrow);
  els.text.addEventListener("keydown", function (e) {
    if (kbKey(e)) return;
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      sendReply();
    }
  });
  els.composer.addEventListener("submit", function (e) {
    e.preventDefault();
    sendReply();
    els.text.focus();
  });
  els.loadEarlier.addEventListener("click", loadEarlier);
  els.back.addEventListener("click", function () {
    els.workspace.setAttribute("data-view", "list");
    var node = listNodes.get(state.selectedId);
    if (node) node.button.focus();
  });
  document.addEventListener("keydown", function (e) {
    if (document.querySelector("dialog[open]")) return; // Escape belongs to the dialog
    if (e.key === "Escape" && els.workspace.getAttribute("data-view") === "thread" &&
        window.matchMedia("(max-width: 760px)").matches) {
      els.back.click();
    }
  });

  // ---------------------------------------------------------------- back office (docs/backoffice.md)
  // The back-office panel of the open conversation: the linked bank user (or a search to link
  // one), the customer's consent, the action types this user may start (disabled ones with the
  // server's reason), the conversation's requests and payment cases.  Checkers also get the
  // list "Requests sent for approval".  Everything is read over REST (/api/backoffice/…) when
  // a conversation opens and after every snapshot, then kept current by the `backoffice.*`
  // console events; the server decides every rule, the panel only shows what it says.
  var BO_API = "/api/backoffice/";
  var BO_OPEN = { awaiting_confirmation: true, pending: true, picked: true, approved: true, executing: true };
  var BO_FOR_APPROVAL = { pending: true, picked: true };
  var BO_APPROVED = { approved: true, executing: true, done: true, failed: true };
  var BO_CANCELLABLE = { awaiting_confirmation: true, pending: true, picked: true };
  var BO_FINAL = { done: true, failed: true, rejected: true, expired: true, cancelled: true };
  var BO_SEARCH_FIELDS = [
    ["", "Every column"],
    ["user_name", "User name"],
    ["first_name", "First name"],
    ["last_name", "Last name"],
    ["mobile", "Mobile phone"],
    ["email", "E-mail"],
    ["personal_id", "Personal ID number"],
    ["core_banking_id", "Core-banking id"],
    ["system_user_id", "System user id"],
  ];
  var BO_USER_ROWS = [
    ["user_name", "User name"],
    ["id", "Bank user id"],
    ["core_banking_id", "Core-banking id"],
    ["system_user_id", "System user id"],
    ["personal_id", "Personal ID"],
    ["mobile", "Mobile"],
    ["email", "E-mail"],
  ];
  var BO_NOT_LINKED = "Disabled as the customer is not linked to a bank user";
  var BO_WIDE_QUERY = "(min-width: 1101px)";

  var bo = {
    csrf: root.getAttribute("data-csrf") || "",
    canStart: root.getAttribute("data-bo-start") === "1",
    canApprove: root.getAttribute("data-bo-approve") === "1",
    open: null, // the panel: null = the default for the width (open when wide)
    convs: new Map(), // conversation id -> entry (boEntry)
    approvals: new Map(), // request id -> request (pending or picked)
    approvalsOpen: false,
    approvalsError: "",
    actionFor: null, // {conversationId, type}
    reasonFor: null, // {kind: "reject" | "revoke", ...}
    consentFor: null, // conversation id
    armed: null, // {key, timer}: a two-step button waiting for its second press
  };

  var boEls = {
    toggle: $("bo-toggle"),
    panel: $("bo-panel"),
    close: $("bo-close"),
    status: $("bo-status"),
    link: $("bo-link"),
    consentSection: $("bo-consent-section"),
    consent: $("bo-consent"),
    actionsSection: $("bo-actions-section"),
    actions: $("bo-actions"),
    requestsSection: $("bo-requests-section"),
    requests: $("bo-requests"),
    casesSection: $("bo-cases-section"),
    cases: $("bo-cases"),
    approvalsOpen: $("approvals-open"),
    approvalsCount: $("approvals-count"),
    approvals: $("approvals"),
    approvalsClose: $("approvals-close"),
    approvalsList: $("approvals-list"),
    approvalsEmpty: $("approvals-empty"),
    actionDialog: $("bo-action-dialog"),
    actionForm: $("bo-action-form"),
    actionTitle: $("bo-action-title"),
    actionLead: $("bo-action-lead"),
    actionFields: $("bo-action-fields"),
    actionError: $("bo-action-error"),
    actionSubmit: $("bo-action-submit"),
    consentDialog: $("bo-consent-dialog"),
    consentForm: $("bo-consent-form"),
    consentEvidence: $("bo-consent-evidence"),
    consentReference: $("bo-consent-reference"),
    consentScope: $("bo-consent-scope"),
    consentExpiry: $("bo-consent-expiry"),
    consentError: $("bo-consent-error"),
    consentSubmit: $("bo-consent-submit"),
    reasonDialog: $("bo-reason-dialog"),
    reasonForm: $("bo-reason-form"),
    reasonTitle: $("bo-reason-title"),
    reasonLead: $("bo-reason-lead"),
    reasonText: $("bo-reason-text"),
    reasonError: $("bo-reason-error"),
    reasonSubmit: $("bo-reason-submit"),
  };

  function boApi(method, path, body) {
    var init = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (method !== "GET") init.headers["X-CSRFToken"] = bo.csrf;
    return fetch(path, init).then(
      function (response) {
        return response.text().then(function (raw) {
          var data = null;
          try {
            data = raw ? JSON.parse(raw) : null;
          } catch (e) {
            data = null;
          }
          if (response.ok) return data || {};
          var err = data && data.code ? data : { code: "http_" + response.status, message: "The server answered " + response.status + "." };
          err.status = response.status;
          err.data = err.data || {};
          throw err;
        });
      },
      function () {
        throw { code: "network", status: 0, message: "The server could not be reached. Check the connection and try again.", data: {} };
      }
    );
  }

  function boErrorText(err) {
    return (err && err.message) || "Something went wrong.";
  }

  function boConvPath(id) {
    return BO_API + "conversations/" + encodeURIComponent(id) + "/";
  }

  function boEntry(id, create) {
    var entry = bo.convs.get(id);
    if (!entry && create) {
      entry = {
        id: id,
        link: null,
        linkLoaded: false,
        consents: [],
        types: null,
        requests: new Map(),
        notes: new Map(), // "<request id>" / "<request id>:revert" -> internal note text
        cases: new Map(),
        log: new Map(), // link / unlink lines of the timeline
        loading: false,
        stale: false,
        error: "",
        results: null, // bank users found by the search
        searchError: "",
        searching: false,
      };
      bo.convs.set(id, entry);
    }
    return entry || null;
  }

  function boMine(person) {
    return !!(person && state.me && person.id === state.me.id);
  }

  function boWho(person) {
    if (!person) return "someone";
    return boMine(person) ? "you" : person.name || "staff #" + person.id;
  }

  function boWhen(iso) {
    var t = parseTime(iso);
    if (t === null) return "";
    var d = new Date(t);
    var today = new Date().toDateString() === d.toDateString();
    return today ? clockTime(t) : d.toLocaleDateString(undefined, { day: "numeric", month: "short" }) + " " + clockTime(t);
  }

  function boHuman(value) {
    var text = String(value).replace(/_/g, " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function boNumber(n) {
    return typeof n === "number" ? n.toLocaleString() : String(n);
  }

  function boUserName(user) {
    if (!user) return "";
    var name = [user.first_name, user.last_name].filter(Boolean).join(" ");
    return name || user.user_name || user.id || "";
  }

  function boParamsText(params) {
    if (!params) return "";
    return Object.keys(params)
      .filter(function (k) {
        return params[k] !== null && params[k] !== undefined && params[k] !== "";
      })
      .map(function (k) {
        var v = params[k];
        return boHuman(k).toLowerCase() + ": " + (typeof v === "string" && /^[a-z_]+$/.test(v) ? boHuman(v).toLowerCase() : boNumber(v));
      })
      .join(", ");
  }

  function boFailure(r) {
    var o = r.outcome || {};
    return o.reason || (o.error && o.error.reason) || o.code || "";
  }

  // --- loading -------------------------------------------------------------------------
  function boMayLoad(id) {
    // Operators read only their own conversations: asking for one that left them is a 404.
    return !!id && (state.supervisor || state.convs.has(id));
  }

  function boEnsureLoaded(id) {
    if (!boMayLoad(id) || !sock.everLive) return;
    var entry = boEntry(id, false);
    if (entry && (entry.loading || (!entry.stale && entry.linkLoaded))) return;
    boLoad(id);
  }

  function boLoad(id) {
    var entry = boEntry(id, true);
    entry.loading = true;
    entry.stale = false;
    entry.error = "";
    var jobs = [
      boApi("GET", boConvPath(id) + "link/").then(function (d) {
        boSetLink(entry, d.link || null);
        entry.linkLoaded = true;
      }),
      boApi("GET", boConvPath(id) + "requests/").then(function (d) {
        (d.requests || []).forEach(function (r) {
          boMergeRequest(entry, r);
        });
      }),
    ];
    if (bo.canStart) {
      jobs.push(boLoadTypes(entry));
      jobs.push(boLoadConsents(entry));
    }
    // Payment cases (GET /api/cases/?conversation_id=): not essential to the panel, so a
    // failure leaves the cases to the live `backoffice.case` events.
    jobs.push(
      boApi("GET", "/api/cases/?conversation_id=" + encodeURIComponent(id)).then(
        function (d) {
          (d.cases || []).forEach(function (c) {
            boCaseUpdate(id, c);
          });
        },
        function () {}
      )
    );
    Promise.all(jobs)
      .catch(function (err) {
        entry.error = "The back office could not be read: " + boErrorText(err);
      })
      .then(function () {
        entry.loading = false;
        boRefreshViews(id);
      });
  }

  function boLoadTypes(entry) {
    return boApi("GET", BO_API + "action-types/?conversation_id=" + encodeURIComponent(entry.id)).then(function (d) {
      entry.types = d.action_types || [];
    });
  }

  function boLoadConsents(entry) {
    return boApi("GET", boConvPath(entry.id) + "consents/").then(function (d) {
      entry.consents = d.consents || [];
    });
  }

  function boReloadEligibility(id) {
    // A link, status or consent change can enable or disable on-behalf actions.
    var entry = boEntry(id, false);
    if (!entry || !bo.canStart || !boMayLoad(id)) return;
    Promise.all([boLoadTypes(entry), boLoadConsents(entry)])
      .catch(function (err) {
        entry.error = "The back office could not be read: " + boErrorText(err);
      })
      .then(function () {
        boRefreshViews(id);
      });
  }

  function boReloadLink(id) {
    var entry = boEntry(id, false);
    if (!entry || !boMayLoad(id)) return;
    boApi("GET", boConvPath(id) + "link/")
      .then(function (d) {
        boSetLink(entry, d.link || null);
        entry.linkLoaded = true;
      })
      .catch(function (err) {
        entry.error = "The back office could not be read: " + boErrorText(err);
      })
      .then(function () {
        boRefreshViews(id);
        boReloadEligibility(id);
      });
  }

  function boLoadApprovals() {
    if (!bo.canApprove) return;
    boApi("GET", BO_API + "requests/")
      .then(function (d) {
        bo.approvals.clear();
        (d.requests || []).forEach(function (r) {
          bo.approvals.set(r.id, r);
        });
        bo.approvalsError = "";
      })
      .catch(function (err) {
        bo.approvalsError = "The list could not be read: " + boErrorText(err);
      })
      .then(boRenderApprovals);
  }

  function boRefreshViews(id) {
    if (id === state.selectedId) {
      boRender();
      renderMessages();
    }
    boRenderApprovals();
  }

  // --- state changes -------------------------------------------------------------------
  function boSetLink(entry, link) {
    if (link && link.unlinked_at) {
      boLogLink(entry, link);
      link = null;
    }
    if (link) boLogLink(entry, link);
    var changed = (entry.link ? entry.link.bank_user_id : null) !== (link ? link.bank_user_id : null);
    entry.link = link;
    if (changed) entry.results = null;
  }

  function boLogLink(entry, link) {
    if (!link || !link.id) return;
    var name = boUserName(link.bank_user) || link.bank_user_id;
    if (link.linked_at) {
      entry.log.set("l" + link.id, {
        at: link.linked_at,
        text: "Linked to bank user " + name + " (" + link.bank_user_id + ") by " + boWho(link.linked_by),
      });
    }
    if (link.unlinked_at) {
      entry.log.set("u" + link.id, {
        at: link.unlinked_at,
        text: "Unlinked from bank user " + name + " (" + link.bank_user_id + ") by " + boWho(link.unlinked_by),
      });
    }
  }

  function boMergeRequest(entry, r) {
    var old = entry.requests.get(r.id);
    // A list read racing an event may be older than the event: a decided request stays so.
    if (old && BO_FINAL[old.status] && !BO_FINAL[r.status]) return old;
    entry.requests.set(r.id, r);
    return r;
  }

  function boRequestUpdate(r, info) {
    info = info || {};
    if (!r || r.id === undefined) return;
    var entry = boEntry(r.conversation_id, false);
    var before = null;
    if (entry) {
      before = entry.requests.get(r.id) || null;
      r = boMergeRequest(entry, r);
      if (info.note) entry.notes.set(String(r.id) + (info.reverted ? ":revert" : ""), info.note);
    }
    if (bo.canApprove) {
      var had = bo.approvals.has(r.id);
      if (BO_FOR_APPROVAL[r.status]) bo.approvals.set(r.id, r);
      else bo.approvals.delete(r.id);
      if (!had && info.event === "backoffice.request_created" && BO_FOR_APPROVAL[r.status] && !boMine(r.maker)) {
        showNotice("New request for approval: " + r.label + " (" + r.business_status + ")", { kind: "info", timeout: 8000 });
      }
    }
    if (boMine(r.maker) && info.event && r.conversation_id !== state.selectedId &&
        (!before || before.status !== r.status) &&
        (r.status === "done" || r.status === "failed" || r.status === "rejected" || r.status === "expired")) {
      showNotice("Your request \u201c" + r.label + "\u201d: " + r.business_status, { kind: r.status === "done" ? "info" : "warning", timeout: 8000 });
    }
  }

  function boCaseUpdate(conversationId, kase) {
    if (!kase || kase.id === undefined || kase.id === null) return;
    var entry = boEntry(conversationId, false);
    if (!entry) return;
    var old = entry.cases.get(kase.id);
    if (old && old.updated_at && kase.updated_at && parseTime(old.updated_at) > parseTime(kase.updated_at)) return;
    entry.cases.set(kase.id, kase);
  }

  function boOnEvent(ev) {
    var d = ev.data || {};
    var convId = ev.conversation_id ||
      (d.request && d.request.conversation_id) ||
      (d.link && d.link.conversation_id) ||
      (d.consent && d.consent.conversation_id) ||
      (d["case"] && d["case"].conversation_id) || null;
    var entry = convId ? boEntry(convId, false) : null;
    if (d.request) {
      boRequestUpdate(d.request, { event: ev.name, note: d.note, reverted: ev.name === "backoffice.action_reverted" });
    }
    switch (ev.name) {
      case "backoffice.customer_linked":
      case "backoffice.customer_unlinked":
      case "backoffice.link_refreshed":
        if (entry && d.link) {
          boSetLink(entry, ev.name === "backoffice.customer_unlinked" ? Object.assign({}, d.link, { unlinked_at: d.link.unlinked_at || new Date().toISOString() }) : d.link);
          entry.linkLoaded = true;
        }
        if (convId) boReloadEligibility(convId);
        break;
      case "backoffice.consent_recorded":
      case "backoffice.consent_revoked":
        if (entry && d.consent) {
          entry.consents = entry.consents.filter(function (c) {
            return c.id !== d.consent.id;
          });
          entry.consents.unshift(d.consent);
        }
        if (convId) boReloadEligibility(convId);
        break;
      case "backoffice.action_outcome":
      case "backoffice.action_reverted":
        // An executed action may have changed the bank user's status (block, unblock).
        if (convId) boReloadLink(convId);
        break;
      case "backoffice.case":
      case "backoffice.case_opened":
      case "backoffice.case_updated":
        boCaseUpdate(convId, d["case"]);
        break;
      default:
        break;
    }
    if (convId) boRefreshViews(convId);
    else boRenderApprovals();
  }

  function boOnSnapshot() {
    // Events may have been missed while the socket was down: read everything again.
    bo.convs.forEach(function (entry) {
      entry.stale = true;
    });
    if (state.selectedId) boEnsureLoaded(state.selectedId);
    boLoadApprovals();
  }

  // --- rendering -----------------------------------------------------------------------
  function boButton(text, className, focusKey, onClick) {
    var b = el("button", "btn btn-sm " + (className || "btn-ghost"), text);
    b.type = "button";
    if (focusKey) b.setAttribute("data-focus-key", focusKey);
    b.addEventListener("click", onClick);
    return b;
  }

  function boArmed(key) {
    return !!(bo.armed && bo.armed.key === key);
  }

  function boArm(key, rerender) {
    // A destructive step asks for a second press instead of a native confirm().
    if (bo.armed) clearTimeout(bo.armed.timer);
    bo.armed = {
      key: key,
      timer: setTimeout(function () {
        bo.armed = null;
        rerender();
      }, 5000),
    };
    rerender();
  }

  function boDisarm() {
    if (bo.armed) clearTimeout(bo.armed.timer);
    bo.armed = null;
  }

  function boKeepFocus(container, build) {
    // Rebuilding a section must not throw the keyboard user out of it.
    var active = document.activeElement;
    var key = active && container.contains(active) ? active.getAttribute("data-focus-key") : null;
    build();
    if (key) {
      var again = container.querySelector('[data-focus-key="' + CSS.escape(key) + '"]');
      var home = container.closest('[tabindex="-1"]');
      if (again && !again.disabled) again.focus();
      else if (home && !home.hidden) home.focus(); // the panel or the approvals list
    }
  }

  function boIsOpen() {
    // Open by default on wide screens for those who act (makers, checkers); operators who
    // only read the link open it with the button.
    if (bo.open !== null) return bo.open;
    return (bo.canStart || bo.canApprove) && window.matchMedia(BO_WIDE_QUERY).matches;
  }

  function boSetOpen(open, moveFocus) {
    bo.open = open;
    boRender();
    if (!moveFocus) return;
    if (open) boEls.panel.focus();
    else boEls.toggle.focus();
  }

  function boRender() {
    var conv = selectedConversation();
    var open = !!conv && boIsOpen();
    boEls.panel.hidden = !open;
    els.threadMain.setAttribute("data-bo", open ? "open" : "closed");
    boEls.toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (!conv) return;
    boEnsureLoaded(conv.id);
    var entry = boEntry(conv.id, false);
    var status = "";
    if (!boMayLoad(conv.id) && !entry) status = "This conversation is no longer yours: its back-office details are not shown.";
    else if (!entry || (entry.loading && !entry.linkLoaded)) status = "Loading…";
    else if (entry.error) status = entry.error;
    boEls.status.textContent = status;
    boEls.status.hidden = !status;
    boEls.status.classList.toggle("bo-status-error", !!(entry && entry.error));
    boKeepFocus(boEls.link, function () {
      boRenderLink(conv, entry);
    });
    boKeepFocus(boEls.consent, function () {
      boRenderConsent(conv, entry);
    });
    boKeepFocus(boEls.actions, function () {
      boRenderActions(conv, entry);
    });
    boKeepFocus(boEls.requests, function () {
      boRenderRequests(conv, entry);
    });
    boRenderCases(entry);
  }

  function boStatusBadge(status) {
    var badge = el("span", "bo-badge bo-user-status", status ? boHuman(status) : "Unknown");
    badge.setAttribute("data-status", status || "unknown");
    return badge;
  }

  function boRenderLink(conv, entry) {
    var box = boEls.link;
    box.textContent = "";
    if (!entry || !entry.linkLoaded) return;
    var link = entry.link;
    if (link) {
      var user = link.bank_user || {};
      var card = el("div", "bo-user");
      card.setAttribute("data-bank-user-id", link.bank_user_id);
      var top = el("div", "bo-user-top");
      top.appendChild(el("span", "bo-user-name", boUserName(user) || link.bank_user_id));
      top.appendChild(boStatusBadge(user.status));
      card.appendChild(top);
      var dl = el("dl", "bo-user-ids");
      BO_USER_ROWS.forEach(function (row) {
        var value = row[0] === "id" ? link.bank_user_id : user[row[0]];
        if (value === null || value === undefined || value === "") return;
        dl.appendChild(el("dt", null, row[1]));
        dl.appendChild(el("dd", null, value));
      });
      card.appendChild(dl);
      card.appendChild(
        el("p", "bo-note", "Linked by " + boWho(link.linked_by) + " · " + boWhen(link.linked_at) +
          (link.status_read_at ? " · status read " + boWhen(link.status_read_at) : ""))
      );
      if (bo.canStart) {
        var actions = el("div", "bo-row");
        actions.appendChild(boButton("Refresh status", "btn-ghost", "link:refresh", function (e) {
          var b = e.currentTarget;
          setBusy(b, true, "Reading…");
          boApi("POST", boConvPath(conv.id) + "link/refresh/").then(function (d) {
            boSetLink(entry, d.link || null);
            boReloadEligibility(conv.id);
          }).catch(function (err) {
            showNotice(boErrorText(err));
          }).then(function () {
            setBusy(b, false);
            boRefreshViews(conv.id);
          });
        }));
        var key = "unlink:" + conv.id;
        actions.appendChild(boButton(boArmed(key) ? "Confirm unlink" : "Unlink", "btn-danger-outline", "link:unlink", function (e) {
          if (!boArmed(key)) {
            boArm(key, boRender);
            return;
          }
          boDisarm();
          var b = e.currentTarget;
          setBusy(b, true, "Unlinking…");
          boApi("DELETE", boConvPath(conv.id) + "link/").then(function (d) {
            boSetLink(entry, d.link ? Object.assign({}, d.link, { unlinked_at: d.link.unlinked_at || new Date().toISOString() }) : null);
            boReloadEligibility(conv.id);
          }).catch(function (err) {
            showNotice(boErrorText(err));
          }).then(function () {
            boRefreshViews(conv.id);
          });
        }));
        card.appendChild(actions);
      }
      box.appendChild(card);
      return;
    }
    box.appendChild(el("p", "bo-note", "Not linked to a bank user."));
    if (!bo.canStart) return;
    box.appendChild(boSearchForm(conv, entry));
    if (entry.searchError) {
      var err = el("p", "field-error bo-search-error", entry.searchError);
      err.setAttribute("role", "alert");
      box.appendChild(err);
    }
    if (entry.results) {
      var list = el("ul", "bo-results");
      list.setAttribute("aria-label", "Bank users found");
      if (!entry.results.length) list.appendChild(el("li", "bo-note", "No bank user matches."));
      entry.results.forEach(function (u) {
        var li = el("li", "bo-result");
        li.setAttribute("data-bank-user-id", u.id);
        var info = el("div", "bo-result-info");
        var line = el("div", "bo-user-top");
        line.appendChild(el("span", "bo-user-name", boUserName(u)));
        line.appendChild(boStatusBadge(u.status));
        info.appendChild(line);
        info.appendChild(el("p", "bo-note", [u.id, u.user_name, u.email, u.mobile].filter(Boolean).join(" · ")));
        li.appendChild(info);
        li.appendChild(boButton("Link", "btn-primary", "link:" + u.id, function (e) {
          var b = e.currentTarget;
          setBusy(b, true, "Linking…");
          boApi("POST", boConvPath(conv.id) + "link/", { bank_user_id: u.id }).then(function (d) {
            boSetLink(entry, d.link || null);
            entry.linkLoaded = true;
            entry.results = null;
            boReloadEligibility(conv.id);
            boEls.panel.focus();
          }).catch(function (err2) {
            setBusy(b, false);
            showNotice(boErrorText(err2));
          }).then(function () {
            boRefreshViews(conv.id);
          });
        }));
        list.appendChild(li);
      });
      box.appendChild(list);
    }
  }

  var boSearch = null; // the search form: built once, so typing survives re-renders

  function boSearchForm(conv, entry) {
    if (!boSearch) {
      var form = el("form", "bo-search");
      form.setAttribute("role", "search");
      form.noValidate = true;
      var fieldLabel = el("label", "visually-hidden", "Search in");
      fieldLabel.htmlFor = "bo-search-field";
      var select = el("select", "bo-search-field");
      select.id = "bo-search-field";
      BO_SEARCH_FIELDS.forEach(function (f) {
        select.appendChild(option(f[0], f[1]));
      });
      var qLabel = el("label", "visually-hidden", "Find the bank user");
      qLabel.htmlFor = "bo-search-q";
      var input = el("input", "bo-search-q");
      input.id = "bo-search-q";
      input.type = "search";
      input.maxLength = 100;
      input.placeholder = "Name, user name, phone, e-mail, ids…";
      input.autocomplete = "off";
      input.setAttribute("data-focus-key", "search:q");
      select.setAttribute("data-focus-key", "search:field");
      var go = el("button", "btn btn-ghost btn-sm", "Search");
      go.type = "submit";
      go.setAttribute("data-focus-key", "search:go");
      form.appendChild(fieldLabel);
      form.appendChild(select);
      form.appendChild(qLabel);
      form.appendChild(input);
      form.appendChild(go);
      form.addEventListener("submit", function (e) {
        e.preventDefault();
        var target = boSearch.conv;
        var en = boEntry(target, false);
        if (!en) return;
        var q = input.value.trim();
        if (q.length < 2) {
          en.searchError = "Type at least 2 characters.";
          boRender();
          input.focus();
          return;
        }
        en.searchError = "";
        setBusy(go, true, "Searching…");
        var url = boConvPath(target) + "bank-users/?q=" + encodeURIComponent(q) + (select.value ? "&field=" + encodeURIComponent(select.value) : "");
        boApi("GET", url).then(function (d) {
          en.results = d.bank_users || [];
        }).catch(function (err) {
          en.results = null;
          en.searchError = boErrorText(err);
        }).then(function () {
          setBusy(go, false);
          boRefreshViews(target);
          var first = boEls.link.querySelector(".bo-result button");
          if (first) first.focus();
          else input.focus();
        });
      });
      boSearch = { form: form, input: input, select: select, conv: null };
    }
    if (boSearch.conv !== conv.id) {
      boSearch.input.value = "";
      boSearch.select.value = "";
      boSearch.conv = conv.id;
    }
    return boSearch.form;
  }

  function boRenderConsent(conv, entry) {
    var box = boEls.consent;
    box.textContent = "";
    var show = bo.canStart && !!entry && !!entry.link;
    boEls.consentSection.hidden = !show;
    if (!show) return;
    var valid = entry.consents.filter(function (c) {
      return c.valid && c.bank_user_id === entry.link.bank_user_id;
    });
    var others = entry.consents.filter(function (c) {
      return !c.valid && c.bank_user_id === entry.link.bank_user_id;
    });
    if (!valid.length) box.appendChild(el("p", "bo-note", "No valid consent: on-behalf actions stay disabled."));
    var list = el("ul", "bo-consents");
    valid.forEach(function (c) {
      var li = el("li", "bo-consent");
      li.setAttribute("data-consent-id", c.id);
      li.appendChild(el("p", "bo-consent-scope", c.scope && c.scope.length ? "Covers: " + c.scope.map(boTypeLabel).join(", ") : "Covers every on-behalf action"));
      li.appendChild(el("p", "bo-consent-evidence", "\u201c" + c.evidence + "\u201d" + (c.evidence_reference ? " (" + c.evidence_reference + ")" : "")));
      li.appendChild(el("p", "bo-note", "Recorded by " + boWho(c.recorded_by) + " " + boWhen(c.recorded_at) + " · expires " + boWhen(c.expires_at)));
      li.appendChild(boButton("Revoke…", "btn-danger-outline", "consent:revoke:" + c.id, function () {
        boOpenReason({ kind: "revoke", conversationId: conv.id, consentId: c.id });
      }));
      list.appendChild(li);
    });
    box.appendChild(list);
    if (others.length) {
      var details = el("details", "bo-history");
      details.appendChild(el("summary", null, others.length + " earlier (revoked or expired)"));
      var ul = el("ul", "bo-consents");
      others.forEach(function (c) {
        var state2 = c.revoked_at ? "Revoked by " + boWho(c.revoked_by) + " " + boWhen(c.revoked_at) + (c.revoke_reason ? ": " + c.revoke_reason : "") : "Expired " + boWhen(c.expires_at);
        var li = el("li", "bo-consent bo-consent-old");
        li.appendChild(el("p", "bo-consent-evidence", "\u201c" + c.evidence + "\u201d"));
        li.appendChild(el("p", "bo-note", state2));
        ul.appendChild(li);
      });
      details.appendChild(ul);
      box.appendChild(details);
    }
    box.appendChild(boButton("Record consent…", "btn-ghost", "consent:record", function () {
      boOpenConsent(conv.id);
    }));
  }

  function boTypeLabel(name) {
    var entry = boEntry(state.selectedId, false);
    var types = entry && entry.types ? entry.types : [];
    for (var i = 0; i < types.length; i++) if (types[i].name === name) return types[i].label;
    return boHuman(name);
  }

  function boRenderActions(conv, entry) {
    var box = boEls.actions;
    box.textContent = "";
    var show = bo.canStart && !!entry && !!entry.types;
    boEls.actionsSection.hidden = !show;
    if (!show) return;
    var closed = conv.status === "closed";
    if (!entry.link) {
      // One sentence for the whole list rather than the same one under every button.
      var unlinked = el("li", "bo-disabled-reason bo-actions-unlinked", BO_NOT_LINKED);
      unlinked.id = "bo-actions-unlinked";
      box.appendChild(unlinked);
    }
    entry.types.forEach(function (t) {
      var li = el("li", "bo-action-item");
      li.setAttribute("data-action", t.name);
      var reason = t.enabled ? null : t.disabled_reason || "Not available.";
      if (!reason && !entry.link) reason = BO_NOT_LINKED;
      if (!reason && closed) reason = "Disabled as the conversation is closed";
      var b = boButton(t.label, "btn-ghost bo-action", "action:" + t.name, function () {
        if (b.getAttribute("aria-disabled") === "true") return;
        boOpenAction(conv.id, t);
      });
      b.setAttribute("aria-haspopup", "dialog");
      li.appendChild(b);
      var hint;
      if (reason === BO_NOT_LINKED) {
        b.setAttribute("aria-disabled", "true");
        b.classList.add("is-disabled");
        b.setAttribute("aria-describedby", "bo-actions-unlinked");
        box.appendChild(li);
        return;
      }
      if (reason) {
        b.setAttribute("aria-disabled", "true");
        b.classList.add("is-disabled");
        hint = el("p", "bo-disabled-reason", reason);
      } else {
        var bits = [t.needs_checker ? "needs a checker" : "no checker"];
        if (t.on_behalf) bits.push("on behalf of the customer");
        if (t.needs_confirmation) bits.push("customer confirms in the chat");
        if (t.temporary_hours) bits.push("reverts after " + t.temporary_hours + " h");
        hint = el("p", "bo-action-hint", bits.join(" · "));
      }
      hint.id = "bo-action-hint-" + t.name;
      b.setAttribute("aria-describedby", hint.id);
      li.appendChild(hint);
      box.appendChild(li);
    });
  }

  function boSortedRequests(entry) {
    return Array.from(entry.requests.values()).sort(function (a, b) {
      return (parseTime(b.created_at) || 0) - (parseTime(a.created_at) || 0) || b.id - a.id;
    });
  }

  function boRequestNode(r, opts) {
    var li = el("li", "bo-request");
    li.setAttribute("data-request-id", r.id);
    li.setAttribute("data-status", r.status);
    var top = el("div", "bo-request-top");
    top.appendChild(el("span", "bo-request-label", r.label || boHuman(r.action_type)));
    var badge = el("span", "bo-badge bo-status", r.business_status || boHuman(r.status));
    badge.setAttribute("data-status", r.status);
    top.appendChild(badge);
    li.appendChild(top);
    if (opts && opts.context) li.appendChild(el("p", "bo-request-context", opts.context));
    var params = boParamsText(r.params);
    if (params) li.appendChild(el("p", "bo-note", params));
    var meta = "Requested by " + boWho(r.maker) + " · " + boWhen(r.created_at);
    if (r.status === "picked" && r.checker) meta += " · picked up by " + boWho(r.checker);
    else if (r.checker && !BO_OPEN[r.status] && r.status !== "cancelled") meta += " · decided by " + boWho(r.checker);
    if (r.status === "cancelled") meta += " · cancelled" + (r.reason ? ": " + r.reason : "");
    if (BO_FOR_APPROVAL[r.status] && r.expires_at) meta += " · expires " + boWhen(r.expires_at);
    li.appendChild(el("p", "bo-note", meta));
    if (r.status === "rejected" && r.reason) li.appendChild(el("p", "bo-request-reason", "Reason: " + r.reason));
    if (r.status === "failed" && boFailure(r)) li.appendChild(el("p", "bo-request-reason", "Back office: " + boFailure(r)));
    return li;
  }

  function boCancelButton(r) {
    // POST …/cancel/ may not exist on this server yet (404): say so instead of failing.
    var key = "cancel:" + r.id;
    return boButton(boArmed(key) ? "Confirm cancel" : "Cancel request", "btn-danger-outline bo-cancel", key, function (e) {
      if (!boArmed(key)) {
        boArm(key, function () {
          boRender();
          boRenderApprovals();
        });
        return;
      }
      boDisarm();
      var b = e.currentTarget;
      setBusy(b, true, "Cancelling…");
      boApi("POST", BO_API + "requests/" + r.id + "/cancel/").then(function (d) {
        if (d.request) boRequestUpdate(d.request, {});
      }).catch(function (err) {
        if ((err.status === 404 && !(err.data && err.data.request_id)) || err.status === 405) showNotice("Cancelling a request is not available on this server yet.", { kind: "warning", timeout: 8000 });
        else showNotice(boErrorText(err));
      }).then(function () {
        boRefreshViews(r.conversation_id);
      });
    });
  }

  function boRenderRequests(conv, entry) {
    var box = boEls.requests;
    box.textContent = "";
    var rows = entry ? boSortedRequests(entry) : [];
    boEls.requestsSection.hidden = !rows.length;
    rows.forEach(function (r) {
      var li = boRequestNode(r);
      if (bo.canApprove && BO_FOR_APPROVAL[r.status]) {
        boDecisionRow(li, r);
      } else if (boMine(r.maker) && BO_CANCELLABLE[r.status]) {
        if (r.needs_checker && BO_FOR_APPROVAL[r.status]) li.appendChild(el("p", "bo-own", "Your request \u2014 another checker must approve"));
        var row = el("div", "bo-row");
        row.appendChild(boCancelButton(r));
        li.appendChild(row);
      }
      var note = entry.notes.get(String(r.id));
      if (note) li.appendChild(el("p", "bo-request-note", note));
      box.appendChild(li);
    });
  }

  function boRenderCases(entry) {
    var list = boEls.cases;
    list.textContent = "";
    var cases = entry ? Array.from(entry.cases.values()) : [];
    boEls.casesSection.hidden = !cases.length;
    cases
      .sort(function (a, b) {
        return (parseTime(b.opened_at) || 0) - (parseTime(a.opened_at) || 0);
      })
      .forEach(function (c) {
        list.appendChild(boCaseCard(c));
      });
  }

  function boCaseCard(c) {
    var li = el("li", "bo-case");
    li.setAttribute("data-case-id", c.id);
    li.setAttribute("data-state", c.state || "");
    var top = el("div", "bo-request-top");
    top.appendChild(el("span", "bo-request-label", (c.kind === "claim" ? "Claim" : c.kind === "inquiry" ? "Payment inquiry" : boHuman(c.kind || "case")) + (c.reference ? " " + c.reference : "")));
    var badge = el("span", "bo-badge bo-case-state", c.state_label || boHuman(c.state || "open"));
    badge.setAttribute("data-state", c.state || "");
    top.appendChild(badge);
    li.appendChild(top);
    if (c.subject) li.appendChild(el("p", "bo-case-subject", c.subject));
    var tasks = Array.isArray(c.tasks) ? c.tasks : [];
    if (tasks.length) {
      var ul = el("ul", "bo-tasks");
      ul.setAttribute("aria-label", "Tasks");
      tasks.forEach(function (t) {
        var item = el("li", "bo-task");
        item.setAttribute("data-state", t.state || "");
        item.appendChild(el("span", "bo-task-label", t.label || boHuman(t.kind || "task")));
        item.appendChild(el("span", "bo-task-state", boHuman(t.state || "open") + " · " + (t.assignee && t.assignee.name ? t.assignee.name : "unassigned")));
        ul.appendChild(item);
      });
      li.appendChild(ul);
    }
    var when = "Opened " + boWhen(c.opened_at);
    if (c.resolved_at) when += " · resolved " + boWhen(c.resolved_at);
    else if (c.updated_at) when += " · updated " + boWhen(c.updated_at);
    li.appendChild(el("p", "bo-note", when));
    return li;
  }

  // --- the timeline: back-office steps between the messages ---------------------------
  function boTimeline(conversationId) {
    var entry = boEntry(conversationId, false);
    if (!entry) return [];
    var out = [];
    entry.log.forEach(function (line, key) {
      out.push({ key: "bl" + key, at: line.at, text: line.text, tone: "link" });
    });
    entry.requests.forEach(function (r) {
      var label = "\u201c" + (r.label || boHuman(r.action_type)) + "\u201d";
      out.push({ key: "br" + r.id + "c", at: r.created_at, text: boWho(r.maker).replace(/^you$/, "You") + " requested " + label + (r.params && boParamsText(r.params) ? " (" + boParamsText(r.params) + ")" : ""), tone: "request" });
      if (r.decided_at) {
        var decided = null;
        if (r.status === "rejected") decided = (r.checker ? boWho(r.checker).replace(/^you$/, "You") + " rejected " : "Rejected: ") + label + (r.reason ? ": " + r.reason : "");
        else if (r.status === "expired") decided = label + " expired without a decision";
        else if (r.status === "cancelled") decided = boWho(r.maker).replace(/^you$/, "You") + " cancelled " + label + (r.reason ? ": " + r.reason : "");
        else if (r.checker && BO_APPROVED[r.status]) decided = boWho(r.checker).replace(/^you$/, "You") + " approved " + label;
        if (decided) out.push({ key: "br" + r.id + "d", at: r.decided_at, text: decided, tone: r.status === "rejected" || r.status === "expired" || r.status === "cancelled" ? "bad" : "request" });
      } else if (r.status === "expired") {
        out.push({ key: "br" + r.id + "d", at: r.expires_at, text: label + " expired without a decision", tone: "bad" });
      }
      if (r.finished_at && (r.status === "done" || r.status === "failed")) {
        var note = entry.notes.get(String(r.id));
        var text = note || (label + ": " + (r.business_status || boHuman(r.status)) + (r.status === "failed" && boFailure(r) ? " \u2014 " + boFailure(r) : ""));
        out.push({ key: "br" + r.id + "o", at: r.finished_at, text: "Internal note: " + text, tone: r.status === "failed" ? "bad" : "done" });
      }
      if (r.reverted_at) {
        var rnote = entry.notes.get(String(r.id) + ":revert");
        out.push({ key: "br" + r.id + "r", at: r.reverted_at, text: "Internal note: " + (rnote || label + " reverted"), tone: "done" });
      }
    });
    entry.cases.forEach(function (c) {
      var name = (c.kind === "claim" ? "Claim" : "Payment inquiry") + (c.reference ? " " + c.reference : "");
      out.push({ key: "bc" + c.id + "o", at: c.opened_at, text: name + " opened" + (c.subject ? ": " + c.subject : ""), tone: "request" });
      if (c.updated_at && c.updated_at !== c.opened_at && !c.resolved_at) {
        out.push({ key: "bc" + c.id + "u", at: c.updated_at, text: name + ": " + (c.state_label || boHuman(c.state || "")), tone: "request" });
      }
      if (c.resolved_at) out.push({ key: "bc" + c.id + "r", at: c.resolved_at, text: name + ": " + (c.state_label || "Resolved"), tone: "done" });
    });
    return out.filter(function (t) {
      return parseTime(t.at) !== null;
    });
  }

  // --- the approvals list (checkers) ---------------------------------------------------
  function boSetApprovals(open, focusRequestId) {
    bo.approvalsOpen = open;
    boRenderApprovals();
    if (open) {
      var target = focusRequestId !== undefined ? boEls.approvalsList.querySelector('li[data-request-id="' + focusRequestId + '"] button') : null;
      (target || boEls.approvals).focus();
    } else {
      boEls.approvalsOpen.focus();
    }
  }

  function boRenderApprovals() {
    if (!bo.canApprove) return;
    boEls.approvalsOpen.hidden = false;
    boEls.approvalsOpen.setAttribute("aria-expanded", bo.approvalsOpen ? "true" : "false");
    boEls.approvals.hidden = !bo.approvalsOpen;
    var rows = Array.from(bo.approvals.values()).sort(function (a, b) {
      return (parseTime(a.created_at) || 0) - (parseTime(b.created_at) || 0) || a.id - b.id;
    });
    var waiting = rows.filter(function (r) {
      return !boMine(r.maker) && !(r.status === "picked" && r.checker && !boMine(r.checker));
    }).length;
    boEls.approvalsCount.textContent = String(rows.length);
    boEls.approvalsCount.setAttribute("data-waiting", waiting ? "true" : "false");
    boEls.approvalsOpen.setAttribute("aria-label", "Approvals: " + rows.length + " sent for approval");
    boEls.approvalsOpen.title = rows.length + " request" + (rows.length === 1 ? "" : "s") + " sent for approval, " + waiting + " for you (Alt+A)";
    boEls.approvalsEmpty.hidden = rows.length > 0;
    boEls.approvalsEmpty.textContent = bo.approvalsError || "Nothing waits for approval.";
    if (bo.approvalsError) boEls.approvalsEmpty.hidden = false;
    boKeepFocus(boEls.approvalsList, function () {
      boEls.approvalsList.textContent = "";
      rows.forEach(function (r) {
        boEls.approvalsList.appendChild(boApprovalNode(r));
      });
    });
  }

  function boApprovalNode(r) {
    var conv = state.convs.get(r.conversation_id);
    var context = (conv && conv.customer && conv.customer.name ? conv.customer.name + " · " : "") + "bank user " + r.bank_user_id;
    var li = boRequestNode(r, { context: context });
    li.classList.add("approval");
    var row = boDecisionRow(li, r);
    if (conv) {
      row.appendChild(boButton("Open conversation", "btn-ghost bo-open", "open:" + r.id, function () {
        // The drawer would cover the conversation's panel, where the same decision waits.
        bo.approvalsOpen = false;
        boRenderApprovals();
        select(r.conversation_id);
      }));
    }
    return li;
  }

  function boDecisionRow(li, r) {
    // What this user may do with a request sent for approval; the server decides again.
    var row = el("div", "bo-row");
    var heldByOther = r.status === "picked" && r.checker && !boMine(r.checker);
    if (boMine(r.maker)) {
      li.appendChild(el("p", "bo-own", "Your request \u2014 another checker must approve"));
      if (BO_CANCELLABLE[r.status]) row.appendChild(boCancelButton(r));
    } else if (heldByOther) {
      li.appendChild(el("p", "bo-held", "Picked up by " + boWho(r.checker) + "."));
    } else {
      if (r.status === "pending") {
        row.appendChild(boButton("Pick up", "btn-ghost bo-pick", "pick:" + r.id, function (e) {
          boDecide(e.currentTarget, r, "pick", "Picking up…");
        }));
      }
      row.appendChild(boButton("Approve", "btn-primary bo-approve", "approve:" + r.id, function (e) {
        boDecide(e.currentTarget, r, "approve", "Approving…");
      }));
      row.appendChild(boButton("Reject…", "btn-danger-outline bo-reject", "reject:" + r.id, function () {
        boOpenReason({ kind: "reject", request: r });
      }));
      if (r.status === "picked") {
        row.appendChild(boButton("Release", "btn-ghost bo-release", "release:" + r.id, function (e) {
          boDecide(e.currentTarget, r, "release", "Releasing…");
        }));
      }
    }
    li.appendChild(row);
    return row;
  }

  function boDecide(button, r, verb, busyText) {
    setBusy(button, true, busyText);
    boApi("POST", BO_API + "requests/" + r.id + "/" + verb + "/")
      .then(function (d) {
        if (d.request) boRequestUpdate(d.request, {});
        if (verb === "approve" && d.request) {
          var r2 = d.request;
          var text = r2.status === "approved" || r2.status === "executing"
            ? "Approved: " + r2.label + " \u2014 the back office is being called."
            : r2.label + ": " + r2.business_status;
          showNotice(text, { kind: r2.status === "failed" ? "warning" : "info", timeout: 6000 });
        }
      })
      .catch(function (err) {
        showNotice(boErrorText(err));
        // The list may be out of date (someone else decided): read it again.
        boLoadApprovals();
      })
      .then(function () {
        boRefreshViews(r.conversation_id);
      });
  }

  // --- dialogs -------------------------------------------------------------------------
  function boFieldError(node, text) {
    var field = node.closest(".field");
    var box = field ? field.querySelector(".field-error") : null;
    node.setAttribute("aria-invalid", text ? "true" : "false");
    if (box) {
      box.textContent = text || "";
      box.hidden = !text;
    }
  }

  function boClearErrors(form, box) {
    form.querySelectorAll(".field-error").forEach(function (p) {
      p.hidden = true;
      p.textContent = "";
    });
    form.querySelectorAll("[aria-invalid]").forEach(function (n) {
      n.removeAttribute("aria-invalid");
    });
    hideDialogError(box);
  }

  function boParamHint(p) {
    var parts = [];
    if (p.type === "integer") {
      parts.push("Whole number");
      if (p.minimum !== null && p.minimum !== undefined && p.maximum !== null && p.maximum !== undefined) parts.push("from " + boNumber(p.minimum) + " to " + boNumber(p.maximum));
      else if (p.maximum !== null && p.maximum !== undefined) parts.push("at most " + boNumber(p.maximum));
      else if (p.minimum !== null && p.minimum !== undefined) parts.push("at least " + boNumber(p.minimum));
    } else if (p.type === "decimal") {
      parts.push("Amount above 0, up to 2 decimals" + (p.maximum !== null && p.maximum !== undefined ? ", at most " + boNumber(Number(p.maximum)) : ""));
    } else if (p.type === "string" && !p.choices && p.max_length) {
      parts.push("Up to " + boNumber(p.max_length) + " characters");
    }
    return parts.join(" ");
  }

  function boOpenAction(conversationId, t) {
    var entry = boEntry(conversationId, false);
    bo.actionFor = { conversationId: conversationId, type: t };
    boEls.actionTitle.textContent = t.label;
    var user = entry && entry.link ? (boUserName(entry.link.bank_user) || entry.link.bank_user_id) + " (" + entry.link.bank_user_id + ")" : "the linked bank user";
    var lead = "For " + user + ". ";
    if (t.needs_confirmation) lead += "The customer first confirms it with a code in the chat. ";
    lead += t.needs_checker ? "It is saved as \u201c" + (t.pending_status || "pending") + "\u201d and another checker must approve it before the back office is called." : "It runs at once: no checker is needed.";
    boEls.actionLead.textContent = lead;
    boEls.actionSubmit.textContent = t.needs_checker ? "Send for approval" : "Run now";
    boClearErrors(boEls.actionForm, boEls.actionError);
    var fields = boEls.actionFields;
    fields.textContent = "";
    var first = null;
    (t.params || []).forEach(function (p) {
      var id = "bo-p-" + p.name;
      var wrap = el("div", p.type === "boolean" ? "field field-check" : "field");
      wrap.setAttribute("data-param", p.name);
      var label = el("label", null, p.label || boHuman(p.name));
      label.htmlFor = id;
      if (!p.required && p.type !== "boolean") label.appendChild(el("span", "optional", " (optional)"));
      var control;
      if (p.choices && p.choices.length) {
        control = el("select");
        control.appendChild(option("", p.required ? "Choose…" : "\u2014"));
        p.choices.forEach(function (c) {
          control.appendChild(option(c, boHuman(c)));
        });
      } else if (p.type === "boolean") {
        control = el("input");
        control.type = "checkbox";
      } else if (p.type === "string" && p.max_length && p.max_length > 200) {
        control = el("textarea");
        control.rows = 2;
        control.maxLength = p.max_length;
      } else {
        control = el("input");
        control.type = "text";
        if (p.type === "integer") {
          control.inputMode = "numeric";
          control.pattern = "-?[0-9]*";
        } else if (p.type === "decimal") {
          control.inputMode = "decimal";
        } else if (p.max_length) {
          control.maxLength = p.max_length;
        }
        control.autocomplete = "off";
      }
      control.id = id;
      control.name = p.name;
      if (p.required) control.setAttribute("aria-required", "true");
      var hintText = boParamHint(p);
      var described = [];
      if (p.type === "boolean") {
        wrap.appendChild(control);
        wrap.appendChild(label);
      } else {
        wrap.appendChild(label);
        wrap.appendChild(control);
      }
      if (hintText) {
        var hint = el("p", "field-hint", hintText);
        hint.id = id + "-hint";
        described.push(hint.id);
        wrap.appendChild(hint);
      }
      var error = el("p", "field-error");
      error.id = id + "-error";
      error.hidden = true;
      described.push(error.id);
      wrap.appendChild(error);
      control.setAttribute("aria-describedby", described.join(" "));
      control.addEventListener("input", function () {
        boFieldError(control, "");
      });
      fields.appendChild(wrap);
      if (!first) first = control;
    });
    if (!(t.params || []).length) fields.appendChild(el("p", "bo-note", "No details needed."));
    setBusy(boEls.actionSubmit, false);
    openModal(boEls.actionDialog, first || boEls.actionSubmit);
  }

  function boCollectParams(t) {
    var params = {};
    var problems = [];
    (t.params || []).forEach(function (p) {
      var control = $("bo-p-" + p.name);
      if (!control) return;
      var problem = "";
      if (p.type === "boolean") {
        if (control.checked || p.required) params[p.name] = !!control.checked;
        return;
      }
      var raw = control.value.trim();
      if (!raw) {
        if (p.required) problem = "Required.";
      } else if (p.type === "integer") {
        if (!/^-?\d+$/.test(raw)) problem = "Enter a whole number.";
        else {
          var n = Number(raw);
          if (p.minimum !== null && p.minimum !== undefined && n < p.minimum) problem = "At least " + boNumber(p.minimum) + ".";
          else if (p.maximum !== null && p.maximum !== undefined && n > p.maximum) problem = "At most " + boNumber(p.maximum) + " (the bank's maximum).";
          else params[p.name] = n;
        }
      } else if (p.type === "decimal") {
        if (!/^\d+(\.\d{1,2})?$/.test(raw.replace(",", "."))) problem = "Enter an amount like 12.50.";
        else params[p.name] = raw.replace(",", ".");
      } else if (p.max_length && raw.length > p.max_length) {
        problem = "At most " + boNumber(p.max_length) + " characters.";
      } else {
        params[p.name] = raw;
      }
      if (problem) problems.push({ control: control, text: problem });
    });
    return { params: params, problems: problems };
  }

  function boServerFieldError(err, form, box, prefix) {
    // The server names the field (`params.daily_transfer`, `evidence`…): show it there.
    var field = err.data && err.data.field ? String(err.data.field) : "";
    var name = prefix && field.indexOf(prefix) === 0 ? field.slice(prefix.length) : field;
    var control = name ? form.querySelector('[name="' + CSS.escape(name) + '"]') : null;
    if (control) {
      boFieldError(control, boErrorText(err));
      control.focus();
      return;
    }
    showDialogError(box, boErrorText(err));
  }

  boEls.actionForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var job = bo.actionFor;
    if (!job) return;
    boClearErrors(boEls.actionForm, boEls.actionError);
    var collected = boCollectParams(job.type);
    if (collected.problems.length) {
      collected.problems.forEach(function (p) {
        boFieldError(p.control, p.text);
      });
      collected.problems[0].control.focus();
      return;
    }
    setBusy(boEls.actionSubmit, true, "Sending…");
    boApi("POST", boConvPath(job.conversationId) + "requests/", { action_type: job.type.name, params: collected.params })
      .then(function (d) {
        setBusy(boEls.actionSubmit, false);
        var r = d.request;
        if (r) {
          boRequestUpdate(r, {});
          var said = r.status === "pending" ? r.business_status + " \u2014 sent for approval"
            : r.status === "approved" || r.status === "executing" ? "being done at the back office\u2026"
            : r.business_status;
          showNotice(r.label + ": " + said, { kind: "info", timeout: 6000 });
        }
        dismissDialog(boEls.actionDialog);
        boRefreshViews(job.conversationId);
      })
      .catch(function (err) {
        setBusy(boEls.actionSubmit, false);
        if (boEls.actionDialog.open) boServerFieldError(err, boEls.actionForm, boEls.actionError, "params.");
        if (err.code === "action_disabled" || err.code === "consent_required") boReloadEligibility(job.conversationId);
      });
  });

  function boOpenConsent(conversationId) {
    var entry = boEntry(conversationId, false);
    bo.consentFor = conversationId;
    boClearErrors(boEls.consentForm, boEls.consentError);
    boEls.consentEvidence.value = "";
    boEls.consentReference.value = "";
    boEls.consentExpiry.value = "";
    boEls.consentEvidence.name = "evidence";
    boEls.consentReference.name = "evidence_reference";
    boEls.consentExpiry.name = "expires_at";
    var scope = boEls.consentScope;
    scope.querySelectorAll(".check").forEach(function (n) {
      n.remove();
    });
    var onBehalf = (entry && entry.types ? entry.types : []).filter(function (t) {
      return t.on_behalf;
    });
    scope.hidden = !onBehalf.length;
    onBehalf.forEach(function (t) {
      var label = el("label", "check");
      var box = el("input");
      box.type = "checkbox";
      box.value = t.name;
      box.name = "scope";
      label.appendChild(box);
      label.appendChild(document.createTextNode(" " + t.label));
      scope.appendChild(label);
    });
    setBusy(boEls.consentSubmit, false);
    openModal(boEls.consentDialog, boEls.consentEvidence);
  }

  boEls.consentForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var id = bo.consentFor;
    if (!id) return;
    boClearErrors(boEls.consentForm, boEls.consentError);
    var evidence = boEls.consentEvidence.value.trim();
    if (!evidence) {
      boFieldError(boEls.consentEvidence, "Write what the customer agreed to and how.");
      boEls.consentEvidence.focus();
      return;
    }
    var body = { evidence: evidence };
    var ref = boEls.consentReference.value.trim();
    if (ref) body.evidence_reference = ref;
    var scope = Array.from(boEls.consentScope.querySelectorAll("input:checked")).map(function (n) {
      return n.value;
    });
    if (scope.length) body.scope = scope;
    if (boEls.consentExpiry.value) {
      var parts = boEls.consentExpiry.value.split("-").map(Number);
      // The end of the chosen day, in the staff member's time zone.
      body.expires_at = new Date(parts[0], parts[1] - 1, parts[2], 23, 59, 0).toISOString();
    }
    setBusy(boEls.consentSubmit, true, "Recording…");
    boApi("POST", boConvPath(id) + "consents/", body)
      .then(function (d) {
        var entry = boEntry(id, false);
        if (entry && d.consent) {
          entry.consents = entry.consents.filter(function (c) {
            return c.id !== d.consent.id;
          });
          entry.consents.unshift(d.consent);
        }
        setBusy(boEls.consentSubmit, false);
        dismissDialog(boEls.consentDialog);
        boReloadEligibility(id);
        boRefreshViews(id);
      })
      .catch(function (err) {
        setBusy(boEls.consentSubmit, false);
        if (boEls.consentDialog.open) boServerFieldError(err, boEls.consentForm, boEls.consentError, "");
      });
  });

  function boOpenReason(job) {
    bo.reasonFor = job;
    boClearErrors(boEls.reasonForm, boEls.reasonError);
    boEls.reasonText.value = "";
    boEls.reasonText.name = "reason";
    if (job.kind === "reject") {
      boEls.reasonTitle.textContent = "Reject \u201c" + job.request.label + "\u201d";
      boEls.reasonLead.textContent = "Requested by " + boWho(job.request.maker) + " for bank user " + job.request.bank_user_id + ". The maker sees your reason.";
      boEls.reasonSubmit.textContent = "Reject";
    } else {
      boEls.reasonTitle.textContent = "Revoke the consent";
      boEls.reasonLead.textContent = "On-behalf actions are disabled again until a new consent is recorded. The consent is kept, with your reason.";
      boEls.reasonSubmit.textContent = "Revoke";
    }
    setBusy(boEls.reasonSubmit, false);
    openModal(boEls.reasonDialog, boEls.reasonText);
  }

  boEls.reasonForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var job = bo.reasonFor;
    if (!job) return;
    boClearErrors(boEls.reasonForm, boEls.reasonError);
    var reason = boEls.reasonText.value.trim();
    if (!reason) {
      boFieldError(boEls.reasonText, "A reason is required.");
      boEls.reasonText.focus();
      return;
    }
    setBusy(boEls.reasonSubmit, true, "Saving…");
    var call = job.kind === "reject"
      ? boApi("POST", BO_API + "requests/" + job.request.id + "/reject/", { reason: reason })
      : boApi("POST", boConvPath(job.conversationId) + "consents/" + job.consentId + "/revoke/", { reason: reason });
    call
      .then(function (d) {
        setBusy(boEls.reasonSubmit, false);
        dismissDialog(boEls.reasonDialog);
        if (d.request) {
          boRequestUpdate(d.request, {});
          boRefreshViews(d.request.conversation_id);
        }
        if (d.consent) {
          var entry = boEntry(job.conversationId, false);
          if (entry) {
            entry.consents = entry.consents.filter(function (c) {
              return c.id !== d.consent.id;
            });
            entry.consents.unshift(d.consent);
          }
          boReloadEligibility(job.conversationId);
          boRefreshViews(job.conversationId);
        }
      })
      .catch(function (err) {
        setBusy(boEls.reasonSubmit, false);
        if (boEls.reasonDialog.open) boServerFieldError(err, boEls.reasonForm, boEls.reasonError, "");
        if (job.kind === "reject") boLoadApprovals();
      });
  });

  [boEls.actionDialog, boEls.consentDialog, boEls.reasonDialog].forEach(function (dialog) {
    dialog.addEventListener("close", function () {
      var opener = dialogOpener.get(dialog);
      dialogOpener.delete(dialog);
      if (opener && opener.isConnected && !opener.hidden && opener.offsetParent) opener.focus();
      else if (!boEls.panel.hidden) boEls.panel.focus();
    });
    dialog.addEventListener("click", function (e) {
      if (e.target.closest && e.target.closest("[data-dismiss]")) dismissDialog(dialog);
    });
  });

  boEls.toggle.addEventListener("click", function () {
    boSetOpen(!boIsOpen(), true);
  });
  boEls.close.addEventListener("click", function () {
    boSetOpen(false, true);
  });
  boEls.approvalsOpen.addEventListener("click", function () {
    boSetApprovals(!bo.approvalsOpen);
  });
  boEls.approvalsClose.addEventListener("click", function () {
    boSetApprovals(false);
  });
  // Alt+B: the back-office panel; Alt+A: the approvals list; Escape closes what has focus.
  // Capture phase, so Escape in the panel does not also leave the conversation (narrow).
  document.addEventListener(
    "keydown",
    function (e) {
      if (document.querySelector("dialog[open]")) return;
      if (e.altKey && !e.ctrlKey && !e.metaKey && (e.key === "b" || e.key === "B" || e.code === "KeyB")) {
        if (!selectedConversation()) return;
        e.preventDefault();
        boSetOpen(!boIsOpen(), true);
      } else if (e.altKey && !e.ctrlKey && !e.metaKey && (e.key === "a" || e.key === "A" || e.code === "KeyA")) {
        if (!bo.canApprove) return;
        e.preventDefault();
        boSetApprovals(!bo.approvalsOpen);
      } else if (e.key === "Escape") {
        if (bo.approvalsOpen && boEls.approvals.contains(document.activeElement)) {
          e.stopPropagation();
          boSetApprovals(false);
        } else if (!boEls.panel.hidden && boEls.panel.contains(document.activeElement) &&
            !window.matchMedia(BO_WIDE_QUERY).matches) {
          e.stopPropagation();
          boSetOpen(false, true);
        }
      }
    },
    true
  );
  window.matchMedia(BO_WIDE_QUERY).addEventListener("change", function () {
    bo.open = null; // back to the default for the new width
    boRender();
  });

  // ---------------------------------------------------------------- start
  loadOutbox();
  var stored = storeGet(STORE_EVENT);
  if (stored && typeof stored.id === "number") {
    // Only a hint for debugging: without the conversations in memory a fresh page needs a
    // snapshot, so the first connection never asks for a replay.
    state.storedEventId = stored.id;
  }
  renderPresence();
  renderList();
  renderThread();
  connect();
})();
