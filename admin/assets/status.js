// fedigate status page: fetches /status.json every few seconds and draws
// the last hour as small SVG line charts; the tables the server rendered
// are refreshed in place. No framework, nothing from elsewhere.
"use strict";
(function () {
  var SVG = "http://www.w3.org/2000/svg";
  var W = 360, H = 150, L = 42, R = 8, T = 8, B = 20;
  var COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#bcbd22"];
  var CHARTS = [
    { id: "routes", title: "Requests/s by route", pick: function (s) { return s.routes; } },
    { id: "classes", title: "Requests/s by status class", pick: function (s) { return s.classes; } },
    { id: "latency", title: "Latency (ms)", gaps: true, pick: function (s) { return { p50: s.p50, p99: s.p99 }; } },
    { id: "limited", title: "Rate-limit refusals by rule (per sample)", pick: function (s) { return s.limited; } },
    { id: "gate", title: "Sign-up gate events (per sample)", pick: function (s) { return s.gate; } },
    { id: "egress", title: "Egress verdicts (per sample)", pick: function (s) { return s.egress; } },
    { id: "cache", title: "Cache hit ratio (%)", optional: true, gaps: true,
      pick: function (s) { return { hit: s.cache == null ? null : 100 * s.cache }; } },
    { id: "rss", title: "Memory, RSS (MiB)", pick: function (s) { return { rss: s.rss / 1048576 }; } },
    { id: "goroutines", title: "Goroutines", pick: function (s) { return { goroutines: s.goroutines }; } }
  ];
  var samples = [], last = 0, every = 5;

  function el(name, attrs, text) {
    var e = name.indexOf("svg:") === 0 ? document.createElementNS(SVG, name.slice(4)) : document.createElement(name);
    for (var k in attrs || {}) { e.setAttribute(k, attrs[k]); }
    if (text !== undefined) { e.textContent = text; }
    return e;
  }
  function utc(t) { return new Date(t * 1000).toISOString().slice(11, 19); }
  function fmt(v) { return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2); }

  function fillRows(id, rows) {
    var body = document.querySelector("#" + id + " tbody");
    if (!body) { return; }
    body.textContent = "";
    rows.forEach(function (r) {
      var tr = el("tr", r.cls ? { "class": r.cls } : {});
      r.cells.forEach(function (c, i) { tr.appendChild(el("td", r.num && r.num.indexOf(i) >= 0 ? { "class": "num" } : {}, c)); });
      body.appendChild(tr);
    });
  }

  function tables(doc) {
    var deps = doc.deps.map(function (d) {
      return { cls: d.ok ? "ok" : "bad", cells: [d.name, d.ok ? "up" : "down", utc(d.since), d.error || ""] };
    });
    doc.certs.forEach(function (c) {
      deps.push({ cls: c.state, cells: ["certificate " + c.name, c.state + ": " + c.days_left + " days left",
        "expires " + new Date(c.not_after * 1000).toISOString().slice(0, 10), ""] });
    });
    fillRows("deps", deps.length ? deps : [{ cells: ["not probed yet"] }]);
    fillRows("summary", doc.summary.length ? doc.summary.map(function (r) {
      return { num: [2, 3], cells: [r.group, r.label, r.minute, r.hour] };
    }) : [{ cells: ["no sample yet"] }]);
    fillRows("refusals", doc.refusals.length ? doc.refusals.map(function (r) {
      return { num: [1], cells: [utc(r.t), String(r.status), r.rule] };
    }) : [{ cells: ["none"] }]);
    document.getElementById("updated").textContent = utc(doc.now);
  }

  // series turns the samples into {name: [[t, v|null], ...]} for one chart.
  function series(c) {
    var names = {}, out = {};
    samples.forEach(function (s) { var m = c.pick(s) || {}; for (var k in m) { if (m[k] != null) { names[k] = true; } } });
    Object.keys(names).sort().forEach(function (k) {
      out[k] = samples.map(function (s) {
        var v = (c.pick(s) || {})[k];
        return [s.t, v == null ? (c.gaps ? null : 0) : v];
      });
    });
    return out;
  }

  function chart(c, data, t0, t1) {
    var fig = el("figure", { "data-chart": c.id });
    fig.appendChild(el("figcaption", {}, c.title));
    var svg = el("svg:svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": c.title });
    var ymax = 0;
    Object.keys(data).forEach(function (k) { data[k].forEach(function (p) { if (p[1] != null) { ymax = Math.max(ymax, p[1]); } }); });
    ymax = ymax > 0 ? ymax * 1.1 : 1;
    var x = function (t) { return L + (W - L - R) * (t - t0) / Math.max(1, t1 - t0); };
    var y = function (v) { return H - B - (H - B - T) * v / ymax; };
    svg.appendChild(el("svg:rect", { x: L, y: T, width: W - L - R, height: H - B - T, fill: "none", stroke: "#ccc" }));
    [0, ymax / 2, ymax].forEach(function (v) {
      svg.appendChild(el("svg:text", { x: L - 4, y: y(v) + 3, "text-anchor": "end" }, fmt(v)));
    });
    svg.appendChild(el("svg:text", { x: L, y: H - 6 }, utc(t0)));
    svg.appendChild(el("svg:text", { x: W - R, y: H - 6, "text-anchor": "end" }, utc(t1)));
    var legend = el("div", { "class": "legend" });
    Object.keys(data).forEach(function (k, i) {
      var color = COLORS[i % COLORS.length], pts = [];
      var flush = function () {
        if (pts.length === 1) { // a lone point: a dot, as a line needs two
          var xy = pts[0].split(",");
          svg.appendChild(el("svg:circle", { cx: xy[0], cy: xy[1], r: 2.5, fill: color, "data-series": k }));
        } else if (pts.length) {
          svg.appendChild(el("svg:polyline", { points: pts.join(" "), fill: "none", stroke: color, "stroke-width": 1.5, "data-series": k }));
        }
        pts = [];
      };
      data[k].forEach(function (p) { if (p[1] == null) { flush(); } else { pts.push(x(p[0]).toFixed(1) + "," + y(p[1]).toFixed(1)); } });
      flush();
      var sw = el("i");
      sw.style.background = color;
      var item = el("span");
      item.appendChild(sw);
      item.appendChild(document.createTextNode(k));
      legend.appendChild(item);
    });
    fig.appendChild(svg);
    fig.appendChild(legend);
    return fig;
  }

  function draw() {
    var box = document.getElementById("charts");
    box.textContent = "";
    if (!samples.length) { return; }
    var t1 = samples[samples.length - 1].t, t0 = Math.min(samples[0].t - every, t1 - 60);
    CHARTS.forEach(function (c) {
      var data = series(c);
      if (c.optional && !Object.keys(data).length) { return; }
      box.appendChild(chart(c, data, t0, t1));
    });
    box.hidden = false;
  }

  function refresh() {
    fetch("/status.json?since=" + last, { cache: "no-store" }).then(function (r) {
      if (!r.ok) { throw new Error("status " + r.status); }
      return r.json();
    }).then(function (doc) {
      every = doc.every || every;
      samples = samples.concat(doc.samples).filter(function (s) { return s.t > doc.now - 3600; });
      if (samples.length) { last = samples[samples.length - 1].t; }
      tables(doc);
      draw();
    }).catch(function (e) {
      document.getElementById("updated").textContent = "failed (" + e.message + ")";
    }).then(function () {
      setTimeout(refresh, Math.max(2, every) * 1000);
    });
  }
  document.addEventListener("DOMContentLoaded", refresh);
})();
