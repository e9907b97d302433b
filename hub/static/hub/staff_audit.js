/* The audit log viewer (/staff/audit/): a read-only client of /api/audit/ (filters, pages),
 * /api/audit/export.csv (the same filters) and /api/audit/verify/ (docs/protocol.md).
 *
 * The filters live in the page's address (?actor=&action=…), so a reload or a shared link
 * shows the same entries; the export link always carries the filters on screen.
 */
(function () {
  "use strict";

  var A = window.HubAdmin;
  var main = document.getElementById("audit-main");
  if (!main || !A) return;
  A.setCsrf(main.getAttribute("data-csrf"));

  var FILTERS = ["actor", "action", "conversation", "since", "until", "outcome"];
  var PAGE_SIZE = 50;
  var state = { page: 1, applied: {}, loading: null };

  function $(id) {
    return document.getElementById(id);
  }

  var form = $("audit-filters");
  var notices = $("audit-notices");

  function input(name) {
    return form.querySelector('[name="' + name + '"]');
  }

  function readForm() {
    var out = {};
    FILTERS.forEach(function (name) {
      var value = input(name).value.trim();
      if (value) out[name] = value;
    });
    return out;
  }

  function query(filters, extra) {
    var parts = [];
    Object.keys(filters).forEach(function (key) {
      parts.push(encodeURIComponent(key) + "=" + encodeURIComponent(filters[key]));
    });
    Object.keys(extra || {}).forEach(function (key) {
      parts.push(key + "=" + encodeURIComponent(extra[key]));
    });
    return parts.length ? "?" + parts.join("&") : "";
  }

  function ensureOption(select, value, label) {
    if (value && !select.querySelector('option[value="' + CSS.escape(value) + '"]')) {
      select.appendChild(A.el("option", { value: value, text: label || value }));
    }
  }

  // --- choices ---------------------------------------------------------------------------
  function loadChoices() {
    return A.api("GET", "/api/staff/audit/choices/").then(function (res) {
      if (!res.ok) {
        A.notify(notices, res.error.message, "error");
        return;
      }
      var actor = input("actor");
      res.data.actors.forEach(function (a) {
        actor.appendChild(A.el("option", { value: String(a.id), text: a.name + " (" + a.username + ")" }));
      });
      var action = input("action");
      res.data.actions.forEach(function (name) {
        action.appendChild(A.el("option", { value: name, text: name }));
      });
    });
  }

  // --- entries ---------------------------------------------------------------------------
  function outcomePill(outcome) {
    return A.el("span", { className: "pill " + (outcome === "ok" ? "pill-ok" : "pill-danger"), text: outcome === "ok" ? "Done" : outcome });
  }

  function details(entry) {
    var parts = [];
    if (entry.on_behalf_of) parts.push(A.el("span", { className: "cell-sub", text: "On behalf of " + entry.on_behalf_of }));
    if (entry.before !== null || entry.after !== null) {
      var body = {};
      if (entry.before !== null) body.before = entry.before;
      if (entry.after !== null) body.after = entry.after;
      parts.push(
        A.el("details", {}, [
          A.el("summary", { text: entry.before !== null && entry.after !== null ? "Before and after" : entry.after !== null ? "Recorded" : "Before" }),
          A.el("pre", { className: "audit-json mono", text: JSON.stringify(body, null, 2) }),
        ])
      );
    }
    return parts;
  }

  function render(data) {
    var body = $("audit-body");
    body.textContent = "";
    if (!data.entries.length) {
      body.appendChild(A.el("tr", {}, [A.el("td", { colspan: "7", className: "table-empty", text: "No entry matches these filters." })]));
    }
    data.entries.forEach(function (e) {
      var object = [];
      if (e.conversation_id) object.push(A.el("span", { className: "mono", text: e.conversation_id }));
      if (e.object_type) object.push(A.el("span", { className: "cell-sub", text: e.object_type + " " + e.object_id }));
      body.appendChild(
        A.el("tr", { "data-sequence": String(e.sequence), "data-action": e.action, "data-outcome": e.outcome }, [
          A.el("td", { className: "num", text: String(e.sequence) }),
          A.el("td", { text: A.fmtDateTime(e.at), title: e.at }),
          A.el("td", {}, [A.el("span", { text: e.actor_name || "—" }), A.el("span", { className: "cell-sub", text: e.actor_role })]),
          A.el("td", { className: "mono", text: e.action }),
          A.el("td", {}, [outcomePill(e.outcome)]),
          A.el("td", {}, object),
          A.el("td", {}, details(e)),
        ])
      );
    });
    var pages = Math.max(1, Math.ceil(data.total / data.page_size));
    $("audit-count").textContent = "· " + data.total + (data.total === 1 ? " entry" : " entries");
    $("audit-page").textContent = "Page " + data.page + " of " + pages;
    $("audit-newer").disabled = data.page <= 1;
    $("audit-older").disabled = !data.next_page;
  }

  function load() {
    var filters = state.applied;
    var url = "/api/audit/" + query(filters, { page: state.page, page_size: PAGE_SIZE });
    $("audit-export").setAttribute("href", "/api/audit/export.csv" + query(filters));
    main.setAttribute("aria-busy", "true");
    A.clearErrors(form);
    var request = A.api("GET", url);
    state.loading = request;
    return request.then(function (res) {
      if (state.loading !== request) return; // a newer request is on its way
      main.setAttribute("aria-busy", "false");
      if (!res.ok) {
        A.showError(form, res.error);
        return;
      }
      render(res.data);
      main.setAttribute("data-ready", "true");
    });
  }

  function apply(filters, page) {
    state.applied = filters;
    state.page = page || 1;
    var address = window.location.pathname + query(filters, state.page > 1 ? { page: state.page } : {});
    window.history.replaceState(null, "", address);
    return load();
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    apply(readForm(), 1);
  });

  $("audit-reset").addEventListener("click", function () {
    FILTERS.forEach(function (name) {
      input(name).value = "";
    });
    apply({}, 1);
  });

  $("audit-newer").addEventListener("click", function () {
    apply(state.applied, Math.max(1, state.page - 1));
  });
  $("audit-older").addEventListener("click", function () {
    apply(state.applied, state.page + 1);
  });

  // --- the chain -------------------------------------------------------------------------
  $("audit-verify").addEventListener("click", function () {
    var button = $("audit-verify");
    var box = $("verify-box");
    button.disabled = true;
    $("verify-result").textContent = "Checking every entry…";
    box.className = "staff-notice notice-info";
    box.hidden = false;
    A.api("GET", "/api/audit/verify/").then(function (res) {
      button.disabled = false;
      if (!res.ok) {
        box.className = "staff-notice notice-error";
        $("verify-result").textContent = res.error.message;
        return;
      }
      var r = res.data;
      box.className = "staff-notice " + (r.ok ? "notice-ok" : "notice-error");
      box.setAttribute("data-ok", r.ok ? "true" : "false");
      $("verify-result").textContent = r.ok
        ? "Chain intact: " + r.checked + (r.checked === 1 ? " entry" : " entries") + " checked, none edited, removed or reordered."
        : "Chain broken at entry " + r.sequence + " (" + r.reason + "): " + r.problem + ". " + r.checked + " entries before it hold.";
    });
  });

  // --- start: the filters of the address -------------------------------------------------
  loadChoices().then(function () {
    var params = new URLSearchParams(window.location.search);
    var filters = {};
    FILTERS.forEach(function (name) {
      var value = params.get(name);
      if (!value) return;
      if (name === "actor" || name === "action") ensureOption(input(name), value);
      input(name).value = value;
      filters[name] = value;
    });
    state.applied = filters;
    state.page = Math.max(1, parseInt(params.get("page"), 10) || 1);
    load();
  });
})();
