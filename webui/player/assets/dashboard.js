// pbx-agent live calls dashboard: polls /api/chunkplayer/calls.json every
// second; Listen opens the ChunkPlayer, Pause/Unpause call php/api.php's
// handleActiveCall. Logging in goes through php/model/sql.php bypass_login
// (the session cookie is then used by every request and the websocket).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const D = (window.__dashboard = { polls: 0, calls: [], error: null });
  let timer = null;

  function status(text, cls) {
    $("status").textContent = text;
    $("status").className = "status " + (cls || "");
  }

  function dur(s) {
    const m = Math.floor(s / 60), r = s % 60;
    return m + ":" + String(r).padStart(2, "0");
  }

  function pair(a) {
    return a[0] + " / " + a[1];
  }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  async function pause(c, on) {
    const body = { task: "handleActiveCall", params: { command: on ? "pausecall" : "unpausecall", callRef: c.callref, sensorId: c.sensor_id } };
    const r = await fetch("/php/api.php", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), credentials: "same-origin" });
    if (!r.ok) {
      const j = await r.json().catch(() => ({}));
      status("Pause failed: " + (j.error || r.status), "err");
    }
    poll();
  }

  function render(rep) {
    $("who").textContent = "user " + rep.user + ", sensor " + rep.sensor_id;
    const tb = $("calls").tBodies[0];
    tb.textContent = "";
    for (const c of rep.calls) {
      const tr = document.createElement("tr");
      tr.dataset.callref = c.callref;
      if (c.paused) tr.className = "paused";
      cell(tr, c.callref);
      cell(tr, c.caller);
      cell(tr, c.called);
      cell(tr, c.calldate);
      cell(tr, dur(c.duration), "num");
      cell(tr, c.codec || "—");
      cell(tr, pair(c.mos), "num");
      cell(tr, pair(c.jitter), "num");
      cell(tr, pair(c.loss), "num");
      cell(tr, c.channels.length ? c.channels.join(", ") : "—");
      cell(tr, c.paused ? "paused" : c.connected ? "talking" : "ringing");
      const td = cell(tr, "");
      if (rep.can_listen) {
        const b = document.createElement("button");
        b.className = "listen";
        b.textContent = "Listen";
        b.onclick = () => window.open("/api/chunkplayer/index.html?callref=" + encodeURIComponent(c.callref) +
          "&sensor_id=" + encodeURIComponent(c.sensor_id) + "&autoplay=1", "_blank");
        td.appendChild(b);
      }
      if (rep.can_pause) {
        const p = document.createElement("button");
        p.textContent = c.paused ? "Unpause" : "Pause";
        p.onclick = () => pause(c, !c.paused);
        td.appendChild(document.createTextNode(" "));
        td.appendChild(p);
      }
      tb.appendChild(tr);
    }
    status(rep.calls.length ? rep.calls.length + " active call(s), refreshed " + new Date().toLocaleTimeString() :
      "No active call right now (refreshing every second).", "ok");
  }

  async function poll() {
    try {
      const r = await fetch("/api/chunkplayer/calls.json", { credentials: "same-origin", cache: "no-store" });
      D.polls++;
      if (r.status === 401) {
        $("login").style.display = "flex";
        status("Log in with a manager.conf (or users_file) user.", "warn");
        return;
      }
      const j = await r.json();
      if (!r.ok) {
        status(j.error || "error " + r.status, "err");
        return;
      }
      $("login").style.display = "none";
      D.calls = j.calls;
      render(j);
    } catch (e) {
      D.error = String(e);
      status("The agent does not answer: " + e, "err");
    }
  }

  $("login").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const f = new URLSearchParams({ module: "bypass_login", user: $("user").value, pass: $("pass").value });
    const r = await fetch("/php/model/sql.php", { method: "POST", body: f, credentials: "same-origin" });
    const j = await r.json().catch(() => ({}));
    if (!r.ok || !j.success) {
      status("Login failed: " + (j.error || r.status), "err");
      return;
    }
    poll();
  });

  poll();
  timer = setInterval(poll, 1000);
  window.addEventListener("pagehide", () => clearInterval(timer));
})();
