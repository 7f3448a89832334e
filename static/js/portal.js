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
     form or button that sent it, in a role="alert" paragraph, instead of doing nothing.
   - <body data-idle-seconds data-idle-warning-seconds ...>: the idle sign-out. The last
     activity (a page load or an htmx request, in any of the portal's tabs: localStorage) starts
     the clock; #idle-warning shows a countdown before the end with "Stay signed in" (a request
     that restarts the server's clock too); at the end the page signs out and the sign-in page
     says why. */
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

  // Every table of the page scrolls inside a box of its own when it is wider than the screen,
  // rather than the page scrolling sideways (a phone); the box is a named, focusable region so
  // keyboard users can scroll it too.
  function scrollBoxes(root) {
    var main = document.getElementById("main");
    if (!main || !root.querySelectorAll) return;
    var tables = Array.prototype.slice.call(root.querySelectorAll("table"));
    if (root.matches && root.matches("table")) tables.push(root);
    tables.forEach(function (table) {
      if (!main.contains(table) || table.closest(".table-scroll")) return;
      var box = document.createElement("div");
      box.className = "table-scroll";
      box.setAttribute("role", "region");
      box.setAttribute("tabindex", "0");
      var caption = table.querySelector("caption");
      var heading = table.getAttribute("aria-label") || (caption && caption.textContent.trim());
      if (!heading) {
        var before = table.previousElementSibling;
        while (before && !/^H[1-6]$/.test(before.tagName)) before = before.previousElementSibling;
        heading = before ? before.textContent.trim() : "Table";
      }
      box.setAttribute("aria-label", heading);
      table.parentNode.insertBefore(box, table);
      box.appendChild(table);
    });
  }

  var ACTIVITY_KEY = "portal.lastActivity";

  function idleClock() {
    var body = document.body;
    var limit = body && parseInt(body.getAttribute("data-idle-seconds"), 10);
    if (!limit) return;
    var lead = parseInt(body.getAttribute("data-idle-warning-seconds"), 10) || 60;
    var box = document.getElementById("idle-warning");
    var countdown = box && box.querySelector("[data-idle-countdown]");
    var local = Date.now();
    function touched() {
      var shared = 0;
      try { shared = parseInt(window.localStorage.getItem(ACTIVITY_KEY), 10) || 0; } catch (e) { shared = 0; }
      return Math.max(local, shared);
    }
    function touch() {
      local = Date.now();
      try { window.localStorage.setItem(ACTIVITY_KEY, String(local)); } catch (e) { /* private mode */ }
      if (box) box.hidden = true;
    }
    function signOut() {
      var token = (JSON.parse(body.getAttribute("hx-headers") || "{}") || {})["X-CSRFToken"] || "";
      var next = window.location.pathname + window.location.search;
      var login = body.getAttribute("data-login-url") + "?reason=idle&next=" + encodeURIComponent(next);
      window.clearInterval(timer);
      window.fetch(body.getAttribute("data-logout-url"), {
        method: "POST", credentials: "same-origin", redirect: "manual",
        headers: { "X-CSRFToken": token, "Content-Type": "application/x-www-form-urlencoded" },
        body: "reason=idle",
      }).catch(function () { return null; }).then(function () { window.location.assign(login); });
    }
    function tick() {
      var left = limit - (Date.now() - touched()) / 1000;
      if (left <= 0) { signOut(); return; }
      if (box && left <= lead) {
        var secs = Math.ceil(left);
        countdown.textContent = secs + " second" + (secs === 1 ? "" : "s");
        if (box.hidden) { box.hidden = false; box.querySelector("[data-idle-stay]").focus(); }
      } else if (box && !box.hidden) {
        box.hidden = true;  // activity in another tab
      }
    }
    touch();
    document.addEventListener("htmx:afterRequest", touch);
    if (box) {
      box.querySelector("[data-idle-stay]").addEventListener("click", function () {
        window.fetch(body.getAttribute("data-keepalive-url"), { credentials: "same-origin" })
          .then(function (r) { if (r.ok && !r.redirected) touch(); else signOut(); });
      });
    }
    var timer = window.setInterval(tick, 1000);
  }

  document.addEventListener("DOMContentLoaded", function () {
    layout(document); readOnly(document); scrollBoxes(document); idleClock();
  });
  document.addEventListener("htmx:load", function (event) {
    layout(event.target); readOnly(event.target); scrollBoxes(event.target);
  });
})();
