// pbx-agent calls history: the page's own query string holds the filters
// (a shareable URL); they become php/model/sql.php LISTING parameters, so
// the search has the API's semantics and limits. The CSV export asks
// /console/api/calls.csv with the same parameters.
"use strict";

(function () {
  const { $, status, me, getJSON, codec, mult, text, el } = window.PBX;
  const page = new URLSearchParams(location.search);
  const PASS = ["fdatefrom", "fdateto", "fcallid", "fsipresponse", "fdurationgt", "fdurationlt", "fmosadapt", "fcodec", "fhasaudio", "ffax", "fsensor_id", "limit"];
  const D = (window.__calls = { loaded: false, ids: [], total: -1, listing: "" });


  // listingParams maps the page's parameters to LISTING's.
  function listingParams(p) {
    const q = new URLSearchParams({ task: "LISTING", module: "CDR" });
    for (const k of PASS) if (p.get(k)) q.set(k, p.get(k));
    const num = (p.get("number") || "").trim();
    if (num) {
      q.set("fcaller", num.includes("%") ? num : "%" + num + "%");
      q.set("fcallerd_type", "0");
    }
    const ip = (p.get("ip") || "").trim();
    if (ip) {
      q.set("fsipcallerip", ip);
      q.set("fsipcallerdip_type", "0");
    }
    const sort = p.get("sort");
    if (sort) q.set("sort", JSON.stringify([{ property: sort, direction: p.get("dir") === "ASC" ? "ASC" : "DESC" }]));
    const limit = Number(p.get("limit") || 30);
    const pg = Math.max(1, Number(p.get("page") || 1));
    q.set("limit", String(limit));
    q.set("start", String((pg - 1) * limit));
    return q;
  }

  function withParam(k, v) {
    const p = new URLSearchParams(page);
    if (v === null) p.delete(k);
    else p.set(k, v);
    return "/console/calls.html?" + p.toString();
  }

  // fillForm shows the filters; without dates, the last 24 hours in the
  // agent's time zone (LISTING requires a date range).
  function fillForm(who) {
    if (!page.get("fdatefrom") && !page.get("fdateto")) {
      page.set("fdatefrom", who.default_from);
      page.set("fdateto", who.default_to);
    }
    for (const inp of $("filters").elements) {
      if (inp.name && page.get(inp.name) !== null) inp.value = page.get(inp.name);
    }
    // The order list (also on a phone, where the header row is hidden)
    // sets the same sort and dir fields as the header links.
    const ord = $("f-order");
    const cur = page.get("sort") ? page.get("sort") + ":" + (page.get("dir") === "ASC" ? "ASC" : "DESC") : "";
    if ([...ord.options].some((o) => o.value === cur)) ord.value = cur;
    $("filters").addEventListener("submit", () => {
      if (ord.value === cur) return;
      const [k, d] = ord.value.split(":");
      $("f-sort").value = k || "";
      $("f-dir").value = d || "";
    });
    // Sortable headers: links, so the keyboard reaches them and the URL keeps the order.
    for (const th of document.querySelectorAll("#calls th[data-sort]")) {
      const key = th.dataset.sort;
      const cur = page.get("sort") === key;
      const dir = cur && page.get("dir") !== "ASC" ? "ASC" : "DESC";
      const p = new URLSearchParams(page);
      p.set("sort", key);
      p.set("dir", dir);
      p.delete("page");
      const a = el("a", { href: "/console/calls.html?" + p.toString(), text: th.textContent });
      if (cur) {
        th.setAttribute("aria-sort", page.get("dir") === "ASC" ? "ascending" : "descending");
        a.textContent += page.get("dir") === "ASC" ? " ▲" : " ▼";
      }
      th.textContent = "";
      th.appendChild(a);
    }
  }

  const LABELS = ["start", "caller", "called", "duration s", "talk s", "last SIP response", "caller IP", "called IP", "codec", "MOS min", "loss %", "sensor"];

  function render(rows, total) {
    const tb = $("calls").tBodies[0];
    tb.textContent = "";
    for (const c of rows) {
      const tr = el("tr", { "data-id": c.ID });
      const cells = [
        null, text(c.caller), text(c.called), mult(c.duration, 1, 0), c.connect_duration === null ? "—" : mult(c.connect_duration, 1, 0),
        text(c.lastSIPresponseNum) + (c.lastSIPresponse ? " " + c.lastSIPresponse.replace(/^\d+ /, "") : ""),
        text(c.sipcallerip), text(c.sipcalledip), codec(c.payload), mult(c.mos_min_mult10, 10, 1), mult(c.packet_loss_perc_mult1000, 1000, 2), text(c.id_sensor),
      ];
      cells.forEach((v, i) => {
        const td = el("td", { "data-label": LABELS[i] });
        if (i === 0) td.appendChild(el("a", { href: "/console/call.html?id=" + encodeURIComponent(c.ID), text: String(c.calldate).slice(0, 19) }));
        else td.textContent = v;
        if (i === 3 || i === 4 || i === 9 || i === 10) td.className = "num";
        tr.appendChild(td);
      });
      tb.appendChild(tr);
    }
    const limit = Number(page.get("limit") || 30);
    const pg = Math.max(1, Number(page.get("page") || 1));
    const pages = Math.max(1, Math.ceil(total / limit));
    $("pageinfo").textContent = "page " + pg + " of " + pages + " · " + total + " call(s)";
    const prev = $("prev"), next = $("next");
    prev.hidden = pg <= 1;
    next.hidden = pg >= pages;
    prev.href = withParam("page", String(pg - 1));
    next.href = withParam("page", String(pg + 1));
  }

  async function load(who) {
    fillForm(who);
    const q = listingParams(page);
    D.listing = q.toString();
    const csv = new URLSearchParams(q);
    csv.delete("task");
    csv.delete("module");
    csv.set("start", "0");
    csv.set("limit", "5000");
    $("csv").href = "/console/api/calls.csv?" + csv.toString();
    status("Searching…");
    try {
      const j = await getJSON("/php/model/sql.php?" + q.toString());
      const total = Number(j.total);
      render(j.results, total);
      D.ids = j.results.map((r) => r.ID);
      D.total = total;
      status(total ? total + " call(s) match." : "No call matches these filters.", total ? "ok" : "warn");
    } catch (e) {
      status(String(e.message || e), "err");
    }
    D.loaded = true;
  }

  me(load);
})();
