// The timeline: the address is the one source of the selection (v) and the picks (a, b);
// rows are marked from it whenever it changes. Keyboard use, and a live tail that polls
// for new versions while the tab is visible. Everything also works without this file:
// rows and pickers are plain links.
(function () {
  "use strict";
  var TAIL_EVERY = 3000; // milliseconds between two looks for new versions
  var MARKS = { selected: "v", "picked-a": "a", "picked-b": "b" };

  function params() { return new URLSearchParams(window.location.search); }
  function rows() { return Array.from(document.querySelectorAll(".tl-row .tl-link")); }
  function timeline() { return document.getElementById("timeline"); }

  function mark() {
    var p = params();
    Object.keys(MARKS).forEach(function (name) {
      var wanted = p.get(MARKS[name]) || "";
      var scope = name === "selected" ? ".tl-row, svg.graph .node" : ".tl-row";
      document.querySelectorAll(scope.split(", ").map(function (s) { return s + "." + name; }).join(", "))
        .forEach(function (el) { if (el.dataset.version !== wanted) { el.classList.remove(name); } });
      if (wanted) {
        var value = CSS.escape(wanted);
        document.querySelectorAll(scope.split(", ").map(function (s) {
          return s + "[data-version=\"" + value + "\"]";
        }).join(", ")).forEach(function (el) { el.classList.add(name); });
      }
    });
  }

  // Fetch a fragment into an element; of several loads into one element, the last
  // one asked for wins, whatever order the answers come in.
  var loads = {};
  function load(url, id, outer) {
    var token = (loads[id] || 0) + 1;
    loads[id] = token;
    fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) { throw new Error(response.status + " " + response.statusText); }
        return response.text();
      })
      .then(function (html) {
        var element = document.getElementById(id);
        if (loads[id] !== token || !element) { return; }
        if (outer) {
          var holder = document.createElement("template");
          holder.innerHTML = html.trim();
          var fresh = holder.content.firstElementChild;
          element.replaceWith(fresh);
          element = fresh;
        } else {
          element.innerHTML = html;
        }
        htmx.process(element);
        mark();
      })
      .catch(function (error) {
        var element = document.getElementById(id);
        if (loads[id] === token && element && !outer) {
          var note = document.createElement("p");
          note.className = "error";
          note.textContent = "Could not load this version: " + error.message;
          element.replaceChildren(note);
        }
      });
  }

  // Bring the panel and the compare bar in line with the address.
  function sync() {
    mark();
    var p = params();
    var box = timeline();
    var panel = document.getElementById("panel");
    var v = p.get("v") || "";
    if (box && panel && (panel.dataset.version || "") !== v) {
      panel.dataset.version = v;
      loads.panel = (loads.panel || 0) + 1;
      if (v) {
        load(box.dataset.stream + "v/" + encodeURIComponent(v) + "/", "panel", false);
      } else {
        panel.replaceChildren(document.getElementById("panel-empty").content.cloneNode(true));
      }
    }
    var bar = document.getElementById("compare-bar");
    if (bar && ((bar.dataset.a || "") !== (p.get("a") || "") || (bar.dataset.b || "") !== (p.get("b") || ""))) {
      var query = new URLSearchParams();
      ["a", "b", "v"].forEach(function (k) { if (p.get(k)) { query.set(k, p.get(k)); } });
      query.set("fragment", "compare");
      load(window.location.pathname + "?" + query, "compare-bar", true);
    }
  }

  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) { return; }
    var link = event.target.closest && event.target.closest(".tl-row .tl-link, .tl-row .pick a, svg.graph a");
    if (!link) { return; }
    var row = link.closest(".tl-row");
    var node = row || link.querySelector("[data-version]");
    if (!node) { return; }
    var key = link.classList.contains("pick-a") ? "a" : link.classList.contains("pick-b") ? "b" : "v";
    var p = params();
    p.set(key, node.dataset.version);
    ["fragment", "day", "before"].forEach(function (k) { p.delete(k); });
    event.preventDefault();
    window.history.pushState({ continust: true }, "", window.location.pathname + "?" + p);
    sync();
  });
  window.addEventListener("popstate", sync);
  document.addEventListener("htmx:afterSettle", mark);

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (!target.classList || !target.classList.contains("tl-link")) { return; }
    if (event.altKey || event.ctrlKey || event.metaKey) { return; }
    var all = rows();
    var index = all.indexOf(target);
    var key = event.key;
    if (key === "ArrowDown" || key === "j") {
      if (index + 1 < all.length) { all[index + 1].focus(); }
    } else if (key === "ArrowUp" || key === "k") {
      if (index > 0) { all[index - 1].focus(); }
    } else if (key === "a" || key === "b") {
      var picker = target.closest(".tl-row").querySelector(".pick-" + key);
      if (picker) { picker.click(); }
    } else {
      return;
    }
    event.preventDefault();
  });

  // The live tail: look for new versions every few seconds while the tab is visible;
  // show them at once when the timeline is scrolled to its top, else offer a button.
  function tail() {
    var box = timeline();
    if (!box || !box.dataset.tail) { return; }
    var note = document.getElementById("tail-note");
    var pending = null;
    var timer = null;
    function show() {
      var pages = document.getElementById("timeline-pages");
      pages.innerHTML = pending;
      pending = null;
      note.hidden = true;
      var first = pages.querySelector("section[data-newest]");
      if (first) { box.dataset.newest = first.dataset.newest; }
      htmx.process(pages);
      mark();
    }
    function schedule() {
      // While the feed is live, look only to place versions still being placed.
      var wanted = !live || document.querySelector(".placing") !== null;
      if (timer === null && !document.hidden && wanted) { timer = window.setTimeout(look, TAIL_EVERY); }
    }
    function look() {
      timer = null;
      if (document.hidden) { return; }
      var url = box.dataset.tail + (box.dataset.newest ? "&after=" + encodeURIComponent(box.dataset.newest) : "");
      fetch(url, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
        .then(function (response) { return response.status === 200 ? response.text() : null; })
        .then(function (html) {
          if (html !== null) {
            pending = html;
            if (box.scrollTop < 40) { show(); } else { note.hidden = false; }
          }
        })
        .catch(function () { /* the next look tries again */ })
        .then(schedule);
    }
    document.getElementById("tail-show").addEventListener("click", function () {
      if (pending !== null) { show(); box.scrollTop = 0; }
    });
    // While the stream's live feed is open (feed.js), look when it says versions were
    // appended instead of every few seconds; polling resumes when the feed drops.
    var live = false;
    box.addEventListener("continust:live", function (event) {
      live = event.detail;
      if (live && timer !== null) { window.clearTimeout(timer); timer = null; }
      schedule();
    });
    box.addEventListener("continust:appended", function () {
      if (timer !== null) { window.clearTimeout(timer); }
      timer = window.setTimeout(look, 100); // several appends at once: one look
    });
    document.addEventListener("visibilitychange", schedule);
    schedule();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", tail);
  } else {
    tail();
  }
})();
