// pbx-agent overview: calls per minute, ASR, ACD, average MOS and calls in
// progress over the last hours, per sensor (/console/api/overview), and the
// registrations (/console/api/registrations).
"use strict";

(function () {
  const { $, status, me, getJSON, text, el, svg: s, lineColor, chartWidth } = window.PBX;
  const page = new URLSearchParams(location.search);
  const D = (window.__overview = { loaded: false, totals: null, regs: 0, fails: 0, concurrent: {} });
  const STATES = { 1: "OK", 2: "failed", 3: "unknown, OK", 4: "too many messages", 5: "expired", 6: "unregistered" };

  function card(label, value) {
    $("cards").appendChild(el("div", { class: "card" }, el("span", { class: "label", text: label }), el("strong", { text: value })));
  }

  // chart draws one series (null = no value) as bars over the buckets.
  function chart(title, vals, fmt, start, step) {
    const W = 560, H = 150, L = 44, B = 22, T = 8;
    const max = Math.max(1e-9, ...vals.filter((v) => v !== null));
    const svg = s("svg", { viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": title });
    svg.appendChild(s("line", { x1: L, y1: H - B, x2: W, y2: H - B, class: "axis" }));
    svg.appendChild(s("text", { x: L - 4, y: T + 8, "text-anchor": "end", class: "tick" }, fmt(max)));
    svg.appendChild(s("text", { x: L - 4, y: H - B, "text-anchor": "end", class: "tick" }, "0"));
    const bw = (W - L) / vals.length;
    vals.forEach((v, i) => {
      if (v === null) return;
      const h = ((H - B - T) * v) / max;
      const r = s("rect", { x: L + i * bw + 0.5, y: H - B - h, width: Math.max(1, bw - 1), height: h, class: "bar" });
      r.appendChild(s("title", {}, new Date(start + i * step * 1000).toISOString().slice(11, 16) + " UTC: " + fmt(v)));
      svg.appendChild(r);
    });
    const t0 = new Date(start), t1 = new Date(start + vals.length * step * 1000);
    svg.appendChild(s("text", { x: L, y: H - 6, class: "tick" }, t0.toISOString().slice(5, 16).replace("T", " ")));
    svg.appendChild(s("text", { x: W, y: H - 6, "text-anchor": "end", class: "tick" }, t1.toISOString().slice(5, 16).replace("T", " ") + " UTC"));
    $("charts").appendChild(el("figure", { class: "chart" }, el("figcaption", { text: title }), svg));
  }

  const sensorName = (s) => (s === "-1" ? "no sensor" : "sensor " + s);
  const peak = (a) => (a ? Math.max(0, ...a) : null);

  // inProgress draws the calls in progress during each bucket (from the
  // CDRs), one uPlot line per sensor, on UTC time.
  function inProgress(j, start) {
    const box = $("conc"), list = j.concurrent || [];
    box.textContent = "";
    D.concurrent = {};
    for (const c of list) D.concurrent[c.sensor] = c.calls;
    $("concnote").textContent = list.length
      ? "Calls in progress at some time in each " + j.step / 60 + "-minute step, per sensor, from the stored CDRs (a call still going has none yet: see active now)."
      : "No call in progress in this time range.";
    if (!list.length) return;
    // One x more than the steps: the last step is drawn as wide as the others.
    const xs = Array.from({ length: j.buckets + 1 }, (_, i) => start / 1000 + i * j.step);
    const utc = (ts) => new Date(ts * 1000).toISOString().slice(0, 16).replace("T", " ");
    const tick = (ts) => (j.buckets * j.step > 86400 ? utc(ts).slice(5) : utc(ts).slice(11));
    const label = "calls in progress, peak " + list.map((c) => sensorName(c.sensor) + " " + peak(c.calls)).join(", ");
    const div = el("div", { class: "qchart", id: "conc-chart", role: "img", "aria-label": label });
    box.appendChild(div);
    const fit = () => chartWidth(box);
    const series = [{ label: "UTC", value: (u, ts) => (ts === null ? "—" : utc(ts)) }].concat(list.map((c, i) => ({
      label: sensorName(c.sensor), stroke: lineColor(i), width: 1.5,
      paths: window.uPlot.paths.stepped({ align: 1 }), points: { show: false },
    })));
    const u = new window.uPlot({
      title: "calls in progress", width: fit(), height: 180, series,
      tzDate: (ts) => window.uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"),
      scales: { y: { range: (_, mn, mx) => [0, Math.max(mx, 1)] } },
      axes: [{ label: "UTC", values: (u, splits) => splits.map(tick) },
        { label: "calls", incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000] }],
    }, [xs].concat(list.map((c) => c.calls.concat([c.calls[c.calls.length - 1]]))), div);
    D.concChart = u;
    window.addEventListener("resize", () => u.setSize({ width: fit(), height: 180 }));
  }

  function overview(j) {
    const n = j.buckets, step = j.step;
    // blank is an empty tally of calls (a bucket's, a sensor's).
    const blank = () => ({ calls: 0, answered: 0, talk: 0, mosSum: 0, mosN: 0 });
    const b = Array.from({ length: n }, blank);
    const per = {};
    for (const r of j.series) {
      const i = Number(r.bucket);
      const calls = Number(r.calls), ans = Number(r.answered), talk = Number(r.talk);
      const p = (per[r.sensor] = per[r.sensor] || blank());
      for (const x of i >= 0 && i < n ? [b[i], p] : [p]) {
        x.calls += calls; x.answered += ans; x.talk += talk;
        if (r.mos !== null) { x.mosSum += Number(r.mos) * calls; x.mosN += calls; }
      }
    }
    const tot = Object.values(per).reduce((a, p) => ({ calls: a.calls + p.calls, answered: a.answered + p.answered, talk: a.talk + p.talk, mosSum: a.mosSum + p.mosSum, mosN: a.mosN + p.mosN }), blank());
    const asr = (x) => (x.calls ? (x.answered * 100) / x.calls : null);
    const acd = (x) => (x.answered ? x.talk / x.answered : null);
    const mos = (x) => (x.mosN ? x.mosSum / x.mosN : null);
    const f1 = (v) => (v === null ? "—" : v.toFixed(1));
    $("cards").textContent = "";
    card("calls", String(tot.calls));
    card("calls / min", (tot.calls / ((n * step) / 60)).toFixed(2));
    card("ASR", asr(tot) === null ? "—" : asr(tot).toFixed(1) + " %");
    card("ACD", acd(tot) === null ? "—" : acd(tot).toFixed(0) + " s");
    card("avg MOS", mos(tot) === null ? "—" : mos(tot).toFixed(2));
    card("active now", j.active === null ? "—" : String(j.active));
    D.totals = { calls: tot.calls, answered: tot.answered, asr: asr(tot), acd: acd(tot), mos: mos(tot) };
    const start = j.start_unix * 1000;
    $("charts").textContent = "";
    chart("calls per minute", b.map((x) => x.calls / (step / 60)), (v) => v.toFixed(2), start, step);
    chart("ASR %", b.map(asr), f1, start, step);
    chart("ACD s", b.map(acd), (v) => v.toFixed(0), start, step);
    chart("average MOS", b.map(mos), (v) => v.toFixed(2), start, step);
    inProgress(j, start);
    const tb = $("sensors").tBodies[0];
    tb.textContent = "";
    const labels = ["sensor", "calls", "answered", "ASR %", "ACD s", "avg MOS", "peak in progress"];
    for (const sensor of new Set([...Object.keys(per), ...Object.keys(D.concurrent)])) {
      const tr = el("tr"), p = per[sensor] || blank(), pk = peak(D.concurrent[sensor]);
      [sensor, String(p.calls), String(p.answered), f1(asr(p)), acd(p) === null ? "—" : acd(p).toFixed(0), mos(p) === null ? "—" : mos(p).toFixed(2), pk === null ? "0" : String(pk)]
        .forEach((v, i) => tr.appendChild(el("td", { "data-label": labels[i], text: v })));
      tb.appendChild(tr);
    }
  }

  function registrations(j) {
    const rows = (id, list, cells, labels) => {
      const tb = $(id).tBodies[0];
      tb.textContent = "";
      for (const r of list) {
        const tr = el("tr");
        cells(r).forEach((v, i) => tr.appendChild(el("td", { "data-label": labels[i], text: v })));
        tb.appendChild(tr);
      }
      if (!list.length) tb.appendChild(el("tr", {}, el("td", { colspan: String(labels.length), text: "None." })));
    };
    const aor = (r) => text(r.aor) + (r.domain ? "@" + r.domain : "");
    rows("regs", j.states, (r) => [aor(r), STATES[r.state] || text(r.state), text(r.at).slice(0, 19), text(r.ip) + ":" + text(r.port),
      text(r.contact) + (r.contact_domain ? "@" + r.contact_domain : ""), text(r.expires), text(r.ua), text(r.sensor)],
      ["AOR", "state", "at", "from", "contact", "expires s", "user agent", "sensor"]);
    rows("fails", j.failed, (r) => [aor(r), text(r.count), text(r.last).slice(0, 19), text(r.ip), text(r.reason), text(r.sensor)], ["AOR", "failures", "last", "last from", "last reason", "sensor"]);
    D.regs = j.states.length;
    D.fails = j.failed.length;
  }

  async function load() {
    for (const inp of $("filters").elements) if (inp.name && page.get(inp.name) !== null) inp.value = page.get(inp.name);
    if (!page.get("hours")) $("f-hours").value = "6";
    const q = new URLSearchParams({ hours: $("f-hours").value });
    if (page.get("fsensor_id")) q.set("fsensor_id", page.get("fsensor_id"));
    try {
      const [o, r] = await Promise.all([getJSON("/console/api/overview?" + q), getJSON("/console/api/registrations")]);
      overview(o);
      registrations(r);
      status("Calls since " + o.start + " (" + o.step + " s per bar).", "ok");
    } catch (e) {
      status(String(e.message || e), "err");
    }
    D.loaded = true;
  }

  me(load);
})();
