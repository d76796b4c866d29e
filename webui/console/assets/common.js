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

  // VoIPmonitor's codec ids (a_payload, b_payload) and the names its GUI gives them.
  const CODECS = { 0: "G.711u", 2: "G726-32", 3: "GSM", 4: "G723", 8: "G.711a", 9: "G.722", 12: "QCELP", 13: "CN", 18: "G729",
    97: "iLBC", 98: "speex", 100: "CLEARMODE", 301: "SILK", 302: "SILK8", 303: "SILK12", 304: "SILK16", 305: "SILK24",
    306: "ISAC", 307: "ISAC16", 308: "ISAC32", 311: "OPUS", 312: "OPUS8", 313: "OPUS12", 314: "OPUS16", 315: "OPUS24",
    316: "OPUS48", 320: "AMR", 321: "AMR WB", 331: "G7221", 332: "G722112", 333: "G722116", 334: "G722124",
    335: "G722132", 336: "G722148", 351: "G726-16", 352: "G726-24", 353: "G726-32", 354: "G726-40",
    355: "AAL2-G726-16", 356: "AAL2-G726-24", 357: "AAL2-G726-32", 358: "AAL2-G726-40", 359: "EVS",
    400: "telephone-event", 1000: "FAX T.38", 1001: "FAX T.30" };
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

  // svg makes an SVG element (the charts, the SIP ladder) with attributes
  // and, optionally, its text.
  const SVG = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, txt) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (txt !== undefined) e.textContent = txt;
    return e;
  }

  // lineColor is the stroke of a uPlot chart's i-th line; chartWidth the
  // width of a chart in box (the box's, less a margin, within 260-1200 px).
  const COLORS = ["#2b6cb0", "#26a269", "#c01c28", "#a347ba", "#e66100", "#1c71d8"];
  const lineColor = (i) => COLORS[i % COLORS.length];
  const chartWidth = (box) => Math.max(260, Math.min(1200, (box.clientWidth || window.innerWidth) - 12));

  return { $, status, me, getJSON, codec, mult, text, el, svg, lineColor, chartWidth };
})();
