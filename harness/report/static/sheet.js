/* finetune-harness rating sheet: keeps the rater's answers in localStorage (keyed by the sheet id) and saves them
   as a JSON file. Reads only the page itself; writes text with .textContent; makes no network request. */
(function () {
  "use strict";
  var cfg = JSON.parse(document.getElementById("sheet-data").textContent);
  var KEY = "finetune-harness-sheet:" + cfg.sheet_id;
  var yesNo = {};
  cfg.criteria.forEach(function (c) { yesNo[c.name] = c.yes_no; });
  var sections = Array.prototype.slice.call(document.querySelectorAll("section.item"));
  var rater = document.getElementById("rater");
  var state = load();

  function load() {
    var s = null;
    try { s = JSON.parse(window.localStorage.getItem(KEY) || "null"); } catch (e) { s = null; }
    if (!s || typeof s !== "object" || typeof s.items !== "object" || s.items === null) s = { rater: "", items: {} };
    return s;
  }

  function persist() {
    try { window.localStorage.setItem(KEY, JSON.stringify(state)); } catch (e) { message("could not keep progress in this browser: " + e); }
  }

  function message(text) { document.getElementById("save-msg").textContent = text; }

  function entry(id) {
    if (!Object.prototype.hasOwnProperty.call(state.items, id)) state.items[id] = { scores: {}, comments: {}, preferred: null, rated_at: null };
    return state.items[id];
  }

  function complete(section) {
    var e = state.items[section.getAttribute("data-item")];
    if (!e || !e.preferred) return false;
    var labels = cfg.labels[section.getAttribute("data-item")] || [];
    return labels.every(function (l) {
      var s = e.scores[l] || {};
      return cfg.criteria.every(function (c) { return Object.prototype.hasOwnProperty.call(s, c.name); });
    });
  }

  function progress() {
    var done = 0;
    sections.forEach(function (sec) {
      var ok = complete(sec);
      sec.classList.toggle("complete", ok);
      if (ok) done += 1;
    });
    document.getElementById("progress").textContent = done + " of " + sections.length + " items complete";
  }

  function restore() {
    if (state.rater) rater.value = state.rater;
    sections.forEach(function (sec) {
      var e = state.items[sec.getAttribute("data-item")];
      if (!e) return;
      sec.querySelectorAll(".output").forEach(function (out) {
        var label = out.getAttribute("data-label");
        var s = e.scores[label] || {};
        out.querySelectorAll("input[data-criterion]").forEach(function (inp) {
          inp.checked = s[inp.getAttribute("data-criterion")] === inp.value;
        });
        var note = out.querySelector("textarea[data-comment]");
        note.value = (e.comments && e.comments[label]) || "";
      });
      sec.querySelectorAll("input[data-preferred]").forEach(function (inp) { inp.checked = e.preferred === inp.value; });
    });
  }

  function changed(ev) {
    var t = ev.target;
    if (t === rater) { state.rater = rater.value.trim(); persist(); return; }
    var sec = t.closest("section.item");
    if (!sec) return;
    var e = entry(sec.getAttribute("data-item"));
    var out = t.closest(".output");
    if (t.hasAttribute("data-criterion") && out) {
      var label = out.getAttribute("data-label");
      e.scores[label] = e.scores[label] || {};
      e.scores[label][t.getAttribute("data-criterion")] = t.value;
    } else if (t.hasAttribute("data-comment") && out) {
      e.comments[out.getAttribute("data-label")] = t.value;
    } else if (t.hasAttribute("data-preferred")) {
      e.preferred = t.value;
    } else {
      return;
    }
    e.rated_at = new Date().toISOString();
    persist();
    progress();
  }

  function value(criterion, v) { return yesNo[criterion] ? v : Number(v); }

  function ratings() {
    var items = [];
    sections.forEach(function (sec) {
      var id = sec.getAttribute("data-item");
      var e = state.items[id];
      if (!e) return;
      var scores = {}, comments = {};
      Object.keys(e.scores).forEach(function (label) {
        scores[label] = {};
        Object.keys(e.scores[label]).forEach(function (c) { scores[label][c] = value(c, e.scores[label][c]); });
      });
      Object.keys(e.comments).forEach(function (label) { if (e.comments[label].trim()) comments[label] = e.comments[label]; });
      items.push({ example_id: id, scores: scores, comments: comments, preferred: e.preferred, rated_at: e.rated_at });
    });
    return { format: cfg.format, format_version: cfg.format_version, sheet_id: cfg.sheet_id, rater: state.rater,
             saved_at: new Date().toISOString(), items: items };
  }

  function save() {
    state.rater = rater.value.trim();
    persist();
    if (!state.rater) { message("enter your name first"); rater.focus(); return; }
    var data = ratings();
    var blob = new Blob([JSON.stringify(data, null, 1)], { type: "application/json" });
    var a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = "ratings-" + cfg.sheet_id + "-" + state.rater.replace(/[^A-Za-z0-9._-]+/g, "-") + ".json";
    document.body.appendChild(a);
    a.click();
    document.body.removeChild(a);
    window.setTimeout(function () { URL.revokeObjectURL(a.href); }, 5000);
    message("saved " + data.items.length + " rated item(s); send the file back");
  }

  if (!state.rater && cfg.rater) state.rater = cfg.rater;
  restore();
  progress();
  document.addEventListener("change", changed);
  document.addEventListener("input", function (ev) { if (ev.target.hasAttribute("data-comment") || ev.target === rater) changed(ev); });
  document.getElementById("save").addEventListener("click", save);
  document.body.setAttribute("data-ready", "1");
})();
