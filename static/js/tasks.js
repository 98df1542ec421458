// Live updates for the staff task pages: rows and summaries of scheduled or running tasks
// poll the JSON API and update themselves. Served from /static (no inline script: the CSP
// forbids it). Pages work without it; this only saves a reload.
(function () {
  "use strict";
  var POLL_MS = 1000;

  function text(el, selector, value) {
    var target = el.querySelector(selector);
    if (target) { target.textContent = value; }
  }

  function time(value) {
    return value ? value.replace("T", " ").slice(11, 19) : "";
  }

  function progressBar(el, task) {
    var holder = el.querySelector(".task-progress") || el.querySelector(".task-status");
    if (!holder) { return; }
    var bar = holder.querySelector("progress");
    var percent = task.progress && task.progress.percent;
    if (task.status !== "running" || percent === null || percent === undefined) {
      if (bar && task.status !== "running") { bar.remove(); }
      return;
    }
    if (!bar) {
      bar = document.createElement("progress");
      bar.max = 100;
      holder.appendChild(bar);
    }
    bar.value = percent;
    bar.textContent = percent + "%";
    var label = holder.querySelector(".progress-label");
    if (label) {
      label.textContent = percent + "%" + (task.progress.message ? ": " + task.progress.message : "");
    }
  }

  function update(el, task) {
    var badge = el.querySelector(".status");
    if (badge) {
      badge.className = "status status-" + task.status + (badge.classList.contains("task-status-badge") ? " task-status-badge" : "");
      badge.textContent = task.status;
    }
    if (el.tagName === "TR") {
      text(el, ".task-started", time(task.start_time));
      text(el, ".task-ended", time(task.end_time));
      text(el, ".task-attempt", task.attempt + "/" + task.max_attempts);
    } else {
      text(el, ".task-attempt", task.attempt + " of " + task.max_attempts);
    }
    text(el, ".task-duration", task.duration || "");
    progressBar(el, task);
    var active = task.status === "scheduled" || task.status === "running";
    if (!active) {
      el.removeAttribute("data-active");
      // The task page shows the result, attempts and actions: fetch them once.
      if (el.hasAttribute("data-reload-when-done")) { window.location.reload(); }
    }
  }

  function poll() {
    var active = document.querySelectorAll("[data-task-id][data-active]");
    if (active.length === 0) { return; }
    var pending = active.length;
    active.forEach(function (el) {
      fetch("/api/v1/tasks/" + el.getAttribute("data-task-id"), { credentials: "same-origin", headers: { "Accept": "application/json" } })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (task) { if (task) { update(el, task); } })
        .catch(function () { /* try again next round */ })
        .then(function () { pending -= 1; if (pending === 0) { window.setTimeout(poll, POLL_MS); } });
    });
  }

  document.addEventListener("DOMContentLoaded", function () { window.setTimeout(poll, POLL_MS); });
})();
