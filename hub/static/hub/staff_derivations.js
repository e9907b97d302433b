/* Derivations and absences (/staff/derivations/): a client of /api/staff/operators/,
 * /api/derivations/preview/, /api/derivations/ and /api/staff/absences/ (docs/protocol.md).
 *
 * Batch derivation: pick the absent operator, read their open conversations, choose one
 * colleague or a spread, preview (nothing moves), confirm.  Every rule (who may receive,
 * skills, capacity, absences) is the server's; the page shows its plan and its refusals.
 * The consoles follow by themselves (the derivation's console events).
 */
(function () {
  "use strict";

  var A = window.HubAdmin;
  var main = document.getElementById("derive-main");
  if (!main || !A) return;
  A.setCsrf(main.getAttribute("data-csrf"));
  var canForce = main.getAttribute("data-can-force") === "true";

  var state = { operators: [], conversations: [], plan: null, busy: false };

  function $(id) {
    return document.getElementById(id);
  }

  var notices = $("derive-notices");
  var deriveForm = $("derive-form");
  var absenceForm = $("absence-form");

  function byId(id) {
    for (var i = 0; i < state.operators.length; i++) if (state.operators[i].id === id) return state.operators[i];
    return null;
  }

  function plural(n, word) {
    return n + " " + word + (n === 1 ? "" : "s");
  }

  function presenceText(o) {
    var parts = [o.is_active ? o.presence : "deactivated"];
    if (o.absent_now) parts.push("absent");
    parts.push(o.load + "/" + o.capacity + " open");
    return parts.join(" · ");
  }

  // --- operators -------------------------------------------------------------------------
  function loadOperators() {
    return A.api("GET", "/api/staff/operators/").then(function (res) {
      if (!res.ok) {
        A.notify(notices, res.error.message, "error");
        return false;
      }
      state.operators = res.data.operators;
      fillOperatorSelects();
      return true;
    });
  }

  function fillSelect(select, first, operators, label) {
    var current = select.value;
    select.textContent = "";
    select.appendChild(A.el("option", { value: first[0], text: first[1] }));
    operators.forEach(function (o) {
      select.appendChild(A.el("option", { value: String(o.id), text: label(o) }));
    });
    if (select.querySelector('option[value="' + current + '"]')) select.value = current;
  }

  function fillOperatorSelects() {
    fillSelect($("derive-from"), ["", "Choose an operator…"], state.operators, function (o) {
      return o.name + " — " + presenceText(o);
    });
    fillTargets();
    var receivers = state.operators.filter(function (o) {
      return o.can_receive;
    });
    fillSelect($("absence-operator"), ["", "Choose an operator…"], receivers, function (o) {
      return o.name;
    });
    fillSelect($("absence-colleague"), ["", "Spread over the operators online"], receivers, function (o) {
      return o.name;
    });
  }

  function fillTargets() {
    var from = parseInt($("derive-from").value, 10);
    var targets = state.operators.filter(function (o) {
      return o.can_receive && o.id !== from;
    });
    fillSelect($("derive-to"), ["spread", "Spread over the operators online"], targets, function (o) {
      return o.name + " — " + presenceText(o);
    });
    $("derive-force-field").hidden = !canForce || $("derive-to").value === "spread";
  }

  // --- the source's conversations ----------------------------------------------------------
  function loadConversations(keepResult) {
    var from = $("derive-from").value;
    var box = $("derive-conversations-box");
    if (!keepResult) resetPlan();
    if (!from) {
      box.hidden = true;
      $("derive-preview").disabled = true;
      return Promise.resolve();
    }
    return A.api("GET", "/api/staff/operators/" + from + "/conversations/").then(function (res) {
      if (!res.ok) {
        A.showError(deriveForm, res.error);
        return;
      }
      state.conversations = res.data.conversations;
      var body = $("derive-conversations");
      body.textContent = "";
      var n = res.data.total;
      $("derive-conversations-title").textContent = n
        ? plural(n, "open conversation") + " of " + res.data.operator.name
        : res.data.operator.name + " has no open conversations";
      state.conversations.forEach(function (c) {
        body.appendChild(
          A.el("tr", { "data-conversation": c.id }, [
            A.el("td", { text: c.customer.name }),
            A.el("td", { text: c.query_type ? c.query_type.name : "—" }),
            A.el("td", { text: c.channel }),
            A.el("td", { text: A.fmtDateTime(c.assigned_at) }),
            A.el("td", { text: A.fmtDateTime(c.last_customer_message_at) }),
          ])
        );
      });
      if (!n) body.appendChild(A.el("tr", {}, [A.el("td", { colspan: "5", className: "table-empty", text: "Nothing to derive." })]));
      if (n > state.conversations.length) {
        var more = n - state.conversations.length;
        body.appendChild(A.el("tr", {}, [A.el("td", { colspan: "5", className: "table-empty", text: "… and " + plural(more, "more conversation") + "." })]));
      }
      box.hidden = false;
      $("derive-preview").disabled = n === 0;
    });
  }

  // --- preview and confirm ---------------------------------------------------------------
  function resetPlan() {
    state.plan = null;
    $("derive-plan").hidden = true;
    $("derive-plan").classList.remove("plan-done");
    $("derive-confirm").hidden = true;
    A.clearErrors(deriveForm);
  }

  function derivationBody() {
    var to = $("derive-to").value;
    return {
      from_operator_id: parseInt($("derive-from").value, 10),
      to_operator_id: to === "spread" ? null : parseInt(to, 10),
      force: canForce && to !== "spread" && $("derive-force").checked,
    };
  }

  function targetName(key) {
    if (key === "queue") return "Back to the queue (nobody free serves the type)";
    var o = byId(parseInt(key, 10));
    return o ? o.name : "Operator #" + key;
  }

  function showPlan(plan, done) {
    var from = byId(plan.from_operator_id);
    var name = from ? from.name : "the operator";
    $("derive-plan-title").textContent = done
      ? "Done: " + plural(plan.count, "conversation") + " moved"
      : plural(plan.count, "conversation") + " of " + name + " would move:";
    var list = $("derive-plan-list");
    list.textContent = "";
    Object.keys(plan.per_target).forEach(function (key) {
      list.appendChild(
        A.el("li", { className: "derive-plan-target", "data-target": key }, [
          A.el("span", { className: "derive-plan-name", text: targetName(key) }),
          ": ",
          A.el("strong", { className: "derive-plan-count", text: String(plan.per_target[key]) }),
        ])
      );
    });
    $("derive-plan").classList.toggle("plan-done", !!done);
    $("derive-plan").hidden = false;
  }

  deriveForm.addEventListener("submit", function (event) {
    event.preventDefault();
    if (state.busy) return;
    resetPlan();
    if (!$("derive-from").value) {
      A.showError(deriveForm, { message: "Choose the operator whose conversations move.", data: { field: "from_operator_id" } });
      return;
    }
    var body = derivationBody();
    $("derive-preview").disabled = true;
    A.api("POST", "/api/derivations/preview/", body).then(function (res) {
      $("derive-preview").disabled = false;
      if (!res.ok) {
        A.showError(deriveForm, res.error);
        return;
      }
      state.plan = { body: body, plan: res.data };
      showPlan(res.data, false);
      var confirm = $("derive-confirm");
      confirm.textContent = "Confirm: move " + res.data.count;
      confirm.hidden = false;
      confirm.focus();
    });
  });

  $("derive-confirm").addEventListener("click", function () {
    if (!state.plan || state.busy) return;
    state.busy = true;
    var body = Object.assign({}, state.plan.body, { note: $("derive-note").value });
    $("derive-confirm").disabled = true;
    $("derive-preview").disabled = true;
    $("derive-progress").hidden = false;
    main.setAttribute("aria-busy", "true");
    A.api("POST", "/api/derivations/", body).then(function (res) {
      state.busy = false;
      $("derive-confirm").disabled = false;
      $("derive-progress").hidden = true;
      main.setAttribute("aria-busy", "false");
      if (!res.ok) {
        $("derive-confirm").hidden = true;
        $("derive-preview").disabled = false;
        A.showError(deriveForm, res.error);
        return;
      }
      var summary = res.data.derivation;
      state.plan = null;
      $("derive-confirm").hidden = true;
      showPlan(summary, true);
      $("derive-note").value = "";
      A.notify(notices, "Derivation #" + summary.batch_id + ": " + plural(summary.count, "conversation") + " moved.", "ok");
      // The result stays on screen while the list empties.
      loadOperators().then(function () {
        return loadConversations(true);
      });
    });
  });

  $("derive-from").addEventListener("change", function () {
    fillTargets();
    loadConversations(false);
  });
  ["derive-to", "derive-force"].forEach(function (id) {
    $(id).addEventListener("change", function () {
      if (id === "derive-to") $("derive-force-field").hidden = !canForce || $("derive-to").value === "spread";
      resetPlan();
    });
  });

  // --- absences --------------------------------------------------------------------------
  var STATUS = { scheduled: ["Planned", "pill-accent"], active: ["Running", "pill-warn"], ended: ["Ended", ""], cancelled: ["Cancelled", ""] };

  function loadAbsences() {
    return A.api("GET", "/api/staff/absences/").then(function (res) {
      if (!res.ok) {
        A.notify(notices, res.error.message, "error");
        return;
      }
      var body = $("absences-body");
      body.textContent = "";
      if (!res.data.absences.length) {
        body.appendChild(A.el("tr", {}, [A.el("td", { colspan: "4", className: "table-empty", text: "No absence planned." })]));
      }
      res.data.absences.forEach(function (a) {
        var status = STATUS[a.status] || [a.status, ""];
        var action = null;
        if (a.status === "scheduled" || a.status === "active") {
          action = A.el("button", {
            type: "button",
            className: "btn btn-ghost btn-sm",
            "data-absence": String(a.id),
            "aria-label": (a.status === "scheduled" ? "Cancel" : "End now") + ": absence of " + a.operator.name,
            text: a.status === "scheduled" ? "Cancel" : "End now",
          });
        }
        body.appendChild(
          A.el("tr", { "data-absence-row": String(a.id) }, [
            A.el("td", {}, [
              A.el("strong", { text: a.operator.name }),
              A.el("span", { className: "cell-sub", text: "→ " + (a.to_operator ? a.to_operator.name : "spread") }),
              a.reason ? A.el("span", { className: "cell-sub", text: a.reason }) : null,
            ]),
            A.el("td", {}, [
              A.el("span", { text: A.fmtDateTime(a.starts_at) }),
              A.el("span", { className: "cell-sub", text: "to " + A.fmtDateTime(a.ends_at) }),
            ]),
            A.el("td", {}, [A.el("span", { className: "pill " + status[1], text: status[0] })]),
            A.el("td", { className: "actions" }, [action]),
          ])
        );
      });
    });
  }

  absenceForm.addEventListener("submit", function (event) {
    event.preventDefault();
    A.clearErrors(absenceForm);
    var body = {
      operator_id: parseInt($("absence-operator").value, 10) || null,
      starts_at: A.localToIso($("absence-from").value) || null,
      ends_at: A.localToIso($("absence-to").value) || null,
      reason: $("absence-reason").value,
    };
    var colleague = $("absence-colleague").value;
    if (colleague) body.to_operator_id = parseInt(colleague, 10);
    var button = $("absence-create");
    button.disabled = true;
    A.api("POST", "/api/staff/absences/", body).then(function (res) {
      button.disabled = false;
      if (!res.ok) {
        A.showError(absenceForm, res.error);
        return;
      }
      var a = res.data.absence;
      $("absence-reason").value = "";
      A.notify(notices, "Absence of " + a.operator.name + " planned from " + A.fmtDateTime(a.starts_at) + ".", "ok");
      loadAbsences();
    });
  });

  $("absences-body").addEventListener("click", function (event) {
    var button = event.target.closest("button[data-absence]");
    if (!button) return;
    button.disabled = true;
    A.api("DELETE", "/api/staff/absences/" + button.getAttribute("data-absence") + "/").then(function (res) {
      button.disabled = false;
      if (!res.ok) {
        A.notify(notices, res.error.message, "error");
        return;
      }
      var a = res.data.absence;
      A.notify(notices, "Absence of " + a.operator.name + (a.status === "cancelled" ? " cancelled." : " ended now."), "ok");
      loadAbsences().then(loadOperators);
    });
  });

  function prefillAbsence() {
    var start = new Date();
    start.setMinutes(0, 0, 0);
    start.setHours(start.getHours() + 1);
    var end = new Date(start.getTime() + 8 * 3600 * 1000);
    $("absence-from").value = A.toLocalInput(start);
    $("absence-to").value = A.toLocalInput(end);
  }

  // Presence and loads change while the page is open: refresh them when it is looked at again.
  window.addEventListener("focus", function () {
    if (!state.busy) loadOperators();
  });

  prefillAbsence();
  Promise.all([loadOperators(), loadAbsences()]).then(function () {
    main.setAttribute("aria-busy", "false");
    main.setAttribute("data-ready", "true");
  });
})();
