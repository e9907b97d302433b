/* The coordinators' routing page (/coordinator/routing/).
 *
 * A client of the routing configuration API (docs/protocol.md, "Routing configuration")
 * and nothing more: query types with their keywords and the type menu, resolution reasons
 * per type, operators' skills and capacity.  Every rule — codes, unique names, a keyword
 * that another type already has, one default type, capacities — is the server's; the page
 * shows the server's refusal next to the field it names.  Each row carries the ``etag`` it
 * was loaded with (the menu its ``version``); ``stale_version`` offers to reload.
 */
(function () {
  "use strict";

  var H = window.HubStaff;
  var main = document.getElementById("routing-main");
  if (!main || !H) return;
  H.setCsrf(main.getAttribute("data-csrf"));
  var el = H.el;

  var state = {
    types: [],
    reasons: [],
    operators: [],
    settings: null,
    type: null, // the type being edited (null: a new one)
    reason: null,
    operator: null,
  };
  var PRESENCE = { online: "Online", away: "Away", offline: "Offline" };

  function $(id) {
    return document.getElementById(id);
  }

  function load() {
    return H.api("GET", "/api/routing/config/").then(function (res) {
      if (!res.ok) throw res.error;
      state.types = res.data.query_types;
      state.reasons = res.data.resolutions;
      state.operators = res.data.operators;
      state.settings = res.data.settings;
      renderAll();
    });
  }

  function renderAll() {
    renderTypes();
    renderMenu();
    renderReasonFilter();
    renderReasons();
    renderOperators();
  }

  function typeName(id) {
    for (var i = 0; i < state.types.length; i++) if (state.types[i].id === id) return state.types[i].name;
    return "type " + id;
  }

  function activeTypes() {
    return state.types.filter(function (t) {
      return t.active;
    });
  }

  function typeChecks(box, selected) {
    box.querySelectorAll("label").forEach(function (node) {
      node.remove();
    });
    activeTypes().forEach(function (t) {
      box.appendChild(el("label", {}, [el("input", { type: "checkbox", value: String(t.id), checked: selected.indexOf(t.id) >= 0 }), t.name]));
    });
  }

  function checkedIds(box) {
    var ids = [];
    box.querySelectorAll("input:checked").forEach(function (input) {
      ids.push(Number(input.value));
    });
    return ids;
  }

  function intValue(id) {
    var raw = $(id).value.trim();
    return raw === "" ? undefined : Number(raw);
  }

  function replace(list, item) {
    var found = false;
    var out = list.map(function (x) {
      if (x.id === item.id) {
        found = true;
        return item;
      }
      return x;
    });
    if (!found) out.push(item);
    return out;
  }

  function conflict(what, res, reload) {
    $("conflict-title").textContent = "Someone else changed " + what;
    H.showConflict("They saved it after you loaded it. Your changes are not saved.", function () {
      load().then(reload);
    });
  }

  function editButton(label, onClick) {
    var button = el("button", { type: "button", className: "btn btn-ghost btn-sm", "aria-label": label }, ["Edit"]);
    button.addEventListener("click", onClick);
    return button;
  }

  // --- query types -----------------------------------------------------------------------
  function renderTypes() {
    var body = $("type-rows");
    body.textContent = "";
    state.types.forEach(function (t) {
      var tags = [el("span", { className: "shortcut", text: t.code })];
      if (t.is_default) tags.push(el("span", { className: "tag-pill is-ok", text: "Default" }));
      if (!t.active) tags.push(el("span", { className: "tag-pill is-off", text: "Inactive" }));
      body.appendChild(
        el("tr", { className: state.type && state.type.id === t.id ? "is-current" : "", "data-type-id": t.id }, [
          el("td", {}, [el("strong", { text: t.name }), el("div", { className: "item-meta" }, tags)]),
          el("td", { className: "num", text: String(t.priority) }),
          el("td", { className: "num", text: String(t.menu_position) }),
          el("td", { text: t.keywords.join(", ") || "—" }),
          el("td", {}, [editButton("Edit " + t.name, function () { editType(t.id); })]),
        ])
      );
    });
  }

  function fillType(t) {
    var form = $("type-form");
    H.clearErrors(form);
    state.type = t;
    $("type-editor-title").textContent = t ? "Edit " + t.name : "New query type";
    $("type-name").value = t ? t.name : "";
    $("type-code").value = t ? t.code : "";
    $("type-code").readOnly = !!t;
    $("type-priority").value = t ? t.priority : 100;
    $("type-menu-position").value = t ? t.menu_position : state.types.length + 1;
    $("type-keywords").value = t ? t.keywords.join("\n") : "";
    $("type-default").checked = t ? t.is_default : false;
    $("type-active").checked = t ? t.active : true;
    $("type-status").textContent = "";
    renderTypes();
  }

  function editType(id) {
    var t = state.types.filter(function (x) {
      return x.id === id;
    })[0];
    fillType(t || null);
    $("type-name").focus();
  }

  function saveType(event) {
    event.preventDefault();
    var form = $("type-form");
    H.clearErrors(form);
    var keywords = $("type-keywords")
      .value.split(/[\n,]/)
      .map(function (k) {
        return k.trim();
      })
      .filter(Boolean);
    var values = {
      name: $("type-name").value,
      priority: intValue("type-priority"),
      menu_position: intValue("type-menu-position"),
      keywords: keywords,
      is_default: $("type-default").checked,
      active: $("type-active").checked,
    };
    var editing = state.type;
    var request = editing
      ? H.api("PATCH", "/api/routing/query-types/" + editing.id + "/", Object.assign({ etag: editing.etag }, values))
      : H.api("POST", "/api/routing/query-types/", Object.assign({ code: $("type-code").value }, values));
    $("type-status").textContent = "Saving…";
    request.then(function (res) {
      if (!res.ok) {
        $("type-status").textContent = "Not saved";
        if (res.error.code === "stale_version") {
          conflict("this query type", res, function () {
            editType(editing.id);
          });
          return;
        }
        H.showError(form, res.error);
        return;
      }
      var saved = res.data.query_type;
      // Making one type the default took it from another: reload every row.
      load().then(function () {
        editType(saved.id);
        $("type-status").textContent = "Saved";
        H.notify(editing ? "Query type " + saved.name + " saved." : "Query type " + saved.name + " created.", "success");
      });
    });
  }

  // --- the type menu --------------------------------------------------------------------
  function renderMenu() {
    var s = state.settings;
    $("menu-enabled").checked = s.type_menu_enabled;
    $("menu-intro").value = s.type_menu_intro;
    previewMenu();
  }

  function previewMenu() {
    // Shows the menu as routing words it (routing/classify.py menu_text): active types
    // in menu order, numbered.
    var lines = [$("menu-intro").value];
    activeTypes().forEach(function (t, i) {
      lines.push(i + 1 + " " + t.name);
    });
    $("menu-preview").textContent = $("menu-enabled").checked ? lines.join("\n") : "The menu is off: customers without a type get the default type.";
  }

  function saveMenu(event) {
    event.preventDefault();
    var form = $("menu-form");
    H.clearErrors(form);
    var loaded = state.settings.version;
    H.api("PATCH", "/api/routing/settings/", {
      version: loaded,
      type_menu_enabled: $("menu-enabled").checked,
      type_menu_intro: $("menu-intro").value,
    }).then(function (res) {
      if (!res.ok) {
        if (res.error.code === "stale_version") {
          conflict("the type menu", res, function () {});
          return;
        }
        H.showError(form, res.error);
        return;
      }
      state.settings = res.data.settings;
      renderMenu();
      $("menu-status").textContent = "Saved · version " + state.settings.version;
      H.notify(state.settings.type_menu_enabled ? "The type menu is on." : "The type menu is off.", "success");
    });
  }

  // --- resolution reasons -----------------------------------------------------------------
  function renderReasonFilter() {
    var select = $("reason-filter");
    var keep = select.value;
    select.textContent = "";
    select.appendChild(el("option", { value: "", text: "Every reason" }));
    select.appendChild(el("option", { value: "all", text: "Only reasons for every type" }));
    state.types.forEach(function (t) {
      select.appendChild(el("option", { value: String(t.id), text: "Conversations of " + t.name }));
    });
    select.value = keep && select.querySelector('option[value="' + keep + '"]') ? keep : "";
  }

  function renderReasons() {
    var filter = $("reason-filter").value;
    var body = $("reason-rows");
    body.textContent = "";
    var shown = state.reasons.filter(function (r) {
      if (!filter) return true;
      if (filter === "all") return !r.query_type_ids.length;
      return !r.query_type_ids.length || r.query_type_ids.indexOf(Number(filter)) >= 0;
    });
    if (!shown.length) {
      body.appendChild(el("tr", {}, [el("td", { colspan: "4", className: "list-empty", text: "No reasons." })]));
    }
    shown.forEach(function (r) {
      var types = r.query_type_ids.length ? r.query_type_ids.map(typeName).join(", ") : "Every type";
      body.appendChild(
        el("tr", { className: state.reason && state.reason.id === r.id ? "is-current" : "", "data-reason-id": r.id }, [
          el("td", {}, [el("strong", { text: r.name }), r.active ? null : el("div", { className: "item-meta" }, [el("span", { className: "tag-pill is-off", text: "Inactive" })])]),
          el("td", { text: types }),
          el("td", { className: "num", text: String(r.position) }),
          el("td", {}, [editButton("Edit " + r.name, function () { editReason(r.id); })]),
        ])
      );
    });
  }

  function fillReason(r) {
    var form = $("reason-form");
    H.clearErrors(form);
    state.reason = r;
    $("reason-editor-title").textContent = r ? "Edit " + r.name : "New resolution reason";
    $("reason-name").value = r ? r.name : "";
    $("reason-position").value = r ? r.position : "";
    $("reason-active").checked = r ? r.active : true;
    var filter = $("reason-filter").value;
    var preset = !r && filter && filter !== "all" ? [Number(filter)] : [];
    typeChecks($("reason-types"), r ? r.query_type_ids : preset);
    $("reason-status").textContent = "";
    renderReasons();
  }

  function editReason(id) {
    var r = state.reasons.filter(function (x) {
      return x.id === id;
    })[0];
    fillReason(r || null);
    $("reason-name").focus();
  }

  function saveReason(event) {
    event.preventDefault();
    var form = $("reason-form");
    H.clearErrors(form);
    var values = {
      name: $("reason-name").value,
      position: intValue("reason-position"),
      active: $("reason-active").checked,
      query_type_ids: checkedIds($("reason-types")),
    };
    var editing = state.reason;
    var request = editing
      ? H.api("PATCH", "/api/routing/resolutions/" + editing.id + "/", Object.assign({ etag: editing.etag }, values))
      : H.api("POST", "/api/routing/resolutions/", values);
    request.then(function (res) {
      if (!res.ok) {
        if (res.error.code === "stale_version") {
          conflict("this reason", res, function () {
            editReason(editing.id);
          });
          return;
        }
        H.showError(form, res.error);
        return;
      }
      var saved = res.data.resolution;
      state.reasons = replace(state.reasons, saved).sort(function (a, b) {
        return a.position - b.position || (a.name < b.name ? -1 : 1);
      });
      fillReason(saved);
      $("reason-status").textContent = "Saved";
      H.notify("Resolution reason “" + saved.name + "” saved.", "success");
    });
  }

  // --- operators ----------------------------------------------------------------------------
  function renderOperators() {
    var body = $("operator-rows");
    body.textContent = "";
    state.operators.forEach(function (o) {
      var serves = o.query_type_ids.length ? o.query_type_ids.map(typeName).join(", ") : "Every type";
      body.appendChild(
        el("tr", { className: state.operator && state.operator.id === o.id ? "is-current" : "", "data-operator-id": o.id }, [
          el("td", { text: o.name }),
          el("td", { text: PRESENCE[o.presence] || o.presence }),
          el("td", { className: "num", text: o.load + " / " + o.capacity }),
          el("td", { text: serves }),
          el("td", {}, [editButton("Edit " + o.name, function () { editOperator(o.id); })]),
        ])
      );
    });
  }

  function editOperator(id) {
    var o = state.operators.filter(function (x) {
      return x.id === id;
    })[0];
    var form = $("operator-form");
    H.clearErrors(form);
    state.operator = o;
    form.hidden = false;
    $("operator-editor-title").textContent = o.name;
    $("operator-capacity").value = o.capacity;
    typeChecks($("operator-types"), o.query_type_ids);
    $("operator-status").textContent = "";
    renderOperators();
    $("operator-capacity").focus();
  }

  function saveOperator(event) {
    event.preventDefault();
    var form = $("operator-form");
    H.clearErrors(form);
    var editing = state.operator;
    H.api("PATCH", "/api/routing/operators/" + editing.id + "/", {
      etag: editing.etag,
      capacity: intValue("operator-capacity"),
      query_type_ids: checkedIds($("operator-types")),
    }).then(function (res) {
      if (!res.ok) {
        if (res.error.code === "stale_version") {
          conflict(editing.name + "'s skills", res, function () {
            editOperator(editing.id);
          });
          return;
        }
        H.showError(form, res.error);
        return;
      }
      state.operators = replace(state.operators, res.data.operator);
      editOperator(editing.id);
      $("operator-status").textContent = "Saved";
      H.notify(editing.name + " saved.", "success");
    });
  }

  // --- wiring ------------------------------------------------------------------------------
  function bind() {
    $("type-form").addEventListener("submit", saveType);
    $("type-new").addEventListener("click", function () {
      fillType(null);
      $("type-name").focus();
    });
    $("type-cancel").addEventListener("click", function () {
      fillType(null);
    });
    $("menu-form").addEventListener("submit", saveMenu);
    $("menu-enabled").addEventListener("change", previewMenu);
    $("menu-intro").addEventListener("input", previewMenu);
    $("reason-form").addEventListener("submit", saveReason);
    $("reason-new").addEventListener("click", function () {
      fillReason(null);
      $("reason-name").focus();
    });
    $("reason-cancel").addEventListener("click", function () {
      fillReason(null);
    });
    $("reason-filter").addEventListener("input", renderReasons);
    $("operator-form").addEventListener("submit", saveOperator);
    $("operator-cancel").addEventListener("click", function () {
      state.operator = null;
      $("operator-form").hidden = true;
      renderOperators();
    });
  }

  function init() {
    bind();
    load().then(
      function () {
        fillType(null);
        fillReason(null);
        H.ready(main);
      },
      function (error) {
        H.notify((error && error.message) || "The page could not load. Reload it.", "error");
      }
    );
  }

  init();
})();
