// Live updates for the staff task pages. A list (the overview, the task list) marks its
// self-updating part with data-live-src: one request per round fetches that part again, as
// HTML rendered by the server, and swaps it in, so new tasks appear and counts move. A task
// page polls its one task through the JSON API. Served from /static (no inline script: the
// CSP forbids it). Pages work without it; this only saves a reload.
(function () {
  "use strict";
  var POLL_MS = 1000;
  var LIVE_MS = 2000;

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

  // What a message about a task says once the task has moved on from the status it was
  // about ("Task #6 queued." while the task runs would contradict the page).
  var NOW = {
    pending: "is waiting for other tasks", scheduled: "is queued", running: "is running",
    finished: "has finished", error: "has failed", cancelled: "is cancelled"
  };

  function syncFlash(id, status) {
    var flash = document.querySelector("[data-flash-task='" + id + "']");
    if (!flash || !NOW[status] || flash.getAttribute("data-flash-status") === status) { return; }
    flash.setAttribute("data-flash-status", status);
    text(flash, ".flash-text", "Task #" + id + " " + NOW[status] + ".");
  }

  // On load: the task may have moved on between the redirect and this page.
  function syncFlashesWithPage() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-flash-task]"), function (flash) {
      var id = flash.getAttribute("data-flash-task");
      var badge = document.querySelector(".task-summary[data-task-id='" + id + "'] .status");
      if (badge) { syncFlash(id, badge.textContent.trim()); }
    });
  }

  function update(el, task) {
    syncFlash(el.getAttribute("data-task-id"), task.status);
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
    var active = task.status === "pending" || task.status === "scheduled" || task.status === "running";
    if (!active) {
      el.removeAttribute("data-active");
      // The task page shows the result, attempts and actions: fetch them once.
      if (el.hasAttribute("data-reload-when-done")) { window.location.reload(); }
    }
  }

  // While someone is using a region (boxes ticked, focus inside), it is left alone. Focus on
  // the region itself (after its skip link) is not inside what a refresh replaces.
  function inUse(region) {
    var focused = document.activeElement;
    return region.querySelector("input[type=checkbox]:checked") !== null ||
      (focused && focused !== document.body && focused !== region && region.contains(focused));
  }

  function refreshRegions() {
    var regions = Array.prototype.filter.call(
      document.querySelectorAll("[data-live-src]"), function (region) { return !inUse(region); });
    if (document.hidden || regions.length === 0) {
      window.setTimeout(refreshRegions, LIVE_MS);
      return;
    }
    var pending = regions.length;
    regions.forEach(function (region) {
      fetch(region.getAttribute("data-live-src"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) { if (html !== null && !inUse(region)) { region.innerHTML = html; } })
        .catch(function () { /* try again next round */ })
        .then(function () { pending -= 1; if (pending === 0) { window.setTimeout(refreshRegions, LIVE_MS); } });
    });
  }

  function poll() {
    // Rows inside a live region are refreshed with it.
    var active = Array.prototype.filter.call(
      document.querySelectorAll("[data-task-id][data-active]"),
      function (el) { return !el.closest("[data-live-src]"); });
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

  document.addEventListener("DOMContentLoaded", function () {
    syncFlashesWithPage();
    window.setTimeout(poll, POLL_MS);
    if (document.querySelector("[data-live-src]")) { window.setTimeout(refreshRegions, LIVE_MS); }
  });
})();
