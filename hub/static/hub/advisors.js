/* External advisors (seed 003): the admins' page (/staff/advisors/) and the advisors' own
 * page (/advisor/), one script for both (``data-page`` on <main>).
 *
 * A client of the advisor REST API (docs/protocol.md "External advisors") and nothing
 * more: every rule — the code's 60 minutes, who may join, read-only rights, the audit — is
 * the server's; the page shows the server's answers, and a refusal's ``message`` next to
 * the field it names (``data.field``).  No library.
 */
(function () {
  "use strict";

  var main = document.getElementById("advisors-main");
  if (!main) return;
  var csrf = main.getAttribute("data-csrf") || "";
  var page = main.getAttribute("data-page");

  function $(id) {
    return document.getElementById(id);
  }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs[name];
      else if (name === "className") node.className = attrs[name];
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) {
      if (child) node.appendChild(child);
    });
    return node;
  }

  function api(method, url, body) {
    var init = { method: method, credentials: "same-origin", headers: { Accept: "application/json" } };
    if (method !== "GET") {
      init.headers["Content-Type"] = "application/json";
      init.headers["X-CSRFToken"] = csrf;
      init.body = JSON.stringify(body || {});
    }
    return fetch(url, init).then(function (response) {
      return response.text().then(function (text) {
        var data = null;
        try {
          data = text ? JSON.parse(text) : null;
        } catch (err) {
          data = null;
        }
        if (response.status === 401) {
          // The login (or the advisor's access, and with it the session) has ended.
          window.location.assign("/accounts/login/?next=" + encodeURIComponent(window.location.pathname));
          return new Promise(function () {});
        }
        if (!response.ok) {
          var error = new Error((data && data.message) || "The server answered " + response.status + ".");
          error.status = response.status;
          error.data = (data && data.data) || {};
          error.code = data && data.code;
          throw error;
        }
        return data;
      });
    });
  }

  function notice(text, kind) {
    var box = $("adv-notices");
    box.textContent = "";
    if (!text) return;
    box.appendChild(el("p", { className: "adv-notice adv-notice-" + (kind || "info"), text: text }));
  }

  function when(iso) {
    if (!iso) return "—";
    var date = new Date(iso);
    return date.toLocaleString([], { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });
  }

  function clock(iso) {
    return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  }

  function duration(seconds) {
    var s = Math.max(0, Math.floor(seconds));
    var h = Math.floor(s / 3600);
    var m = Math.floor((s % 3600) / 60);
    var r = s % 60;
    var mm = (h ? String(m).padStart(2, "0") : String(m)) + ":" + String(r).padStart(2, "0");
    return h ? h + ":" + mm : mm;
  }

  function fieldErrors(form, error) {
    Array.prototype.forEach.call(form.querySelectorAll(".field-error"), function (p) {
      p.hidden = true;
      p.textContent = "";
    });
    Array.prototype.forEach.call(form.querySelectorAll("[aria-invalid]"), function (input) {
      input.removeAttribute("aria-invalid");
    });
    if (!error) return false;
    var name = error.data && error.data.field;
    var input = name ? form.querySelector('[name="' + name + '"]') : null;
    var slot = input ? $(input.id + "-error") : null;
    if (input && slot) {
      slot.textContent = error.message;
      slot.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return true;
    }
    return false;
  }

  function ready() {
    main.setAttribute("aria-busy", "false");
    main.setAttribute("data-ready", "true");
  }

  // --- the admins' page ------------------------------------------------------------------

  function adminPage() {
    var codeDeadline = 0; // ms since the epoch when the shown code stops working
    var ticking = null;

    function showCode(code) {
      $("code-value").textContent = code.code;
      $("code-minutes").textContent = String(code.valid_minutes);
      codeDeadline = Date.now() + code.seconds_left * 1000;
      $("code-value").setAttribute("data-expires-at", code.expires_at);
      tick();
      if (!ticking) ticking = window.setInterval(tick, 1000);
    }

    function tick() {
      var left = (codeDeadline - Date.now()) / 1000;
      if (left <= 0) {
        $("code-validity").textContent = "Expired — fetching the new code…";
        window.clearInterval(ticking);
        ticking = null;
        load();
        return;
      }
      $("code-validity").textContent =
        "Valid for " + duration(left) + " more (until " + clock($("code-value").getAttribute("data-expires-at")) + ")";
    }

    function accessLabel(access) {
      if (!access) return el("span", { className: "adv-badge adv-badge-none", text: "No access" });
      return el("span", {
        className: "adv-badge adv-badge-" + access.kind,
        text: access.kind === "permanent" ? "Permanent" : "Temporary",
      });
    }

    function row(advisor) {
      var access = advisor.access;
      var actions = el("td", { className: "adv-actions" });
      if (!access || access.kind !== "permanent") {
        var assign = el("button", {
          type: "button",
          className: "btn btn-ghost btn-sm",
          text: "Make permanent",
          "aria-label": "Make permanent: " + advisor.name,
        });
        assign.addEventListener("click", function () {
          act(assign, "/api/advisors/" + advisor.id + "/permanent/", advisor.name + " is now a permanent advisor.");
        });
        actions.appendChild(assign);
      }
      if (access) {
        var remove = el("button", {
          type: "button",
          className: "btn btn-danger-outline btn-sm",
          text: "Remove",
          "aria-label": "Remove " + advisor.name,
        });
        remove.addEventListener("click", function () {
          act(remove, "/api/advisors/" + advisor.id + "/remove/", advisor.name + " was removed; their sessions end now.");
        });
        actions.appendChild(remove);
      }
      var who = el("td", {}, [
        el("span", { className: "adv-name", text: advisor.name }),
        el("span", { className: "adv-sub", text: advisor.username + (advisor.email ? " · " + advisor.email : "") }),
      ]);
      var until = "—";
      if (access && access.kind === "temporary") until = when(access.ends_at);
      if (access && access.kind === "permanent") until = "Until removed";
      return el("tr", { "data-advisor": advisor.username }, [
        who,
        el("td", {}, [accessLabel(access)]),
        el("td", { text: access ? when(access.started_at) : "—" }),
        el("td", { text: until }),
        actions,
      ]);
    }

    function render(data) {
      showCode(data.code);
      $("temporary-hours").textContent = String(data.temporary_hours);
      var body = $("advisors-body");
      body.textContent = "";
      data.advisors.forEach(function (advisor) {
        body.appendChild(row(advisor));
      });
      $("advisors-empty").hidden = data.advisors.length > 0;
      var list = $("history-list");
      list.textContent = "";
      var reasons = { removed: "removed", left: "left", expired: "expired" };
      data.history.forEach(function (grant) {
        var by = grant.ended_by ? " by " + grant.ended_by.name : "";
        list.appendChild(
          el("li", {
            text:
              grant.advisor.name + " · " + grant.kind + " · " + when(grant.started_at) + " → " + when(grant.ended_at) +
              " (" + (reasons[grant.end_reason] || grant.end_reason) + by + ")",
          })
        );
      });
      $("history-empty").hidden = data.history.length > 0;
    }

    function load() {
      return api("GET", "/api/advisors/")
        .then(function (data) {
          render(data);
          ready();
        })
        .catch(function (error) {
          notice(error.message, "error");
          ready();
        });
    }

    function act(button, url, done) {
      button.disabled = true;
      api("POST", url)
        .then(function () {
          notice(done, "ok");
          return load();
        })
        .catch(function (error) {
          notice(error.message, "error");
          button.disabled = false;
        });
    }

    $("code-rotate").addEventListener("click", function () {
      var button = $("code-rotate");
      button.disabled = true;
      api("POST", "/api/advisors/code/rotate/")
        .then(function (data) {
          showCode(data.code);
          notice("A new code is in place; the previous one no longer works.", "ok");
        })
        .catch(function (error) {
          notice(error.message, "error");
        })
        .then(function () {
          button.disabled = false;
        });
    });

    $("create-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var form = event.target;
      var body = {
        username: $("new-username").value,
        password: $("new-password").value,
        first_name: $("new-first").value,
        last_name: $("new-last").value,
        email: $("new-email").value,
      };
      $("create-submit").disabled = true;
      api("POST", "/api/advisors/accounts/", body)
        .then(function (data) {
          fieldErrors(form, null);
          form.reset();
          notice("Advisor account " + data.advisor.username + " created. Give them the access code, or make them permanent.", "ok");
          return load();
        })
        .catch(function (error) {
          if (!fieldErrors(form, error)) notice(error.message, "error");
        })
        .then(function () {
          $("create-submit").disabled = false;
        });
    });

    load();
  }

  // --- the advisors' page ----------------------------------------------------------------

  function advisorPage() {
    var current = null; // the conversation shown

    function showAccess(me) {
      var access = me.access;
      $("portal-hours").textContent = String(me.temporary_hours);
      $("join-card").hidden = !!access;
      $("access-card").hidden = !access;
      $("conversations").hidden = !access;
      $("cases").hidden = true;
      var nav = $("areas-nav");
      nav.textContent = "";
      if (!access) return;
      var text =
        access.kind === "permanent"
          ? "Permanent advisor since " + when(access.started_at) + ", until the bank removes you or you leave."
          : "Temporary access since " + when(access.started_at) + ", until " + when(access.ends_at) + ".";
      $("access-text").textContent = text;
      $("access-card").setAttribute("data-kind", access.kind);
      var hasCases = false;
      me.areas.forEach(function (area) {
        nav.appendChild(el("a", { className: "btn btn-ghost btn-sm", href: area.url, text: area.label }));
        if (area.name === "cases") hasCases = true;
      });
      $("cases").hidden = !hasCases;
      loadConversations();
      if (hasCases) loadCases();
    }

    function loadCases() {
      // The payment cases' own API (backoffice_bridge), read by permission.
      api("GET", "/api/cases/?view=all")
        .then(function (data) {
          var body = $("cases-body");
          body.textContent = "";
          (data.cases || []).forEach(function (item) {
            body.appendChild(
              el("tr", {}, [
                el("td", { text: item.reference || String(item.id) }),
                el("td", { text: item.kind || "" }),
                el("td", { text: item.state_label || item.state || "" }),
                el("td", { text: item.subject || "" }),
                el("td", { text: when(item.opened_at) }),
              ])
            );
          });
          $("cases-empty").hidden = (data.cases || []).length > 0;
        })
        .catch(function (error) {
          notice(error.message, "error");
        });
    }

    function loadMe() {
      return api("GET", "/api/advisors/me/")
        .then(function (me) {
          showAccess(me);
          ready();
        })
        .catch(function (error) {
          notice(error.message, "error");
          ready();
        });
    }

    function loadConversations() {
      api("GET", "/api/advisors/conversations/")
        .then(function (data) {
          var list = $("conv-list");
          list.textContent = "";
          if (!data.conversations.length) {
            list.appendChild(el("li", { className: "adv-empty", text: "No conversations yet." }));
          }
          data.conversations.forEach(function (conversation) {
            var button = el("button", { type: "button", className: "adv-conv", "data-id": conversation.id }, [
              el("span", { className: "adv-name", text: conversation.customer.name }),
              el("span", {
                className: "adv-sub",
                text: conversation.channel + " · " + conversation.status + " · " + when(conversation.last_message_at || conversation.created_at),
              }),
            ]);
            button.addEventListener("click", function () {
              openConversation(conversation.id);
            });
            list.appendChild(el("li", {}, [button]));
          });
        })
        .catch(function (error) {
          notice(error.message, "error");
        });
    }

    function openConversation(id) {
      current = id;
      Array.prototype.forEach.call(document.querySelectorAll(".adv-conv"), function (button) {
        if (button.getAttribute("data-id") === id) button.setAttribute("aria-current", "true");
        else button.removeAttribute("aria-current");
      });
      api("GET", "/api/advisors/conversations/" + encodeURIComponent(id) + "/messages/")
        .then(function (data) {
          if (current !== id) return;
          $("thread-empty").hidden = true;
          var title = $("thread-title");
          title.hidden = false;
          title.textContent = data.conversation.customer.name + " · " + data.conversation.status;
          var list = $("thread-messages");
          list.textContent = "";
          data.messages.forEach(function (message) {
            var who = message.direction === "inbound" ? data.conversation.customer.name : message.author || "Bank";
            list.appendChild(
              el("li", { className: "adv-msg adv-msg-" + message.direction }, [
                el("span", { className: "adv-sub", text: who + " · " + when(message.created_at) }),
                el("p", { className: "adv-msg-text", text: message.text }),
              ])
            );
          });
        })
        .catch(function (error) {
          notice(error.message, "error");
        });
    }

    $("join-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var form = event.target;
      $("join-submit").disabled = true;
      api("POST", "/api/advisors/join/", { code: $("join-code").value })
        .then(function () {
          fieldErrors(form, null);
          form.reset();
          notice("You have joined. Your access is read-only.", "ok");
          return loadMe();
        })
        .catch(function (error) {
          if (!fieldErrors(form, error)) notice(error.message, "error");
        })
        .then(function () {
          $("join-submit").disabled = false;
        });
    });

    $("leave").addEventListener("click", function () {
      $("leave").disabled = true;
      api("POST", "/api/advisors/leave/")
        .then(function () {
          window.location.assign("/accounts/login/?next=/advisor/");
        })
        .catch(function (error) {
          notice(error.message, "error");
          $("leave").disabled = false;
        });
    });

    loadMe();
  }

  if (page === "admin") adminPage();
  else advisorPage();
})();
