/* The coordinators' WhatsApp-templates page (/coordinator/templates/).
 *
 * A client of the templates REST API (docs/hsm.md, docs/protocol.md) and nothing more: it
 * lists the live templates by status, creates and edits them, moves them through the
 * review flow (draft → submitted → approved / rejected, approved ↔ paused), retires them
 * and shows each one's history.  Every content and status rule is the server's; the page
 * shows the server's refusal next to the field it names (``buttons[1].url``,
 * ``body_examples[0]``, ``rejection_reason``…).  Writes carry the version that was loaded;
 * ``stale_version`` offers to reload.
 *
 * The preview asks the server (POST /api/hsm/templates/preview/) to check the parts being
 * typed and fill them with the examples; how many examples the body needs comes from that
 * answer, so the browser never parses placeholders itself.
 */
(function () {
  "use strict";

  var H = window.HubStaff;
  var main = document.getElementById("templates-main");
  if (!main || !H) return;
  H.setCsrf(main.getAttribute("data-csrf"));
  var el = H.el;

  var TRANSITIONS = JSON.parse(document.getElementById("transitions").textContent);
  var STATUS_LABEL = { draft: "Draft", submitted: "Submitted", approved: "Approved", rejected: "Rejected", paused: "Paused" };
  // What each move means, in the words of the page (the server decides whether it is allowed).
  var MOVE_LABEL = {
    "draft>submitted": "Submit to WhatsApp",
    "submitted>approved": "WhatsApp approved it",
    "submitted>rejected": "WhatsApp rejected it…",
    "submitted>draft": "Withdraw to draft",
    "rejected>submitted": "Appeal (submit again unchanged)",
    "rejected>draft": "Back to draft",
    "approved>paused": "WhatsApp paused it",
    "paused>approved": "WhatsApp lifted the pause",
  };

  var state = {
    templates: [],
    status: "",
    current: null,
    examples: [],
    bodyCount: 0,
    headerCount: 0,
    buttons: [],
    dirty: false,
    retireArmed: false,
    previewSeq: 0,
  };

  function $(id) {
    return document.getElementById(id);
  }

  var form = $("template-form");

  // --- the list ------------------------------------------------------------------------
  function loadTemplates() {
    return H.api("GET", "/api/hsm/templates/").then(function (res) {
      if (!res.ok) throw res.error;
      state.templates = res.data.templates || [];
      renderList();
    });
  }

  function renderList() {
    var counts = { "": state.templates.length };
    state.templates.forEach(function (t) {
      counts[t.status] = (counts[t.status] || 0) + 1;
    });
    document.querySelectorAll("#status-tabs [data-count]").forEach(function (node) {
      node.textContent = String(counts[node.getAttribute("data-count")] || 0);
    });
    var select = $("filter-language");
    H.fillLanguages(select, state.templates);

    var words = $("filter-text").value.toLowerCase().split(/\s+/).filter(Boolean);
    var language = select.value;
    var shown = state.templates.filter(function (t) {
      if (state.status && t.status !== state.status) return false;
      if (language && t.language !== language) return false;
      var hay = (t.name + " " + t.header + " " + t.body + " " + t.footer).toLowerCase();
      return words.every(function (w) {
        return hay.indexOf(w) >= 0;
      });
    });
    var list = $("template-list");
    list.textContent = "";
    if (!shown.length) {
      list.appendChild(el("li", { className: "list-empty", text: state.templates.length ? "No template matches." : "No templates yet." }));
      return;
    }
    shown.forEach(function (t) {
      var open = el("button", { type: "button", className: "item-open", "data-template-id": t.id }, [
        el("span", { className: "item-title", text: t.name }),
        el("span", { className: "item-meta" }, [
          el("span", { className: "tag-pill", text: t.language }),
          el("span", { className: "tag-pill status-" + t.status, text: STATUS_LABEL[t.status] || t.status }),
          el("span", { text: t.category }),
          el("span", { text: "· v" + t.version }),
        ]),
      ]);
      open.addEventListener("click", function () {
        openTemplate(t.id);
      });
      list.appendChild(
        el("li", { className: "item" + (state.current && state.current.id === t.id ? " is-current" : ""), "data-template-id": t.id }, [open])
      );
    });
  }

  function selectStatus(status) {
    state.status = status;
    document.querySelectorAll("#status-tabs [data-status]").forEach(function (button) {
      button.setAttribute("aria-pressed", button.getAttribute("data-status") === status ? "true" : "false");
    });
    renderList();
  }

  function upsert(template) {
    var found = false;
    state.templates = state.templates.map(function (t) {
      if (t.id === template.id) {
        found = true;
        return template;
      }
      return t;
    });
    if (!found) state.templates.push(template);
    state.templates.sort(function (a, b) {
      return a.name === b.name ? (a.language < b.language ? -1 : 1) : a.name < b.name ? -1 : 1;
    });
  }

  // --- examples and buttons --------------------------------------------------------------
  function renderExamples() {
    var list = $("examples");
    list.textContent = "";
    $("examples-field").hidden = state.bodyCount === 0;
    for (var i = 0; i < state.bodyCount; i++) {
      var name = "body_examples[" + i + "]";
      var id = "tpl-example-" + i;
      var input = el("input", {
        id: id,
        "data-field": name,
        "data-index": i,
        maxlength: "200",
        autocomplete: "off",
        value: state.examples[i] || "",
        "aria-describedby": id + "-error",
        "aria-label": "Example for {{" + (i + 1) + "}}",
      });
      input.addEventListener("input", function (event) {
        state.examples[Number(event.target.getAttribute("data-index"))] = event.target.value;
        markDirty();
        preview();
      });
      list.appendChild(
        el("li", {}, [
          el("label", { className: "placeholder-tag", for: id, text: "{{" + (i + 1) + "}}" }),
          input,
          el("p", { className: "field-error", id: id + "-error", "data-error-for": name, hidden: true }),
        ])
      );
    }
    $("header-example-field").hidden = state.headerCount === 0;
  }

  function renderButtons() {
    var list = $("buttons");
    list.textContent = "";
    state.buttons.forEach(function (button, index) {
      var base = "buttons[" + index + "]";
      var kind = el("select", { "data-field": base + ".type", "aria-label": "Button " + (index + 1) + " type" }, [
        el("option", { value: "quick_reply", text: "Quick reply" }),
        el("option", { value: "url", text: "Link" }),
      ]);
      kind.value = button.type;
      var text = el("input", { "data-field": base + ".text", maxlength: "25", value: button.text || "", "aria-label": "Button " + (index + 1) + " text", placeholder: "Text" });
      var url = el("input", {
        "data-field": base + ".url",
        value: button.url || "",
        "aria-label": "Button " + (index + 1) + " address",
        placeholder: "https://…",
        type: "url",
        hidden: button.type !== "url",
      });
      var remove = el("button", { type: "button", className: "icon-btn", "aria-label": "Remove button " + (index + 1) }, ["×"]);
      kind.addEventListener("change", function () {
        button.type = kind.value;
        if (button.type !== "url") delete button.url;
        else button.url = button.url || "";
        changedButtons();
        renderButtons();
      });
      text.addEventListener("input", function () {
        button.text = text.value;
        changedButtons();
      });
      url.addEventListener("input", function () {
        button.url = url.value;
        changedButtons();
      });
      remove.addEventListener("click", function () {
        state.buttons.splice(index, 1);
        changedButtons();
        renderButtons();
        $("add-quick-reply").focus();
      });
      list.appendChild(
        el("li", { className: "button-row" }, [
          kind,
          text,
          button.type === "url" ? url : el("span"),
          remove,
          el("p", { className: "field-error", "data-error-for": base + ".text", hidden: true }),
          el("p", { className: "field-error", "data-error-for": base + ".url", hidden: true }),
          el("p", { className: "field-error", "data-error-for": base, hidden: true }),
        ])
      );
    });
  }

  function changedButtons() {
    markDirty();
    preview();
  }

  function addButton(type) {
    state.buttons.push(type === "url" ? { type: "url", text: "", url: "" } : { type: "quick_reply", text: "" });
    changedButtons();
    renderButtons();
    var inputs = $("buttons").querySelectorAll('input[data-field$=".text"]');
    inputs[inputs.length - 1].focus();
  }

  // --- the editor ----------------------------------------------------------------------
  function fillForm(template) {
    H.clearErrors(main);
    H.hideConflict();
    state.current = template;
    state.retireArmed = false;
    $("tpl-name").value = template ? template.name : "";
    $("tpl-language").value = template ? template.language : "es";
    $("tpl-category").value = template ? template.category : "utility";
    $("tpl-header").value = template ? template.header : "";
    $("tpl-header-example").value = template ? template.header_example : "";
    $("tpl-body").value = template ? template.body : "";
    $("tpl-footer").value = template ? template.footer : "";
    state.examples = template ? template.body_examples.slice() : [];
    state.bodyCount = template ? template.body_parameters : 0;
    state.headerCount = template ? template.header_parameters : 0;
    state.buttons = template
      ? template.buttons.map(function (b) {
          return Object.assign({}, b);
        })
      : [];
    renderExamples();
    renderButtons();
    $("editor-title").textContent = template ? template.name + " (" + template.language + ")" : "New template";
    var pill = $("editor-status");
    pill.hidden = !template;
    if (template) {
      pill.className = "tag-pill status-" + template.status;
      pill.textContent = STATUS_LABEL[template.status] || template.status;
    }
    $("editor-meta").textContent = template
      ? "Version " + template.version + " · saved " + H.when(template.updated_at) + (template.updated_by ? " by " + template.updated_by : "")
      : "A new template starts as a draft.";
    var rejection = $("rejection-shown");
    rejection.hidden = !(template && template.status === "rejected" && template.rejection_reason);
    rejection.textContent = template && template.rejection_reason ? "WhatsApp's reason: " + template.rejection_reason : "";
    var locked = !!template && template.status === "submitted";
    $("template-fields").disabled = locked;
    $("locked-hint").hidden = !locked;
    $("template-save").disabled = locked;
    renderStatusActions();
    var retire = $("template-retire");
    retire.hidden = !template;
    retire.textContent = "Retire…";
    $("save-status").textContent = template ? "" : "Not saved yet";
    state.dirty = false;
    renderList();
    loadHistory();
    preview();
  }

  function renderStatusActions() {
    var template = state.current;
    var box = $("status-box");
    var actions = $("status-actions");
    actions.textContent = "";
    $("reject-form").hidden = true;
    box.hidden = !template;
    if (!template) return;
    (TRANSITIONS[template.status] || []).forEach(function (to) {
      var label = MOVE_LABEL[template.status + ">" + to] || "Mark " + to;
      var button = el("button", { type: "button", className: to === "rejected" ? "btn btn-danger-outline btn-sm" : "btn btn-ghost btn-sm", "data-move": to }, [label]);
      button.addEventListener("click", function () {
        if (to === "rejected") {
          $("reject-form").hidden = false;
          $("rejection-reason").value = "";
          $("rejection-reason").focus();
          return;
        }
        changeStatus(to, null);
      });
      actions.appendChild(button);
    });
  }

  function changeStatus(status, reason) {
    var template = state.current;
    H.clearErrors($("status-box"));
    var body = { version: template.version, status: status };
    if (reason !== null) body.rejection_reason = reason;
    H.api("POST", "/api/hsm/templates/" + template.id + "/status/", body).then(function (res) {
      if (!res.ok) {
        if (res.error.code === "stale_version") {
          H.showConflict(H.staleText(res.error, template.version, "The status was not changed."), function () {
            openTemplate(template.id);
          });
          return;
        }
        H.showError($("status-box"), res.error);
        return;
      }
      var updated = res.data.template;
      upsert(updated);
      fillForm(updated);
      H.notify(updated.name + " (" + updated.language + ") is now " + (STATUS_LABEL[updated.status] || updated.status).toLowerCase() + ".", "success");
      var first = $("status-actions").querySelector("button");
      if (first) first.focus();
    });
  }

  function openTemplate(id) {
    if (state.dirty && !window.confirm("Discard the unsaved changes to this template?")) return;
    H.api("GET", "/api/hsm/templates/" + id + "/").then(function (res) {
      if (!res.ok) {
        H.notify(res.error.message, "error");
        return;
      }
      upsert(res.data.template);
      fillForm(res.data.template);
      $("tpl-name").focus();
    });
  }

  function loadHistory() {
    var card = $("history-card");
    var list = $("history");
    list.textContent = "";
    if (!state.current) {
      card.hidden = true;
      return;
    }
    var id = state.current.id;
    H.api("GET", "/api/hsm/templates/" + id + "/history/").then(function (res) {
      if (!res.ok || !state.current || state.current.id !== id) return;
      card.hidden = false;
      list.textContent = "";
      res.data.history.forEach(function (row) {
        var what =
          row.action === "status_changed"
            ? (STATUS_LABEL[row.from_status] || row.from_status) + " → " + (STATUS_LABEL[row.to_status] || row.to_status)
            : row.action === "created"
              ? "Created as a draft"
              : row.action === "retired"
                ? "Retired"
                : "Edited" + (row.from_status !== row.to_status ? " (" + row.from_status + " → " + row.to_status + ")" : "");
        list.appendChild(
          el("li", {}, [
            el("strong", { text: "v" + row.version + " · " + what }),
            row.note ? el("div", { text: row.note }) : null,
            el("div", { className: "history-when", text: H.when(row.at) + (row.actor ? " · " + row.actor : "") }),
          ])
        );
      });
    });
  }

  function markDirty() {
    state.dirty = true;
    $("save-status").textContent = "Unsaved changes";
  }

  function formValues() {
    return {
      name: $("tpl-name").value,
      language: $("tpl-language").value,
      category: $("tpl-category").value,
      header: $("tpl-header").value,
      header_example: state.headerCount ? $("tpl-header-example").value : "",
      body: $("tpl-body").value,
      body_examples: state.examples.slice(0, state.bodyCount).map(function (v) {
        return v || "";
      }),
      footer: $("tpl-footer").value,
      buttons: state.buttons.map(function (b) {
        return b.type === "url" ? { type: "url", text: b.text || "", url: b.url || "" } : { type: b.type, text: b.text || "" };
      }),
    };
  }

  function save(event) {
    if (event) event.preventDefault();
    if ($("template-save").disabled) return;
    H.clearErrors(form);
    var values = formValues();
    var creating = !state.current;
    var loaded = state.current;
    var request = creating
      ? H.api("POST", "/api/hsm/templates/", values)
      : H.api("PATCH", "/api/hsm/templates/" + loaded.id + "/", Object.assign({ version: loaded.version }, values));
    $("template-save").disabled = true;
    $("save-status").textContent = "Saving…";
    request.then(function (res) {
      $("template-save").disabled = false;
      if (!res.ok) {
        $("save-status").textContent = "Not saved";
        if (res.error.code === "stale_version") {
          H.showConflict(H.staleText(res.error, loaded.version, "Your changes are not saved."), function () {
            state.dirty = false;
            openTemplate(loaded.id);
          });
          return;
        }
        H.showError(form, res.error);
        return;
      }
      var template = res.data.template;
      upsert(template);
      var wasStatus = loaded ? loaded.status : null;
      fillForm(template);
      $("save-status").textContent = "Saved · version " + template.version;
      var note = creating ? "Template " + template.name + " created as a draft." : "Template " + template.name + " saved.";
      if (wasStatus && wasStatus !== template.status) note += " It is a draft again: submit it to WhatsApp for a new review.";
      H.notify(note, "success");
    });
  }

  function retire() {
    if (!H.armed(state, $("template-retire"))) return;
    var template = state.current;
    H.api("DELETE", "/api/hsm/templates/" + template.id + "/?version=" + template.version).then(function (res) {
      if (!res.ok) {
        if (res.error.code === "stale_version") {
          H.showConflict(H.staleText(res.error, template.version, "Nothing was retired."), function () {
            openTemplate(template.id);
          });
        } else H.notify(res.error.message, "error");
        return;
      }
      state.templates = state.templates.filter(function (t) {
        return t.id !== template.id;
      });
      fillForm(null);
      H.notify(template.name + " (" + template.language + ") retired: it can no longer be sent.", "success");
      $("template-new").focus();
    });
  }

  // --- the preview ---------------------------------------------------------------------
  var preview = H.debounce(function () {
    var values = formValues();
    var seq = ++state.previewSeq;
    if (!values.body.trim()) {
      H.previewProblem("Write the body to see the message.");
      return;
    }
    values.header_example = $("tpl-header-example").value;
    values.body_examples = state.examples.slice();
    H.api("POST", "/api/hsm/templates/preview/", values).then(function (res) {
      if (seq !== state.previewSeq) return;
      if (!res.ok) {
        H.previewProblem(res.error.message);
        return;
      }
      var data = res.data;
      H.previewProblem(null);
      $("preview-header").hidden = !data.header;
      $("preview-header").textContent = data.header;
      $("preview-body").textContent = data.body;
      $("preview-footer").hidden = !data.footer;
      $("preview-footer").textContent = data.footer;
      var buttons = $("preview-buttons");
      buttons.textContent = "";
      data.buttons.forEach(function (b) {
        buttons.appendChild(el("span", { text: (b.type === "url" ? "↗ " : "") + b.text }));
      });
      if (data.body_parameters !== state.bodyCount || data.header_parameters !== state.headerCount) {
        var focused = document.activeElement && document.activeElement.id;
        state.bodyCount = data.body_parameters;
        state.headerCount = data.header_parameters;
        renderExamples();
        if (focused && $(focused)) $(focused).focus();
      }
    });
  }, 300);

  // --- wiring ----------------------------------------------------------------------------
  function bind() {
    form.addEventListener("submit", save);
    ["tpl-name", "tpl-language", "tpl-category", "tpl-header", "tpl-header-example", "tpl-body", "tpl-footer"].forEach(function (id) {
      $(id).addEventListener("input", function () {
        markDirty();
        preview();
      });
    });
    $("add-quick-reply").addEventListener("click", function () {
      addButton("quick_reply");
    });
    $("add-url").addEventListener("click", function () {
      addButton("url");
    });
    $("template-new").addEventListener("click", function () {
      if (state.dirty && !window.confirm("Discard the unsaved changes to this template?")) return;
      fillForm(null);
      $("tpl-name").focus();
    });
    $("template-retire").addEventListener("click", retire);
    $("reject-form").addEventListener("submit", function (event) {
      event.preventDefault();
      changeStatus("rejected", $("rejection-reason").value);
    });
    $("reject-cancel").addEventListener("click", function () {
      $("reject-form").hidden = true;
      var first = $("status-actions").querySelector("button");
      if (first) first.focus();
    });
    document.querySelectorAll("#status-tabs [data-status]").forEach(function (button) {
      button.addEventListener("click", function () {
        selectStatus(button.getAttribute("data-status"));
      });
    });
    ["filter-text", "filter-language"].forEach(function (id) {
      $(id).addEventListener("input", renderList);
    });
    H.editorKeys(save, function () {
      $("template-new").click();
    });
  }

  function init() {
    bind();
    var wanted = new URL(window.location.href).searchParams.get("status");
    loadTemplates().then(
      function () {
        if (wanted && STATUS_LABEL[wanted]) selectStatus(wanted);
        fillForm(null);
        H.ready(main);
      },
      function (error) {
        H.notify((error && error.message) || "The page could not load. Reload it.", "error");
      }
    );
  }

  init();
})();
