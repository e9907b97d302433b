/*!
 * Hub web chat widget: the customer side of the bank's web chat.
 *
 * Embed it with one script tag, anywhere in the page:
 *
 *   <script src="https://hub.example/static/chat/webchat.js"
 *           data-hub="https://hub.example" defer></script>
 *
 * Optional attributes on the script tag:
 *   data-hub       Base URL of the hub.  Default: the origin of the script's own src.
 *   data-title     Panel title.                 Default: "Chat with us".
 *   data-subtitle  Line under the title.        Default: "We usually reply within a few minutes".
 *   data-accent    Accent colour (any CSS colour, e.g. "#0b5cad").
 *   data-open      "true" opens the panel when the page loads.
 *   data-type      The query type of conversations started here (a code the bank's
 *                  coordinators configured, e.g. "payments" on the payments help page).
 *
 * The bank's site origin must be allowed on the hub (HUB_WEBCHAT_ALLOWED_ORIGINS), or the
 * hub refuses the WebSocket.  Nothing else is needed: no CSS file, no other script, no CDN.
 *
 * Page API: window.HubWebchat.open(), .close(), .toggle().
 *
 * How it behaves:
 *   - Everything is drawn inside a shadow root, so the page's CSS does not reach
 *     the widget and the widget's CSS never touches the page.
 *   - The visitor's signed token is kept in localStorage; a returning visitor sees their
 *     conversation again.  A first-time visitor opens no socket until they open the panel.
 *   - The socket reconnects with exponential backoff.  On reconnect it asks only for the
 *     messages after the newest one shown (&after_id=).
 *   - Each message carries a client_id.  Until the hub acknowledges it, it is shown as
 *     "Sending…" and is sent again (same client_id) after every reconnect; the hub stores a
 *     client_id once, so a retry never duplicates a message.  Unsent messages survive a reload.
 *   - The panel stays open across the site's pages (per tab, sessionStorage).
 *   - Messages are de-duplicated by id (the visitor's other tabs echo their messages here).
 *   - All message text is written with textContent.
 */
