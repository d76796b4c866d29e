// pbx-agent call detail: /console/api/call?id=N (or callid=), drawn as
// facts (Asterisk channel and hang-up cause when correlated), downloads
// (each behind its right), the legs (by Linkedid), RTP streams, quality
// over time (uPlot) and the SIP ladder of every leg, whose arrows show the
// message text.
"use strict";

(function () {
  const { $, status, me, getJSON, codec, mult, text, el, svg: s, lineColor, chartWidth } = window.PBX;
  const page = new URLSearchParams(location.search);
  const D = (window.__call = { loaded: false, legs: [], messages: 0, nodes: [] });

  const BYE = { 0: "no BYE", 1: "BYE without 200 OK", 2: "BYE, then no 200 OK", 3: "BYE and 200 OK", 100: "RTP timeout", 101: "SIP timeout", 102: "max call length" };

  function fact(dl, k, v) {
    dl.appendChild(el("dt", { text: k }));
    dl.appendChild(el("dd", { text: v }));
  }

  function addSeconds(date, s) {
    const d = new Date(date.replace(" ", "T") + "Z");
    return new Date(d.getTime() + s * 1000).toISOString().replace("T", " ").slice(0, 23);
  }

  function facts(j) {
    const c = j.cdr, r = j.reason || {};
    const dl = $("facts");
    dl.textContent = "";
    fact(dl, "caller", text(c.caller) + (c.callername ? " (" + c.callername + ")" : "") + (c.caller_domain ? " @" + c.caller_domain : "") + " · " + text(c.sipcallerip) + ":" + text(c.sipcallerport));
    fact(dl, "called", text(c.called) + (c.called_domain ? " @" + c.called_domain : "") + " · " + text(c.sipcalledip) + ":" + text(c.sipcalledport));
    fact(dl, "Call-ID", text(c.fbasename));
    fact(dl, "start (INVITE)", text(c.calldate));
    fact(dl, "PDD (to first 18x)", c.progress_time === null ? "—" : c.progress_time + " s");
    const answered = c.connect_duration !== null;
    fact(dl, "answered", answered ? addSeconds(c.calldate, Number(c.duration) - Number(c.connect_duration)) : "not answered");
    fact(dl, "end", text(c.callend));
    fact(dl, "duration / talk", text(c.duration) + " s / " + (answered ? c.connect_duration + " s" : "—"));
    fact(dl, "last SIP response", text(c.lastSIPresponseNum) + (c.lastSIPresponse ? " · " + c.lastSIPresponse : ""));
    fact(dl, "who hung up", text(r.whohanged) + " · " + (BYE[r.bye] || "bye code " + text(r.bye)));
    const reason = [];
    if (r.reason_sip_cause) reason.push("SIP " + r.reason_sip_cause + (r.reason_sip_text ? " " + r.reason_sip_text : ""));
    if (r.reason_q850_cause) reason.push("Q.850 " + r.reason_q850_cause + (r.reason_q850_text ? " " + r.reason_q850_text : ""));
    fact(dl, "Reason header", reason.length ? reason.join(" · ") : "—");
    fact(dl, "user agents", text(c.a_ua) + " → " + text(c.b_ua));
    fact(dl, "codec", codec(c.a_payload) + " / " + codec(c.b_payload));
    fact(dl, "MOS f1 / f2 / adaptive (a)", mult(c.a_mos_f1_mult10, 10, 1) + " / " + mult(c.a_mos_f2_mult10, 10, 1) + " / " + mult(c.a_mos_adapt_mult10, 10, 1));
    fact(dl, "MOS f1 / f2 / adaptive (b)", mult(c.b_mos_f1_mult10, 10, 1) + " / " + mult(c.b_mos_f2_mult10, 10, 1) + " / " + mult(c.b_mos_adapt_mult10, 10, 1));
    fact(dl, "RTCP max jitter / fraction lost (a, b)", text(c.a_rtcp_maxjitter) + ", " + text(c.b_rtcp_maxjitter) + " / " + text(c.a_rtcp_maxfr) + ", " + text(c.b_rtcp_maxfr));
    const ast = (j.asterisk || []).find((a) => a.cdr_id === String(c.ID));
    fact(dl, "Asterisk channel", ast ? text(ast.channel) + " · Uniqueid " + text(ast.uniqueid) + (ast.context ? " · " + ast.context + "," + text(ast.exten) : "") : "— (not correlated)");
    fact(dl, "Linkedid", j.linkedid || "—");
    fact(dl, "Asterisk hang-up cause", ast && ast.hangup_cause ? ast.hangup_cause + (ast.hangup_cause_text ? " " + ast.hangup_cause_text : "") : "—");
    fact(dl, "sensor", text(c.id_sensor));
    $("title").textContent = "Call " + text(c.caller) + " → " + text(c.called);
    document.title = $("title").textContent + " — pbx-agent";
  }

  function downloads(j) {
    const d = $("downloads"), id = encodeURIComponent(j.cdr.ID);
    d.textContent = "";
    const item = (ok, href, label, right) => {
      if (ok) d.appendChild(el("a", { href, download: "", class: "dl", text: label }));
      else d.appendChild(el("span", { class: "denied", title: "needs the " + right + " right", text: label + " (needs " + right + ")" }));
    };
    item(j.can.pcap, "/php/pcap.php?id=" + id, "merged pcap", "can_pcap");
    const rec = (p) => "/php/api.php?task=getVoiceRecording&params=" + encodeURIComponent(JSON.stringify(Object.assign({ cdrId: j.cdr.ID }, p)));
    item(j.can.download_audio, rec({}), "WAV", "can_download_audio");
    if (j.ogg === false) d.appendChild(el("span", { class: "denied", title: "this build has no Ogg/Opus encoder (libopus)", text: "Ogg (not in this build)" }));
    else item(j.can.download_audio, rec({ ogg: true }), "Ogg", "can_download_audio");
    item(j.can.pcap, "/console/api/sip.txt?id=" + id, "SIP text", "can_pcap");
    // T.38 calls (payload 1000/1001 as VoIPmonitor writes it) and G.711 faxes: the pages decoded from the pcap
    if (j.cdr.payload >= 1000 || j.can.show_fax) item(j.can.show_fax, "/php/api.php?task=getFax&params=" + encodeURIComponent(JSON.stringify({ cdrId: j.cdr.ID, format: "tiff" })), "fax pages (TIFF)", "can_show_fax");
  }

  function legs(j) {
    const tb = $("legs").tBodies[0];
    tb.textContent = "";
    $("legsnote").textContent = j.linkedid
      ? j.legs.length + " leg(s) under Asterisk Linkedid " + j.linkedid + "."
      : j.legs.length + " leg(s): no Asterisk Linkedid stored for this call, so these are the CDRs of caller " + text(j.cdr.caller) + " that started within 60 s of this one.";
    const ast = {};
    for (const a of j.asterisk || []) ast[a.cdr_id] = a;
    for (const l of j.legs) {
      const tr = el("tr", { "data-leg": l.id, class: l.current ? "current" : "" });
      const a = el("a", { href: "/console/call.html?id=" + encodeURIComponent(l.id), text: l.id });
      if (l.current) a.setAttribute("aria-current", "page");
      const x = ast[l.id] || {};
      const cause = x.hangup_cause ? x.hangup_cause + (x.hangup_cause_text ? " " + x.hangup_cause_text : "") : "—";
      const cells = [a, l.calldate, l.caller, l.callid, String(l.duration), l.connect_duration < 0 ? "—" : String(l.connect_duration), text(x.channel), cause];
      const labels = ["CDR", "start", "caller", "Call-ID", "duration s", "talk s", "Asterisk channel", "hang-up cause"];
      cells.forEach((v, i) => tr.appendChild(el("td", { "data-label": labels[i] }, v)));
      tb.appendChild(tr);
    }
    D.legs = j.legs.map((l) => l.id);
    D.linkedid = j.linkedid;
    D.channels = j.legs.map((l) => (ast[l.id] || {}).channel || "");
  }

  // quality draws the per-second series of the call's streams (savegraph)
  // with uPlot: packets lost, jitter and MOS, one line per stream, on the
  // call's clock (seconds from the INVITE).
  function quality(j) {
    const box = $("qcharts");
    box.textContent = "";
    const ser = j.series || [];
    D.quality = { streams: ser.map((s) => ({ index: s.index, t: s.t || [], lost: s.lost || [], jitter: s.jitter || [], mos: s.mos || [] })), charts: {} };
    if (!ser.length) {
      $("qnote").textContent = "No per-second series stored for this call (savegraph = no, no RTP, or a CDR written by another sniffer).";
      return;
    }
    $("qnote").textContent = "Per " + (ser[0].step > 1 ? ser[0].step + " s" : "second") + ", stream by stream (# as in the RTP streams table); time from the INVITE.";
    const ts = [...new Set(ser.flatMap((s) => s.t || []))].sort((a, b) => a - b);
    const at = (s, name) => {
      const m = new Map((s.t || []).map((t, i) => [t, s[name][i]]));
      return ts.map((t) => (m.has(t) ? m.get(t) : null));
    };
    const fit = () => chartWidth(box);
    const width = fit();
    for (const [name, label, unit] of [["lost", "packets lost", "packets"], ["jitter", "jitter", "ms"], ["mos", "MOS", ""]]) {
      const div = el("div", { class: "qchart", id: "q-" + name, role: "img", "aria-label": label + " per second, " + ser.length + " stream(s)" });
      box.appendChild(div);
      const series = [{ label: "s" }].concat(ser.map((s, i) => ({
        label: "#" + s.index, stroke: lineColor(i), width: 1.5,
        points: { show: ts.length < 120 }, value: (u, v) => (v === null ? "—" : v + (unit ? " " + unit : "")),
      })));
      const opts = {
        title: label, width, height: 160, series,
        scales: { x: { time: false }, y: name === "mos" ? { range: [1, 4.5] } : { range: (u, mn, mx) => [0, Math.max(mx, name === "lost" ? 1 : 5)] } },
        axes: [{ label: "s from INVITE" }, { label: unit || "MOS" }],
        legend: { live: true },
      };
      const u = new window.uPlot(opts, [ts].concat(ser.map((s) => at(s, name))), div);
      D.quality.charts[name] = u;
    }
    // A phone turned, a window resized: the charts follow the page's width.
    window.addEventListener("resize", () => {
      for (const u of Object.values(D.quality.charts)) u.setSize({ width: fit(), height: 160 });
    });
  }

  function streams(j) {
    const tb = $("streams").tBodies[0];
    tb.textContent = "";
    const labels = ["CDR", "#", "from", "to", "SSRC", "codec", "packets", "lost", "loss %", "max jitter ms", "first s", "length s"];
    for (const s of j.streams) {
      const rec = Number(s.received || 0), lost = Number(s.loss || 0);
      const v = [s.cdr_id, s.index, text(s.saddr) + ":" + text(s.sport), text(s.daddr) + ":" + text(s.dport),
        s.ssrc === null ? "—" : "0x" + Number(s.ssrc).toString(16), codec(s.payload), text(s.received), text(s.loss),
        rec + lost ? (lost * 100 / (rec + lost)).toFixed(2) : "—", mult(s.maxjitter_mult10, 10, 1), text(s.firsttime), text(s.duration)];
      const tr = el("tr");
      v.forEach((x, i) => tr.appendChild(el("td", { "data-label": labels[i], text: String(x) })));
      tb.appendChild(tr);
    }
    if (!j.streams.length) tb.appendChild(el("tr", {}, el("td", { colspan: "12", text: "No RTP stream recorded." })));
  }

  function show(j, i, g) {
    for (const x of document.querySelectorAll("#ladder g.msg.sel")) x.classList.remove("sel");
    g.classList.add("sel");
    const m = j.sip[i];
    const head = m.at + "  " + m.src + " → " + m.dst + "  (CDR " + m.leg + ")\n\n";
    $("msgtext").textContent = head + (m.text === null ? "The message text needs the can_pcap right." : m.text.replace(/\r\n/g, "\n"));
    D.shown = i;
  }

  function ladder(j) {
    const box = $("ladder");
    box.textContent = "";
    if (!j.sip || !j.sip.length) {
      box.appendChild(el("p", { class: "muted", text: j.sip_error || "No SIP message stored for this call." }));
      return;
    }
    const nodes = [], index = {};
    const node = (k) => (k in index ? index[k] : ((index[k] = nodes.length), nodes.push(k), nodes.length - 1));
    for (const m of j.sip) { node(m.src); node(m.dst); }
    D.nodes = nodes;
    const left = 80, colW = 200, top = 44, rowH = 30;
    const width = left + nodes.length * colW, height = top + (j.sip.length + 1) * rowH;
    const x = (i) => left + i * colW + colW / 2;
    const svg = s("svg", { width, height, viewBox: "0 0 " + width + " " + height, role: "group", "aria-label": "SIP ladder, " + j.sip.length + " messages" });
    const defs = s("defs", {});
    for (const c of ["req", "ok", "bad"]) {
      const mk = s("marker", { id: "ah-" + c, markerWidth: 10, markerHeight: 8, refX: 10, refY: 4, orient: "auto" });
      mk.appendChild(s("path", { d: "M0,0 L10,4 L0,8 z", class: c }));
      defs.appendChild(mk);
    }
    svg.appendChild(defs);
    nodes.forEach((n, i) => {
      svg.appendChild(s("text", { x: x(i), y: 18, "text-anchor": "middle", class: "node" }, n));
      svg.appendChild(s("line", { x1: x(i), y1: 26, x2: x(i), y2: height - 6, class: "life" }));
    });
    j.sip.forEach((m, i) => {
      const y = top + i * rowH + rowH / 2, a = index[m.src], b = index[m.dst];
      const cls = m.request ? "req" : /^[456]/.test(m.label) ? "bad" : "ok";
      const g = s("g", { class: "msg", tabindex: "0", role: "button", "data-i": i, "aria-label": m.label + " from " + m.src + " to " + m.dst });
      g.appendChild(s("rect", { class: "hit", x: Math.min(x(a), x(b)) - 6, y: y - 18, width: Math.abs(x(b) - x(a)) + 42, height: rowH - 4, rx: 3 }));
      g.appendChild(s("text", { x: 4, y: y + 4, class: "time" }, m.t.toFixed(3) + " s"));
      if (a === b) g.appendChild(s("path", { d: "M" + x(a) + "," + (y - 5) + " h30 v10 h-30", class: cls, "marker-end": "url(#ah-" + cls + ")" }));
      else g.appendChild(s("line", { x1: x(a), y1: y, x2: x(b), y2: y, class: cls, "marker-end": "url(#ah-" + cls + ")" }));
      g.appendChild(s("text", { x: (x(a) + x(b)) / 2, y: y - 5, "text-anchor": "middle", class: cls }, m.label.replace(/ len:\d+$/, "")));
      g.addEventListener("click", () => show(j, i, g));
      g.addEventListener("keydown", (ev) => {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); show(j, i, g); }
      });
      svg.appendChild(g);
    });
    box.appendChild(svg);
    D.messages = j.sip.length;
  }

  // recording fetches the call's WAV once, draws both channels' peaks
  // (caller above, callee below) and plays it in the <audio> element;
  // a click on the waveform seeks there.
  async function recording(j) {
    if (!j.can.download_audio || !j.streams.length) return;
    $("recsec").hidden = false;
    const url = "/php/api.php?task=getVoiceRecording&params=" + encodeURIComponent(JSON.stringify({ cdrId: j.cdr.ID }));
    D.recording = url;
    const cv = $("wave"), g = cv.getContext("2d"), audio = $("audio");
    try {
      const r = await fetch(url, { credentials: "same-origin" });
      if (!r.ok) throw new Error("recording: " + ((await r.json().catch(() => ({}))).error || r.status));
      const bytes = await r.arrayBuffer();
      audio.src = URL.createObjectURL(new Blob([bytes], { type: "audio/wav" }));
      const ac = new (window.OfflineAudioContext || window.webkitOfflineAudioContext)(1, 1, 8000);
      const buf = await ac.decodeAudioData(bytes.slice(0));
      const W = cv.width, H = cv.height, chans = Math.min(2, buf.numberOfChannels);
      g.fillStyle = "#fff";
      g.fillRect(0, 0, W, H);
      let peak = 0;
      for (let c = 0; c < chans; c++) {
        const d = buf.getChannelData(c), per = Math.max(1, Math.floor(d.length / W)), mid = (H / chans) * (c + 0.5);
        g.fillStyle = c === 0 ? "#2b6cb0" : "#26a269";
        for (let x = 0; x < W; x++) {
          let m = 0;
          for (let i = x * per, e = Math.min(d.length, i + per); i < e; i++) m = Math.max(m, Math.abs(d[i]));
          peak = Math.max(peak, m);
          const h = Math.max(1, (m * H) / chans / 2);
          g.fillRect(x, mid - h, 1, 2 * h);
        }
      }
      D.wave = { duration: buf.duration, channels: buf.numberOfChannels, rate: buf.sampleRate, peak };
      cv.addEventListener("click", (ev) => {
        const rect = cv.getBoundingClientRect();
        audio.currentTime = ((ev.clientX - rect.left) / rect.width) * buf.duration;
        audio.play();
      });
    } catch (e) {
      D.wave = { error: String(e.message || e) };
      $("recsec").appendChild(el("p", { class: "muted", text: String(e.message || e) }));
    }
  }

  async function load() {
    const q = new URLSearchParams();
    if (page.get("id")) q.set("id", page.get("id"));
    else if (page.get("callid")) q.set("callid", page.get("callid"));
    else { status("Open a call from the history (id=…) or the live calls (callid=…).", "warn"); return; }
    try {
      const j = await getJSON("/console/api/call?" + q.toString());
      facts(j);
      downloads(j);
      legs(j);
      streams(j);
      ladder(j);
      quality(j);
      recording(j);
      status("CDR " + j.cdr.ID + " · " + j.legs.length + " leg(s) · " + (j.sip ? j.sip.length : 0) + " SIP message(s)" + (j.sip_error ? " · " + j.sip_error : ""), "ok");
    } catch (e) {
      status(String(e.message || e), "err");
    }
    D.loaded = true;
  }

  me(load);
})();
