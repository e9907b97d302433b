/* The analytics dashboard (/dashboard/): a client of /api/dashboard/live/ and
   /api/dashboard/period/.  It holds no rule: it sends the period typed, shows the server's
   precise error next to the field it names, and draws the figures as small SVG charts
   (no library).  The live panel polls every few seconds while the page is visible. */
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";
  var main = document.getElementById("dashboard-main");
  if (!main) return;

  var form = document.getElementById("period-form");
  var fields = {
    from: document.getElementById("period-from"),
    to: document.getElementById("period-to"),
    type: document.getElementById("period-type"),
    channel: document.getElementById("period-channel"),
  };
  var csvLink = document.getElementById("period-csv");
  var periodStatus = document.getElementById("period-status");
  var periodError = document.getElementById("period-error");
  var liveStatus = document.getElementById("live-status");
  var liveToggle = document.getElementById("live-toggle");
  var liveSeconds = Number(main.dataset.liveSeconds || "5");

  // Outcomes first, then the states still in progress; the labels come with the data.
  var STATUS_ORDER = [
    "done", "failed", "rejected", "expired", "cancelled", "executing", "approved", "picked",
    "pending", "awaiting_confirmation",
  ];
  var STATUS_LABELS = {};

  var state = { live: null, period: null, paused: false, timer: null, livePending: false, seq: 0 };

  // ---------------------------------------------------------------- formatting
  function fmtInt(n) {
    return Number(n || 0).toLocaleString("en");
  }

  function fmtDuration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    var s = Math.round(seconds);
    if (s < 60) return s + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " min" + (s % 60 ? " " + (s % 60) + " s" : "");
    var h = Math.floor(m / 60);
    if (h < 48) return h + " h" + (m % 60 ? " " + (m % 60) + " min" : "");
    var d = Math.floor(h / 24);
    return d + " d" + (h % 24 ? " " + (h % 24) + " h" : "");
  }

  function text(id, value) {
    var el = document.getElementById(id);
    if (el) el.textContent = value;
  }

  // ---------------------------------------------------------------- dates
  function isoDate(d) {
    return d.toISOString().slice(0, 10);
  }

  function addDays(iso, days) {
    var d = new Date(iso + "T00:00:00Z");
    d.setUTCDate(d.getUTCDate() + days);
    return isoDate(d);
  }

  // ---------------------------------------------------------------- SVG
  function el(tag, attrs, content) {
    var node = document.createElementNS(SVG_NS, tag);
    Object.keys(attrs || {}).forEach(function (k) {
      node.setAttribute(k, attrs[k]);
    });
    if (content !== undefined) node.textContent = content;
    return node;
  }

  function chartSvg(container, height, label) {
    container.textContent = "";
    var width = Math.max(260, Math.floor(container.clientWidth || 320));
    var svg = el("svg", {
      width: width,
      height: height,
      viewBox: "0 0 " + width + " " + height,
      role: "img",
      "aria-label": label,
      tabindex: "0",
      class: "chart-svg",
    });
    svg.appendChild(el("title", {}, label));
    container.appendChild(svg);
    return { svg: svg, width: width, height: height };
  }

  function empty(container, message) {
    container.textContent = "";
    var p = document.createElement("p");
    p.className = "chart-empty";
    p.textContent = message || "Nothing in this period.";
    container.appendChild(p);
  }

  /* Horizontal bars: items [{label, value, note, max?, title}].  ``value`` sets the bar;
     ``note`` is printed after it (defaults to the value). */
  function barChart(container, items, opts) {
    opts = opts || {};
    if (!items.length) return empty(container, opts.empty);
    var row = 30;
    var top = 4;
    var c = chartSvg(container, top + items.length * row + 4, opts.label || "Bar chart");
    var labelWidth = labelSpace(items, c.width);
    var noteWidth = opts.noteWidth || 64;
    var barSpace = Math.max(40, c.width - labelWidth - noteWidth - 12);
    var max = opts.max || Math.max.apply(null, items.map(function (i) { return i.max || i.value; })) || 1;
    items.forEach(function (item, index) {
      var y = top + index * row;
      var g = el("g", { class: "bar-row", "data-label": item.label, "data-value": item.value });
      g.appendChild(el("title", {}, item.title || item.label + ": " + (item.note || item.value)));
      g.appendChild(el("text", { x: labelWidth - 8, y: y + 18, "text-anchor": "end", class: "bar-label" },
        fit(item.label, labelWidth - 10)));
      if (item.max) {
        g.appendChild(el("rect", { x: labelWidth, y: y + 5, width: barSpace * Math.min(1, item.max / max),
          height: 18, rx: 3, class: "bar-track" }));
      }
      var w = item.value > 0 ? Math.max(2, (barSpace * item.value) / max) : 0;
      g.appendChild(el("rect", { x: labelWidth, y: y + 5, width: Math.min(w, barSpace), height: 18, rx: 3,
        class: "bar " + (item.tone || opts.tone || "") }));
      g.appendChild(el("text", { x: labelWidth + Math.min(w, barSpace) + 6, y: y + 18, class: "bar-note" },
        item.note !== undefined ? item.note : fmtInt(item.value)));
      c.svg.appendChild(g);
    });
  }

  /* Room for the labels: the widest one in the page's own font, at most 45 %. */
  var measurer = null;
  function textWidth(s) {
    if (!measurer) {
      measurer = document.createElement("canvas").getContext("2d");
      measurer.font = "12px " + getComputedStyle(document.body).fontFamily;
    }
    return measurer.measureText(String(s)).width;
  }

  function labelSpace(items, width) {
    var widest = Math.max.apply(null, items.map(function (i) { return textWidth(i.label); }));
    return Math.min(Math.max(64, Math.ceil(widest) + 16), Math.floor(width * 0.45));
  }

  /* The label, shortened with an ellipsis until it fits ``room`` pixels. */
  function fit(s, room) {
    s = String(s);
    if (textWidth(s) <= room) return s;
    while (s.length > 1 && textWidth(s + "…") > room) s = s.slice(0, -1);
    return s + "…";
  }

  /* Columns over time: points [{start, count}]. */
  function columnChart(container, points, label) {
    if (!points.length) return empty(container);
    var c = chartSvg(container, 200, label);
    var left = 40, bottom = 24, top = 10, right = 8;
    var plotW = c.width - left - right;
    var plotH = c.height - top - bottom;
    var max = Math.max.apply(null, points.map(function (p) { return p.count; })) || 1;
    var ticks = niceTicks(max);
    var scaleMax = ticks[ticks.length - 1];
    ticks.forEach(function (t) {
      var y = top + plotH - (plotH * t) / scaleMax;
      c.svg.appendChild(el("line", { x1: left, x2: c.width - right, y1: y, y2: y, class: "grid" }));
      c.svg.appendChild(el("text", { x: left - 6, y: y + 4, "text-anchor": "end", class: "axis" }, fmtInt(t)));
    });
    var step = plotW / points.length;
    var barW = Math.max(1, step * 0.72);
    var labelEvery = Math.ceil(points.length / Math.max(1, Math.floor(plotW / 64)));
    points.forEach(function (p, i) {
      var h = (plotH * p.count) / scaleMax;
      var x = left + i * step + (step - barW) / 2;
      var rect = el("rect", { x: x, y: top + plotH - h, width: barW, height: Math.max(h, 0), class: "bar column",
        "data-start": p.start, "data-value": p.count });
      rect.appendChild(el("title", {}, p.start + ": " + fmtInt(p.count)));
      c.svg.appendChild(rect);
      if (i % labelEvery === 0) {
        c.svg.appendChild(el("text", { x: left + i * step + step / 2, y: c.height - 6, "text-anchor": "middle",
          class: "axis" }, p.start.slice(5)));
      }
    });
  }

  function niceTicks(max) {
    var raw = max / 4;
    var mag = Math.pow(10, Math.floor(Math.log10(raw || 1)));
    var step = [1, 2, 5, 10].map(function (m) { return m * mag; }).find(function (s) { return s >= raw; }) || mag;
    step = Math.max(1, step);
    var ticks = [];
    for (var t = 0; t <= max + step - 1e-9; t += step) ticks.push(Math.round(t));
    if (ticks.length < 2) ticks.push(step);
    return ticks;
  }

  /* Stacked horizontal bars: rows [{label, parts: {status: n}, total}]. */
  function stackedChart(container, rows, legend) {
    legend.textContent = "";
    if (!rows.length) return empty(container);
    var seen = {};
    rows.forEach(function (r) { Object.keys(r.parts).forEach(function (k) { seen[k] = true; }); });
    var order = STATUS_ORDER.filter(function (k) { return seen[k]; })
      .concat(Object.keys(seen).filter(function (k) { return STATUS_ORDER.indexOf(k) < 0; }));
    order.forEach(function (k) {
      var item = document.createElement("span");
      item.className = "legend-item";
      var sw = document.createElement("span");
      sw.className = "swatch status-" + k;
      sw.setAttribute("aria-hidden", "true");
      item.appendChild(sw);
      item.appendChild(document.createTextNode(STATUS_LABELS[k] || k));
      legend.appendChild(item);
    });
    var row = 30;
    var c = chartSvg(container, rows.length * row + 8, "Back-office actions by type and outcome");
    var labelWidth = labelSpace(rows, c.width);
    var barSpace = Math.max(40, c.width - labelWidth - 56);
    var max = Math.max.apply(null, rows.map(function (r) { return r.total; })) || 1;
    rows.forEach(function (r, index) {
      var y = 4 + index * row;
      var g = el("g", { class: "bar-row", "data-label": r.label, "data-value": r.total });
      var desc = order.filter(function (k) { return r.parts[k]; })
        .map(function (k) { return (STATUS_LABELS[k] || k) + " " + r.parts[k]; }).join(", ");
      g.appendChild(el("title", {}, r.label + ": " + desc));
      g.appendChild(el("text", { x: labelWidth - 8, y: y + 18, "text-anchor": "end", class: "bar-label" },
        fit(r.label, labelWidth - 10)));
      var x = labelWidth;
      order.forEach(function (k) {
        if (!r.parts[k]) return;
        var w = (barSpace * r.parts[k]) / max;
        g.appendChild(el("rect", { x: x, y: y + 5, width: Math.max(1, w), height: 18, class: "seg status-" + k,
          "data-status": k, "data-value": r.parts[k] }));
        x += w;
      });
      g.appendChild(el("text", { x: x + 6, y: y + 18, class: "bar-note" }, fmtInt(r.total)));
      c.svg.appendChild(g);
    });
  }

  // ---------------------------------------------------------------- network
  function getJSON(url) {
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } }).then(
      function (response) {
        return response.json().then(
          function (body) {
            if (!response.ok) {
              var error = new Error(body.message || "The server refused the request.");
              error.body = body;
              error.status = response.status;
              throw error;
            }
            return body;
          },
          function () {
            var error = new Error("The server answered " + response.status + ".");
            error.status = response.status;
            throw error;
          }
        );
      }
    );
  }

  // ---------------------------------------------------------------- live
  function renderLive(live) {
    text("kpi-queued", fmtInt(live.queued_total));
    text("kpi-longest", live.queued_total ? fmtDuration(live.longest_wait_s) : "–");
    text("kpi-held", fmtInt(live.held_total));
    text("kpi-online", fmtInt(live.online));
    text("kpi-away", live.away ? live.away + " away" : "");
    text("kpi-load", live.capacity ? Math.round((100 * live.load) / live.capacity) + " %" : "–");
    text("kpi-capacity", fmtInt(live.load) + " of " + fmtInt(live.capacity) + " slots");
    barChart(
      document.getElementById("chart-queue"),
      live.queue.filter(function (q) { return q.queued || q.held; }).map(function (q) {
        var note = q.queued ? fmtInt(q.queued) + " · " + fmtDuration(q.longest_wait_s) : "0";
        if (q.held) note += " (+" + q.held + " held)";
        return { label: q.type, value: q.queued, note: note, tone: q.longest_wait_s > 300 ? "late" : "" };
      }),
      { label: "Queue by query type", empty: "Nobody is waiting.", noteWidth: 130 }
    );
    barChart(
      document.getElementById("chart-operators-live"),
      live.operators.map(function (o) {
        return {
          label: o.name + (o.presence === "away" ? " (away)" : ""),
          value: o.load,
          max: o.capacity,
          note: o.load + "/" + o.capacity,
          tone: o.presence === "away" ? "muted" : o.load >= o.capacity ? "full" : "",
        };
      }),
      { label: "Operators' load against capacity", empty: "No operator is online." }
    );
  }

  function loadLive() {
    if (state.livePending) return;
    state.livePending = true;
    getJSON("/api/dashboard/live/")
      .then(function (live) {
        state.live = live;
        renderLive(live);
        main.dataset.liveAt = live.at;
        liveStatus.textContent = "Updated " + new Date(live.at).toLocaleTimeString("en-GB");
      })
      .catch(function (error) {
        liveStatus.textContent = "Not updated: " + error.message;
      })
      .then(function () {
        state.livePending = false;
      });
  }

  function schedule() {
    clearInterval(state.timer);
    state.timer = null;
    if (!state.paused && !document.hidden) {
      state.timer = setInterval(loadLive, liveSeconds * 1000);
    }
  }

  liveToggle.addEventListener("click", function () {
    state.paused = !state.paused;
    liveToggle.setAttribute("aria-pressed", String(state.paused));
    liveToggle.textContent = state.paused ? "Resume updates" : "Pause updates";
    if (!state.paused) loadLive();
    schedule();
  });

  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && !state.paused) loadLive();
    schedule();
  });

  // ---------------------------------------------------------------- period
  function query() {
    var params = new URLSearchParams();
    params.set("from", fields.from.value);
    // The picker's "to" is the last day shown; the API's is exclusive.
    params.set("to", fields.to.value ? addDays(fields.to.value, 1) : "");
    if (fields.type.value) params.set("type", fields.type.value);
    if (fields.channel.value) params.set("channel", fields.channel.value);
    return params;
  }

  function clearErrors() {
    periodError.hidden = true;
    Object.keys(fields).forEach(function (name) {
      var box = document.getElementById("period-" + name + "-error");
      box.hidden = true;
      box.textContent = "";
      fields[name].removeAttribute("aria-invalid");
    });
  }

  function showError(error) {
    var field = error.body && error.body.data && error.body.data.field;
    if (field && fields[field]) {
      var box = document.getElementById("period-" + field + "-error");
      box.textContent = error.message;
      box.hidden = false;
      fields[field].setAttribute("aria-invalid", "true");
      fields[field].focus();
    } else {
      periodError.textContent = error.message;
      periodError.hidden = false;
    }
    periodStatus.textContent = "Not loaded.";
  }

  function renderPeriod(data) {
    var volume = data.conversations;
    var frt = data.first_response;
    var res = data.resolution;
    var ooh = data.out_of_hours;
    var approval = data.backoffice.approval_turnaround;
    text("kpi-conversations", fmtInt(volume.total));
    text("kpi-unanswered", frt.unanswered ? fmtInt(frt.unanswered) + " without an operator reply" : "");
    text("kpi-frt-median", fmtDuration(frt.median_s));
    text("kpi-frt-p90", frt.count ? "p90 " + fmtDuration(frt.p90_s) : "");
    text("kpi-res-median", fmtDuration(res.median_s));
    text("kpi-res-p90", res.count ? "p90 " + fmtDuration(res.p90_s) + " · " + fmtInt(res.count) + " closed" : "");
    text("kpi-ooh", fmtInt(ooh.total));
    text("kpi-ooh-note", ooh.total ? fmtInt(ooh.autoreplies) + " autoreplies" : "");
    text("kpi-approval-median", fmtDuration(approval.median_s));
    text("kpi-approval-p90", approval.count ? "p90 " + fmtDuration(approval.p90_s) + " · " + fmtInt(approval.count) + " decided" : "");
    text("volume-unit", "per " + data.period.bucket);

    columnChart(document.getElementById("chart-volume"), volume.over_time,
      "Conversations opened per " + data.period.bucket);
    barChart(document.getElementById("chart-types"), volume.by_type.map(function (e) {
      return { label: e.type, value: e.count };
    }), { label: "Conversations by query type" });
    barChart(document.getElementById("chart-channels"), volume.by_channel.map(function (e) {
      return { label: e.label, value: e.count };
    }), { label: "Conversations by channel" });
    var times = [];
    [["First reply", frt], ["Resolution", res], ["Approval", approval]].forEach(function (pair) {
      if (!pair[1].count) return;
      times.push({ group: pair[0], label: pair[0] + " median", value: pair[1].median_s,
        note: fmtDuration(pair[1].median_s) });
      times.push({ group: pair[0], label: pair[0] + " p90", value: pair[1].p90_s,
        note: fmtDuration(pair[1].p90_s), tone: "late" });
    });
    var timeMax = {};
    times.forEach(function (t) {
      timeMax[t.group] = Math.max(timeMax[t.group] || 0, t.value || 0);
    });
    // Each measure on its own scale (resolution takes hours, responses minutes).
    times.forEach(function (t) {
      t.value = timeMax[t.group] ? (t.value / timeMax[t.group]) * 100 : 0;
    });
    barChart(document.getElementById("chart-times"), times, {
      label: "Median and p90 times", max: 100, noteWidth: 90,
    });
    barChart(document.getElementById("chart-reasons"), data.closes_by_reason.map(function (e) {
      return { label: e.reason, value: e.count };
    }), { label: "Closes by resolution reason" });
    barChart(document.getElementById("chart-operators"), data.operators.map(function (e) {
      return {
        label: e.name, value: e.conversations,
        note: fmtInt(e.conversations) + " · " + fmtInt(e.closed) + " closed",
      };
    }), { label: "Conversations per operator", noteWidth: 120 });
    barChart(document.getElementById("chart-ooh"), ooh.total ? [
      { label: "Held until opening", value: ooh.held },
      { label: "Released at opening", value: ooh.released },
      { label: "Closed out of hours", value: ooh.closed },
      { label: "Autoreplies sent", value: ooh.autoreplies },
    ] : [], { label: "Out-of-hours volume" });
    STATUS_LABELS = data.backoffice.status_labels || {};
    stackedChart(document.getElementById("chart-backoffice"), data.backoffice.by_type.map(function (e) {
      return { label: e.label, parts: e.by_status, total: e.total };
    }), document.getElementById("backoffice-legend"));
  }

  function loadPeriod(opts) {
    clearErrors();
    var params = query();
    var seq = ++state.seq;
    csvLink.href = "/api/dashboard/period.csv?" + params.toString();
    periodStatus.textContent = "Loading…";
    main.setAttribute("aria-busy", "true");
    return getJSON("/api/dashboard/period/?" + params.toString())
      .then(function (data) {
        if (seq !== state.seq) return; // a newer request is on its way
        state.period = data;
        renderPeriod(data);
        main.dataset.periodFrom = data.period.from.slice(0, 10);
        main.dataset.periodTo = data.period.to.slice(0, 10);
        periodStatus.textContent = fmtInt(data.conversations.total) + " conversations from " +
          fields.from.value + " to " + fields.to.value + ".";
        if (!(opts && opts.initial)) {
          var url = new URL(window.location.href);
          url.search = params.toString();
          url.searchParams.set("to", fields.to.value);
          history.replaceState(null, "", url);
        }
      })
      .catch(function (error) {
        if (seq !== state.seq) return;
        showError(error);
      })
      .then(function () {
        if (seq === state.seq) {
          main.setAttribute("aria-busy", "false");
          main.dataset.ready = "true";
        }
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    loadPeriod();
  });

  Array.prototype.forEach.call(document.querySelectorAll(".presets [data-days]"), function (button) {
    button.addEventListener("click", function () {
      var today = isoDate(new Date());
      fields.to.value = today;
      fields.from.value = addDays(today, 1 - Number(button.dataset.days));
      loadPeriod();
    });
  });

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(function () {
      if (state.live) renderLive(state.live);
      if (state.period) renderPeriod(state.period);
    }, 150);
  });

  // ---------------------------------------------------------------- start
  var initial = new URLSearchParams(window.location.search);
  fields.from.value = initial.get("from") || main.dataset.defaultFrom;
  fields.to.value = initial.get("to") || main.dataset.defaultTo;
  if (initial.get("type")) fields.type.value = initial.get("type");
  if (initial.get("channel")) fields.channel.value = initial.get("channel");
  loadLive();
  schedule();
  loadPeriod({ initial: true });
})();
