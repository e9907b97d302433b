/* The coordinators' knowledge-base page (/coordinator/replies/).
 *
 * A client of the knowledge-base REST API (docs/protocol.md, "Knowledge base") and nothing
 * more: it lists every live reply, filters the list on screen, and creates, edits, retires
 * and reorders replies through the API.  Every rule — the shortcut's form, the variables a
 * body may hold, languages, query types — is the server's: the page shows the server's
 * answer next to the field it names, and a body's error selects the characters it points
 * at.  Saves carry the version that was loaded; ``stale_version`` offers to reload.
 *
 * The preview asks the server (POST /api/kb/replies/preview/) to fill the body being typed
 * for a sample customer, so what it shows is exactly what the renderer does.
 */
(function () {
  "use strict";

  var H = window.HubStaff;
  var main = document.getElementById("replies-main");
  if (!main || !H) return;
  H.setCsrf(main.getAttribute("data-csrf"));
  var el = H.el;

  var state = {
    replies: [],
    types: [],
    current: null, // the reply being edited (null: a new one)
    dirty: false,
    retireArmed: false,
    previewSeq: 0,
  };

  function $(id) {
    return document.getElementById(id);
  }

  var form = $("reply-form");

  // --- loading -------------------------------------------------------------------------
  function loadReplies() {
    return H.api("GET", "/api/kb/replies/").then(function (res) {
      if (!res.ok) throw res.error;
      state.replies = res.data.replies || [];
      renderFilters();
      renderList();
    });
  }

  function typeName(id) {
    for (var i = 0; i < state.types.length; i++) if (state.types[i].id === id) return state.types[i].name;
    return "type " + id;
  }

  // --- the list ------------------------------------------------------------------------
  function renderFilters() {
    H.fillLanguages($("filter-language"), state.replies);
  }

  function fold(text) {
    return String(text || "")
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase();
  }

  function visibleReplies() {
    var words = fold($("filter-text").value).split(/\s+/).filter(Boolean);
    var language = $("filter-language").value;
    var type = $("filter-type").value;
    var activeState = $("filter-state").value;
    return state.replies.filter(function (r) {
      if (language && r.language !== language) return false;
      if (type === "all" && r.query_type_ids.length) return false;
      if (type && type !== "all" && r.query_type_ids.indexOf(Number(type)) < 0) return false;
      if (activeState === "active" && !r.active) return false;
      if (activeState === "inactive" && r.active) return false;
      var haystack = fold(r.title + " " + r.shortcut + " " + r.body);
      return words.every(function (w) {
        return haystack.indexOf(w) >= 0;
      });
    });
  }

  function renderList() {
    var list = $("reply-list");
    var shown = visibleReplies();
    list.textContent = "";
    $("list-count").textContent = shown.length === state.replies.length ? String(shown.length) : shown.length + " of " + state.replies.length;
    if (!shown.length) {
      list.appendChild(el("li", { className: "list-empty", text: state.replies.length ? "No reply matches." : "No replies yet." }));
      return;
    }
    shown.forEach(function (reply, index) {
      var types = reply.query_type_ids.length ? reply.query_type_ids.map(typeName).join(", ") : "Every type";
      var open = el("button", { type: "button", className: "item-open", "data-reply-id": reply.id }, [
        el("span", { className: "item-title", text: reply.title }),
        el("span", { className: "item-meta" }, [
          el("span", { className: "shortcut", text: reply.shortcut }),
          el("span", { className: "tag-pill", text: reply.language }),
          reply.active ? null : el("span", { className: "tag-pill is-off", text: "Hidden" }),
          el("span", { text: types }),
          el("span", { text: "· used " + reply.usage_count + "×" }),
        ]),
      ]);
      open.addEventListener("click", function () {
        openReply(reply.id);
      });
      var up = el("button", { type: "button", className: "icon-btn", "aria-label": "Move " + reply.title + " up", disabled: index === 0 }, ["▲"]);
      var down = el("button", { type: "button", className: "icon-btn", "aria-label": "Move " + reply.title + " down", disabled: index === shown.length - 1 }, ["▼"]);
      up.addEventListener("click", function () {
        move(reply.id, shown[index - 1].id, "up");
      });
      down.addEventListener("click", function () {
        move(reply.id, shown[index + 1].id, "down");
      });
      var item = el("li", { className: "item" + (state.current && state.current.id === reply.id ? " is-current" : ""), "data-reply-id": reply.id }, [
        open,
        el("span", { className: "item-move" }, [up, down]),
      ]);
      list.appendChild(item);
    });
  }

  /* Swap a reply with its visible neighbour and save the whole order. */
  function move(id, otherId, direction) {
    var ids = state.replies.map(function (r) {
      return r.id;
    });
    var a = ids.indexOf(id);
    var b = ids.indexOf(otherId);
    ids.splice(a, 1);
    b = ids.indexOf(otherId);
    ids.splice(direction === "up" ? b : b + 1, 0, id);
    H.api("POST", "/api/kb/replies/reorder/", { reply_ids: ids }).then(function (res) {
      if (!res.ok) {
        H.notify(res.error.message, "error");
        return;
      }
      state.replies = res.data.replies;
      var current = state.current && findReply(state.current.id);
      if (current) state.current.position = current.position;
      renderList();
      var button = $("reply-list").querySelector('li[data-reply-id="' + id + '"] [aria-label$="' + direction + '"]');
      if (button && !button.disabled) button.focus();
      else {
        var open = $("reply-list").querySelector('li[data-reply-id="' + id + '"] .item-open');
        if (open) open.focus();
      }
    });
  }

  function upsert(reply) {
    var index = -1;
    state.replies.forEach(function (r, i) {
      if (r.id === reply.id) index = i;
    });
    if (index >= 0) state.replies[index] = reply;
    else state.replies.push(reply);
  }

  function findReply(id) {
    for (var i = 0; i < state.replies.length; i++) if (state.replies[i].id === id) return state.replies[i];
    return null;
  }

  // --- the editor ----------------------------------------------------------------------
  function renderTypes(selected) {
    var box = $("reply-types");
    box.querySelectorAll("label").forEach(function (node) {
      node.remove();
    });
    state.types.forEach(function (t) {
      var input = el("input", { type: "checkbox", value: String(t.id), checked: selected.indexOf(t.id) >= 0 });
      input.addEventListener("change", markDirty);
      box.appendChild(el("label", {}, [input, t.name]));
    });
  }

  function fillForm(reply) {
    H.clearErrors(form);
    H.hideConflict();
    state.current = reply;
    state.retireArmed = false;
    $("reply-title").value = reply ? reply.title : "";
    $("reply-shortcut").value = reply ? reply.shortcut : "";
    $("reply-language").value = reply ? reply.language : "en";
    $("reply-active").checked = reply ? reply.active : true;
    $("reply-body").value = reply ? reply.body : "";
    renderTypes(reply ? reply.query_type_ids : []);
    $("editor-title").textContent = reply ? "Edit “" + reply.title + "”" : "New reply";
    $("editor-meta").textContent = reply
      ? "Version " + reply.version + " · used " + reply.usage_count + " times · saved " + H.when(reply.updated_at)
      : "";
    var retire = $("reply-retire");
    retire.hidden = !reply;
    retire.textContent = "Retire…";
    $("save-status").textContent = reply ? "" : "Not saved yet";
    state.dirty = false;
    renderList();
    preview();
  }

  function openReply(id) {
    if (state.dirty && !window.confirm("Discard the unsaved changes to this reply?")) return;
    H.api("GET", "/api/kb/replies/" + id + "/").then(function (res) {
      if (!res.ok) {
        H.notify(res.error.message, "error");
        return;
      }
      upsert(res.data.reply);
      fillForm(res.data.reply);
      $("reply-title").focus();
    });
  }

  function markDirty() {
    state.dirty = true;
    $("save-status").textContent = "Unsaved changes";
  }

  function formValues() {
    var types = [];
    $("reply-types")
      .querySelectorAll("input:checked")
      .forEach(function (input) {
        types.push(Number(input.value));
      });
    return {
      title: $("reply-title").value,
      shortcut: $("reply-shortcut").value,
      language: $("reply-language").value,
      active: $("reply-active").checked,
      body: $("reply-body").value,
      query_type_ids: types,
    };
  }

  function showBodyError(error) {
    var where = H.showError(form, error);
    var position = error.data && error.data.position;
    if (where === "body" && typeof position === "number") {
      var body = $("reply-body");
      var text = body.value;
      // The server counts from the trimmed body; find the same place in what is on screen.
      var offset = text.length - text.replace(/^\s+/, "").length;
      var start = position + offset;
      var end = text.indexOf("}}", start);
      body.setSelectionRange(start, end >= 0 ? end + 2 : Math.min(text.length, start + 2));
    }
  }

  function save(event) {
    if (event) event.preventDefault();
    H.clearErrors(form);
    var values = formValues();
    var creating = !state.current;
    var request = creating
      ? H.api("POST", "/api/kb/replies/", values)
      : H.api("PATCH", "/api/kb/replies/" + state.current.id + "/", Object.assign({ version: state.current.version }, values));
    $("reply-save").disabled = true;
    $("save-status").textContent = "Saving…";
    request.then(function (res) {
      $("reply-save").disabled = false;
      if (!res.ok) {
        $("save-status").textContent = "Not saved";
        if (res.error.code === "stale_version") {
          var loaded = state.current.version;
          H.showConflict(H.staleText(res.error, loaded, "Your changes are not saved."), function () {
            state.dirty = false;
            openReply(state.current.id);
          });
          return;
        }
        showBodyError(res.error);
        return;
      }
      var reply = res.data.reply;
      upsert(reply);
      renderFilters();
      fillForm(reply);
      $("save-status").textContent = "Saved · version " + reply.version;
      H.notify(creating ? "Reply “" + reply.title + "” created; operators find it with " + reply.shortcut + "." : "Reply “" + reply.title + "” saved.", "success");
    });
  }

  function retire() {
    if (!H.armed(state, $("reply-retire"))) return;
    var reply = state.current;
    H.api("DELETE", "/api/kb/replies/" + reply.id + "/?version=" + reply.version).then(function (res) {
      if (!res.ok) {
        if (res.error.code === "stale_version") {
          H.showConflict(H.staleText(res.error, reply.version, "Nothing was retired."), function () {
            openReply(reply.id);
          });
        } else H.notify(res.error.message, "error");
        return;
      }
      state.replies = state.replies.filter(function (r) {
        return r.id !== reply.id;
      });
      fillForm(null);
      H.notify("Reply “" + reply.title + "” retired; its shortcut " + reply.shortcut + " is free again.", "success");
      $("reply-new").focus();
    });
  }

  // --- the preview ---------------------------------------------------------------------
  var preview = H.debounce(function () {
    var body = $("reply-body").value;
    var seq = ++state.previewSeq;
    if (!body.trim()) {
      $("preview-text").textContent = "";
      $("preview-empty").textContent = "";
      H.previewProblem("Write the body to see it filled in.");
      return;
    }
    H.api("POST", "/api/kb/replies/preview/", { body: body }).then(function (res) {
      if (seq !== state.previewSeq) return; // an older answer
      if (!res.ok) {
        H.previewProblem(res.error.message);
        return;
      }
      H.previewProblem(null);
      $("preview-text").textContent = res.data.text;
      $("preview-empty").textContent = res.data.text_without_values;
    });
  }, 300);

  function insertVariable(name) {
    var body = $("reply-body");
    var start = body.selectionStart;
    var end = body.selectionEnd;
    var text = "{{" + name + "}}";
    body.setRangeText(text, start, end, "end");
    body.focus();
    markDirty();
    preview();
  }

  // --- wiring ----------------------------------------------------------------------------
  function bind() {
    form.addEventListener("submit", save);
    form.addEventListener("input", function (event) {
      markDirty();
      if (event.target.id === "reply-body") preview();
    });
    $("reply-active").addEventListener("change", markDirty);
    $("reply-new").addEventListener("click", function () {
      if (state.dirty && !window.confirm("Discard the unsaved changes to this reply?")) return;
      fillForm(null);
      $("reply-title").focus();
    });
    $("reply-retire").addEventListener("click", retire);
    ["filter-text", "filter-language", "filter-type", "filter-state"].forEach(function (id) {
      $(id).addEventListener("input", renderList);
    });
    document.querySelectorAll(".var-insert").forEach(function (button) {
      button.addEventListener("click", function () {
        insertVariable(button.getAttribute("data-variable"));
      });
    });
    H.editorKeys(save, function () {
      $("reply-new").click();
    });
  }

  function init() {
    bind();
    H.api("GET", "/api/routing/options/")
      .then(function (res) {
        if (!res.ok) throw res.error;
        state.types = res.data.query_types || [];
        var select = $("filter-type");
        select.appendChild(el("option", { value: "all", text: "Every type (no type set)" }));
        state.types.forEach(function (t) {
          select.appendChild(el("option", { value: String(t.id), text: t.name }));
        });
        return loadReplies();
      })
      .then(
        function () {
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
