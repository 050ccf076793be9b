// Progressive extras for the Steadfast console. Every page works without this script.
"use strict";
(function () {
  // Live refresh: an element with data-live="/live/..." is replaced by what the server sends.
  document.querySelectorAll("[data-live]").forEach(function (el) {
    if (!window.EventSource) return;
    var source = new EventSource(el.getAttribute("data-live"));
    source.addEventListener("refresh", function (event) {
      el.innerHTML = event.data;
      el.setAttribute("data-refreshed", new Date().toISOString());
    });
    source.onerror = function () { el.setAttribute("data-stale", "true"); };
  });
  // "Select all" checkboxes: data-select-all="name" toggles every checkbox of that name.
  document.querySelectorAll("[data-select-all]").forEach(function (box) {
    box.hidden = false;
    box.addEventListener("change", function () {
      var name = box.getAttribute("data-select-all");
      document.querySelectorAll('input[type=checkbox][name="' + name + '"]').forEach(function (b) {
        b.checked = box.checked;
      });
    });
  });
})();
