/* Enqueue form: fill the arguments editor with the chosen task's parameters and check the JSON
   as it is typed. The server checks everything again; this only saves typing. */
"use strict";
(function () {
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }
  ready(function () {
    var data = document.getElementById("dsq-task-descriptions");
    var select = document.getElementById("id_task");
    var editor = document.getElementById("id_args");
    if (!editor) { return; }
    var status = editor.parentNode.querySelector(".dsq-json-status");
    var tasks = data ? JSON.parse(data.textContent) : {};
    var lastFill = null;

    function check() {
      if (!status) { return; }
      var text = editor.value.trim();
      if (!text) { status.textContent = ""; status.className = "dsq-json-status"; return; }
      try {
        var value = JSON.parse(text);
        var ok = value !== null && typeof value === "object" && !Array.isArray(value);
        status.textContent = ok ? "✓ JSON object" : "Arguments must be a JSON object such as {\"a\": 1}.";
        status.className = "dsq-json-status " + (ok ? "dsq-ok" : "dsq-bad");
      } catch (e) {
        status.textContent = "Not valid JSON: " + e.message;
        status.className = "dsq-json-status dsq-bad";
      }
    }

    function describe() {
      if (!select) { return; }
      var info = tasks[select.value];
      var box = document.getElementById("dsq-task-info");
      if (!box) {
        box = document.createElement("div");
        box.id = "dsq-task-info";
        box.className = "help dsq-task-info";
        // Below the label and the select, which the admin lays out side by side.
        (select.closest(".flex-container") || select).insertAdjacentElement("afterend", box);
      }
      box.textContent = "";
      if (!info) { return; }
      var sig = document.createElement("code");
      sig.textContent = info.signature;
      box.appendChild(sig);
      if (info.doc) {
        var doc = document.createElement("pre");
        doc.textContent = info.doc;
        box.appendChild(doc);
      }
      var current = editor.value.trim();
      if (current === "" || current === "{}" || current === lastFill) {
        lastFill = JSON.stringify(info.defaults, null, 2);
        editor.value = lastFill;
      }
      check();
    }

    if (select) {
      select.addEventListener("change", describe);
      if (select.value) { lastFill = null; describe(); }
    }
    editor.addEventListener("input", check);
    check();
  });
})();
