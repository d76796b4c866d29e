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

  // pair shows a figure per direction, "—" for a direction whose media has
  // not flowed yet (MOS 0: nothing analysed, as while ringing).
  function pair(a, mos) {
    const one = (v, m) => (m > 0 ? String(v) : "—");
    return one(a[0], mos[0]) + " / " + one(a[1], mos[1]);
  }

  // Column labels, also shown beside each value on a phone-width screen.
  const LABELS = ["call", "caller → called", "started (UTC)", "duration", "codec", "MOS a / b", "jitter ms a / b",
    "loss % a / b", "Asterisk channels", ""];

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    td.dataset.label = LABELS[tr.children.length];
    tr.appendChild(td);
    return td;
  }

  async function pause(c, on) {
    const body = { task: "handleActiveCall", params: { command: on ? "pausecall" : "unpausecall", callRef: c.callref, sensorId: c.sensor_id } };
    const r = await fetch("/php/api.php?via=dashboard", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body), credentials: "same-origin" });
    if (!r.ok) {
      const j = await r.json().catch(() => ({}));
      status("Pause failed: " + (j.error || r.status), "err");
    }
    poll();
  }

  function render(rep) {
    $("who").textContent = "user " + rep.user + (rep.sensor_id >= 0 ? ", sensor " + rep.sensor_id : "");
    const tb = $("calls").tBodies[0];
    tb.textContent = "";
    for (const c of rep.calls) {
      const tr = document.createElement("tr");
      tr.dataset.callref = c.callref;
      if (c.paused) tr.className = "paused";
      cell(tr, c.callref, "ref");
      // The call's detail page (its CDR once the call has ended).
      const parties = cell(tr, "", "parties");
      const a = document.createElement("a");
      a.href = "/console/call.html?callid=" + encodeURIComponent(c.callid);
      a.textContent = c.caller + " → " + c.called;
      parties.appendChild(a);
      cell(tr, c.calldate.slice(11)).title = c.calldate;
      const st = c.paused ? "paused" : c.connected ? "talking" : "ringing";
      cell(tr, dur(c.duration) + " " + st, "num state-" + st);
      cell(tr, c.codec || "—");
      cell(tr, pair(c.mos, c.mos), "num");
      cell(tr, pair(c.jitter, c.mos), "num");
      cell(tr, pair(c.loss, c.mos), "num");
      cell(tr, c.channels.length ? c.channels.join(", ") : "—", "chans");
      const td = cell(tr, "", "actions");
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
