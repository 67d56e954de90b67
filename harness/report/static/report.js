/* finetune-harness report: leaderboard sorting and filters, charts, the example explorer, cross-run view.
 * All data comes from the JSON block #report-data; every piece of it is put on the page with textContent
 * or drawn on a canvas, never parsed as HTML. */
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("report-data").textContent);
  var S = DATA.strings;
  var V = DATA.variants;
  var PALETTE = ["#2f5fd0", "#e8743b", "#19a979", "#ed4a7b", "#945ecf", "#13a4b4", "#b8860b", "#6c8893", "#d6506b", "#5b8c2a"];
  var GREY = "#98a2b3";

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function str(i) { return i === null || i === undefined || i < 0 ? null : S[i]; }
  function fmt(x, d) { return x === null || x === undefined ? "" : Number(x).toFixed(d === undefined ? 3 : d); }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }
  function option(sel, value, label) { var o = el("option", null, label); o.value = String(value); sel.appendChild(o); return o; }
  function vname(i) { return V[i] ? V[i].name : "?"; }

  /* ---- leaderboard ------------------------------------------------------------------------------------ */
  function initLeaderboard() {
    var table = document.getElementById("lb-table");
    if (!table) return;
    var tbody = table.tBodies[0];
    var heads = table.tHead.rows[table.tHead.rows.length - 1].cells;
    var state = { col: -1, dir: 1 };
    function sortBy(ci) {
      state.dir = state.col === ci ? -state.dir : (heads[ci].getAttribute("data-numeric") === "1" ? -1 : 1);
      state.col = ci;
      var numeric = heads[ci].getAttribute("data-numeric") === "1";
      var rows = Array.prototype.slice.call(tbody.rows);
      var base = rows.filter(function (r) { return r.classList.contains("base"); });
      var rest = rows.filter(function (r) { return !r.classList.contains("base"); });
      rest.sort(function (a, b) {
        var x = a.cells[ci].getAttribute("data-sort"), y = b.cells[ci].getAttribute("data-sort");
        var ex = x === null || x === "" || x === "None", ey = y === null || y === "" || y === "None";
        if (ex || ey) return ex === ey ? 0 : (ex ? 1 : -1);  // empty cells last, whatever the direction
        if (numeric) return state.dir * (parseFloat(x) - parseFloat(y));
        return state.dir * x.localeCompare(y);
      });
      base.concat(rest).forEach(function (r) { tbody.appendChild(r); });
      for (var i = 0; i < heads.length; i++) {
        heads[i].setAttribute("aria-sort", i === ci ? (state.dir > 0 ? "ascending" : "descending") : "none");
      }
    }
    Array.prototype.forEach.call(heads, function (th, ci) {
      th.addEventListener("click", function () { sortBy(ci); });
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sortBy(ci); });
    });
    var q = document.getElementById("lb-filter"), m = document.getElementById("lb-method");
    var hf = document.getElementById("lb-hide-failed"), cl = document.getElementById("lb-clean");
    var count = document.getElementById("lb-count");
    function filter() {
      var text = q.value.trim().toLowerCase(), shown = 0;
      Array.prototype.forEach.call(tbody.rows, function (r) {
        var ok = (!text || r.textContent.toLowerCase().indexOf(text) >= 0) &&
          (!m.value || r.getAttribute("data-method") === m.value || r.classList.contains("base")) &&
          (!hf.checked || r.getAttribute("data-status") === "finished") &&
          (!cl.checked || r.getAttribute("data-findings") === "0");
        r.hidden = !ok;
        if (ok) shown++;
      });
      count.textContent = shown + " of " + tbody.rows.length + " shown";
    }
    [q, m, hf, cl].forEach(function (c) { c.addEventListener("input", filter); c.addEventListener("change", filter); });
    filter();
    initColumnPicker(table, heads, tbody);
  }

  /* The column picker: the leaderboard opens with the ranking metric and each suite's main metric (so it fits a
   * laptop screen); the rest can be picked. Cells are hidden, never removed, so sorting and filters still work. */
  function initColumnPicker(table, heads, tbody) {
    var boxes = document.querySelectorAll("#lb-columns input[data-col]");
    var groups = table.tHead.rows[0].cells, count = document.getElementById("lb-columns-count");
    if (!boxes.length || !count) return;
    function apply() {
      var shown = { 0: true }, spans = [], n = 0;
      Array.prototype.forEach.call(boxes, function (b) { shown[b.getAttribute("data-col")] = b.checked; });
      for (var ci = 0; ci < heads.length; ci++) {
        var vis = !!shown[ci], g = Number(heads[ci].getAttribute("data-group"));
        heads[ci].hidden = !vis;
        spans[g] = (spans[g] || 0) + (vis ? 1 : 0);
        if (vis) n++;
        for (var ri = 0; ri < tbody.rows.length; ri++) {
          if (tbody.rows[ri].cells[ci]) tbody.rows[ri].cells[ci].hidden = !vis;
        }
      }
      Array.prototype.forEach.call(groups, function (th, g) { th.hidden = !spans[g]; th.colSpan = Math.max(spans[g] || 0, 1); });
      count.textContent = n + " of " + heads.length;
    }
    function set(all) {
      Array.prototype.forEach.call(boxes, function (b) { b.checked = all || b.getAttribute("data-default") === "1"; });
      apply();
    }
    Array.prototype.forEach.call(boxes, function (b) { b.addEventListener("change", apply); });
    document.getElementById("lb-cols-all").addEventListener("click", function () { set(true); });
    document.getElementById("lb-cols-default").addEventListener("click", function () { set(false); });
  }

  /* ---- charts ------------------------------------------------------------------------------------------ */
  var charts = {};
  function chart(id, config) {
    if (charts[id]) charts[id].destroy();
    charts[id] = new Chart(document.getElementById(id), config);
    return charts[id];
  }
  function showEmpty(canvasId, emptyId, isEmpty) {
    document.getElementById(emptyId).hidden = !isEmpty;
    document.getElementById(canvasId).parentNode.hidden = isEmpty;
  }
  function axis(title, extra) {
    var a = { title: { display: true, text: title }, grid: { color: "#eef0f3" } };
    for (var k in extra) a[k] = extra[k];
    return a;
  }

  function initLoss() {
    var curves = DATA.loss, sel = document.getElementById("loss-select");
    showEmpty("chart-loss", "loss-empty", curves.length === 0);
    if (!curves.length) return;
    var ranked = curves.slice().sort(function (a, b) { return (DATA.rank[b.v] || -1) - (DATA.rank[a.v] || -1); });
    option(sel, "top", "top 5 by held-out score");
    option(sel, "all", "all " + curves.length + " variants");
    curves.forEach(function (c, i) { option(sel, "v" + i, vname(c.v)); });
    function draw() {
      var pick = sel.value === "top" ? ranked.slice(0, 5) : sel.value === "all" ? curves : [curves[+sel.value.slice(1)]];
      var many = pick.length > 10, sets = [];
      pick.forEach(function (c, i) {
        var color = PALETTE[i % PALETTE.length];
        sets.push({ legend: true, label: vname(c.v), data: c.train.map(function (p) { return { x: p[0], y: p[1] }; }),
          borderColor: color, backgroundColor: color, borderWidth: many ? 1 : 1.6, pointRadius: 0, tension: 0.2 });
        if (c.val.length) {
          sets.push({ label: vname(c.v) + " validation", data: c.val.map(function (p) { return { x: p[0], y: p[1] }; }),
            borderColor: color, backgroundColor: color, borderDash: [5, 4], borderWidth: many ? 1 : 1.6,
            pointRadius: many ? 0 : 2, tension: 0.2 });
        }
        if (c.best) {
          sets.push({ label: vname(c.v) + " best epoch", data: [{ x: c.best[0], y: c.best[1] }], type: "scatter",
            pointStyle: "rectRot", pointRadius: 6, borderColor: "#111", backgroundColor: color, borderWidth: 1 });
        }
        if (c.scored && c.scored[1] !== null) {
          sets.push({ label: vname(c.v) + " scored checkpoint: " + c.scored[2], data: [{ x: c.scored[0], y: c.scored[1] }],
            type: "scatter", pointStyle: "star", pointRadius: 9, borderColor: "#111", backgroundColor: color,
            borderWidth: 1.5 });
        }
      });
      chart("chart-loss", { type: "line", data: { datasets: sets },
        options: { parsing: true, interaction: { mode: "nearest", intersect: false },
          scales: { x: axis("epoch", { type: "linear" }), y: axis("loss") },
          plugins: { legend: { display: !many, position: "bottom", labels: { boxWidth: 18, boxHeight: 2,
            filter: function (it) { return it.datasetIndex !== undefined && sets[it.datasetIndex].legend; } } } } } });
    }
    sel.addEventListener("change", draw);
    draw();
  }

  function initPareto() {
    var P = DATA.pareto, pts = P.points;
    showEmpty("chart-pareto", "pareto-empty", pts.length < 2);
    if (pts.length < 2) return;
    function xy(p) { return { x: p.x, y: p.y, xMin: p.xlo, xMax: p.xhi, yMin: p.ylo, yMax: p.yhi, v: p.v }; }
    var front = pts.filter(function (p) { return p.front; }).sort(function (a, b) { return a.x - b.x; });
    var others = pts.filter(function (p) { return !p.front; });
    var rec = pts.filter(function (p) { return p.v === DATA.recommended; });
    var sets = [
      { label: "Pareto front", data: front.map(xy), showLine: true, borderColor: "#2f5fd0", backgroundColor: "#2f5fd0",
        radius: 5, errorBarColor: "#9db4ea", errorBarWhiskerColor: "#9db4ea" },
      { label: "other variants", data: others.map(xy), borderColor: GREY, backgroundColor: GREY, radius: 4,
        // beyond 30 points the other variants' whiskers would hide the picture: show them on the front only
        errorBarColor: pts.length > 30 ? "rgba(0,0,0,0)" : "#d0d5dd", errorBarWhiskerColor: pts.length > 30 ? "rgba(0,0,0,0)" : "#d0d5dd" }];
    if (rec.length) sets.unshift({ label: "recommended", data: rec.map(xy), pointStyle: "star", radius: 12, borderWidth: 3,
      borderColor: "#1a7f4b", backgroundColor: "#1a7f4b", errorBarColor: "rgba(0,0,0,0)", errorBarWhiskerColor: "rgba(0,0,0,0)" });
    chart("chart-pareto", { type: "scatterWithErrorBars", data: { datasets: sets },
      options: { scales: { x: axis("Δ general accuracy vs base (right = less forgetting)"), y: axis("held-out " + P.metric) },
        plugins: { tooltip: { callbacks: { label: function (ctx) {
          var p = ctx.raw; return vname(p.v) + ": " + P.metric + " " + fmt(p.y) + " [" + fmt(p.yMin) + ", " + fmt(p.yMax) +
            "], Δacc " + fmt(p.x) + " [" + fmt(p.xMin) + ", " + fmt(p.xMax) + "]"; } } } } } });
  }

  function initHeatmap() {
    var H = DATA.heatmap;
    showEmpty("chart-heatmap", "heatmap-empty", H.cells.length === 0);
    if (!H.cells.length) return;
    if (H.base !== null && H.base !== undefined) {
      document.getElementById("heatmap-note").textContent = "Held-out " + H.metric + ", mean over learning rates and seeds. Base: " + fmt(H.base) + ".";
    }
    var vals = H.cells.map(function (c) { return c.v; });
    var lo = Math.min.apply(null, vals), hi = Math.max.apply(null, vals);
    function color(v) {
      var t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
      return "rgba(47,95,208," + (0.12 + 0.83 * t).toFixed(3) + ")";
    }
    var labels = {
      id: "cellLabels",
      afterDatasetsDraw: function (c) {
        var ctx = c.ctx, meta = c.getDatasetMeta(0);
        ctx.save(); ctx.font = "12px system-ui, sans-serif"; ctx.textAlign = "center"; ctx.textBaseline = "middle";
        meta.data.forEach(function (rect, i) {
          var d = H.cells[i], t = hi > lo ? (d.v - lo) / (hi - lo) : 0.5;
          ctx.fillStyle = t > 0.55 ? "#fff" : "#1d2430";
          var p = rect.getCenterPoint();
          ctx.fillText(fmt(d.v) + (d.n > 1 ? " (" + d.n + ")" : ""), p.x, p.y);
        });
        ctx.restore();
      } };
    chart("chart-heatmap", { type: "matrix",
      data: { datasets: [{ label: H.metric, data: H.cells.map(function (c) { return { x: String(H.cols[c.c]), y: H.rows[c.r], v: c.v }; }),
        backgroundColor: function (ctx) { var d = ctx.dataset.data[ctx.dataIndex]; return d ? color(d.v) : "#fff"; },
        borderColor: "#fff", borderWidth: 2,
        width: function (ctx) { var a = ctx.chart.chartArea; return a ? a.width / H.cols.length - 2 : 10; },
        height: function (ctx) { var a = ctx.chart.chartArea; return a ? a.height / H.rows.length - 2 : 10; } }] },
      options: { plugins: { legend: { display: false }, tooltip: { callbacks: {
          title: function () { return ""; },
          label: function (ctx) { var d = H.cells[ctx.dataIndex];
            return [d.names.length ? d.names.join(", ") + (d.n > d.names.length ? ", …" : "") : "",
              H.metric + " " + fmt(d.v) + " (mean of " + d.n + ")"]; } } } },
        scales: { x: { type: "category", labels: H.cols.map(String), offset: true, title: { display: true, text: "epochs" }, grid: { display: false } },
          y: { type: "category", labels: H.rows, offset: true, reverse: false, title: { display: true, text: "method and rank" }, grid: { display: false } } } },
      plugins: [labels] });
  }

  function initBars() {
    var sel = document.getElementById("bars-select"), sortBox = document.getElementById("bars-sort");
    var list = DATA.suite_scores;
    showEmpty("chart-bars", "bars-empty", list.length === 0);
    if (!list.length) return;
    var def = 0;
    list.forEach(function (s, i) {
      option(sel, i, s.suite + " · " + s.metric);
      if (s.suite === DATA.primary_suite && s.metric === DATA.primary_metric) def = i;
    });
    sel.value = String(def);
    if (V.length > 40) sortBox.checked = true;
    function draw() {
      var s = list[+sel.value], vals = s.values.slice();
      if (sortBox.checked) vals.sort(function (a, b) { return (b[1] === null ? -1e18 : b[1]) - (a[1] === null ? -1e18 : a[1]); });
      var colors = vals.map(function (r) { return V[r[0]].method === "base" ? GREY : r[0] === DATA.recommended ? "#1a7f4b" : "#2f5fd0"; });
      chart("chart-bars", { type: "barWithErrorBars",
        data: { labels: vals.map(function (r) { return vname(r[0]); }),
          datasets: [{ label: s.suite + " · " + s.metric, backgroundColor: colors, borderColor: colors,
            data: vals.map(function (r) { return { y: r[1], yMin: r[2], yMax: r[3] }; }),
            errorBarColor: "#344054", errorBarWhiskerColor: "#344054", errorBarWhiskerSize: vals.length > 40 ? 2 : 8 }] },
        options: { plugins: { legend: { display: false }, tooltip: { callbacks: { label: function (ctx) {
            var r = vals[ctx.dataIndex]; return s.metric + " " + fmt(r[1]) + " [" + fmt(r[2]) + ", " + fmt(r[3]) + "]"; } } } },
          scales: { x: { ticks: { autoSkip: true, maxRotation: 60, minRotation: 30 } }, y: axis(s.metric) } } });
    }
    sel.addEventListener("change", draw);
    sortBox.addEventListener("change", draw);
    draw();
  }

  /* ---- word-level diff ----------------------------------------------------------------------------------- */
  var MAX_DIFF_CELLS = 400000;
  function wordDiff(a, b) {
    var x = a.split(/(\s+)/).filter(function (t) { return t !== ""; });
    var y = b.split(/(\s+)/).filter(function (t) { return t !== ""; });
    var n = x.length, m = y.length;
    if (n * m > MAX_DIFF_CELLS) return null;
    var w = m + 1, L = new Int32Array((n + 1) * w);
    for (var i = n - 1; i >= 0; i--) for (var j = m - 1; j >= 0; j--) {
      L[i * w + j] = x[i] === y[j] ? L[(i + 1) * w + j + 1] + 1 : Math.max(L[(i + 1) * w + j], L[i * w + j + 1]);
    }
    var out = [], i2 = 0, j2 = 0;
    function push(op, t) { if (out.length && out[out.length - 1][0] === op) out[out.length - 1][1] += t; else out.push([op, t]); }
    while (i2 < n && j2 < m) {
      if (x[i2] === y[j2]) { push("=", x[i2]); i2++; j2++; }
      else if (L[(i2 + 1) * w + j2] >= L[i2 * w + j2 + 1]) { push("-", x[i2]); i2++; }
      else { push("+", y[j2]); j2++; }
    }
    while (i2 < n) push("-", x[i2++]);
    while (j2 < m) push("+", y[j2++]);
    return tidy(out);
  }
  // Within a run of changes, show all deleted words, then all inserted ones (whitespace between changes joins both).
  function tidy(ops) {
    var out = [], dels = "", inss = "";
    function flush() { if (dels) out.push(["-", dels]); if (inss) out.push(["+", inss]); dels = inss = ""; }
    for (var k = 0; k < ops.length; k++) {
      var o = ops[k];
      if (o[0] === "=" && /^\s+$/.test(o[1]) && (dels || inss) && k + 1 < ops.length && ops[k + 1][0] !== "=") {
        dels += o[1]; inss += o[1];
      } else if (o[0] === "-") dels += o[1];
      else if (o[0] === "+") inss += o[1];
      else { flush(); out.push(o); }
    }
    flush();
    return out;
  }
  function diffNode(a, b) {
    var pre = el("pre"), ops = wordDiff(a, b);
    if (ops === null) { pre.textContent = "(too long for a word diff)"; return pre; }
    ops.forEach(function (o) {
      pre.appendChild(o[0] === "=" ? document.createTextNode(o[1]) : el(o[0] === "-" ? "del" : "ins", null, o[1]));
    });
    return pre;
  }

  /* ---- example explorer ------------------------------------------------------------------------------------ */
  function initExplorer() {
    var suites = DATA.explorer, sSel = document.getElementById("ex-suite"), vSel = document.getElementById("ex-variant");
    var dSel = document.getElementById("ex-diff"), failed = document.getElementById("ex-failed");
    var changed = document.getElementById("ex-changed"), search = document.getElementById("ex-search");
    var list = document.getElementById("ex-list"), pageLbl = document.getElementById("ex-page");
    var prev = document.getElementById("ex-prev"), next = document.getElementById("ex-next");
    var empty = document.getElementById("ex-empty"), size = document.getElementById("ex-size");
    var st = { page: 0, hits: [] }, PAGE = 5;
    if (!suites.length) { empty.hidden = false; pageLbl.textContent = "no examples stored"; prev.disabled = next.disabled = true; return; }
    suites.forEach(function (s, i) {
      option(sSel, i, s.suite + " (" + s.ids.length + (s.total > s.ids.length ? " of " + s.total : "") + ")");
    });
    function suite() { return suites[+sSel.value]; }
    function col(s, j) {  // variant j's rows of suite s as arrays over the suite's examples (-1 / null: no row)
      s._c = s._c || [];
      if (!s._c[j]) {
        var c = s.cols[j], n = s.ids.length, out = new Array(n).fill(-1), pass = new Array(n).fill(-1);
        var d = s.dkeys.map(function () { return new Array(n).fill(null); });
        c.i.forEach(function (i, k) {
          out[i] = c.out[k]; pass[i] = c.pass[k];
          for (var ki = 0; ki < d.length; ki++) d[ki][i] = c.d[ki][k];
        });
        s._c[j] = { out: out, pass: pass, d: d };
      }
      return s._c[j];
    }
    var current = DATA.recommended;  // the variant shown, as an index into DATA.variants
    function fillVariants() {
      var s = suite();
      clear(vSel);
      s.variants.forEach(function (vi, j) {
        var shown = s.cols[j].i.length;
        option(vSel, j, vname(vi) + (V[vi].method === "base" ? " (base)" : "") + (shown < s.ids.length ? " · " + shown + " shown" : ""));
      });
      var want = s.variants.indexOf(current);
      if (want < 0) want = s.variants.length > 1 && V[s.variants[0]].method === "base" ? 1 : 0;
      vSel.value = String(want);
    }
    function baseCol(s) {
      for (var j = 0; j < s.variants.length; j++) if (V[s.variants[j]].method === "base") return j;
      return -1;
    }
    function compute() {
      var s = suite(), j = +vSel.value, b = baseCol(s), text = search.value.trim().toLowerCase(), hits = [];
      var out = col(s, j).out, pass = col(s, j).pass, bout = b >= 0 ? col(s, b).out : null, bpass = b >= 0 ? col(s, b).pass : null;
      for (var i = 0; i < s.ids.length; i++) {
        if (out[i] < 0 && pass[i] < 0) continue;  // this variant has no row for the example
        if (failed.checked && pass[i] !== 0) continue;
        if (changed.checked && (!bout || (bout[i] === out[i] && bpass[i] === pass[i]))) continue;
        if (text) {
          var hay = [s.ids[i], str(s.prompt[i]), str(s.reference[i]), str(out[i]), bout ? str(bout[i]) : ""].join("\n").toLowerCase();
          if (hay.indexOf(text) < 0) continue;
        }
        hits.push(i);
      }
      st.hits = hits;
      st.page = 0;
      render();
    }
    function panel(label, text) {
      var d = el("div"); d.appendChild(el("div", "lbl", label));
      d.appendChild(text === null ? el("pre", "muted", "— (none stored)") : text === "" ? el("pre", "muted", "(empty)") : el("pre", null, text));
      return d;
    }
    function passBadge(p, who) {
      return el("span", "badge " + who + " " + (p === 1 ? "pass" : p === 0 ? "fail" : "muted"), p === 1 ? "pass" : p === 0 ? "fail" : "n/a");
    }
    function metricsTable(s, i, j, b) {
      function val(c, k, ki) {
        var x = col(s, c).d[ki][i];
        if (x === null || x === undefined) return "";
        return k.type === "bool" ? (x ? "true" : "false") : k.type === "text" ? str(x) : String(Number(x.toPrecision(4)));
      }
      var t = el("table"), head = el("tr"), cols = [j];  // variant columns: base first
      if (b >= 0 && b !== j) cols.unshift(b);
      head.appendChild(el("th", null, "per-example metrics"));
      s.dkeys.forEach(function (k) { head.appendChild(el("th", null, k.key)); });
      t.appendChild(head);
      cols.forEach(function (c) {
        var tr = el("tr");
        tr.appendChild(el("td", null, vname(s.variants[c])));
        s.dkeys.forEach(function (k, ki) {
          var v = val(c, k, ki), td = el("td", k.type === "bool" ? (v === "true" ? "pass" : v === "false" ? "fail" : "") : "", v);
          tr.appendChild(td);
        });
        t.appendChild(tr);
      });
      var wrap = el("div", "ex-metrics table-scroll"); wrap.appendChild(t); return wrap;
    }
    function render() {
      var s = suite(), j = +vSel.value, b = baseCol(s), n = st.hits.length, pages = Math.max(1, Math.ceil(n / PAGE));
      clear(list);
      empty.hidden = n > 0;
      pageLbl.textContent = n ? "examples " + (st.page * PAGE + 1) + "–" + Math.min(n, (st.page + 1) * PAGE) + " of " + n + " · page " + (st.page + 1) + " of " + pages : "0 examples";
      prev.disabled = st.page === 0; next.disabled = st.page >= pages - 1;
      st.hits.slice(st.page * PAGE, (st.page + 1) * PAGE).forEach(function (i) {
        var card = el("div", "ex"), head = el("div", "ex-head");
        head.appendChild(el("span", "eid", s.ids[i]));
        var mineC = col(s, j), baseC = b >= 0 ? col(s, b) : null;
        if (b >= 0 && b !== j) { head.appendChild(el("span", "muted", "base")); head.appendChild(passBadge(baseC.pass[i], "bbadge")); }
        head.appendChild(el("span", "muted", vname(s.variants[j]))); head.appendChild(passBadge(mineC.pass[i], "vbadge"));
        if (b >= 0 && b !== j && baseC.out[i] !== mineC.out[i]) head.appendChild(el("span", "badge warn changed", "output changed"));
        if (s.agree && s.agree[i]) head.appendChild(el("span", "muted why", "passed by " + s.agree[i][0] + " of " + s.agree[i][1] + " variants"));
        if (s.why && s.why[i] >= 0) head.appendChild(el("span", "badge why", "shown: " + str(s.why[i])));
        card.appendChild(head);
        var grid = el("div", "ex-grid");
        grid.appendChild(panel("prompt", str(s.prompt[i])));
        grid.appendChild(panel("reference", str(s.reference[i])));
        grid.appendChild(panel("base output", baseC && baseC.out[i] >= 0 ? str(baseC.out[i]) : null));
        grid.appendChild(panel(vname(s.variants[j]) + " output", str(mineC.out[i])));
        card.appendChild(grid);
        var against = dSel.value === "reference" ? str(s.reference[i]) : (baseC && baseC.out[i] >= 0 ? str(baseC.out[i]) : null);
        var mine = str(mineC.out[i]);
        if (against !== null && mine !== null) {
          var d = el("div", "ex-diff");
          d.appendChild(el("div", "lbl muted small", "word diff: " + (dSel.value === "reference" ? "reference" : "base") + " → " + vname(s.variants[j])));
          d.appendChild(diffNode(against, mine));
          card.appendChild(d);
        }
        if (s.dkeys.length) card.appendChild(metricsTable(s, i, j, b));
        list.appendChild(card);
      });
    }
    sSel.addEventListener("change", function () { fillVariants(); compute(); });
    vSel.addEventListener("change", function () { current = suite().variants[+vSel.value]; compute(); });
    [failed, changed].forEach(function (c) { c.addEventListener("change", compute); });
    dSel.addEventListener("change", render);
    size.addEventListener("change", function () { PAGE = +size.value; st.page = 0; render(); });
    search.addEventListener("input", compute);
    prev.addEventListener("click", function () { if (st.page > 0) { st.page--; render(); } });
    next.addEventListener("click", function () { if ((st.page + 1) * PAGE < st.hits.length) { st.page++; render(); } });
    fillVariants();
    compute();
  }

  /* ---- across runs ----------------------------------------------------------------------------------------- */
  function initCompare() {
    var C = DATA.compare;
    if (!C) return;
    var mSel = document.getElementById("cmp-metric"), vSel = document.getElementById("cmp-variant");
    C.metrics.forEach(function (m, i) { option(mSel, i, m[0] + " · " + m[1]); });
    mSel.value = String(C["default"]);
    C.names.forEach(function (n, i) { option(vSel, i, n); });
    var recName = DATA.recommended !== null ? vname(DATA.recommended) : null;
    var ri = C.names.indexOf(recName);
    vSel.value = String(ri >= 0 ? ri : Math.min(1, C.names.length - 1));
    var labels = C.runs.map(function (r) { return r.started || r.id; });
    function table() {
      var mi = +mSel.value, body = document.getElementById("cmp-table").tBodies[0];
      document.getElementById("cmp-table-metric").textContent = C.metrics[mi][0] + " / " + C.metrics[mi][1];
      clear(body);
      C.names.forEach(function (n, ni) {
        var tr = el("tr"), prevV = null;
        tr.appendChild(el("td", null, n));
        C.values[ni][mi].forEach(function (s) {
          var td = el("td", "num");
          if (s) {
            td.appendChild(document.createTextNode(fmt(s[0])));
            if (prevV !== null) td.appendChild(el("span", "delta", " " + (s[0] - prevV >= 0 ? "+" : "") + (s[0] - prevV).toFixed(3)));
            td.appendChild(el("span", "ci", "[" + fmt(s[1]) + ", " + fmt(s[2]) + "]"));
            prevV = s[0];
          }
          tr.appendChild(td);
        });
        body.appendChild(tr);
      });
    }
    function draw() {
      var mi = +mSel.value, picks = [+vSel.value], sets = [];
      var bi = C.names.indexOf("base");
      if (bi >= 0 && bi !== picks[0]) picks.push(bi);
      picks.forEach(function (ni, k) {
        var color = k === 0 ? "#2f5fd0" : GREY;
        sets.push({ label: C.names[ni], borderColor: color, backgroundColor: color, pointRadius: 4, spanGaps: true,
          errorBarColor: color, errorBarWhiskerColor: color,
          data: C.values[ni][mi].map(function (s) { return s ? { y: s[0], yMin: s[1], yMax: s[2] } : { y: null }; }) });
      });
      chart("chart-compare", { type: "lineWithErrorBars", data: { labels: labels, datasets: sets },
        options: { scales: { x: axis("run", { offset: true }), y: axis(C.metrics[mi][1]) } } });
    }
    mSel.addEventListener("change", function () { table(); draw(); });
    vSel.addEventListener("change", draw);
    table();
    draw();
  }

  /* ---- start ------------------------------------------------------------------------------------------------ */
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;
  Chart.defaults.font.family = "system-ui, -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif";
  Chart.defaults.color = "#475467";
  initLeaderboard();
  // The rest after the leaderboard has been painted: the page is readable while the charts and explorer build.
  requestAnimationFrame(function () {
    setTimeout(function () {
      [initLoss, initPareto, initHeatmap, initBars, initExplorer, initCompare].forEach(function (f) { f(); });
      document.body.setAttribute("data-ready", "1");
    }, 0);
  });
})();