(function () {
  "use strict";

  if (window.HubWebchat && window.HubWebchat.__loaded) return; // included twice

  var script =
    document.currentScript ||
    (function () {
      var all = document.querySelectorAll('script[src*="webchat.js"]');
      return all[all.length - 1] || null;
    })();

  function attr(name, fallback) {
    var v = script && script.getAttribute(name);
    return v === null || v === undefined || v === "" ? fallback : v;
  }

  var hubBase = (function () {
    var explicit = attr("data-hub", "");
    try {
      if (explicit) return new URL(explicit, window.location.href).origin;
      if (script && script.src) return new URL(script.src, window.location.href).origin;
    } catch (e) {
      /* fall through */
    }
    return window.location.origin;
  })();

  var WS_URL = hubBase.replace(/^http/, "ws") + "/ws/webchat/";
  var KEY = "hubchat:" + hubBase + ":";
  var QUERY_TYPE = attr("data-type", "");
  var TITLE = attr("data-title", "Chat with us");
  var SUBTITLE = attr("data-subtitle", "We usually reply within a few minutes");
  var ACCENT = attr("data-accent", "#1559b7");
  var MAX_TEXT = 4096;

  // ------------------------------------------------------------------ storage
  function load(name) {
    try {
      var raw = window.localStorage.getItem(KEY + name);
      return raw ? JSON.parse(raw) : null;
    } catch (e) {
      return null;
    }
  }

  function save(name, value) {
    try {
      if (value === null) window.localStorage.removeItem(KEY + name);
      else window.localStorage.setItem(KEY + name, JSON.stringify(value));
    } catch (e) {
      /* private mode or full: the widget still works for this page */
    }
  }

  function uuid4() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
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

  // ------------------------------------------------------------------ state
  var state = {
    token: load("token"),
    name: load("name") || "",
    messages: new Map(), // id -> message
    outbox: new Map(), // client_id -> {client_id, text, status, error, createdAt, sentAt}
    open: false,
    unread: 0,
    ended: false, // the operator closed the conversation; the next message opens a new one
    notes: [], // [{afterId, text}] system lines shown in the thread
  };
  (load("outbox") || []).forEach(function (e) {
    if (e && e.client_id && typeof e.text === "string") {
      state.outbox.set(e.client_id, {
        client_id: e.client_id,
        text: e.text,
        status: e.status === "failed" ? "failed" : "sending",
        error: e.error || null,
        createdAt: e.createdAt || new Date().toISOString(),
        sentAt: 0,
      });
    }
  });

  function saveOutbox() {
    var list = [];
    state.outbox.forEach(function (e) {
      list.push({ client_id: e.client_id, text: e.text, status: e.status, error: e.error, createdAt: e.createdAt });
    });
    save("outbox", list.length ? list : null);
  }

  var sock = { ws: null, live: false, attempt: 0, timer: null, lastFrameAt: 0, started: false };

  // ------------------------------------------------------------------ DOM (shadow root)
  var host = document.createElement("div");
  host.setAttribute("data-hub-webchat", "");
  var shadow = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;

  var CSS =
    ":host{all:initial;}" +
    "*,*::before,*::after{box-sizing:border-box;}" +
    ".root{--accent:" + "#1559b7" + ";font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;" +
    "font-size:14px;line-height:1.45;color:#17212e;position:fixed;right:20px;bottom:20px;z-index:2147483000;" +
    "display:flex;flex-direction:column;align-items:flex-end;gap:12px;}" +
    "button{font:inherit;color:inherit;}" +
    ".launcher{position:relative;width:58px;height:58px;border-radius:50%;border:0;cursor:pointer;background:var(--accent);color:#fff;" +
    "box-shadow:0 6px 20px rgba(16,24,40,.28);display:flex;align-items:center;justify-content:center;transition:transform .15s;}" +
    ".launcher:hover{transform:translateY(-1px) scale(1.03);}" +
    ".launcher:focus-visible,.icon-btn:focus-visible,.send:focus-visible,.retry:focus-visible{outline:none;box-shadow:0 0 0 3px rgba(255,255,255,.9),0 0 0 6px var(--accent);}" +
    ".launcher svg{width:26px;height:26px;}" +
    ".launcher .close-icon{display:none;}" +
    ".root.open .launcher .chat-icon{display:none;}.root.open .launcher .close-icon{display:block;}" +
    ".badge{position:absolute;top:-3px;right:-3px;min-width:20px;height:20px;padding:0 5px;border-radius:10px;background:#d92d20;color:#fff;" +
    "font-size:11.5px;font-weight:700;display:flex;align-items:center;justify-content:center;border:2px solid #fff;}" +
    ".panel{width:370px;height:540px;max-height:calc(100vh - 110px);background:#fff;border-radius:14px;overflow:hidden;display:flex;flex-direction:column;" +
    "box-shadow:0 16px 48px rgba(16,24,40,.24),0 2px 6px rgba(16,24,40,.08);border:1px solid rgba(16,24,40,.08);}" +
    ".head{background:var(--accent);color:#fff;padding:14px 14px 14px 18px;display:flex;align-items:center;gap:12px;}" +
    ".head-text{flex:1;min-width:0;}" +
    ".title{margin:0;font-size:16px;font-weight:700;line-height:1.25;}" +
    ".subtitle{margin:2px 0 0;font-size:12.5px;opacity:.88;display:flex;align-items:center;gap:6px;}" +
    ".dot{width:8px;height:8px;border-radius:50%;background:#f5b942;flex:none;}" +
    ".dot[data-live='true']{background:#3ddc97;}" +
    ".icon-btn{width:32px;height:32px;border-radius:8px;border:0;background:rgba(255,255,255,.14);color:#fff;cursor:pointer;display:flex;align-items:center;justify-content:center;}" +
    ".icon-btn:hover{background:rgba(255,255,255,.26);}" +
    ".icon-btn svg{width:16px;height:16px;}" +
    ".status{margin:0;padding:7px 14px;font-size:12.5px;background:#fdf1dc;color:#6b4307;border-bottom:1px solid #f1d7a8;}" +
    ".body{flex:1;min-height:0;overflow-y:auto;padding:16px 14px;background:#f5f7fa;}" +
    ".welcome{margin:0 0 14px;padding:12px 14px;background:#fff;border:1px solid #e2e6ed;border-radius:12px;color:#3b4655;font-size:13.5px;}" +
    ".list{list-style:none;margin:0;padding:0;display:flex;flex-direction:column;gap:6px;}" +
    ".msg{display:flex;flex-direction:column;align-items:flex-start;}" +
    ".msg.mine{align-items:flex-end;}" +
    ".bubble{max-width:82%;padding:8px 12px;border-radius:14px;background:#fff;border:1px solid #e2e6ed;white-space:pre-wrap;overflow-wrap:anywhere;}" +
    ".msg:not(.mine) .bubble{border-bottom-left-radius:4px;}" +
    ".msg.mine .bubble{background:var(--accent);border-color:transparent;color:#fff;border-bottom-right-radius:4px;}" +
    ".msg.pending .bubble{opacity:.65;}" +
    ".msg.failed .bubble{background:#fdecea;color:#7a1a12;border:1px solid #f3c6c1;}" +
    ".meta{font-size:11px;color:#7b8594;margin:2px 4px 0;}" +
    ".retry{border:0;background:none;padding:0;margin-left:6px;color:#b42318;font-weight:600;text-decoration:underline;cursor:pointer;font-size:11px;}" +
    ".note{align-self:center;text-align:center;font-size:12px;color:#5a6676;background:#e9edf3;border-radius:999px;padding:3px 12px;margin:6px 0;}" +
    ".foot{border-top:1px solid #e2e6ed;background:#fff;padding:10px 12px 12px;}" +
    ".name{display:flex;align-items:center;gap:8px;margin-bottom:8px;font-size:12.5px;color:#5a6676;}" +
    ".name input{flex:1;min-width:0;font:inherit;font-size:13px;color:#17212e;padding:6px 10px;border:1px solid #cfd6e0;border-radius:8px;background:#fff;}" +
    ".row{display:flex;align-items:flex-end;gap:8px;}" +
    "textarea{flex:1;font:inherit;color:#17212e;resize:none;min-height:42px;max-height:140px;padding:10px 12px;border:1px solid #cfd6e0;border-radius:10px;background:#fff;line-height:1.4;margin:0;}" +
    "textarea:focus,.name input:focus{outline:none;border-color:var(--accent);box-shadow:0 0 0 3px rgba(21,89,183,.2);}" +
    ".send{flex:none;height:42px;width:42px;border:0;border-radius:10px;background:var(--accent);color:#fff;cursor:pointer;display:flex;align-items:center;justify-content:center;}" +
    ".send:disabled{opacity:.5;cursor:default;}" +
    ".send svg{width:18px;height:18px;}" +
    ".legal{margin:8px 2px 0;font-size:11px;color:#8a94a3;}" +
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;}" +
    "[hidden]{display:none!important;}" +
    "@media (max-width:480px){.root{right:12px;bottom:12px;left:12px;}.panel{width:100%;height:calc(100vh - 100px);}}" +
    "@media (prefers-reduced-motion:reduce){.launcher{transition:none;}}";

  function svg(path, cls) {
    var ns = "http://www.w3.org/2000/svg";
    var s = document.createElementNS(ns, "svg");
    s.setAttribute("viewBox", "0 0 24 24");
    s.setAttribute("aria-hidden", "true");
    s.setAttribute("fill", "none");
    s.setAttribute("stroke", "currentColor");
    s.setAttribute("stroke-width", "2");
    s.setAttribute("stroke-linecap", "round");
    s.setAttribute("stroke-linejoin", "round");
    if (cls) s.setAttribute("class", cls);
    var p = document.createElementNS(ns, "path");
    p.setAttribute("d", path);
    s.appendChild(p);
    return s;
  }

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }

  var ICON_CHAT = "M21 12a8 8 0 0 1-11.6 7.1L4 20l1-4.6A8 8 0 1 1 21 12z";
  var ICON_X = "M6 6l12 12M18 6L6 18";
  var ICON_MIN = "M5 12h14";
  var ICON_SEND = "M4 12l16-8-6 16-2-7-8-1z";

  var style = el("style");
  style.textContent = CSS;
  var rootEl = el("div", "root");
  rootEl.style.setProperty("--accent", ACCENT);

  var panel = el("div", "panel");
  panel.id = "hub-webchat-panel";
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", TITLE);
  panel.hidden = true;

  var head = el("div", "head");
  var headText = el("div", "head-text");
  var title = el("h2", "title", TITLE);
  var subtitle = el("p", "subtitle");
  var dot = el("span", "dot");
  var subtitleText = el("span", null, SUBTITLE);
  subtitle.appendChild(dot);
  subtitle.appendChild(subtitleText);
  headText.appendChild(title);
  headText.appendChild(subtitle);
  var minimize = el("button", "icon-btn");
  minimize.type = "button";
  minimize.setAttribute("aria-label", "Minimise chat");
  minimize.appendChild(svg(ICON_MIN));
  head.appendChild(headText);
  head.appendChild(minimize);

  var statusLine = el("p", "status");
  statusLine.setAttribute("role", "status");
  statusLine.hidden = true;

  var body = el("div", "body");
  body.setAttribute("tabindex", "0");
  body.setAttribute("aria-label", "Conversation");
  var welcome = el(
    "p",
    "welcome",
    "Hello! Ask us anything about your accounts, cards or payments. Please never share your PIN or full card number in the chat."
  );
  var list = el("ol", "list");
  list.setAttribute("aria-live", "polite");
  body.appendChild(welcome);
  body.appendChild(list);

  var foot = el("form", "foot");
  foot.setAttribute("autocomplete", "off");
  var nameRow = el("label", "name");
  nameRow.appendChild(el("span", null, "Your name"));
  var nameInput = el("input");
  nameInput.type = "text";
  nameInput.maxLength = 200;
  nameInput.placeholder = "optional";
  nameInput.autocomplete = "name";
  nameInput.value = state.name;
  nameRow.appendChild(nameInput);
  var row = el("div", "row");
  var textLabel = el("label", "sr", "Message");
  textLabel.htmlFor = "hub-webchat-text";
  var textarea = el("textarea");
  textarea.id = "hub-webchat-text";
  textarea.rows = 1;
  textarea.maxLength = MAX_TEXT;
  textarea.placeholder = "Type your message…";
  var sendBtn = el("button", "send");
  sendBtn.type = "submit";
  sendBtn.setAttribute("aria-label", "Send message");
  sendBtn.appendChild(svg(ICON_SEND));
  row.appendChild(textLabel);
  row.appendChild(textarea);
  row.appendChild(sendBtn);
  var legal = el("p", "legal", "Enter sends · Shift+Enter for a new line");
  foot.appendChild(nameRow);
  foot.appendChild(row);
  foot.appendChild(legal);

  panel.appendChild(head);
  panel.appendChild(statusLine);
  panel.appendChild(body);
  panel.appendChild(foot);

  var launcher = el("button", "launcher");
  launcher.type = "button";
  launcher.setAttribute("aria-controls", panel.id);
  launcher.setAttribute("aria-expanded", "false");
  launcher.setAttribute("aria-label", "Open chat");
  launcher.appendChild(svg(ICON_CHAT, "chat-icon"));
  launcher.appendChild(svg(ICON_X, "close-icon"));
  var badge = el("span", "badge");
  badge.hidden = true;
  launcher.appendChild(badge);

  rootEl.appendChild(panel);
  rootEl.appendChild(launcher);
  shadow.appendChild(style);
  shadow.appendChild(rootEl);

  // ------------------------------------------------------------------ rendering
  function pad2(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function clock(iso) {
    var t = Date.parse(iso);
    if (isNaN(t)) return "";
    var d = new Date(t);
    return pad2(d.getHours()) + ":" + pad2(d.getMinutes());
  }

  var nodes = new Map(); // key -> li

  function render() {
    var nearBottom = body.scrollHeight - body.scrollTop - body.clientHeight < 60;
    var items = [];
    var sorted = Array.from(state.messages.values()).sort(function (a, b) {
      return a.id - b.id;
    });
    var noteIndex = 0;
    var notes = state.notes.slice().sort(function (a, b) {
      return a.afterId - b.afterId;
    });
    sorted.forEach(function (m) {
      while (noteIndex < notes.length && notes[noteIndex].afterId < m.id) {
        items.push({ key: "n" + noteIndex, note: notes[noteIndex] });
        noteIndex += 1;
      }
      items.push({ key: "m" + m.id, message: m });
    });
    while (noteIndex < notes.length) {
      items.push({ key: "n" + noteIndex, note: notes[noteIndex] });
      noteIndex += 1;
    }
    state.outbox.forEach(function (e) {
      items.push({ key: "c" + e.client_id, pending: e });
    });

    var seen = new Set();
    var before = list.firstChild;
    items.forEach(function (item) {
      seen.add(item.key);
      var node = nodes.get(item.key);
      if (!node) {
        node = el("li");
        if (!item.note) {
          node._bubble = el("div", "bubble");
          node._meta = el("div", "meta");
          node.appendChild(node._bubble);
          node.appendChild(node._meta);
        }
        nodes.set(item.key, node);
      }
      if (item.note) {
        node.className = "note";
        node.textContent = item.note.text;
      } else if (item.message) {
        var m = item.message;
        var mine = m.direction === "in"; // "in" = from the customer, i.e. from this visitor
        node.className = "msg" + (mine ? " mine" : "");
        node._bubble.textContent = m.text;
        node._meta.textContent = (mine ? "You" : m.author || "Customer service") + " · " + clock(m.created_at);
      } else {
        var p = item.pending;
        node.className = "msg mine " + (p.status === "failed" ? "failed" : "pending");
        node._bubble.textContent = p.text;
        node._meta.textContent = p.status === "failed" ? "Not sent" + (p.error ? ": " + p.error : "") : sock.live ? "Sending…" : "Waiting for connection…";
        if (p.status === "failed") {
          var retry = el("button", "retry", "Try again");
          retry.type = "button";
          retry.addEventListener("click", function () {
            p.status = "sending";
            p.error = null;
            saveOutbox();
            transmit(p);
            render();
          });
          node._meta.appendChild(retry);
        }
      }
      if (node !== before) list.insertBefore(node, before);
      before = node.nextSibling;
    });
    nodes.forEach(function (node, key) {
      if (!seen.has(key)) {
        node.remove();
        nodes.delete(key);
      }
    });
    if (nearBottom || render.forceBottom) body.scrollTop = body.scrollHeight;
    render.forceBottom = false;

    // The name is asked once, before the first message; after that it only takes room.
    var spoke = state.outbox.size > 0;
    state.messages.forEach(function (m) {
      if (m.direction === "in") spoke = true;
    });
    nameRow.hidden = spoke;

    badge.hidden = state.open || state.unread === 0;
    badge.textContent = state.unread > 9 ? "9+" : String(state.unread);
    launcher.setAttribute(
      "aria-label",
      (state.open ? "Close chat" : "Open chat") + (state.unread && !state.open ? " (" + state.unread + " new)" : "")
    );
  }

  function setStatus(live, text) {
    dot.setAttribute("data-live", live ? "true" : "false");
    statusLine.hidden = live || !text;
    statusLine.textContent = text || "";
  }

  // ------------------------------------------------------------------ socket
  function lastMessageId() {
    var max = 0;
    state.messages.forEach(function (m) {
      if (m.id > max) max = m.id;
    });
    return max;
  }

  function connect() {
    sock.started = true;
    clearTimeout(sock.timer);
    sock.timer = null;
    var url = WS_URL;
    var params = [];
    if (state.token) params.push("token=" + encodeURIComponent(state.token));
    var after = lastMessageId();
    if (state.token && after) params.push("after_id=" + after);
    if (QUERY_TYPE) params.push("type=" + encodeURIComponent(QUERY_TYPE));
    if (params.length) url += "?" + params.join("&");
    var ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    sock.ws = ws;
    sock.lastFrameAt = Date.now();
    ws.onmessage = function (ev) {
      if (sock.ws !== ws) return;
      sock.lastFrameAt = Date.now();
      var frame;
      try {
        frame = JSON.parse(ev.data);
      } catch (e) {
        return;
      }
      onFrame(frame);
    };
    ws.onclose = function () {
      if (sock.ws !== ws) return;
      sock.ws = null;
      sock.live = false;
      scheduleReconnect();
    };
    ws.onerror = function () {
      /* onclose follows */
    };
  }

  function scheduleReconnect() {
    clearTimeout(sock.timer);
    setStatus(false, "Connection lost. Reconnecting…");
    render();
    var base = Math.min(20000, 800 * Math.pow(2, sock.attempt));
    sock.attempt += 1;
    sock.timer = setTimeout(connect, base / 2 + Math.random() * base / 2);
  }

  function send(frame) {
    if (!sock.ws || sock.ws.readyState !== WebSocket.OPEN) return false;
    sock.ws.send(JSON.stringify(frame));
    return true;
  }

  function transmit(entry) {
    if (!sock.live) return;
    var frame = { type: "message.send", request_id: entry.client_id, client_id: entry.client_id, text: entry.text };
    if (state.name) frame.name = state.name;
    // For the out-of-hours reply: its language, and the next opening in the visitor's time.
    if (navigator.language) frame.language = String(navigator.language).slice(0, 16);
    try {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (zone) frame.time_zone = String(zone).slice(0, 64);
    } catch (e) {
      /* an old browser: the schedule's time zone is used */
    }
    if (send(frame)) entry.sentAt = Date.now();
  }

  setInterval(function () {
    if (!sock.ws) return;
    if (Date.now() - sock.lastFrameAt > 60000) {
      var ws = sock.ws;
      sock.ws = null;
      sock.live = false;
      ws.onclose = null;
      try {
        ws.close();
      } catch (e) {
        /* ignore */
      }
      scheduleReconnect();
      return;
    }
    if (sock.live) {
      send({ type: "ping" });
      // An unacknowledged message (e.g. dropped by the rate limiter) goes again.
      state.outbox.forEach(function (e) {
        if (e.status === "sending" && Date.now() - e.sentAt > 10000) transmit(e);
      });
    }
  }, 25000);

  window.addEventListener("online", function () {
    if (sock.started && !sock.ws) {
      sock.attempt = 0;
      connect();
    }
  });

  function addMessage(m) {
    if (!m || typeof m.id !== "number") return false;
    if (state.messages.has(m.id)) return false;
    state.messages.set(m.id, m);
    return true;
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "session":
        if (state.token && frame.token !== state.token && !frame.resumed) {
          // The old identity expired: what we show belongs to it.
          state.messages.clear();
          state.notes = [];
        }
        state.token = frame.token;
        save("token", frame.token);
        sock.live = true;
        sock.attempt = 0;
        setStatus(true, "");
        state.outbox.forEach(function (e) {
          if (e.status === "sending") transmit(e);
        });
        render();
        break;
      case "history":
        (frame.messages || []).forEach(addMessage);
        render.forceBottom = true;
        render();
        break;
      case "message":
        if (addMessage(frame.message)) {
          if (frame.message.direction === "out") {
            state.ended = false;
            if (!state.open || document.visibilityState === "hidden") state.unread += 1;
          }
          render();
        }
        break;
      case "ack": {
        var entry = frame.request_id !== undefined ? state.outbox.get(String(frame.request_id)) : null;
        if (entry) {
          state.outbox.delete(entry.client_id);
          saveOutbox();
        }
        addMessage(frame.message);
        render.forceBottom = true;
        render();
        break;
      }
      case "conversation_closed":
        if (!state.ended) {
          state.ended = true;
          state.notes.push({ afterId: lastMessageId() + 0.5, text: "The conversation has ended. Write again any time." });
          render.forceBottom = true;
          render();
        }
        break;
      case "error": {
        var failed = frame.request_id !== undefined ? state.outbox.get(String(frame.request_id)) : null;
        if (failed) {
          failed.status = "failed";
          failed.error = frame.message || frame.code || "";
          saveOutbox();
          render();
        }
        // rate_limited frames carry no request_id: the periodic retry resends.
        break;
      }
      default:
        break;
    }
  }

  // ------------------------------------------------------------------ interaction
  function autoGrow() {
    textarea.style.height = "auto";
    textarea.style.height = Math.min(textarea.scrollHeight + 2, 140) + "px";
  }

  function submit() {
    var text = textarea.value.trim();
    if (!text) return;
    if (text.length > MAX_TEXT) return;
    var name = nameInput.value.trim();
    if (name !== state.name) {
      state.name = name;
      save("name", name || null);
    }
    var entry = { client_id: uuid4(), text: text, status: "sending", error: null, createdAt: new Date().toISOString(), sentAt: 0 };
    state.outbox.set(entry.client_id, entry);
    saveOutbox();
    textarea.value = "";
    autoGrow();
    if (state.ended) state.ended = false;
    if (!sock.started) connect();
    transmit(entry);
    render.forceBottom = true;
    render();
  }

  function setOpen(open) {
    state.open = open;
    // Per tab: a visitor moving between the bank's pages keeps the chat as they left it.
    try {
      window.sessionStorage.setItem(KEY + "open", open ? "1" : "0");
    } catch (e) {
      /* storage disabled */
    }
    panel.hidden = !open;
    rootEl.classList.toggle("open", open);
    launcher.setAttribute("aria-expanded", open ? "true" : "false");
    if (open) {
      state.unread = 0;
      if (!sock.started) connect();
      render.forceBottom = true;
      render();
      setTimeout(function () {
        textarea.focus();
      }, 0);
    } else {
      render();
    }
  }

  launcher.addEventListener("click", function () {
    setOpen(!state.open);
  });
  minimize.addEventListener("click", function () {
    setOpen(false);
    launcher.focus();
  });
  panel.addEventListener("keydown", function (e) {
    if (e.key === "Escape") {
      setOpen(false);
      launcher.focus();
    }
  });
  textarea.addEventListener("input", autoGrow);
  textarea.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
      e.preventDefault();
      submit();
    }
  });
  foot.addEventListener("submit", function (e) {
    e.preventDefault();
    submit();
    textarea.focus();
  });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && state.open && state.unread) {
      state.unread = 0;
      render();
    }
  });

  // ------------------------------------------------------------------ start
  function start() {
    document.body.appendChild(host);
    render();
    // Returning visitors (or unsent messages) reconnect at once so replies arrive; new
    // visitors open a socket only when they open the chat.
    if (state.token || state.outbox.size) connect();
    var wasOpen = null;
    try {
      wasOpen = window.sessionStorage.getItem(KEY + "open");
    } catch (e) {
      /* storage disabled */
    }
    if (wasOpen === "1" || (wasOpen === null && attr("data-open", "") === "true")) setOpen(true);
  }

  window.HubWebchat = {
    __loaded: true,
    open: function () {
      setOpen(true);
    },
    close: function () {
      setOpen(false);
    },
    toggle: function () {
      setOpen(!state.open);
    },
  };

  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
