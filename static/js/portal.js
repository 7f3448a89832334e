/* The portal's own behaviour, kept out of the pages so the Content-Security-Policy can forbid
   inline scripts, event-handler attributes and style attributes (script-src/style-src 'self').

   - <form data-confirm="question">: asks before submitting (htmx forms use hx-confirm).
   - <select data-navigate-on-change>: goes to the chosen option's URL.
   - data-grid-column / data-grid-row / data-grid-rows / data-width-percent /
     data-offset-percent: layout values that
     come from data (the week grid, the on-call bars), applied through the CSSOM, which the
     policy allows, on load and on every piece of content htmx swaps in. */
(function () {
  "use strict";

  var LAYOUT = [
    ["data-grid-column", function (el, v) { el.style.gridColumn = v; }],
    ["data-grid-row", function (el, v) { el.style.gridRow = v; }],
    ["data-grid-rows", function (el, v) { el.style.setProperty("--rows", v); }],
    ["data-width-percent", function (el, v) { el.style.width = v + "%"; }],
    ["data-offset-percent", function (el, v) { el.style.marginLeft = v + "%"; }],
  ];

  function layout(root) {
    LAYOUT.forEach(function (entry) {
      var attr = entry[0], apply = entry[1];
      var found = Array.prototype.slice.call(root.querySelectorAll("[" + attr + "]"));
      if (root.hasAttribute && root.hasAttribute(attr)) found.push(root);
      found.forEach(function (el) { apply(el, el.getAttribute(attr)); });
    });
  }

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (form.matches && form.matches("form[data-confirm]") && !window.confirm(form.dataset.confirm)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("change", function (event) {
    var select = event.target;
    if (select.matches && select.matches("select[data-navigate-on-change]") && select.value) {
      window.location = select.value;
    }
  });

  document.addEventListener("DOMContentLoaded", function () { layout(document); });
  document.addEventListener("htmx:load", function (event) { layout(event.target); });
})();
