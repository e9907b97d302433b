/* What every staff page shares — the admins' pages (users and roles, derivations and
 * absences, the audit log), the coordinators' configuration pages (knowledge base, HSM
 * templates, routing) and the opening-hours page: calling the hub's REST API with the CSRF
 * token, building nodes, notices, dates, dialogs, the conflict banner, the editors'
 * keyboard keys, and showing the server's error next to the field it names.
 *
 * The pages hold no rule: they send what was typed and show the server's answer.  An error
 * body is ``{code, message, data}``; ``data.field`` names the field (``buttons[1].text``,
 * ``keywords``…).  A form marks each input with ``data-field="<name>"`` and the paragraph
 * for its error with ``data-error-for="<name>"``; ``showError`` looks for the most precise
 * name first (``buttons[1].text``, then ``buttons[1]``, then ``buttons``) and falls back to
 * the form's own error box.
 *
 * No library; exposed as ``window.HubStaff`` and, with the admins' pages' own signatures
 * (a notice box of their own, an error box that may be a dialog's), ``window.HubAdmin``.
 */
(function () {
  "use strict";

  var KEEPS_EDITS = "Your session has ended. Sign in again (reload the page); your edits are still on screen.";
  var csrf = "";
  var sessionEnded = KEEPS_EDITS;

  /* ``message``: what a 401 says (the editors keep what was typed on screen). */
  function setCsrf(token, message) {
    csrf = token || "";
    sessionEnded = message || KEEPS_EDITS;
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      var value = attrs[key];
      if (value === null || value === undefined || value === false) return;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else if (key === "hidden") node.hidden = true;
      else if (key === "checked") node.checked = true;
      else if (key === "value") node.value = value;
      else node.setAttribute(key, value === true ? "" : value);
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === false) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function normalError(status, body) {
    if (body && typeof body.code === "string") {
      body.data = body.data || {};
      if (body.code === "not_authenticated") body.message = sessionEnded;
      return body;
    }
    var message = "The hub answered with an error (HTTP " + status + "). Try again.";
    if (status === 403) message = "The hub refused the request (HTTP 403). Reload the page and sign in again.";
    return { code: "http_" + status, message: message, data: {} };
  }

  /* fetch → {ok, status, data} or {ok: false, status, error: {code, message, data}}. */
  function api(method, url, body) {
    var init = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (method !== "GET") init.headers["X-CSRFToken"] = csrf;
    return fetch(url, init).then(
      function (response) {
        if (response.status === 204) return { ok: true, status: 204, data: null };
        return response.json().then(
          function (data) {
            if (response.ok) return { ok: true, status: response.status, data: data };
            return { ok: false, status: response.status, error: normalError(response.status, data) };
          },
          function () {
            return { ok: false, status: response.status, error: normalError(response.status, null) };
          }
        );
      },
      function () {
        return {
          ok: false,
          status: 0,
          error: { code: "network", message: "The hub did not answer. Check the connection and try again.", data: {} },
        };
      }
    );
  }

  /* One dismissable notice in ``box`` (replacing the one before).  ``opts``: ``className``
   * of the notice (default "staff-notice"), ``closeClass`` of its close button (default
   * "icon-btn"), ``alert`` to give an error the role "alert". */
  function noticeIn(box, text, kind, opts) {
    opts = opts || {};
    var note = el(
      "div",
      { className: (opts.className || "staff-notice") + " notice-" + (kind || "info"), role: opts.alert && kind === "error" ? "alert" : null },
      [el("span", { text: text })]
    );
    var close = el("button", { type: "button", className: opts.closeClass || "icon-btn", "aria-label": "Dismiss" }, ["×"]);
    close.addEventListener("click", function () {
      note.remove();
    });
    note.appendChild(close);
    box.textContent = "";
    box.appendChild(note);
    return note;
  }

  /* A notice in the page's ``#staff-notices``. */
  function notify(text, kind) {
    var box = document.getElementById("staff-notices");
    if (!box) return;
    noticeIn(box, text, kind);
  }

  function cssEscape(text) {
    return window.CSS && CSS.escape ? CSS.escape(text) : String(text).replace(/["\\\[\]\.]/g, "\\$&");
  }

  /* Hide every field's error and the form's own error boxes (``boxes``, a selector). */
  function clearErrorsIn(root, boxes) {
    root.querySelectorAll("[data-error-for]").forEach(function (node) {
      node.textContent = "";
      node.hidden = true;
    });
    root.querySelectorAll("[aria-invalid]").forEach(function (node) {
      node.removeAttribute("aria-invalid");
    });
    root.querySelectorAll(boxes).forEach(function (node) {
      node.textContent = "";
      node.hidden = true;
    });
  }

  function clearErrors(root) {
    clearErrorsIn(root, ".form-error");
  }

  function candidates(field) {
    var names = [];
    var name = String(field || "");
    while (name) {
      names.push(name);
      var cut = Math.max(name.lastIndexOf("."), name.lastIndexOf("["));
      if (cut <= 0) break;
      name = name.slice(0, cut);
    }
    return names;
  }

  /* Show ``error`` next to the field ``data.field`` names (focusing that field) →
   * {field, target}; else in the first of ``boxes`` under ``root`` → {field: "", target}
   * (target null when there is none). */
  function placeError(root, error, boxes) {
    var names = candidates(error.data && error.data.field);
    for (var i = 0; i < names.length; i++) {
      var slot = root.querySelector('[data-error-for="' + cssEscape(names[i]) + '"]');
      if (!slot) continue;
      slot.textContent = error.message;
      slot.hidden = false;
      var input = root.querySelector('[data-field="' + cssEscape(names[i]) + '"]');
      if (input) {
        input.setAttribute("aria-invalid", "true");
        if (typeof input.focus === "function") input.focus();
      }
      return { field: names[i], target: input || slot };
    }
    var box = root.querySelector(boxes);
    if (box) {
      box.textContent = error.message;
      box.hidden = false;
    }
    return { field: "", target: box };
  }

  /* Returns the field name the error was shown at, or "" (then in ``.form-error``, or as a
   * notice when the form has no such box). */
  function showError(root, error) {
    var placed = placeError(root, error, ".form-error");
    if (!placed.field && !placed.target) notify(error.message, "error");
    return placed.field;
  }

  function debounce(fn, ms) {
    var timer = null;
    return function () {
      var args = arguments;
      clearTimeout(timer);
      timer = setTimeout(function () {
        fn.apply(null, args);
      }, ms);
    };
  }

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function when(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    return d.toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
  }

  /* "25 Nov 2026, 14:05" in the browser's time zone. */
  function fmtDateTime(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return iso;
    var months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    return d.getDate() + " " + months[d.getMonth()] + " " + d.getFullYear() + ", " + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  /* The datetime-local value of a Date. */
  function toLocalInput(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  /* A datetime-local value ("2026-12-01T09:00", browser time) as ISO 8601 with its offset. */
  function localToIso(value) {
    if (!value) return "";
    var d = new Date(value);
    if (isNaN(d.getTime())) return "";
    var offset = -d.getTimezoneOffset();
    var abs = Math.abs(offset);
    return toLocalInput(d) + ":00" + (offset >= 0 ? "+" : "-") + pad(Math.floor(abs / 60)) + ":" + pad(abs % 60);
  }

  /* Dialogs: open with the opener remembered, close and give the focus back. */
  function openDialog(dialog, opener, focus) {
    dialog._opener = opener || document.activeElement;
    if (!dialog.open) dialog.showModal();
    if (focus) focus.focus();
  }

  function closeDialog(dialog) {
    if (dialog.open) dialog.close();
  }

  function wireDialog(dialog) {
    dialog.addEventListener("close", function () {
      var opener = dialog._opener;
      dialog._opener = null;
      if (opener && document.contains(opener)) opener.focus();
    });
    dialog.querySelectorAll("[data-dismiss]").forEach(function (button) {
      button.addEventListener("click", function () {
        closeDialog(dialog);
      });
    });
  }

  /* The conflict banner: ``#conflict`` with ``#conflict-text``, ``#conflict-reload`` and
   * ``#conflict-dismiss``; ``onReload`` loads the other person's version. */
  function showConflict(text, onReload) {
    var banner = document.getElementById("conflict");
    document.getElementById("conflict-text").textContent = text;
    banner.hidden = false;
    banner.focus();
    document.getElementById("conflict-reload").onclick = function () {
      banner.hidden = true;
      onReload();
    };
    document.getElementById("conflict-dismiss").onclick = function () {
      banner.hidden = true;
    };
  }

  function hideConflict() {
    var banner = document.getElementById("conflict");
    if (banner) banner.hidden = true;
  }

  /* A ``stale_version`` refusal in words: "They saved version 4 after you loaded version 3." + ``tail``. */
  function staleText(error, loadedVersion, tail) {
    return "They saved version " + error.data.version + " after you loaded version " + loadedVersion + ". " + tail;
  }

  /* The editors' keys: Ctrl/⌘+S saves, Alt+N starts a new item. */
  function editorKeys(onSave, onNew) {
    document.addEventListener("keydown", function (event) {
      if ((event.ctrlKey || event.metaKey) && event.key === "s") {
        event.preventDefault();
        onSave();
      } else if (event.altKey && (event.key === "n" || event.key === "N")) {
        event.preventDefault();
        onNew();
      }
    });
  }

  /* A two-step button ("Retire…", then "Confirm: retire for good"): true on the second press. */
  function armed(state, button) {
    if (state.retireArmed) return true;
    state.retireArmed = true;
    button.textContent = "Confirm: retire for good";
    button.focus();
    return false;
  }

  /* Refill a language filter with the languages of ``items``, keeping the choice if it is still there. */
  function fillLanguages(select, items) {
    var keep = select.value;
    var languages = {};
    items.forEach(function (item) {
      languages[item.language] = true;
    });
    select.textContent = "";
    select.appendChild(el("option", { value: "", text: "All" }));
    Object.keys(languages)
      .sort()
      .forEach(function (code) {
        select.appendChild(el("option", { value: code, text: code }));
      });
    select.value = languages[keep] ? keep : "";
  }

  /* The preview's refusal (``#preview-problem`` in ``#preview``); ``text`` null hides it. */
  function previewProblem(text) {
    var problem = document.getElementById("preview-problem");
    var shown = text !== null;
    problem.hidden = !shown;
    if (shown) problem.textContent = text;
    document.getElementById("preview").classList.toggle("has-problem", shown);
  }

  /* The page has loaded: ``main`` stops being busy and is marked ready. */
  function ready(main) {
    main.setAttribute("aria-busy", "false");
    main.setAttribute("data-ready", "true");
  }

  var shared = {
    setCsrf: setCsrf,
    api: api,
    el: el,
    notify: notify,
    noticeIn: noticeIn,
    clearErrors: clearErrors,
    showError: showError,
    placeError: placeError,
    debounce: debounce,
    pad: pad,
    when: when,
    fmtDateTime: fmtDateTime,
    localToIso: localToIso,
    toLocalInput: toLocalInput,
    openDialog: openDialog,
    closeDialog: closeDialog,
    wireDialog: wireDialog,
    showConflict: showConflict,
    hideConflict: hideConflict,
    staleText: staleText,
    editorKeys: editorKeys,
    armed: armed,
    fillLanguages: fillLanguages,
    previewProblem: previewProblem,
    ready: ready,
    cssEscape: cssEscape,
  };
  window.HubStaff = shared;

  /* The admins' pages: a notice goes to the box they name, an error to the form's or the
   * dialog's error box, and showError returns the element that got the message. */
  var ADMIN_BOXES = ".form-error, .dialog-error";
  window.HubAdmin = Object.assign({}, shared, {
    setCsrf: function (token) {
      setCsrf(token, "Your session has ended. Sign in again (reload the page).");
    },
    notify: function (box, text, kind) {
      return noticeIn(box, text, kind, { closeClass: "icon-close", alert: true });
    },
    clearErrors: function (form) {
      clearErrorsIn(form, ADMIN_BOXES);
    },
    showError: function (form, error) {
      return placeError(form, error, ADMIN_BOXES).target;
    },
  });
})();
