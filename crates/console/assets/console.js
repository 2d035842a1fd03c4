// mailpush console: copy buttons, confirmations, CSV file → form, live template preview, task progress polling.
(function () {
  "use strict";
  var csrf = document.body.getAttribute("data-csrf") || "";

  document.addEventListener("click", function (ev) {
    var b = ev.target.closest("button.copy");
    if (!b) return;
    var text = b.getAttribute("data-copy");
    var done = function () { var old = b.textContent; b.textContent = "✓"; setTimeout(function () { b.textContent = old; }, 1200); };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, done);
    } else {
      var t = document.createElement("textarea"); t.value = text; document.body.appendChild(t); t.select();
      try { document.execCommand("copy"); } catch (e) {}
      document.body.removeChild(t); done();
    }
  });

  document.addEventListener("submit", function (ev) {
    var msg = ev.target.getAttribute("data-confirm");
    if (msg && !window.confirm(msg)) ev.preventDefault();
  });

  // A chosen CSV file is read into the form's text field, with progress.
  document.querySelectorAll("input[type=file][data-fills]").forEach(function (input) {
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      if (!file) return;
      var target = document.getElementById(input.getAttribute("data-fills"));
      var bar = document.getElementById("upload-progress");
      var reader = new FileReader();
      if (bar) { bar.classList.remove("hidden"); bar.value = 0; }
      reader.onprogress = function (e) { if (bar && e.lengthComputable) bar.value = Math.round(100 * e.loaded / e.total); };
      reader.onload = function () { target.value = reader.result; if (bar) bar.value = 100; };
      reader.readAsText(file);
    });
  });

  // Live preview of a template being edited.
  var preview = document.getElementById("preview");
  if (preview) {
    var timer = null;
    var field = function (id) { var e = document.getElementById(id); return e ? e.value : ""; };
    var run = function () {
      var body = new URLSearchParams({ subject: field("preview-subject"), html: field("template-html"), text: field("template-text"), data: field("template-data") });
      fetch(preview.getAttribute("data-url"), { method: "POST", headers: { "X-CSRF-Token": csrf, "Content-Type": "application/x-www-form-urlencoded" }, body: body, credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (p) {
          var err = document.getElementById("preview-error");
          if (p.error) { err.textContent = p.error; err.classList.remove("hidden"); return; }
          err.classList.add("hidden");
          document.getElementById("preview-subject-out").textContent = p.subject || "";
          document.getElementById("preview-html").srcdoc = p.html || "";
          document.getElementById("preview-text").textContent = p.text || "";
        });
    };
    document.querySelectorAll("[data-preview]").forEach(function (e) {
      e.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(run, 300); });
    });
    run();
  }

  // Batch tasks: progress bars and states advance while the page is open.
  var tasks = document.getElementById("tasks");
  if (tasks) {
    var labels = JSON.parse((document.getElementById("task-labels") || {}).textContent || "{}");
    var poll = function () {
      fetch(tasks.getAttribute("data-progress"), { credentials: "same-origin" })
        .then(function (r) { return r.json(); })
        .then(function (list) {
          list.forEach(function (t) {
            var row = document.getElementById("task-" + t.id);
            if (!row) return;
            row.querySelector(".fill").style.width = t.percent + "%";
            row.querySelector(".count").textContent = t.done + " / " + t.total;
            row.querySelector(".pct").textContent = t.percent + "%";
            var s = row.querySelector(".state");
            s.className = "badge state t" + t.status;
            s.textContent = labels[t.status] || t.status;
          });
        })
        .finally(function () { setTimeout(poll, 1000); });
    };
    setTimeout(poll, 1000);
  }

  // A message still in delivery reloads until its recipients are final.
  var live = document.querySelector("[data-refresh]");
  if (live) setTimeout(function () { location.reload(); }, parseInt(live.getAttribute("data-refresh"), 10));
})();
