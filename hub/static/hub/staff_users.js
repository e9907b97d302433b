/* Users and roles (/staff/users/): a client of /api/staff/users/ (docs/protocol.md).
 *
 * Lists the staff users the signed-in user may manage, and creates, edits, resets the
 * password of, deactivates, reactivates and deletes them.  Which roles may be given, who may
 * be granted user management, the last admin, oneself, users who still hold conversations:
 * all the server's rules; the page offers what ``GET`` says the user may do and shows the
 * server's refusal next to the field it names.
 */
(function () {
  "use strict";

  var A = window.HubAdmin;
  var main = document.getElementById("users-main");
  if (!main || !A) return;
  A.setCsrf(main.getAttribute("data-csrf"));

  var state = { users: [], roles: [], queryTypes: [], can: {}, selfId: null, editing: null, confirm: null };

  function $(id) {
    return document.getElementById(id);
  }

  var notices = $("users-notices");
  var userDialog = $("user-dialog");
  var passwordDialog = $("password-dialog");
  var confirmDialog = $("confirm-dialog");
  [userDialog, passwordDialog, confirmDialog].forEach(A.wireDialog);

  var ROLE_HINTS = {
    Admin: "Everything, including users, batch derivation and the audit log.",
    Coordinator: "Knowledge base, templates, hours, routing; supervises conversations.",
    Operator: "Answers the conversations given to them.",
    "Contact center": "An operator who may also link bank users and start back-office actions.",
  };

  // --- loading ---------------------------------------------------------------------------
  function load() {
    main.setAttribute("aria-busy", "true");
    return A.api("GET", "/api/staff/users/").then(function (res) {
      main.setAttribute("aria-busy", "false");
      if (!res.ok) {
        A.notify(notices, res.error.message, "error");
        return;
      }
      state.users = res.data.users;
      state.roles = res.data.roles;
      state.queryTypes = res.data.query_types;
      state.can = res.data.can;
      state.selfId = res.data.self_id;
      fillRoleFilter();
      render();
      main.setAttribute("data-ready", "true");
    });
  }

  function fillRoleFilter() {
    var select = $("users-role");
    var current = select.value;
    select.textContent = "";
    select.appendChild(A.el("option", { value: "", text: "Every role" }));
    state.roles.forEach(function (role) {
      select.appendChild(A.el("option", { value: role, text: role }));
    });
    select.value = current;
    if (!state.can.all_roles) {
      $("users-lead").textContent =
        "You manage customer-service users: operators and contact-center staff. Admins and coordinators are managed by an admin.";
    }
  }

  // --- the table -------------------------------------------------------------------------
  function visibleUsers() {
    var q = $("users-search").value.trim().toLowerCase();
    var role = $("users-role").value;
    var inactive = $("users-inactive").checked;
    return state.users.filter(function (u) {
      if (!inactive && !u.is_active) return false;
      if (role && u.role !== role) return false;
      if (!q) return true;
      return [u.name, u.username, u.email].join(" ").toLowerCase().indexOf(q) !== -1;
    });
  }

  function typeName(code) {
    for (var i = 0; i < state.queryTypes.length; i++) {
      if (state.queryTypes[i].code === code) return state.queryTypes[i].name;
    }
    return code;
  }

  function statusCell(u) {
    if (!u.is_active) return A.el("span", { className: "pill pill-danger", text: "Deactivated" });
    var kind = u.presence === "online" ? "pill-ok" : u.presence === "away" ? "pill-warn" : "";
    var label = u.presence.charAt(0).toUpperCase() + u.presence.slice(1);
    return A.el("span", { className: "pill " + kind, text: label });
  }

  function actionButton(label, action, u, extra) {
    return A.el("button", {
      type: "button",
      className: "btn btn-ghost btn-sm" + (extra || ""),
      "data-action": action,
      "data-user": String(u.id),
      "aria-label": label + " " + u.name,
      text: label,
    });
  }

  function render() {
    var body = $("users-body");
    body.textContent = "";
    var rows = visibleUsers();
    $("users-count").textContent = rows.length + " of " + state.users.length + " users";
    if (!rows.length) {
      body.appendChild(A.el("tr", {}, [A.el("td", { colspan: "7", className: "table-empty", text: "No user matches." })]));
      return;
    }
    rows.forEach(function (u) {
      var roleCell = A.el("td", {}, [A.el("span", { text: u.role || "No role" })]);
      if (u.role === "Coordinator" && u.can_manage_users_granted) {
        roleCell.appendChild(A.el("span", { className: "cell-sub", text: "May manage users" }));
      }
      var types = A.el("div", { className: "tags" });
      if (u.query_types.length) {
        u.query_types.forEach(function (code) {
          types.appendChild(A.el("span", { className: "pill pill-accent", text: typeName(code) }));
        });
      } else {
        types.appendChild(A.el("span", { className: "cell-sub", text: "Every type" }));
      }
      var actions = A.el("td", { className: "actions" }, [
        actionButton("Edit", "edit", u),
        actionButton("Password", "password", u),
        u.is_active ? actionButton("Deactivate", "deactivate", u) : actionButton("Reactivate", "reactivate", u),
        actionButton("Delete", "delete", u, " btn-danger-outline"),
      ]);
      var nameCell = A.el("td", {}, [
        A.el("strong", { text: u.name }),
        u.id === state.selfId ? A.el("span", { className: "pill", text: "You" }) : null,
        A.el("span", { className: "cell-sub mono", text: u.username }),
        u.email ? A.el("span", { className: "cell-sub", text: u.email }) : null,
      ]);
      var tr = A.el("tr", { "data-user": String(u.id), "data-username": u.username, className: u.is_active ? "" : "row-inactive" }, [
        nameCell,
        roleCell,
        A.el("td", {}, [types]),
        A.el("td", { className: "num", text: String(u.capacity) }),
        A.el("td", {}, [statusCell(u)]),
        A.el("td", { className: "num", text: String(u.open_conversations) }),
        actions,
      ]);
      body.appendChild(tr);
    });
  }

  function userById(id) {
    for (var i = 0; i < state.users.length; i++) if (state.users[i].id === id) return state.users[i];
    return null;
  }

  function upsert(user) {
    var found = false;
    state.users = state.users.map(function (u) {
      if (u.id === user.id) {
        found = true;
        return user;
      }
      return u;
    });
    if (!found) state.users.push(user);
    state.users.sort(function (a, b) {
      return a.username < b.username ? -1 : a.username > b.username ? 1 : 0;
    });
    render();
  }

  // --- create and edit -------------------------------------------------------------------
  function fillRoles(selected) {
    var select = $("user-role");
    select.textContent = "";
    var roles = state.roles.slice();
    if (selected && roles.indexOf(selected) === -1) roles.unshift(selected);
    roles.forEach(function (role) {
      select.appendChild(A.el("option", { value: role, text: role }));
    });
    select.value = selected || (roles.indexOf("Operator") !== -1 ? "Operator" : roles[0]);
    roleChanged();
  }

  function roleChanged() {
    var role = $("user-role").value;
    $("user-role-hint").textContent = ROLE_HINTS[role] || "";
    $("user-grant-field").hidden = !(state.can.grant && role === "Coordinator");
  }

  function fillTypes(selected) {
    var box = $("user-types");
    box.querySelectorAll(".check").forEach(function (n) {
      n.remove();
    });
    state.queryTypes.forEach(function (t) {
      var id = "user-type-" + t.code;
      var input = A.el("input", { type: "checkbox", id: id, value: t.code });
      input.checked = selected.indexOf(t.code) !== -1;
      box.appendChild(A.el("label", { className: "check", for: id }, [input, " " + t.name]));
    });
  }

  function openUser(user, opener) {
    var form = $("user-form");
    A.clearErrors(form);
    state.editing = user;
    $("user-dialog-title").textContent = user ? "Edit " + user.name : "New user";
    $("user-dialog-lead").textContent = user
      ? "Changes apply at once. The password is reset separately."
      : "They sign in with this user name and password.";
    $("user-save").textContent = user ? "Save changes" : "Create user";
    $("user-first").value = user ? user.first_name : "";
    $("user-last").value = user ? user.last_name : "";
    $("user-username").value = user ? user.username : "";
    $("user-email").value = user ? user.email : "";
    $("user-password").value = "";
    $("user-password-field").hidden = !!user;
    fillRoles(user ? user.role : null);
    $("user-grant").checked = !!(user && user.can_manage_users_granted);
    fillTypes(user ? user.query_types : []);
    $("user-capacity").value = user ? String(user.capacity) : "5";
    A.openDialog(userDialog, opener, user ? $("user-first") : $("user-first"));
  }

  function formBody() {
    var e = state.editing;
    var types = [];
    $("user-types")
      .querySelectorAll("input:checked")
      .forEach(function (input) {
        types.push(input.value);
      });
    var body = {
      first_name: $("user-first").value,
      last_name: $("user-last").value,
      username: $("user-username").value,
      email: $("user-email").value,
      role: $("user-role").value,
      query_types: types,
    };
    var capacity = $("user-capacity").value.trim();
    if (capacity !== "") body.capacity = /^-?\d+$/.test(capacity) ? parseInt(capacity, 10) : capacity;
    if (!$("user-grant-field").hidden) body.can_manage_users = $("user-grant").checked;
    if (!e) {
      body.password = $("user-password").value;
      return body;
    }
    // An edit sends only what changed, so a coordinator never sends a field they may not.
    var changed = {};
    Object.keys(body).forEach(function (key) {
      var before = key === "query_types" ? e.query_types.slice().sort().join(",") : key === "can_manage_users" ? e.can_manage_users_granted : e[key];
      var after = key === "query_types" ? body.query_types.slice().sort().join(",") : body[key];
      if (before !== after) changed[key] = body[key];
    });
    return changed;
  }

  $("user-role").addEventListener("change", roleChanged);

  $("user-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = $("user-form");
    A.clearErrors(form);
    var body = formBody();
    var editing = state.editing;
    if (editing && !Object.keys(body).length) {
      A.closeDialog(userDialog);
      return;
    }
    var save = $("user-save");
    save.disabled = true;
    var request = editing ? A.api("PATCH", "/api/staff/users/" + editing.id + "/", body) : A.api("POST", "/api/staff/users/", body);
    request.then(function (res) {
      save.disabled = false;
      if (!res.ok) {
        A.showError(form, res.error);
        return;
      }
      upsert(res.data.user);
      A.closeDialog(userDialog);
      A.notify(notices, (editing ? "Saved " : "Created ") + res.data.user.name + " (" + res.data.user.username + ").", "ok");
    });
  });

  // --- password --------------------------------------------------------------------------
  function generatePassword() {
    var alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    var bytes = new Uint8Array(14);
    window.crypto.getRandomValues(bytes);
    var out = "";
    for (var i = 0; i < bytes.length; i++) out += alphabet.charAt(bytes[i] % alphabet.length);
    return out;
  }

  document.querySelectorAll("[data-generate]").forEach(function (button) {
    button.addEventListener("click", function () {
      var input = $(button.getAttribute("data-generate"));
      input.value = generatePassword();
      input.focus();
      input.select();
    });
  });

  function openPassword(user, opener) {
    var form = $("password-form");
    A.clearErrors(form);
    state.editing = user;
    $("password-lead").textContent =
      "A new password for " + user.name + " (" + user.username + "). Their API tokens stop working and their other sessions end.";
    $("password-new").value = "";
    A.openDialog(passwordDialog, opener, $("password-new"));
  }

  $("password-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = $("password-form");
    A.clearErrors(form);
    var user = state.editing;
    var save = $("password-save");
    save.disabled = true;
    A.api("POST", "/api/staff/users/" + user.id + "/password/", { password: $("password-new").value }).then(function (res) {
      save.disabled = false;
      if (!res.ok) {
        A.showError(form, res.error);
        return;
      }
      upsert(res.data.user);
      A.closeDialog(passwordDialog);
      A.notify(notices, "New password set for " + user.name + ".", "ok");
    });
  });

  // --- deactivate, reactivate, delete ----------------------------------------------------
  var CONFIRM = {
    deactivate: {
      title: "Deactivate ",
      text: " can no longer sign in; their history stays. You can reactivate them later.",
      ok: "Deactivate",
    },
    reactivate: { title: "Reactivate ", text: " can sign in again with their password.", ok: "Reactivate" },
    delete: {
      title: "Delete ",
      text: " is removed for good. Only users who never handled a conversation can be deleted; deactivate the others.",
      ok: "Delete",
    },
  };

  function openConfirm(action, user, opener) {
    var form = $("confirm-form");
    A.clearErrors(form);
    state.confirm = { action: action, user: user };
    var c = CONFIRM[action];
    $("confirm-title").textContent = c.title + user.name + "?";
    $("confirm-text").textContent = user.name + c.text;
    $("confirm-ok").textContent = c.ok;
    $("confirm-ok").className = "btn " + (action === "reactivate" ? "btn-primary" : "btn-danger");
    $("confirm-ok").disabled = false;
    A.openDialog(confirmDialog, opener, $("confirm-cancel"));
  }

  $("confirm-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var form = $("confirm-form");
    A.clearErrors(form);
    var action = state.confirm.action;
    var user = state.confirm.user;
    var ok = $("confirm-ok");
    ok.disabled = true;
    var url = "/api/staff/users/" + user.id + "/";
    var request = action === "delete" ? A.api("DELETE", url) : A.api("PATCH", url, { is_active: action === "reactivate" });
    request.then(function (res) {
      ok.disabled = false;
      if (!res.ok) {
        A.showError(form, res.error);
        return;
      }
      if (action === "delete") {
        state.users = state.users.filter(function (u) {
          return u.id !== user.id;
        });
        render();
        A.notify(notices, "Deleted " + user.name + ".", "ok");
      } else {
        upsert(res.data.user);
        A.notify(notices, (action === "reactivate" ? "Reactivated " : "Deactivated ") + user.name + ".", "ok");
      }
      A.closeDialog(confirmDialog);
    });
  });

  // --- wiring ----------------------------------------------------------------------------
  $("users-body").addEventListener("click", function (event) {
    var button = event.target.closest("button[data-action]");
    if (!button) return;
    var user = userById(parseInt(button.getAttribute("data-user"), 10));
    if (!user) return;
    var action = button.getAttribute("data-action");
    if (action === "edit") openUser(user, button);
    else if (action === "password") openPassword(user, button);
    else openConfirm(action, user, button);
  });

  $("user-new").addEventListener("click", function (event) {
    openUser(null, event.currentTarget);
  });
  ["users-search", "users-role", "users-inactive"].forEach(function (id) {
    $(id).addEventListener(id === "users-search" ? "input" : "change", render);
  });

  load();
})();
