// Live updates without reloads: an EventSource says "something changed", the page
// re-fetches its live region (?fragment=1) and swaps it in, unless the operator is
// typing inside it. Also: confirm dialogs, and the HTML source viewer.
(function () {
  "use strict";
  var body = document.body;
  var liveUrl = body.getAttribute("data-live-url");
  var region = document.getElementById("live");
  var dot = document.getElementById("live-dot");
  var pending = false, busy = false;

  function fragmentUrl() {
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    return url.toString();
  }

  function refresh() {
    if (!region) return;
    if (busy) { pending = true; return; }
    if (region.contains(document.activeElement) && document.activeElement !== body) {
      pending = true; return;
    }
    busy = true;
    fetch(fragmentUrl(), { credentials: "same-origin", headers: { "accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null) {
          region.innerHTML = html;
          region.setAttribute("data-refreshed", String(Date.now()));
          wireSources(region);
          showLatest(region);
          markSelected();
        }
      })
      .finally(function () {
        busy = false;
        if (pending) { pending = false; setTimeout(refresh, 50); }
      });
  }

  if (liveUrl && window.EventSource) {
    var source = new EventSource(liveUrl);
    var opened = 0;
    source.addEventListener("open", function () {
      if (dot) dot.classList.add("on");
      if (opened++ > 0) refresh();  // a reconnect may have missed changes: catch up
    });
    source.addEventListener("error", function () { if (dot) dot.classList.remove("on"); });
    source.addEventListener("change", refresh);
    document.addEventListener("focusout", function () { if (pending) setTimeout(refresh, 0); });
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) ev.preventDefault();
  });

  function wireSources(root) {
    root.querySelectorAll("details > pre.src[data-src]").forEach(function (pre) {
      pre.parentElement.addEventListener("toggle", function () {
        if (!pre.parentElement.open || pre.getAttribute("data-loaded")) return;
        fetch(pre.getAttribute("data-src"), { credentials: "same-origin" })
          .then(function (r) { return r.text(); })
          .then(function (text) { pre.textContent = text; pre.setAttribute("data-loaded", "1"); });
      });
    });
  }
  wireSources(document);

  // A long timeline scrolls inside its card: keep its newest entries in view.
  function showLatest(root) {
    root.querySelectorAll("ol.timeline").forEach(function (list) {
      list.scrollTop = list.scrollHeight;
    });
  }
  showLatest(document);

  // The escalation queue from the keyboard: j / k select the next / previous row, Enter
  // opens it. The selection is a class (not focus), so live refreshes keep running and
  // keep it (by escalation id).
  var selected = null;
  function queueRows() { return Array.prototype.slice.call(document.querySelectorAll("table.queue tr.esc")); }
  function markSelected() {
    queueRows().forEach(function (row) {
      var on = row.getAttribute("data-escalation") === selected;
      row.classList.toggle("selected", on);
      if (on) row.setAttribute("aria-current", "true"); else row.removeAttribute("aria-current");
    });
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
    var t = ev.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT|BUTTON)$/.test(t.tagName))) return;
    var rows = queueRows();
    if (!rows.length) return;
    var at = rows.findIndex(function (r) { return r.getAttribute("data-escalation") === selected; });
    if (ev.key === "j" || ev.key === "k") {
      var next = at < 0 ? 0 : Math.min(rows.length - 1, Math.max(0, at + (ev.key === "j" ? 1 : -1)));
      selected = rows[next].getAttribute("data-escalation");
      markSelected();
      rows[next].scrollIntoView({ block: "nearest" });
      ev.preventDefault();
    } else if (ev.key === "Enter" && at >= 0 && !(t && t.tagName === "A")) {
      var link = rows[at].querySelector("a[href]");
      if (link) { window.location.href = link.href; ev.preventDefault(); }
    }
  });
})();
