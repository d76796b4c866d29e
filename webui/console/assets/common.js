// pbx-agent console: helpers shared by the pages (no framework, no inline
// script: the pages' CSP allows only these files).
"use strict";

window.PBX = (function () {
  const $ = (id) => document.getElementById(id);

  function status(text, cls) {
    const s = $("status");
    s.textContent = text;
    s.className = "status " + (cls || "");
  }

  // me asks who the session is; on 401 it shows the login form and calls
  // then(me) once logged in.
  async function me(then) {
    const r = await fetch("/console/api/me", { credentials: "same-origin", cache: "no-store" });
    if (r.status === 401) {
      const f = $("login");
      f.hidden = false;
      status("Log in with a manager.conf (or users_file) user.", "warn");
      $("user").focus();
      f.onsubmit = async (ev) => {
        ev.preventDefault();
        const body = new URLSearchParams({ module: "bypass_login", user: $("user").value, pass: $("pass").value });
        const lr = await fetch("/php/model/sql.php", { method: "POST", body, credentials: "same-origin" });
        const j = await lr.json().catch(() => ({}));
        if (!lr.ok || !j.success) {
          status("Login failed: " + (j.error || lr.status), "err");
          return;
        }
        f.hidden = true;
        me(then);
      };
      return;
    }
    const j = await r.json().catch(() => ({}));
    if (!r.ok) {
      status(j.error || "error " + r.status, "err");
      return;
    }
    $("who").textContent = "user " + j.user + " · times in " + j.tz;
    then(j);
  }

  async function getJSON(url) {
    const r = await fetch(url, { credentials: "same-origin", cache: "no-store" });
    const j = await r.json().catch(() => ({ error: "not JSON (status " + r.status + ")" }));
    if (!r.ok || j.success === false) throw new Error(j.error || "error " + r.status);
    return j;
  }

  const CODECS = { 0: "PCMU", 3: "GSM", 4: "G.723", 8: "PCMA", 9: "G.722", 18: "G.729", 96: "telephone-event", 97: "iLBC", 98: "Speex", 99: "Speex", 100: "telephone-event" };
  const codec = (v) => (v === null || v === undefined || v === "" || v === "-1" ? "—" : CODECS[v] || "PT " + v);
  const mult = (v, m, d) => (v === null || v === undefined || v === "" ? "—" : (Number(v) / m).toFixed(d));
  const text = (v) => (v === null || v === undefined || v === "" ? "—" : String(v));

  function el(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === "text") e.textContent = v;
      else if (k === "class") e.className = v;
      else e.setAttribute(k, v);
    }
    for (const k of kids) e.appendChild(typeof k === "string" ? document.createTextNode(k) : k);
    return e;
  }

  return { $, status, me, getJSON, codec, mult, text, el };
})();
