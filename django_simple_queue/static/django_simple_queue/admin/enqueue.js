/* Enqueue form: one field per parameter of the chosen task, kept in step with the JSON arguments.
   The textarea is what is submitted (the form works without this script); the server checks
   everything again. An empty field leaves its argument out, so the function's default applies. */
"use strict";
(function () {
  function ready(fn) {
    if (document.readyState !== "loading") { fn(); } else { document.addEventListener("DOMContentLoaded", fn); }
  }

  var INPUT_TYPES = { int: "number", float: "number", str: "text", date: "date", datetime: "datetime-local", json: "text" };

  function make(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) { node.setAttribute(key, attrs[key]); });
    if (text) { node.textContent = text; }
    return node;
  }

  function sameValue(a, b) { return typeof a === typeof b && JSON.stringify(a) === JSON.stringify(b); }

  /* One parameter's input: read() gives [present, value] (or null while what is typed is not a
     value), show(present, value) puts a JSON value in it. */
  function field(param) {
    var id = "id_dsq_arg_" + param.name;
    var input;
    if (param.kind === "bool") {
      input = make("input", { type: "checkbox", id: id });
    } else if (param.kind === "choice") {
      input = make("select", { id: id });
      input.appendChild(make("option", { value: "" }, "---------"));
      param.choices.forEach(function (choice, i) {
        input.appendChild(make("option", { value: String(i) }, JSON.stringify(choice)));
      });
    } else {
      input = make("input", { type: INPUT_TYPES[param.kind] || "text", id: id });
      if (param.kind === "int") { input.step = "1"; }
      if (param.kind === "float") { input.step = "any"; }
      if (param.kind === "json") { input.className = "dsq-json-field"; input.spellcheck = false; }
      if (param.default_text !== undefined) {
        input.placeholder = typeof param.default === "string" ? param.default : param.default_text;
      }
    }
    input.dataset.param = param.name;
    if (param.required) { input.setAttribute("aria-required", "true"); }

    function read() {
      if (param.kind === "bool") { return input.indeterminate ? [false] : [true, input.checked]; }
      if (param.kind === "choice") { return input.value === "" ? [false] : [true, param.choices[Number(input.value)]]; }
      var text = input.value;
      if (text === "") { return [false]; }
      if (param.kind === "int" || param.kind === "float") { return [true, Number(text)]; }
      if (param.kind === "json") {
        try { return [true, JSON.parse(text)]; } catch (e) { return null; }
      }
      return [true, text];
    }

    function show(present, value) {
      var fits = true;
      if (present && value === null && param.nullable && param.kind !== "json") {
        present = false;  // an empty field stands for the null of an Optional parameter
      }
      input.classList.remove("dsq-differs");
      input.removeAttribute("aria-invalid");
      if (param.kind === "bool") {
        input.indeterminate = !present || typeof value !== "boolean";
        input.checked = present && value === true;
        fits = !present || typeof value === "boolean";
      } else if (param.kind === "choice") {
        var index = present ? param.choices.findIndex(function (c) { return sameValue(c, value); }) : -1;
        input.value = index < 0 ? "" : String(index);
        fits = !present || index >= 0;
      } else if (!present) {
        input.value = "";
      } else if (param.kind === "json") {
        input.value = JSON.stringify(value);
      } else {
        var wanted = (param.kind === "int" || param.kind === "float") ? (typeof value === "number" ? String(value) : null)
          : (typeof value === "string" ? value : null);
        input.value = wanted === null ? "" : wanted;
        fits = wanted !== null && input.value === wanted;
      }
      if (!fits) {
        // The JSON holds a value this input cannot show (null, another type): it stays in the JSON.
        input.classList.add("dsq-differs");
        input.title = "The JSON holds " + JSON.stringify(value) + ", which this field cannot show.";
      } else {
        input.removeAttribute("title");
      }
    }

    var label = make("label", { for: id, class: param.required ? "required" : "" }, param.name);
    var row = make("div", { class: "dsq-arg" });
    row.appendChild(label);
    if (param.annotation) { row.appendChild(make("code", { class: "dsq-arg-type" }, param.annotation)); }
    row.appendChild(input);
    var note = param.required ? "required" : (param.default_text !== undefined ? "default: " + param.default_text : "");
    if (note) { row.appendChild(make("span", { class: "help dsq-arg-note" }, note)); }
    return { row: row, input: input, read: read, show: show, param: param };
  }

  ready(function () {
    var data = document.getElementById("dsq-task-descriptions");
    var select = document.getElementById("id_task");
    var editor = document.getElementById("id_args");
    if (!editor) { return; }
    var box = editor.parentNode.querySelector(".dsq-arg-fields");
    var status = editor.parentNode.querySelector(".dsq-json-status");
    var tasks = data ? JSON.parse(data.textContent) : {};
    var fields = [];
    var current = null;
    var lastFill = null;

    /* The textarea's object, or null with the one message that says why (the server's, after a
       POST, until the text changes; then this script's). */
    function parsed(live) {
      var text = editor.value.trim();
      var message = "";
      var value = {};
      if (text) {
        try {
          value = JSON.parse(text);
          if (value === null || typeof value !== "object" || Array.isArray(value)) {
            message = "Arguments must be a JSON object of keyword arguments such as {\"a\": 1}.";
          }
        } catch (e) {
          message = "Arguments are not valid JSON: " + e.message;
        }
      }
      if (live && status) {
        var row = editor.closest(".form-row");
        var served = row ? row.querySelector(".errorlist") : null;
        if (served) { served.remove(); }  // about the text as it was posted, not as it is now
        status.textContent = message;
        status.className = "dsq-json-status" + (message ? " dsq-bad" : "");
      }
      if (box) { box.classList.toggle("dsq-paused", message !== ""); }
      fields.forEach(function (f) { f.input.disabled = message !== ""; });
      return message ? null : value;
    }

    function fieldsFromJson(live) {
      var value = parsed(live);
      if (value === null) { return; }
      fields.forEach(function (f) {
        var name = f.param.name;
        f.show(Object.prototype.hasOwnProperty.call(value, name), value[name]);
      });
    }

    function jsonFromField(f) {
      var value = parsed(false);
      var read = f.read();
      if (value === null) { return; }
      if (read === null) { f.input.setAttribute("aria-invalid", "true"); return; }
      f.input.removeAttribute("aria-invalid");
      f.input.classList.remove("dsq-differs");
      if (f.param.kind === "bool") { f.input.indeterminate = false; }
      // The parameters in the signature's order, then any other keys as they were.
      var next = {};
      fields.forEach(function (g) {
        var name = g.param.name;
        if (g === f) {
          if (read[0]) { next[name] = read[1]; }
        } else if (Object.prototype.hasOwnProperty.call(value, name)) {
          next[name] = value[name];
        }
      });
      Object.keys(value).forEach(function (key) { if (!(key in next) && key !== f.param.name) { next[key] = value[key]; } });
      editor.value = JSON.stringify(next, null, 2);
      lastFill = null;
      parsed(true);
    }

    function build(info) {
      fields = [];
      if (!box) { return; }
      box.textContent = "";
      box.hidden = !info;
      if (!info) { return; }
      var head = make("div", { class: "dsq-arg-signature" });
      head.appendChild(make("code", {}, info.signature));
      if (info.doc) { head.appendChild(make("pre", { class: "help" }, info.doc)); }
      box.appendChild(head);
      info.params.forEach(function (param) {
        var f = field(param);
        var event = (param.kind === "bool" || param.kind === "choice") ? "change" : "input";
        f.input.addEventListener(event, function () { jsonFromField(f); });
        fields.push(f);
        box.appendChild(f.row);
      });
      if (fields.length) {
        box.appendChild(make("p", { class: "help" }, "An empty field leaves its argument out. The JSON below is what is enqueued."));
      }
    }

    function choose(initial) {
      var info = select ? tasks[select.value] : tasks[Object.keys(tasks)[0]];
      if (info === current) { return; }
      current = info;
      build(info);
      var text = editor.value.trim();
      if (info && !initial && (text === "" || text === "{}" || text === lastFill)) {
        lastFill = JSON.stringify(info.defaults, null, 2);
        editor.value = lastFill;
      }
      if (!info && text === lastFill) { editor.value = ""; }
      fieldsFromJson(false);
    }

    if (select) { select.addEventListener("change", function () { choose(false); }); }
    editor.addEventListener("input", function () { fieldsFromJson(true); });
    choose(editor.value.trim() !== "");
  });
})();
