// Live pages through the project's feed (server-sent events; each message's id is its log
// position, so EventSource resumes by itself after a response ends), and the stream
// page's time slider. Everything these add is also reachable without this file: the
// All events page pages by log position, the slider's form opens the version as of then.
(function () {
  "use strict";

  function cell(row, child) {
    var td = document.createElement("td");
    if (typeof child === "string") { td.textContent = child; } else { td.appendChild(child); }
    row.appendChild(td);
  }
  function element(tag, text, attributes) {
    var el = document.createElement(tag);
    el.textContent = text;
    Object.keys(attributes || {}).forEach(function (name) { el.setAttribute(name, attributes[name]); });
    return el;
  }

  // All events: add each new matching event at the bottom as it settles.
  function logPage() {
    var table = document.getElementById("log");
    if (!table || !table.dataset.feed || !window.EventSource) { return; }
    var rows = document.getElementById("log-rows");
    var status = document.getElementById("live-status");
    var source = new EventSource(table.dataset.feed);
    source.addEventListener("open", function () { status.textContent = "Live: new events appear as they are appended."; });
    source.addEventListener("error", function () {
      // A refused feed (429: too many live pages open at once) is not retried by the browser.
      status.textContent = source.readyState === EventSource.CLOSED
        ? "Live updates stopped: the server refused the feed (too many live pages open at once?). Reload this page later to resume; the pages below stay as they are."
        : "Live: reconnecting…";
    });
    source.addEventListener("event", function (message) {
      var e = JSON.parse(message.data);
      var empty = rows.querySelector("tr.empty");
      if (empty) { empty.remove(); }
      var row = document.createElement("tr");
      row.className = "new";
      row.dataset.position = e.log_position;
      cell(row, element("code", e.log_position));
      cell(row, element("time", e.timestamp.replace("T", " ").slice(0, 19), { datetime: e.timestamp }));
      cell(row, element("a", e.stream, { href: "?stream=" + encodeURIComponent(e.stream) }));
      cell(row, element("span", e.type, { "class": "chip" }));
      cell(row, e.actor);
      cell(row, element("a", e.id.slice(0, 12) + "…", { href: table.dataset.causation.replace("00000000-0000-0000-0000-000000000000", e.id) }));
      rows.appendChild(row);
    });
  }

  // A stream's page: tell the timeline's tail (explorer.js) that versions were appended.
  function streamPage() {
    var box = document.getElementById("timeline");
    if (!box || !box.dataset.feed || !window.EventSource) { return; }
    var source = new EventSource(box.dataset.feed);
    function live(open) { box.dispatchEvent(new CustomEvent("continust:live", { detail: open })); }
    source.addEventListener("open", function () { live(true); });
    source.addEventListener("error", function () { live(false); });
    source.addEventListener("event", function () { box.dispatchEvent(new CustomEvent("continust:appended")); });
  }

  // The time slider: which version the branch pointed at as of the moment, highlighted.
  function slider() {
    var form = document.getElementById("as-of");
    if (!form) { return; }
    var range = document.getElementById("as-of-range");
    var at = form.querySelector("[name=at]");
    var label = document.getElementById("as-of-label");
    var timer = null;
    var asked = 0;
    range.hidden = false;
    function highlight(id) {
      document.querySelectorAll(".as-of-mark").forEach(function (el) { el.classList.remove("as-of-mark"); });
      if (id === null) { return false; }
      var found = document.querySelectorAll(".tl-row[data-version=\"" + id + "\"], svg.graph .node[data-version=\"" + id + "\"]");
      found.forEach(function (el) { el.classList.add("as-of-mark"); });
      if (found.length) { found[0].scrollIntoView({ block: "nearest" }); }
      return found.length > 0;
    }
    function ask() {
      timer = null;
      var moment = new Date(Number(range.value));
      at.value = moment.toISOString().slice(0, 19);
      var query = new URLSearchParams(new FormData(form));
      query.set("at", moment.toISOString());
      query.set("format", "json");
      var mine = ++asked;
      fetch(form.action + "?" + query.toString(), { credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (answer) {
          if (mine !== asked) { return; }
          if (answer.error) { label.textContent = answer.error; highlight(null); return; }
          var shown = highlight(answer.version);
          label.textContent = answer.label + (answer.version !== null && !shown ? " (not on this page: open it with Show)" : "");
        })
        .catch(function () { label.textContent = "Could not ask; try again."; });
    }
    function later() { if (timer !== null) { window.clearTimeout(timer); } timer = window.setTimeout(ask, 150); }
    range.addEventListener("input", later);
    form.querySelectorAll("select, input[name=branch]").forEach(function (el) { el.addEventListener("change", later); });
  }

  function start() { logPage(); streamPage(); slider(); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
