/* The coordinators' opening-hours page (/coordinator/hours/).
 *
 * A client of the hours REST API (docs/protocol.md §11) and nothing more: it loads the
 * schedules, lets a coordinator edit one scope (the global hours or a query type's
 * override), and sends what was typed.  Every rule — overlaps, empty intervals, an end
 * before its start, time zones, placeholders, which date wins — is the server's; the page
 * shows the server's answer next to the field it names (``data.field``).  Optimistic
 * locking: a save carries the version that was loaded, and ``stale_version`` offers to
 * reload.
 *
 * No library.  Dates in the calendar are "YYYY-MM-DD" strings, computed in UTC so that
 * the browser's own daylight-saving changes never shift a day.
 */
(function () {
  "use strict";

  var WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
  var MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
  ];
  var DEFAULT_WEEKLY = [0, 1, 2, 3, 4].reduce(function (all, day) {
    return all.concat([
      { weekday: day, start: "09:00", end: "13:00", crosses_midnight: false },
      { weekday: day, start: "14:00", end: "18:00", crosses_midnight: false },
    ]);
  }, []);
  var DEFAULT_REPLIES = { en: "We are closed right now. We open {next_opening} and will answer you then." };

  var H = window.HubStaff;
  var main = document.getElementById("hours-main");
  if (!main || !H) return;
  H.setCsrf(main.getAttribute("data-csrf"));
  var el = H.el;
  var api = H.api;
  var pad = H.pad;
  var cssEscape = H.cssEscape;

  var state = {
    schedules: [], // GET /api/hours/
    queryTypes: [], // GET /api/routing/options/
    resolutions: [],
    scope: "", // "" global, else a query type's code
    schedule: null, // the loaded schedule of the scope (null: none)
    creating: false, // editing a new schedule (version 0)
    version: 0,
    specialDays: [],
    dirty: false,
    weeklyItems: [], // the <li> of each interval sent, in the order of "weekly"
    cal: null, // {year, month}
    calFocus: null, // "YYYY-MM-DD"
    dayEditing: null, // the special day being edited (null: adding)
    dayOpener: null,
    dayInterval: [],
    importPreview: null,
    countries: [],
  };
  var uid = 0;

  function $(id) {
    return document.getElementById(id);
  }

  function nextId(prefix) {
    uid += 1;
    return prefix + "-" + uid;
  }

  function scopeQuery(code) {
    return code ? "query_type=" + encodeURIComponent(code) : "";
  }

  function withQuery(path, params) {
    var parts = params.filter(Boolean);
    return parts.length ? path + "?" + parts.join("&") : path;
  }

  // --- notices -------------------------------------------------------------------------------
  function notify(text, kind) {
    H.noticeIn($("hours-notices"), text, kind);
  }

  // --- dates ----------------------------------------------------------------------------------
  function isoDate(year, month, day) {
    var d = new Date(Date.UTC(year, month, day));
    return d.getUTCFullYear() + "-" + pad(d.getUTCMonth() + 1) + "-" + pad(d.getUTCDate());
  }

  function parseDate(text) {
    var parts = text.split("-").map(Number);
    return new Date(Date.UTC(parts[0], parts[1] - 1, parts[2]));
  }

  function addDays(text, days) {
    var d = parseDate(text);
    return isoDate(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + days);
  }

  function addMonths(text, months) {
    var d = parseDate(text);
    var year = d.getUTCFullYear();
    var month = d.getUTCMonth() + months;
    var last = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
    return isoDate(year, month, Math.min(d.getUTCDate(), last));
  }

  function weekdayOf(text) {
    return (parseDate(text).getUTCDay() + 6) % 7; // 0 Monday
  }

  function longDate(text) {
    var d = parseDate(text);
    return WEEKDAYS[weekdayOf(text)] + " " + d.getUTCDate() + " " + MONTHS[d.getUTCMonth()] + " " + d.getUTCFullYear();
  }

  function dayMonth(text) {
    var d = parseDate(text);
    return d.getUTCDate() + " " + MONTHS[d.getUTCMonth()];
  }

  function todayText() {
    var now = new Date();
    return now.getFullYear() + "-" + pad(now.getMonth() + 1) + "-" + pad(now.getDate());
  }

  function sentence(summary) {
    var text = String(summary || "").replace(/^closed; /, "closed — ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function intervalLabel(iv) {
    var end = iv.crosses_midnight && iv.end === "00:00" ? "24:00" : iv.end;
    return iv.start + "–" + end + (iv.crosses_midnight && iv.end !== "00:00" ? " (next day)" : "");
  }

  // --- scopes ---------------------------------------------------------------------------------
  function scheduleOf(code) {
    for (var i = 0; i < state.schedules.length; i++) {
      var s = state.schedules[i];
      if ((s.query_type ? s.query_type.code : "") === code) return s;
    }
    return null;
  }

  function scopeName(code) {
    if (!code) return "the global hours";
    for (var i = 0; i < state.queryTypes.length; i++) {
      if (state.queryTypes[i].code === code) return state.queryTypes[i].name;
    }
    var own = scheduleOf(code);
    return own && own.query_type ? own.query_type.name : code;
  }

  function scopeTypes() {
    // Active query types, plus overrides of types that are no longer active.
    var types = state.queryTypes.map(function (t) {
      return { code: t.code, name: t.name, id: t.id };
    });
    state.schedules.forEach(function (s) {
      if (s.query_type && !types.some(function (t) {
        return t.code === s.query_type.code;
      })) {
        types.push({ code: s.query_type.code, name: s.query_type.name, id: s.query_type.id });
      }
    });
    return types;
  }

  function renderScopeOptions() {
    var select = $("scope");
    var preview = $("preview-scope");
    var keepPreview = preview.value;
    select.textContent = "";
    preview.textContent = "";
    var global = scheduleOf("");
    select.appendChild(el("option", { value: "", text: "Global hours" + (global ? "" : " (none set: always open)") }));
    preview.appendChild(el("option", { value: "", text: "Any type without its own hours" }));
    scopeTypes().forEach(function (t) {
      var own = scheduleOf(t.code);
      select.appendChild(
        el("option", { value: t.code, text: t.name + (own ? " — own hours" : " — follows the global hours") })
      );
      preview.appendChild(el("option", { value: t.code, text: t.name }));
    });
    select.value = state.scope;
    preview.value = keepPreview && preview.querySelector('option[value="' + cssEscape(keepPreview) + '"]') ? keepPreview : state.scope;
  }

  function loadHours() {
    return api("GET", "/api/hours/").then(function (res) {
      if (!res.ok) throw res.error;
      state.schedules = res.data.schedules || [];
    });
  }

  function selectScope(code) {
    state.scope = code;
    var url = new URL(window.location.href);
    if (code) url.searchParams.set("scope", code);
    else url.searchParams.delete("scope");
    window.history.replaceState(null, "", url.toString());
    renderScopeOptions();
    state.schedule = scheduleOf(code);
    state.creating = false;
    hideConflict();
    if (state.schedule) {
      showEditor(state.schedule);
    } else {
      showEmpty();
    }
    $("preview-scope").value = code;
    resetImport();
  }

  function showEmpty() {
    $("hours-layout").hidden = true;
    $("no-schedule").hidden = false;
    var code = state.scope;
    var name = scopeName(code);
    if (code) {
      $("no-schedule-title").textContent = name + " follows the global hours";
      $("no-schedule-text").textContent =
        "Queries of this type reach operators during the global hours. Give it hours of its own to replace them entirely for this type: weekly hours, special days and automatic replies.";
      $("schedule-create").textContent = "Give " + name + " its own hours";
    } else {
      $("no-schedule-title").textContent = "No opening hours are set";
      $("no-schedule-text").textContent =
        "The service is always open: operators receive queries at any time, and nobody gets an out-of-hours reply.";
      $("schedule-create").textContent = "Set opening hours";
    }
    renderNow(null);
    state.dirty = false;
  }

  function startCreate() {
    var template = state.scope ? scheduleOf("") : null;
    var guess = "UTC";
    try {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (zone && document.querySelector('#time-zones option[value="' + cssEscape(zone) + '"]')) guess = zone;
    } catch (e) {
      /* keep UTC */
    }
    var draft = template
      ? {
          time_zone: template.time_zone,
          weekly: template.weekly,
          refer_when_open: template.refer_when_open,
          closed_resolution_id: null,
          default_language: template.default_language,
          autoreplies: template.autoreplies,
          special_days: [],
          version: 0,
        }
      : {
          time_zone: guess,
          weekly: DEFAULT_WEEKLY,
          refer_when_open: true,
          closed_resolution_id: null,
          default_language: "en",
          autoreplies: DEFAULT_REPLIES,
          special_days: [],
          version: 0,
        };
    state.creating = true;
    showEditor(draft);
    markDirty();
    $("time-zone").focus();
  }

  function showEditor(schedule) {
    $("no-schedule").hidden = true;
    $("hours-layout").hidden = false;
    state.version = schedule.version;
    fillForm(schedule);
    state.specialDays = schedule.special_days || [];
    renderNow(state.creating ? null : schedule);
    var hasRow = !state.creating;
    $("calendar-disabled").hidden = hasRow;
    $("calendar-wrap").hidden = !hasRow;
    $("day-add").disabled = !hasRow;
    $("import-form").querySelectorAll("input, select, button").forEach(function (input) {
      input.disabled = !hasRow;
    });
    if (!state.cal) {
      var today = todayText();
      state.calFocus = today;
      state.cal = { year: parseDate(today).getUTCFullYear(), month: parseDate(today).getUTCMonth() };
    }
    renderCalendar(false);
    state.dirty = false;
    $("save-status").textContent = state.creating ? "Not saved yet" : "";
    var del = $("schedule-delete");
    del.removeAttribute("data-confirm");
    del.textContent = state.creating
      ? "Cancel"
      : state.scope
        ? "Remove " + scopeName(state.scope) + "'s own hours…"
        : "Remove the global hours…";
    del.className = state.creating ? "btn btn-ghost btn-sm" : "btn btn-danger-outline btn-sm";
  }

  function renderNow(schedule) {
    var pill = $("scope-now");
    var meta = $("scope-meta");
    if (!schedule) {
      pill.hidden = true;
      meta.textContent = state.creating ? "New schedule — save it to put it in force." : "";
      return;
    }
    pill.hidden = false;
    pill.setAttribute("data-open", schedule.now && schedule.now.open ? "true" : "false");
    pill.textContent = sentence(schedule.now ? schedule.now.summary : "");
    var saved = schedule.updated_at ? new Date(schedule.updated_at) : null;
    meta.textContent =
      "Version " + schedule.version + (saved ? " · saved " + saved.toLocaleString([], { dateStyle: "medium", timeStyle: "short" }) : "") + " · " + schedule.time_zone;
  }

  // --- the weekly grid ------------------------------------------------------------------------
  // Text, not type=time: the API's 24-hour "HH:MM" (and "24:00") whatever the browser's
  // locale; the server says precisely what is wrong with a bad value.
  function timeInput(className, id, errorId) {
    return el("input", {
      type: "text", className: className, id: id, inputmode: "numeric", maxlength: "5", size: "5",
      placeholder: "HH:MM", autocomplete: "off", spellcheck: "false", "aria-describedby": errorId,
    });
  }

  function intervalItem(iv, owner) {
    var base = nextId("iv");
    var errorId = base + "-error";
    var start = timeInput("iv-start", base + "-start", errorId);
    var end = timeInput("iv-end", base + "-end", errorId);
    var next = el("input", { type: "checkbox", className: "iv-next", id: base + "-next" });
    start.value = iv.start || "";
    end.value = iv.end || "";
    next.checked = !!iv.crosses_midnight;
    var startLabel = el("label", { for: start.id, className: "visually-hidden" }, [
      el("span", { className: "iv-name" }),
      "opens at",
    ]);
    var endLabel = el("label", { for: end.id, className: "visually-hidden" }, [
      el("span", { className: "iv-name" }),
      "closes at",
    ]);
    var flag = el("span", { className: "midnight-flag", text: "crosses midnight", hidden: !next.checked });
    var nextLabel = el("label", { for: next.id, className: "check-inline" }, [
      next,
      el("span", { text: "Next day" }),
    ]);
    var remove = el("button", { type: "button", className: "icon-btn iv-remove" }, [el("span", { "aria-hidden": "true", text: "✕" })]);
    var error = el("p", { className: "field-error", id: errorId, hidden: true });
    var li = el("li", { className: "interval" }, [
      el("div", { className: "iv-fields" }, [
        startLabel, start, el("span", { className: "iv-dash", "aria-hidden": "true", text: "–" }), endLabel, end,
        nextLabel, flag, remove,
      ]),
      error,
    ]);
    next.addEventListener("change", function () {
      flag.hidden = !next.checked;
      li.classList.toggle("crosses", next.checked);
    });
    li.classList.toggle("crosses", next.checked);
    remove.addEventListener("click", function () {
      var focusTarget = li.nextElementSibling || li.previousElementSibling;
      li.remove();
      owner.relabel();
      owner.changed();
      if (focusTarget) focusTarget.querySelector(".iv-start").focus();
      else owner.addButton.focus();
    });
    return li;
  }

  function relabelList(list, prefix) {
    var items = list.querySelectorAll(".interval");
    items.forEach(function (li, index) {
      var name = prefix + " interval " + (index + 1);
      var names = li.querySelectorAll(".iv-name");
      names[0].textContent = name + " ";
      names[1].textContent = name + " ";
      li.querySelector(".iv-remove").setAttribute("aria-label", "Remove " + name);
      li.querySelector(".check-inline").setAttribute("title", name + " ends the next day");
    });
  }

  function suggestInterval(list) {
    var items = list.querySelectorAll(".interval");
    if (!items.length) return { start: "09:00", end: "18:00", crosses_midnight: false };
    var lastEnd = items[items.length - 1].querySelector(".iv-end").value || "13:00";
    var hour = Math.min(parseInt(lastEnd.slice(0, 2), 10) + 1, 22);
    return { start: pad(hour) + ":00", end: pad(Math.min(hour + 4, 23)) + ":00", crosses_midnight: false };
  }

  function renderWeekly(weekly) {
    var grid = $("weekly-grid");
    grid.textContent = "";
    WEEKDAYS.forEach(function (dayName, weekday) {
      var nameId = nextId("day");
      var list = el("ul", { className: "intervals", "aria-labelledby": nameId });
      var closed = el("p", { className: "day-closed", text: "Closed" });
      var add = el("button", { type: "button", className: "btn btn-ghost btn-sm iv-add", "aria-label": "Add an interval on " + dayName }, [
        el("span", { "aria-hidden": "true", text: "+ " }),
        "Add",
      ]);
      var row = el("div", { className: "day-row", role: "group", "aria-labelledby": nameId, "data-weekday": weekday }, [
        el("h3", { className: "day-name", id: nameId, text: dayName }),
        el("div", { className: "day-body" }, [list, closed]),
        add,
      ]);
      var owner = {
        addButton: add,
        relabel: function () {
          relabelList(list, dayName);
          closed.hidden = list.children.length > 0;
        },
        changed: markDirty,
      };
      row._owner = owner;
      weekly
        .filter(function (iv) {
          return iv.weekday === weekday;
        })
        .forEach(function (iv) {
          list.appendChild(intervalItem(iv, owner));
        });
      add.addEventListener("click", function () {
        var li = intervalItem(suggestInterval(list), owner);
        list.appendChild(li);
        owner.relabel();
        markDirty();
        li.querySelector(".iv-start").focus();
      });
      owner.relabel();
      grid.appendChild(row);
    });
  }

  function collectIntervals(list) {
    return Array.prototype.map.call(list.querySelectorAll(".interval"), function (li) {
      return {
        li: li,
        value: {
          start: li.querySelector(".iv-start").value,
          end: li.querySelector(".iv-end").value,
          crosses_midnight: li.querySelector(".iv-next").checked,
        },
      };
    });
  }

  function copyMonday() {
    var rows = $("weekly-grid").querySelectorAll(".day-row");
    var monday = collectIntervals(rows[0].querySelector(".intervals"));
    for (var day = 1; day <= 4; day++) {
      var list = rows[day].querySelector(".intervals");
      list.textContent = "";
      monday.forEach(function (item) {
        list.appendChild(intervalItem(item.value, rows[day]._owner));
      });
      rows[day]._owner.relabel();
    }
    markDirty();
    notify("Tuesday to Friday now have Monday's intervals. Save to keep them.", "info");
  }

  // --- out of hours ---------------------------------------------------------------------------
  function renderResolutions(selected) {
    var select = $("closed-resolution");
    select.textContent = "";
    var typeId = null;
    scopeTypes().forEach(function (t) {
      if (t.code === state.scope) typeId = t.id;
    });
    select.appendChild(el("option", { value: "", text: "No resolution chosen" }));
    state.resolutions
      .filter(function (r) {
        var ids = r.query_type_ids || [];
        return ids.length === 0 || (typeId !== null && ids.indexOf(typeId) >= 0);
      })
      .forEach(function (r) {
        select.appendChild(el("option", { value: String(r.id), text: r.name }));
      });
    if (selected && !select.querySelector('option[value="' + selected + '"]')) {
      select.appendChild(el("option", { value: String(selected), text: "Resolution " + selected + " (no longer offered)" }));
    }
    select.value = selected ? String(selected) : "";
  }

  function autoreplyRow(language, text) {
    var base = nextId("reply");
    var langInput = el("input", {
      className: "reply-lang", id: base + "-lang", maxlength: "16", autocomplete: "off", spellcheck: "false",
      "aria-describedby": base + "-error",
    });
    var textArea = el("textarea", { className: "reply-text", id: base + "-text", rows: "3", maxlength: "2000", "aria-describedby": base + "-error" });
    langInput.value = language || "";
    textArea.value = text || "";
    var remove = el("button", { type: "button", className: "icon-btn reply-remove" }, [el("span", { "aria-hidden": "true", text: "✕" })]);
    var li = el("li", { className: "autoreply" }, [
      el("div", { className: "reply-lang-field" }, [el("label", { for: langInput.id, text: "Language" }), langInput]),
      el("div", { className: "reply-text-field" }, [el("label", { for: textArea.id, text: "Reply" }), textArea]),
      remove,
      el("p", { className: "field-error", id: base + "-error", hidden: true }),
    ]);
    function relabel() {
      remove.setAttribute("aria-label", "Remove the " + (langInput.value || "new") + " reply");
    }
    langInput.addEventListener("input", relabel);
    relabel();
    remove.addEventListener("click", function () {
      var next = li.nextElementSibling || li.previousElementSibling;
      li.remove();
      markDirty();
      (next ? next.querySelector(".reply-lang") : $("autoreply-add")).focus();
    });
    return li;
  }

  function fillForm(schedule) {
    clearErrors($("schedule-form"));
    $("schedule-error").hidden = true;
    $("time-zone").value = schedule.time_zone || "";
    renderWeekly(schedule.weekly || []);
    $("refer-when-open").checked = !!schedule.refer_when_open;
    renderResolutions(schedule.closed_resolution_id);
    $("default-language").value = schedule.default_language || "en";
    var list = $("autoreplies");
    list.textContent = "";
    Object.keys(schedule.autoreplies || {}).forEach(function (language) {
      list.appendChild(autoreplyRow(language, schedule.autoreplies[language]));
    });
  }

  function markDirty() {
    state.dirty = true;
    $("save-status").textContent = "Unsaved changes";
  }

  // --- errors next to their field -------------------------------------------------------------
  function clearErrors(root) {
    root.querySelectorAll(".field-error").forEach(function (p) {
      p.hidden = true;
      p.textContent = "";
    });
    root.querySelectorAll("[aria-invalid]").forEach(function (input) {
      input.removeAttribute("aria-invalid");
    });
    root.querySelectorAll(".has-error, .is-overlapped").forEach(function (node) {
      node.classList.remove("has-error", "is-overlapped");
    });
  }

  function showError(errorEl, inputs, message) {
    errorEl.textContent = message;
    errorEl.hidden = false;
    inputs.forEach(function (input) {
      input.setAttribute("aria-invalid", "true");
    });
    return inputs[0] || null;
  }

  function intervalName(li) {
    var name = li.querySelector(".iv-name");
    return name ? name.textContent.trim() : "the interval";
  }

  // The server names fields as the API does (weekly[3], intervals[0]); say which row.
  function humanize(message, items) {
    return String(message)
      .replace(/(weekly|intervals)\[(\d+)\]/g, function (match, kind, index) {
        var li = items[Number(index)];
        return li ? intervalName(li) : match;
      })
      .replace(/set crosses_midnight/g, "tick “Next day”")
      .replace(/crosses_midnight/g, "“Next day”");
  }

  function placeIntervalError(error, items, fallback) {
    var field = error.data.field || "";
    var match = /^(?:weekly|intervals)\[(\d+)\](?:\.(\w+))?$/.exec(field);
    if (!match || !items[Number(match[1])]) return null;
    var li = items[Number(match[1])];
    li.classList.add("has-error");
    var inputs = [li.querySelector(".iv-start"), li.querySelector(".iv-end")];
    if (match[2] === "start") inputs = [inputs[0]];
    else if (match[2] === "end") inputs = [inputs[1]];
    else if (match[2] === "crosses_midnight") inputs = [li.querySelector(".iv-next")];
    var other = /\[(\d+)\]/.exec(error.data.overlaps || "");
    if (other && items[Number(other[1])]) items[Number(other[1])].classList.add("is-overlapped");
    return showError(li.querySelector(".field-error"), inputs, humanize(error.message, items)) || fallback;
  }

  function placeScheduleError(error) {
    var field = error.data.field || "";
    var items = state.weeklyItems;
    var focus = null;
    var match;
    if (field === "time_zone") {
      focus = showError($("time-zone-error"), [$("time-zone")], error.message);
    } else if (/^weekly\[/.test(field)) {
      focus = placeIntervalError(error, items, null);
    } else if (field === "weekly") {
      focus = showError($("weekly-error"), [], error.message) || $("weekly-grid").querySelector("input");
    } else if (field === "default_language") {
      focus = showError($("default-language-error"), [$("default-language")], error.message);
    } else if (field === "closed_resolution_id") {
      focus = showError($("closed-resolution-error"), [$("closed-resolution")], error.message);
    } else if ((match = /^autoreplies\.(.*)$/.exec(field))) {
      var row = null;
      $("autoreplies").querySelectorAll(".autoreply").forEach(function (li) {
        if (!row && li.querySelector(".reply-lang").value.trim() === match[1]) row = li;
      });
      if (row) {
        var onLanguage = error.data.reason === "bad_language" || error.data.reason === "duplicate";
        var input = onLanguage ? row.querySelector(".reply-lang") : row.querySelector(".reply-text");
        focus = showError(row.querySelector(".field-error"), [input], error.message);
      }
    } else if (field === "autoreplies") {
      focus = showError($("autoreplies-error"), [], error.message) || $("autoreply-add");
    }
    if (focus === null && !(field === "weekly" || field === "autoreplies")) {
      var box = $("schedule-error");
      box.textContent = "Nothing was saved. " + error.message;
      box.hidden = false;
      return;
    }
    $("save-status").textContent = "Not saved: see the message next to the field.";
    if (focus && focus.focus) focus.focus();
  }

  // --- saving ---------------------------------------------------------------------------------
  function scheduleBody() {
    state.weeklyItems = [];
    var weekly = [];
    $("weekly-grid").querySelectorAll(".day-row").forEach(function (row) {
      var weekday = Number(row.getAttribute("data-weekday"));
      collectIntervals(row.querySelector(".intervals")).forEach(function (item) {
        state.weeklyItems.push(item.li);
        weekly.push({
          weekday: weekday,
          start: item.value.start,
          end: item.value.end,
          crosses_midnight: item.value.crosses_midnight,
        });
      });
    });
    var autoreplies = {};
    var duplicate = null;
    $("autoreplies").querySelectorAll(".autoreply").forEach(function (li) {
      var language = li.querySelector(".reply-lang").value.trim();
      var text = li.querySelector(".reply-text").value;
      if (!language && !text.trim()) return; // an untouched new row
      // A JSON object cannot hold a language twice: say so here, the rest is the server's.
      if (Object.prototype.hasOwnProperty.call(autoreplies, language)) duplicate = duplicate || li;
      autoreplies[language] = text;
    });
    var resolution = $("closed-resolution").value;
    return {
      duplicate: duplicate,
      body: {
        version: state.creating ? 0 : state.version,
        time_zone: $("time-zone").value.trim(),
        weekly: weekly,
        refer_when_open: $("refer-when-open").checked,
        closed_resolution_id: resolution ? Number(resolution) : null,
        default_language: $("default-language").value.trim(),
        autoreplies: autoreplies,
      },
    };
  }

  function saveSchedule(event) {
    event.preventDefault();
    var form = $("schedule-form");
    clearErrors(form);
    $("schedule-error").hidden = true;
    var built = scheduleBody();
    if (built.duplicate) {
      var input = built.duplicate.querySelector(".reply-lang");
      showError(built.duplicate.querySelector(".field-error"), [input], "This language already has a reply above.");
      input.focus();
      return;
    }
    var button = $("schedule-save");
    button.disabled = true;
    form.setAttribute("aria-busy", "true");
    $("save-status").textContent = "Saving…";
    api("PUT", withQuery("/api/hours/schedule/", [scopeQuery(state.scope)]), built.body).then(function (res) {
      button.disabled = false;
      form.removeAttribute("aria-busy");
      if (!res.ok) {
        if (res.error.code === "stale_version") {
          $("save-status").textContent = "Not saved: someone else changed these hours.";
          showConflict(res.error, built.body.version);
        } else {
          placeScheduleError(res.error);
        }
        return;
      }
      var saved = res.data;
      replaceSchedule(saved);
      state.creating = false;
      state.schedule = saved;
      renderScopeOptions();
      showEditor(saved);
      $("save-status").textContent = "Saved · version " + saved.version;
      notify((state.scope ? scopeName(state.scope) + "'s own hours" : "The global hours") + " saved (version " + saved.version + ").", "success");
    });
  }

  function replaceSchedule(saved) {
    var code = saved.query_type ? saved.query_type.code : "";
    var found = false;
    state.schedules = state.schedules.map(function (s) {
      if ((s.query_type ? s.query_type.code : "") === code) {
        found = true;
        return saved;
      }
      return s;
    });
    if (!found) state.schedules.push(saved);
  }

  function showConflict(error, loaded) {
    var current = error.data ? error.data.current_version : null;
    var text =
      current === null || current === undefined
        ? "These hours were removed or created by someone else after you loaded them. Your changes are not saved."
        : "They saved version " + current + " after you loaded version " + loaded + ". Your changes are not saved.";
    $("conflict-text").textContent = text + " Reload to see their version, then make your change again.";
    var banner = $("conflict");
    banner.hidden = false;
    banner.focus();
  }

  function hideConflict() {
    $("conflict").hidden = true;
  }

  function reloadScope() {
    return loadHours().then(function () {
      selectScope(state.scope);
      notify("Reloaded the latest saved hours of " + scopeName(state.scope) + ".", "info");
      var target = state.schedule ? $("time-zone") : $("schedule-create");
      target.focus();
    }, showLoadError);
  }

  function deleteSchedule() {
    var button = $("schedule-delete");
    if (state.creating) {
      state.creating = false;
      showEmpty();
      $("schedule-create").focus();
      return;
    }
    if (!button.hasAttribute("data-confirm")) {
      button.setAttribute("data-confirm", "");
      button.textContent = state.scope
        ? "Confirm: " + scopeName(state.scope) + " follows the global hours"
        : "Confirm: no hours, always open";
      return;
    }
    button.disabled = true;
    var url = withQuery("/api/hours/schedule/", ["version=" + state.version, scopeQuery(state.scope)]);
    api("DELETE", url).then(function (res) {
      button.disabled = false;
      if (!res.ok) {
        if (res.error.code === "stale_version") showConflict(res.error, state.version);
        else notify(res.error.message, "error");
        return;
      }
      state.schedules = state.schedules.filter(function (s) {
        return (s.query_type ? s.query_type.code : "") !== state.scope;
      });
      selectScope(state.scope);
      notify(
        state.scope
          ? scopeName(state.scope) + " now follows the global hours."
          : "The global hours were removed: the service is always open.",
        "success"
      );
      $("schedule-create").focus();
    });
  }

  // --- date preview ---------------------------------------------------------------------------
  function describeRule(rule) {
    if (!rule) return "No opening hours are configured.";
    var hours = rule.closed ? "closed" : rule.intervals.join(", ");
    if (rule.kind === "special_day") return "Special day" + (rule.label ? " “" + rule.label + "”" : "") + ": " + hours;
    if (rule.kind === "recurring_special_day") return "Yearly special day" + (rule.label ? " “" + rule.label + "”" : "") + ": " + hours;
    return "Weekly hours for " + rule.weekday + ": " + hours;
  }

  function runPreview(event) {
    event.preventDefault();
    var date = $("preview-date").value;
    var time = $("preview-time").value;
    var error = $("preview-at-error");
    clearErrors($("preview-form"));
    error.hidden = true;
    var params = [scopeQuery($("preview-scope").value)];
    if (date || time) params.push("at=" + encodeURIComponent(date + "T" + time));
    $("preview-run").disabled = true;
    api("GET", withQuery("/api/hours/preview/", params)).then(function (res) {
      $("preview-run").disabled = false;
      var box = $("preview-result");
      if (!res.ok) {
        box.hidden = true;
        var inputs = res.error.data.field === "at" ? [$("preview-date"), $("preview-time")] : [];
        showError(error, inputs, res.error.message);
        return;
      }
      var p = res.data;
      var zone = "";
      state.schedules.forEach(function (s) {
        if (s.id === p.schedule_id) zone = s.time_zone + (s.query_type ? ", hours of " + s.query_type.name : ", global hours");
      });
      var at = String(p.at || "");
      var when = at.length >= 16 ? longDate(at.slice(0, 10)) + ", " + at.slice(11, 16) : at;
      $("preview-sentence").textContent = sentence(p.summary);
      $("preview-sentence").setAttribute("data-open", p.open ? "true" : "false");
      $("preview-detail").textContent = when + (zone ? " (" + zone + ")" : "") + ". " + describeRule(p.rule) + ".";
      box.hidden = false;
    });
  }

  // --- special days: the calendar -------------------------------------------------------------
  function specialOn(date) {
    var monthDay = date.slice(5);
    var recurring = null;
    for (var i = 0; i < state.specialDays.length; i++) {
      var day = state.specialDays[i];
      if (!day.recurring_yearly && day.date === date) return day;
      if (day.recurring_yearly && day.date.slice(5) === monthDay && !recurring) recurring = day;
    }
    return recurring;
  }

  function dayText(day) {
    return day.closed ? "Closed" : day.intervals.map(intervalLabel).join(", ");
  }

  function renderCalendar(focus) {
    var year = state.cal.year;
    var month = state.cal.month;
    $("cal-month").textContent = MONTHS[month] + " " + year;
    var body = $("cal-body");
    body.textContent = "";
    var first = isoDate(year, month, 1);
    var start = addDays(first, -weekdayOf(first));
    var lastOfMonth = isoDate(year, month + 1, 0);
    var today = todayText();
    if (!state.calFocus || state.calFocus.slice(0, 7) !== first.slice(0, 7)) state.calFocus = first;
    var date = start;
    while (date <= lastOfMonth || weekdayOf(date) !== 0) {
      var row = el("tr", { role: "row" });
      for (var col = 0; col < 7; col++) {
        row.appendChild(calendarCell(date, month, today));
        date = addDays(date, 1);
      }
      body.appendChild(row);
    }
    renderMonthList();
    if (focus) focusDay(state.calFocus);
  }

  function calendarCell(date, month, today) {
    var inMonth = parseDate(date).getUTCMonth() === month;
    var special = specialOn(date);
    var label = longDate(date);
    var children = [el("span", { className: "cal-num", text: String(parseDate(date).getUTCDate()), "aria-hidden": "true" })];
    var classes = "cal-day" + (inMonth ? "" : " cal-out") + (date === today ? " cal-today" : "");
    if (special) {
      classes += special.closed ? " is-closed" : " is-hours";
      label += ", " + (special.closed ? "closed" : "special hours " + dayText(special));
      if (special.label) label += ", " + special.label;
      if (special.recurring_yearly) label += ", every year";
      children.push(
        el("span", { className: "cal-tag", "aria-hidden": "true" }, [
          special.recurring_yearly ? el("span", { className: "cal-yearly", text: "↻ " }) : null,
          special.closed ? "Closed" : special.intervals.map(intervalLabel).join(", "),
        ])
      );
      if (special.label) children.push(el("span", { className: "cal-label", "aria-hidden": "true", text: special.label }));
    }
    if (date === today) label += ", today";
    var button = el(
      "button",
      {
        type: "button",
        className: classes,
        "data-date": date,
        tabindex: date === state.calFocus ? "0" : "-1",
        "aria-label": label,
        "aria-current": date === today ? "date" : null,
        title: special && special.label ? special.label : null,
      },
      children
    );
    return el("td", { role: "gridcell" }, [button]);
  }

  function focusDay(date) {
    var button = $("cal-body").querySelector('button[data-date="' + date + '"]');
    if (button) button.focus();
  }

  function moveTo(date) {
    var d = parseDate(date);
    var sameMonth = d.getUTCFullYear() === state.cal.year && d.getUTCMonth() === state.cal.month;
    state.calFocus = date;
    if (!sameMonth) {
      state.cal = { year: d.getUTCFullYear(), month: d.getUTCMonth() };
      renderCalendar(false);
      state.calFocus = date;
    }
    $("cal-body").querySelectorAll("button[data-date]").forEach(function (b) {
      b.setAttribute("tabindex", b.getAttribute("data-date") === date ? "0" : "-1");
    });
    focusDay(date);
  }

  function calendarKey(event) {
    var target = event.target.closest("button[data-date]");
    if (!target) return;
    var date = target.getAttribute("data-date");
    var next = null;
    switch (event.key) {
      case "ArrowLeft": next = addDays(date, -1); break;
      case "ArrowRight": next = addDays(date, 1); break;
      case "ArrowUp": next = addDays(date, -7); break;
      case "ArrowDown": next = addDays(date, 7); break;
      case "Home": next = addDays(date, -weekdayOf(date)); break;
      case "End": next = addDays(date, 6 - weekdayOf(date)); break;
      case "PageUp": next = addMonths(date, event.shiftKey ? -12 : -1); break;
      case "PageDown": next = addMonths(date, event.shiftKey ? 12 : 1); break;
      default: return;
    }
    event.preventDefault();
    moveTo(next);
  }

  function shiftMonth(delta) {
    var focus = addMonths(state.calFocus || isoDate(state.cal.year, state.cal.month, 1), delta);
    var d = parseDate(focus);
    state.cal = { year: d.getUTCFullYear(), month: d.getUTCMonth() };
    state.calFocus = focus;
    renderCalendar(false);
  }

  function renderMonthList() {
    var year = state.cal.year;
    var month = state.cal.month;
    $("month-days-title").textContent = "Special days in " + MONTHS[month] + " " + year;
    var list = $("month-days");
    list.textContent = "";
    var monthKey = year + "-" + pad(month + 1);
    var shown = [];
    var last = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
    for (var d = 1; d <= last; d++) {
      var date = isoDate(year, month, d);
      var special = specialOn(date);
      if (special && date.slice(0, 7) === monthKey) shown.push({ date: date, day: special });
    }
    if (!shown.length) {
      list.appendChild(el("li", { className: "month-empty", text: "No special days this month: the weekly hours apply." }));
      return;
    }
    shown.forEach(function (item) {
      var name = item.day.label || (item.day.closed ? "Closed" : "Special hours");
      var edit = el("button", { type: "button", className: "btn btn-ghost btn-sm", "aria-label": "Edit " + name + ", " + longDate(item.date), text: "Edit" });
      edit.addEventListener("click", function () {
        openDay(item.date, edit);
      });
      list.appendChild(
        el("li", { className: "month-day" + (item.day.closed ? " is-closed" : " is-hours") }, [
          el("span", { className: "month-day-date", text: WEEKDAYS[weekdayOf(item.date)].slice(0, 3) + " " + parseDate(item.date).getUTCDate() }),
          el("span", { className: "month-day-main" }, [
            el("span", { className: "month-day-label", text: name }),
            el("span", {
              className: "month-day-hours",
              text: dayText(item.day) + (item.day.recurring_yearly ? " · every year" : "") + (item.day.source !== "manual" ? " · imported" : ""),
            }),
          ]),
          edit,
        ])
      );
    });
  }

  function loadSpecialDays() {
    return api("GET", withQuery("/api/hours/special-days/", [scopeQuery(state.scope)])).then(function (res) {
      if (!res.ok) {
        notify(res.error.message, "error");
        return;
      }
      state.specialDays = res.data.special_days || [];
      if (state.schedule) state.schedule.special_days = state.specialDays;
      renderCalendar(false);
    });
  }

  // --- special days: the dialog ---------------------------------------------------------------
  var dayOwner = {
    addButton: null,
    relabel: function () {
      relabelList($("day-intervals"), "Special hours");
    },
    changed: function () {},
  };

  function setDayKind(closed) {
    $("day-closed").checked = closed;
    $("day-hours").checked = !closed;
    $("day-intervals-box").hidden = closed;
    if (!closed && !$("day-intervals").children.length) {
      $("day-intervals").appendChild(intervalItem({ start: "09:00", end: "14:00" }, dayOwner));
      dayOwner.relabel();
    }
  }

  function openDay(date, opener) {
    var special = specialOn(date);
    openDayDialog(special, date, opener);
  }

  function openDayDialog(special, date, opener) {
    var dialog = $("day-dialog");
    var form = $("day-form");
    clearErrors(form);
    $("day-error").hidden = true;
    state.dayEditing = special;
    state.dayOpener = opener || document.activeElement;
    dayOwner.addButton = $("day-interval-add");
    $("day-intervals").textContent = "";
    $("day-title").textContent = special ? "Edit special day" : "Add a special day";
    $("day-date").value = special ? special.date : date;
    $("day-label").value = special ? special.label : "";
    $("day-recurring").checked = special ? special.recurring_yearly : false;
    (special ? special.intervals : []).forEach(function (iv) {
      $("day-intervals").appendChild(intervalItem(iv, dayOwner));
    });
    dayOwner.relabel();
    setDayKind(special ? special.closed : true);
    var del = $("day-delete");
    del.hidden = !special;
    del.textContent = "Delete";
    del.removeAttribute("data-confirm");
    var source = $("day-source");
    source.hidden = !(special && special.source !== "manual");
    source.textContent = special && special.source !== "manual"
      ? "Imported (" + special.source.replace("holidays:", "public holidays of ") + "). Saving a change makes it a manual day."
      : "";
    var override = $("day-override");
    var otherYear = special && special.recurring_yearly && special.date !== date;
    override.hidden = !otherYear;
    override.textContent = otherYear ? "Different on " + dayMonth(date) + " " + date.slice(0, 4) + " only" : "";
    override.setAttribute("data-date", date);
    if (special && special.recurring_yearly) {
      $("day-lead").textContent = "Every year on " + dayMonth(special.date) + ". A one-off day on the same date overrides it.";
    } else {
      $("day-lead").textContent = "A special day replaces the weekly hours of its date.";
    }
    $("day-save").disabled = false;
    if (!dialog.open) dialog.showModal();
    $("day-date").focus();
  }

  function dayBody() {
    var items = collectIntervals($("day-intervals"));
    var closed = $("day-closed").checked;
    return {
      items: closed ? [] : items.map(function (item) {
        return item.li;
      }),
      body: {
        date: $("day-date").value,
        closed: closed,
        intervals: closed ? [] : items.map(function (item) {
          return item.value;
        }),
        recurring_yearly: $("day-recurring").checked,
        label: $("day-label").value.trim(),
      },
    };
  }

  function placeDayError(error, items) {
    var field = error.data.field || "";
    var focus = null;
    if (field === "date") focus = showError($("day-date-error"), [$("day-date")], error.message);
    else if (field === "label") focus = showError($("day-label-error"), [$("day-label")], error.message);
    else if (/^intervals\[/.test(field)) focus = placeIntervalError(error, items, null);
    else if (field === "intervals") {
      showError($("day-intervals-error"), [], error.message);
      focus = $("day-interval-add");
    }
    if (!focus) {
      var box = $("day-error");
      box.textContent = "Nothing was saved. " + error.message;
      box.hidden = false;
      if (error.code === "stale_version" || error.code === "not_found") {
        box.appendChild(document.createTextNode(" "));
        var reload = el("button", { type: "button", className: "link-btn", text: "Reload the special days" });
        reload.addEventListener("click", function () {
          $("day-dialog").close();
          loadSpecialDays().then(function () {
            focusDay(state.calFocus);
          });
        });
        box.appendChild(reload);
        reload.focus();
      }
      return;
    }
    if (focus.focus) focus.focus();
  }

  function saveDay(event) {
    event.preventDefault();
    var form = $("day-form");
    clearErrors(form);
    $("day-error").hidden = true;
    var built = dayBody();
    var editing = state.dayEditing;
    var request = editing
      ? api("PUT", "/api/hours/special-days/" + editing.id + "/", Object.assign({ version: editing.version }, built.body))
      : api("POST", withQuery("/api/hours/special-days/", [scopeQuery(state.scope)]), built.body);
    $("day-save").disabled = true;
    request.then(function (res) {
      $("day-save").disabled = false;
      if (!res.ok) {
        placeDayError(res.error, built.items);
        return;
      }
      var saved = res.data.special_day;
      $("day-dialog").close();
      notify("Special day " + longDate(saved.date) + (saved.label ? " (" + saved.label + ")" : "") + " saved.", "success");
      loadSpecialDays().then(function () {
        moveTo(saved.recurring_yearly && state.calFocus.slice(5) === saved.date.slice(5) ? state.calFocus : saved.date);
      });
    });
  }

  function deleteDay() {
    var button = $("day-delete");
    var editing = state.dayEditing;
    if (!editing) return;
    if (!button.hasAttribute("data-confirm")) {
      button.setAttribute("data-confirm", "");
      button.textContent = "Confirm delete";
      return;
    }
    button.disabled = true;
    api("DELETE", "/api/hours/special-days/" + editing.id + "/").then(function (res) {
      button.disabled = false;
      if (!res.ok) {
        placeDayError(res.error, []);
        return;
      }
      $("day-dialog").close();
      notify("Special day " + longDate(editing.date) + " deleted.", "success");
      loadSpecialDays().then(function () {
        focusDay(state.calFocus);
      });
    });
  }

  // --- holidays import ------------------------------------------------------------------------
  function renderCountries() {
    var select = $("import-country");
    select.textContent = "";
    select.appendChild(el("option", { value: "", text: "Choose a country" }));
    state.countries.forEach(function (c) {
      select.appendChild(el("option", { value: c.code, text: c.name + " (" + c.code + ")" }));
    });
    var region = (navigator.language || "").split("-")[1];
    if (region && select.querySelector('option[value="' + cssEscape(region.toUpperCase()) + '"]')) select.value = region.toUpperCase();
    renderSubdivisions();
    $("import-year").value = String(new Date().getFullYear());
  }

  function renderSubdivisions() {
    var select = $("import-subdivision");
    select.textContent = "";
    select.appendChild(el("option", { value: "", text: "Whole country" }));
    var code = $("import-country").value;
    state.countries.forEach(function (c) {
      if (c.code !== code) return;
      c.subdivisions.forEach(function (s) {
        select.appendChild(el("option", { value: s, text: s }));
      });
    });
    select.disabled = select.options.length <= 1 || $("import-country").disabled;
  }

  function importParams() {
    return [
      scopeQuery(state.scope),
      "country=" + encodeURIComponent($("import-country").value),
      "year=" + encodeURIComponent($("import-year").value),
      $("import-subdivision").value ? "subdivision=" + encodeURIComponent($("import-subdivision").value) : "",
    ];
  }

  function resetImport() {
    state.importPreview = null;
    $("import-result").hidden = true;
    $("import-error").hidden = true;
    $("import-run").disabled = true;
  }

  function placeImportError(error) {
    var field = error.data.field || "";
    var map = { country: "import-country", subdivision: "import-subdivision", year: "import-year" };
    if (map[field]) {
      var message = error.message;
      if (field === "subdivision" && error.data.allowed && error.data.allowed.length) {
        message += " Known regions: " + error.data.allowed.join(", ") + ".";
      }
      showError($(map[field] + "-error"), [$(map[field])], message);
      $(map[field]).focus();
      return;
    }
    var box = $("import-error");
    box.textContent = error.message;
    box.hidden = false;
  }

  function previewImport(event) {
    event.preventDefault();
    clearErrors($("import-card"));
    resetImport();
    var button = $("import-preview");
    button.disabled = true;
    api("GET", withQuery("/api/hours/holidays/", importParams())).then(function (res) {
      button.disabled = false;
      if (!res.ok) {
        placeImportError(res.error);
        return;
      }
      var p = res.data;
      state.importPreview = p;
      var country = $("import-country").selectedOptions[0];
      var where = (country ? country.textContent : p.country) + (p.subdivision ? ", " + p.subdivision : "");
      var total = p.holidays.length;
      $("import-summary").textContent =
        where + ", " + p.year + ": " + total + " public holiday" + (total === 1 ? "" : "s") + ". " +
        p.new + " new" + (p.skipped ? "; " + p.skipped + " already " + (p.skipped === 1 ? "has" : "have") + " a special day and will be left alone." : ".");
      var list = $("import-list");
      list.textContent = "";
      p.holidays.forEach(function (h) {
        list.appendChild(
          el("li", { className: h.taken ? "is-taken" : "" }, [
            el("span", { className: "import-date", text: longDate(h.date) }),
            " ",
            el("span", { text: h.label + (h.taken ? " (already set)" : "") }),
          ])
        );
      });
      var run = $("import-run");
      run.textContent = p.new ? "Import " + p.new + " holiday" + (p.new === 1 ? "" : "s") : "Nothing to import";
      run.disabled = !p.new;
      $("import-result").hidden = false;
    });
  }

  function runImport() {
    if (!state.importPreview) return;
    var run = $("import-run");
    run.disabled = true;
    api("POST", withQuery("/api/hours/holidays/import/", [scopeQuery(state.scope)]), {
      country: state.importPreview.country,
      year: state.importPreview.year,
      subdivision: state.importPreview.subdivision || undefined,
    }).then(function (res) {
      if (!res.ok) {
        run.disabled = false;
        placeImportError(res.error);
        return;
      }
      var created = res.data.created || [];
      resetImport();
      notify(
        "Imported " + created.length + " public holiday" + (created.length === 1 ? "" : "s") +
          (res.data.skipped && res.data.skipped.length ? " (" + res.data.skipped.length + " left alone)" : "") + ".",
        "success"
      );
      loadSpecialDays().then(function () {
        if (created.length) {
          var first = created[0].date;
          state.cal = { year: parseDate(first).getUTCFullYear(), month: parseDate(first).getUTCMonth() };
          state.calFocus = first;
          renderCalendar(false);
        }
        $("import-preview").focus();
      });
    });
  }

  // --- start ----------------------------------------------------------------------------------
  function showLoadError(error) {
    main.setAttribute("aria-busy", "false");
    notify((error && error.message) || "The opening hours could not be loaded. Reload the page.", "error");
  }

  function bind() {
    $("scope").addEventListener("change", function (event) {
      if (state.dirty && !window.confirm("Leave without saving your changes to " + scopeName(state.scope) + "?")) {
        event.target.value = state.scope;
        return;
      }
      selectScope(event.target.value);
    });
    $("schedule-create").addEventListener("click", startCreate);
    $("schedule-form").addEventListener("submit", saveSchedule);
    $("schedule-form").addEventListener("input", markDirty);
    $("schedule-form").addEventListener("change", markDirty);
    $("schedule-delete").addEventListener("click", deleteSchedule);
    $("copy-monday").addEventListener("click", copyMonday);
    $("autoreply-add").addEventListener("click", function () {
      var row = autoreplyRow("", "");
      $("autoreplies").appendChild(row);
      markDirty();
      row.querySelector(".reply-lang").focus();
    });
    $("conflict-reload").addEventListener("click", reloadScope);
    $("conflict-dismiss").addEventListener("click", function () {
      hideConflict();
      $("schedule-save").focus();
    });
    $("preview-form").addEventListener("submit", runPreview);
    $("cal-body").addEventListener("keydown", calendarKey);
    $("cal-body").addEventListener("click", function (event) {
      var button = event.target.closest("button[data-date]");
      if (!button) return;
      moveTo(button.getAttribute("data-date"));
      openDay(button.getAttribute("data-date"), button);
    });
    $("cal-prev").addEventListener("click", function () {
      shiftMonth(-1);
    });
    $("cal-next").addEventListener("click", function () {
      shiftMonth(1);
    });
    $("cal-today").addEventListener("click", function () {
      moveTo(todayText());
    });
    $("day-add").addEventListener("click", function (event) {
      openDayDialog(null, state.calFocus || todayText(), event.currentTarget);
    });
    $("day-form").addEventListener("submit", saveDay);
    $("day-closed").addEventListener("change", function () {
      setDayKind(true);
    });
    $("day-hours").addEventListener("change", function () {
      setDayKind(false);
    });
    $("day-interval-add").addEventListener("click", function () {
      var li = intervalItem(suggestInterval($("day-intervals")), dayOwner);
      $("day-intervals").appendChild(li);
      dayOwner.relabel();
      li.querySelector(".iv-start").focus();
    });
    $("day-delete").addEventListener("click", deleteDay);
    $("day-override").addEventListener("click", function (event) {
      openDayDialog(null, event.currentTarget.getAttribute("data-date"), state.dayOpener);
    });
    $("day-dialog").querySelectorAll("[data-dismiss]").forEach(function (button) {
      button.addEventListener("click", function () {
        $("day-dialog").close();
      });
    });
    $("day-dialog").addEventListener("close", function () {
      var opener = state.dayOpener;
      if (opener && document.body.contains(opener)) opener.focus();
      else focusDay(state.calFocus);
    });
    $("import-form").addEventListener("submit", previewImport);
    $("import-country").addEventListener("change", function () {
      renderSubdivisions();
      resetImport();
    });
    $("import-subdivision").addEventListener("change", resetImport);
    $("import-year").addEventListener("input", resetImport);
    $("import-run").addEventListener("click", runImport);
    window.addEventListener("beforeunload", function (event) {
      if (state.dirty) {
        event.preventDefault();
        event.returnValue = "";
      }
    });
  }

  function init() {
    bind();
    var now = new Date();
    $("preview-date").value = todayText();
    $("preview-time").value = pad(now.getHours()) + ":" + pad(now.getMinutes());
    var wanted = new URL(window.location.href).searchParams.get("scope") || "";
    Promise.all([
      loadHours(),
      api("GET", "/api/routing/options/").then(function (res) {
        if (!res.ok) throw res.error;
        state.queryTypes = res.data.query_types || [];
        state.resolutions = res.data.resolutions || [];
      }),
      api("GET", "/api/hours/holidays/countries/").then(function (res) {
        state.countries = res.ok ? res.data.countries : [];
      }),
    ]).then(function () {
      renderCountries();
      var known = !wanted || scopeTypes().some(function (t) {
        return t.code === wanted;
      });
      selectScope(known ? wanted : "");
      H.ready(main);
    }, showLoadError);
  }

  init();
})();
