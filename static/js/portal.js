/* The portal's own behaviour, kept out of the pages so the Content-Security-Policy can forbid
   inline scripts, event-handler attributes and style attributes (script-src/style-src 'self').

   - <form data-confirm="question">: asks before submitting (htmx forms use hx-confirm).
   - <select data-navigate-on-change>: goes to the chosen option's URL.
   - data-grid-column / data-grid-row / data-grid-rows / data-width-percent: layout values that
     come from data (the week grid, the on-call bars), applied through the CSSOM, which the
     policy allows, on load and on every piece of content htmx swaps in.
   - <body data-read-only-session>: a read-only support session. Forms that would change
     something are shown disabled with a note (those marked data-read-allowed, such as a reveal
     that sends its reason, stay usable); the server refuses the change whatever the page says.
   - An htmx request the server refuses or fails (4xx/5xx, or no answer) shows why next to the
     form or button that sent it, in a role="alert" paragraph, instead of doing nothing. */
(function () {
  "use strict";

  var LAYOUT = [
    ["data-grid-column", function (el, v) { el.style.gridColumn = v; }],
    ["data-grid-row", function (el, v) { el.style.gridRow = v; }],
    ["data-grid-rows", function (el, v) { el.style.setProperty("--rows", v); }],
    ["data-width-percent", function (el, v) { el.style.width = v + "%"; }],
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

  var READ_ONLY_NOTE = "Read-only support session: the practice has not allowed changes, " +
    "so this form cannot be submitted.";
  var WRITES = "form[method=post], form[method=POST], [hx-post], [hx-put], [hx-patch], [hx-delete]";

  function readOnly(root) {
    if (!document.body || !document.body.hasAttribute("data-read-only-session")) return;
    var main = document.getElementById("main");
    if (!main) return;
    var found = Array.prototype.slice.call(root.querySelectorAll ? root.querySelectorAll(WRITES) : []);
    if (root.matches && root.matches(WRITES)) found.push(root);
    found.forEach(function (el) {
      if (!main.contains(el) || el.closest("[data-read-allowed]") || el.hasAttribute("data-read-only")) return;
      el.setAttribute("data-read-only", "");
      var controls = el.matches("form") ? el.querySelectorAll("input, select, textarea, button") : [el];
      Array.prototype.forEach.call(controls, function (c) {
        if (c.type !== "hidden") { c.disabled = true; c.setAttribute("aria-disabled", "true"); }
      });
      if (el.matches("form")) {
        var note = document.createElement("p");
        note.className = "read-only-note muted";
        note.textContent = READ_ONLY_NOTE;
        el.insertBefore(note, el.firstChild);
      } else {
        el.title = READ_ONLY_NOTE;
      }
    });
  }

  function reasonOf(xhr) {
    var text = xhr.responseText || "";
    if (text.indexOf("<") === -1) return text.trim().slice(0, 300);
    var doc = new DOMParser().parseFromString(text, "text/html");
    var found = doc.querySelector("#denied-reason, [role=alert], .error, h1");
    return found ? found.textContent.trim() : "";
  }

  function showError(elt, message) {
    var anchor = (elt && elt.closest && elt.closest("form")) || elt || document.getElementById("main");
    var box = anchor.nextElementSibling;
    if (!box || !box.hasAttribute("data-request-error")) {
      box = document.createElement("p");
      box.className = "error";
      box.setAttribute("role", "alert");
      box.setAttribute("data-request-error", "");
      anchor.parentNode.insertBefore(box, anchor.nextSibling);
    }
    box.textContent = message;
  }

  document.addEventListener("htmx:responseError", function (event) {
    var xhr = event.detail.xhr;
    var why = reasonOf(xhr);
    showError(event.detail.elt, (why || "The request failed") + " (HTTP " + xhr.status + ")");
  });
  document.addEventListener("htmx:sendError", function (event) {
    showError(event.detail.elt, "The portal could not be reached: nothing was saved. Try again.");
  });
  document.addEventListener("htmx:beforeRequest", function (event) {
    var anchor = event.detail.elt && event.detail.elt.closest && event.detail.elt.closest("form");
    var box = (anchor || event.detail.elt).nextElementSibling;
    if (box && box.hasAttribute("data-request-error")) box.remove();
  });

  document.addEventListener("DOMContentLoaded", function () { layout(document); readOnly(document); });
  document.addEventListener("htmx:load", function (event) { layout(event.target); readOnly(event.target); });
})();
