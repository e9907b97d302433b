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

  function storeGet(key) {
    try {
      var raw = window.sessionStorage.getItem(key);
      return raw ? JSON.parse(raw) : null;
    } catch (e) {
      return null;
    }
  }

  function storeSet(key, value) {
    try {
      window.sessionStorage.setItem(key, JSON.stringify(value));
    } catch (e) {
      /* storage full or disabled: memory still works */
    }
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
        ? { id: last.id, text: last.text || "", direction: last.direction }
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
      case "routing.presence_changed":
        if (state.me && data.user_id === state.me.id && data.presence) {
          state.presence = data.presence;
          renderPresence();
        }
        onOperatorPresence(data.user_id, data.presence);
        break;
      default:
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
      showNotice("Reply not sent: " + errorText(frame));
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
      });
    });
    storeSet(STORE_OUTBOX, list);
  }

  function transmit(entry) {
    if (!sock.live) return;
    var ok = send({
      type: "message.send",
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
    list.sort(function (a, b) {
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
    // The customer spoke last: they are waiting for us.
    return !!conv.last_customer_message_at && conv.last_customer_message_at === conv.last_message_at;
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
    var buttons = Array.from(els.list.querySelectorAll("button.conv"));
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
      return;
    }
    els.threadTitle.textContent = conv.customer && conv.customer.name ? conv.customer.name : "Customer";
    renderThreadMeta(conv, Date.now());
    var acting = canAct(conv);
    els.closeBtn.hidden = !acting;
    els.composer.hidden = !acting;
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
    var usable = canAct(conv);
    var closed = usable && windowClosed(conv);
    els.send.disabled = !usable || closed;
    els.text.disabled = !usable || closed;
    els.composer.classList.toggle("offline", !sock.live);
    els.composer.classList.toggle("window-closed", closed);
    renderTemplatePanel(conv);
    renderOutreachSend();
    els.text.placeholder = closed
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
    if (thread && thread.loaded && thread.timeline && thread.timeline.size) {
      // Changes of hands sit between the messages at the time they happened.
      var entries = Array.from(thread.timeline.values());
      var merged = [];
      var i = 0;
      entries.sort(function (a, b) {
        return a.id - b.id;
      });
      items.forEach(function (item) {
        var at = parseTime(item.message.created_at) || 0;
        while (i < entries.length && (parseTime(entries[i].created_at) || 0) < at) {
          merged.push({ key: "a" + entries[i].id, timeline: entries[i] });
          i++;
        }
        merged.push(item);
      });
      for (; i < entries.length; i++) merged.push({ key: "a" + entries[i].id, timeline: entries[i] });
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
          item.message ? item.message.created_at : item.timeline ? item.timeline.created_at : item.pending.createdAt
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
      if (item.timeline) {
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
    var query = conv && canAct(conv) ? kbQueryOf(els.text.value) : null;
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
