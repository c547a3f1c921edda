// The live browser: a WebSocket brings the job page's screencast frames; while the
// operator holds control, mouse and key events on the picture go back to that page.
(function () {
  "use strict";
  var root = document.getElementById("browser-live");
  if (!root) return;
  var img = document.getElementById("screen");
  var wrap = document.getElementById("screen-wrap");
  var empty = document.getElementById("screen-empty");
  var statusEl = document.getElementById("live-status");
  var controlling = root.getAttribute("data-control") === "operator" &&
    root.getAttribute("data-can-act") === "1";
  var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host +
    root.getAttribute("data-ws");
  var ws = null, meta = null, frames = 0, closed = false, sent = 0, applied = 0;

  function connect() {
    ws = new WebSocket(url);
    ws.onmessage = function (ev) {
      var m = JSON.parse(ev.data);
      if (m.type === "frame") {
        img.src = "data:image/jpeg;base64," + m.data;
        meta = m.meta || meta;
        frames += 1;
        img.setAttribute("data-frames", String(frames));
        if (meta) {
          img.setAttribute("data-device-width", String(meta.deviceWidth));
          img.setAttribute("data-device-height", String(meta.deviceHeight));
        }
        empty.hidden = true;
      } else if (m.type === "applied") {
        applied = m.count;
        root.setAttribute("data-applied", String(applied));
      } else if (m.type === "status") {
        statusEl.textContent = m.text;
        root.setAttribute("data-state", m.state);
        // The picture is live only while attached; otherwise it is the last frame seen.
        wrap.classList.toggle("stale", m.state !== "attached");
        if (m.state === "ended") {
          closed = true;
          controlling = false;
          wrap.classList.remove("controlling");
          var actions = root.querySelector(".live-actions");
          if (actions) actions.remove();
          var holder = document.getElementById("control-holder");
          if (holder) { holder.textContent = "Job ended"; holder.className = "pill"; }
          var state = document.getElementById("job-state");
          if (state && m.job_state) state.textContent = state.textContent.split(" · ")[0] + " · " + m.job_state;
          var help = document.getElementById("live-help");
          if (help) help.textContent = "The job has ended; the picture is its last frame.";
        }
      }
    };
    ws.onopen = function () { sent = 0; applied = 0; };
    ws.onclose = function () {
      root.setAttribute("data-state", closed ? "ended" : "reconnecting");
      if (!closed) setTimeout(connect, 1000);
    };
  }

  function send(message) {
    if (controlling && ws && ws.readyState === 1) {
      ws.send(JSON.stringify(message));
      sent += 1;
      root.setAttribute("data-sent", String(sent));
    }
  }

  // Hand back only once every key and click sent has reached the page (at most 10 s).
  var handBack = document.getElementById("hand-back");
  if (handBack) {
    handBack.form.addEventListener("submit", function (e) {
      if (applied >= sent || handBack.form.getAttribute("data-flushed")) return;
      e.preventDefault();
      statusEl.textContent = "Sending the last input to the page…";
      var started = Date.now();
      (function wait() {
        if (applied >= sent || Date.now() - started > 10000) {
          handBack.form.setAttribute("data-flushed", "1");
          handBack.form.submit();
        } else {
          setTimeout(wait, 100);
        }
      })();
    });
  }

  function modifiers(e) {
    return (e.altKey ? 1 : 0) | (e.ctrlKey ? 2 : 0) | (e.metaKey ? 4 : 0) | (e.shiftKey ? 8 : 0);
  }

  function point(e) {
    var r = img.getBoundingClientRect();
    if (!meta || !r.width || !r.height) return null;
    return {
      x: (e.clientX - r.left) * meta.deviceWidth / r.width,
      y: (e.clientY - r.top) * meta.deviceHeight / r.height,
    };
  }

  var buttons = ["left", "middle", "right"];
  function mouse(kind) {
    return function (e) {
      var p = point(e);
      if (!p) return;
      if (kind !== "mouseMoved") { e.preventDefault(); wrap.focus(); }
      send({ type: "mouse", event: kind, x: p.x, y: p.y, button: buttons[e.button] || "left",
             clickCount: e.detail || 1, modifiers: modifiers(e) });
    };
  }
  var lastMove = 0;
  img.addEventListener("mousedown", mouse("mousePressed"));
  img.addEventListener("mouseup", mouse("mouseReleased"));
  img.addEventListener("mousemove", function (e) {
    var now = Date.now();
    if (now - lastMove > 50) { lastMove = now; mouse("mouseMoved")(e); }
  });
  img.addEventListener("wheel", function (e) {
    var p = point(e);
    if (!p || !controlling) return;
    e.preventDefault();
    send({ type: "mouse", event: "mouseWheel", x: p.x, y: p.y, deltaX: e.deltaX, deltaY: e.deltaY });
  }, { passive: false });
  img.addEventListener("contextmenu", function (e) { if (controlling) e.preventDefault(); });

  function key(kind) {
    return function (e) {
      if (!controlling) return;
      e.preventDefault();
      send({ type: "key", event: kind, key: e.key, code: e.code, keyCode: e.keyCode,
             text: kind === "keyDown" && e.key.length === 1 ? e.key : "", modifiers: modifiers(e) });
    };
  }
  wrap.addEventListener("keydown", key("keyDown"));
  wrap.addEventListener("keyup", key("keyUp"));
  wrap.addEventListener("paste", function (e) {
    if (!controlling) return;
    e.preventDefault();
    send({ type: "text", text: (e.clipboardData || window.clipboardData).getData("text") });
  });

  connect();
})();
