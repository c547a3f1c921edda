// Live status without reloads: an EventSource says "something changed", the page re-fetches
// its live region (?fragment=1) and swaps it in, unless the customer is typing in it.
(function () {
  "use strict";
  var body = document.body;
  var liveUrl = body.getAttribute("data-live-url");
  var region = document.getElementById("live");
  var dot = document.getElementById("live-dot");
  var pending = false, busy = false;

  function refresh() {
    if (!region) return;
    if (busy || (region.contains(document.activeElement) && document.activeElement !== body)) {
      pending = true; return;
    }
    busy = true;
    var url = new URL(window.location.href);
    url.searchParams.set("fragment", "1");
    fetch(url.toString(), { credentials: "same-origin", headers: { "accept": "text/html" } })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (html !== null) {
          region.innerHTML = html;
          region.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .finally(function () {
        busy = false;
        if (pending) { pending = false; setTimeout(refresh, 50); }
      });
  }

  if (liveUrl && region && window.EventSource) {
    var source = new EventSource(liveUrl);
    var opened = 0;
    source.addEventListener("open", function () {
      if (dot) dot.classList.add("on");
      if (opened++ > 0) refresh();
    });
    source.addEventListener("error", function () { if (dot) dot.classList.remove("on"); });
    source.addEventListener("change", refresh);
    document.addEventListener("focusout", function () { if (pending) setTimeout(refresh, 0); });
  }

  document.addEventListener("submit", function (ev) {
    var question = ev.target.getAttribute && ev.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) ev.preventDefault();
  });
})();
