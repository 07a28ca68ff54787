// Keyboard use of the timeline: move between versions, open one, pick A and B.
// Everything also works without this file: rows and pickers are plain links.
(function () {
  "use strict";
  function rows() { return Array.from(document.querySelectorAll(".tl-row .tl-link")); }
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
})();
