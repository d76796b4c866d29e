// pbx-agent ChunkPlayer page: websocket /ws/listen → Web Audio.
// Binary messages: 20-byte header (version, layout, codec, flags, rate,
// samples, seq, capture ms float64) + s16le PCM; text messages: JSON status.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const q = new URLSearchParams(location.search);
  const HEADER = 20;

  // Test and debugging hook: what the page received, decoded and rendered.
  const P = (window.__player = {
    state: "idle", received: 0, decoded: 0, dropped: 0, lastSeq: -1, gaps: 0,
    latencies: [], clockOffset: 0, sampleRate: 0, frameRate: 0, frameRates: {}, backend: "", stats: null, ended: null, messages: [],
    capL: [], capR: [], capS: [], capN: 0,
  });

  $("callref").value = q.get("callref") || "";
  $("sensor").value = q.get("sensor_id") || q.get("sensor") || "";
  if (q.get("layout") === "mono") $("layout").value = "mono";
  const captureSeconds = Math.min(60, Number(q.get("capture") || 0));

  let ctx = null, node = null, gain = null, ws = null, jb = null, sp = null, statTimer = null;

  function setStatus(text, cls) {
    const s = $("status");
    s.textContent = text;
    s.className = "status " + (cls || "");
  }

  function db(v) {
    return v > 0 ? (20 * Math.log10(v)).toFixed(1) + " dB" : "−∞ dB";
  }

  function percentile(a, p) {
    if (!a.length) return NaN;
    const s = a.slice().sort((x, y) => x - y);
    return s[Math.min(s.length - 1, Math.floor(p * s.length))];
  }

  function showStats(st) {
    P.stats = st;
    $("buffer").textContent = st.depthMs.toFixed(0) + " ms / " + st.targetMs.toFixed(0) + " ms";
    $("underruns").textContent = String(st.underruns);
    const [l, r] = st.levels;
    $("levelL").style.width = Math.min(100, l * 300) + "%";
    $("levelR").style.width = Math.min(100, r * 300) + "%";
    $("dbL").textContent = db(l);
    $("dbR").textContent = db(r);
    const lat = P.latencies.slice(-500);
    if (lat.length) {
      $("latency").textContent = "p50 " + percentile(lat, 0.5).toFixed(0) + " ms, p95 " + percentile(lat, 0.95).toFixed(0) +
        " ms (+ buffer " + st.depthMs.toFixed(0) + " ms)";
    }
  }

  function onCapture(l, r, steady) {
    P.capL.push(l);
    P.capR.push(r);
    P.capS.push(steady);
    P.capN += l.length;
  }

  // capture() returns what the player rendered so far (tests), and the
  // stretches [from, to) of it (sample indexes) not played steadily from
  // the frames: fades, underruns, silence before the first frames.
  P.capture = function () {
    const join = (parts) => {
      const out = [];
      for (const p of parts) for (let i = 0; i < p.length; i++) out.push(Math.round(p[i] * 32767));
      return out;
    };
    const unsteady = [];
    let n = 0, from = -1;
    for (const p of P.capS) {
      for (let i = 0; i < p.length; i++, n++) {
        if (!p[i] && from < 0) from = n;
        else if (p[i] && from >= 0) { unsteady.push([from, n]); from = -1; }
      }
    }
    if (from >= 0) unsteady.push([from, n]);
    return { rate: P.sampleRate, l: join(P.capL), r: join(P.capR), unsteady };
  };

  async function startAudio() {
    // The device's own rate: the worklet resamples the call's frames to it.
    ctx = new AudioContext({ latencyHint: "interactive" });
    P.sampleRate = ctx.sampleRate;
    gain = ctx.createGain();
    gain.gain.value = Number($("volume").value);
    gain.connect(ctx.destination);
    if (ctx.audioWorklet) {
      await ctx.audioWorklet.addModule("/api/chunkplayer/worklet.js");
      node = new AudioWorkletNode(ctx, "chunk-player", {
        numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [2],
        processorOptions: { captureSeconds },
      });
      node.port.onmessage = (e) => {
        const m = e.data;
        if (m.type === "stats") showStats(m.stats);
        else if (m.type === "capture") onCapture(m.l, m.r, m.steady);
      };
      node.connect(gain);
      P.backend = "AudioWorklet";
    } else {
      // No AudioWorklet (insecure context): the same jitter buffer in a ScriptProcessor.
      jb = new ChunkJitter(ctx.sampleRate);
      let capLeft = Math.floor(captureSeconds * ctx.sampleRate);
      const steady = new Uint8Array(1024);
      sp = ctx.createScriptProcessor(1024, 0, 2);
      sp.onaudioprocess = (e) => {
        const l = e.outputBuffer.getChannelData(0), r = e.outputBuffer.getChannelData(1);
        jb.render(l, r, steady);
        if (capLeft > 0) {
          const k = Math.min(capLeft, l.length);
          onCapture(l.slice(0, k), r.slice(0, k), steady.slice(0, k));
          capLeft -= k;
        }
      };
      sp.connect(gain);
      statTimer = setInterval(() => showStats(jb.stats()), 100);
      P.backend = "ScriptProcessor";
    }
    await ctx.resume();
    $("output").textContent = P.backend + " at " + ctx.sampleRate + " Hz";
  }

  function push(l, r, seq, rate) {
    const t = performance.now();
    if (node) node.port.postMessage({ type: "frame", l, r, t, seq, rate }, [l.buffer, r.buffer]);
    else if (jb) jb.push(l, r, t, seq, rate);
  }

  function onFrame(buf) {
    const dv = new DataView(buf);
    if (buf.byteLength < HEADER || dv.getUint8(0) !== 1 || dv.getUint8(2) !== 1) return;
    const layout = dv.getUint8(1), flags = dv.getUint8(3), rate = dv.getUint16(4, true);
    const n = dv.getUint16(6, true), seq = dv.getUint32(8, true), capMs = dv.getFloat64(12, true);
    if (buf.byteLength !== HEADER + n * layout * 2 || n * 50 !== rate) return;
    if (rate !== P.frameRate) {
      P.frameRate = rate;
      $("rate").textContent = rate / 1000 + " kHz";
    }
    P.frameRates[rate] = (P.frameRates[rate] || 0) + 1;
    P.received++;
    if (P.lastSeq >= 0 && seq !== P.lastSeq + 1) P.gaps++;
    P.lastSeq = seq;
    if (flags & 1) setStatus("Playing (the link is slow: frames were dropped)", "warn");
    // Latency from the capture of the frame's last sample to its arrival here.
    // A replayed capture has its own clock: the server says the offset.
    const lat = Date.now() - P.clockOffset - (capMs + (n * 1000) / rate);
    P.latencies.push(lat);
    if (P.latencies.length > 20000) P.latencies.splice(0, 10000);
    const l = new Float32Array(n), r = new Float32Array(n);
    if (layout === 2) {
      for (let i = 0; i < n; i++) {
        l[i] = dv.getInt16(HEADER + 4 * i, true) / 32768;
        r[i] = dv.getInt16(HEADER + 4 * i + 2, true) / 32768;
      }
    } else {
      for (let i = 0; i < n; i++) l[i] = r[i] = dv.getInt16(HEADER + 2 * i, true) / 32768;
    }
    P.decoded++;
    $("frames").textContent = String(P.decoded);
    push(l, r, seq, rate);
  }

  function onStatus(text) {
    let m;
    try { m = JSON.parse(text); } catch (e) { return; }
    P.messages.push(m);
    if (P.messages.length > 200) P.messages.shift();
    switch (m.type) {
      case "start":
        P.state = "playing";
        P.clockOffset = m.clock_offset_ms || 0;
        $("callInfo").textContent = m.callref + (m.caller ? " " + m.caller + " → " + m.called : "") +
          (m.codec ? " (" + m.codec + ")" : "") + (m.remote ? " via sensor " + m.sensor_id : "");
        setStatus("Playing " + m.callref + " (" + m.layout + ")", "ok");
        break;
      case "stats":
        P.dropped = m.dropped;
        $("dropped").textContent = String(m.dropped);
        if (m.paused) setStatus("Call paused: silence until it is unpaused", "warn");
        else if (P.state === "playing") setStatus("Playing", "ok");
        break;
      case "error":
      case "end":
        P.ended = m.reason;
        P.state = "ended";
        // No frame follows: the jitter buffer plays out what it holds.
        if (node) node.port.postMessage({ type: "end" });
        else if (jb) jb.end();
        setStatus(m.reason === "call not found" ? "Call not found: it is not active on that sensor (check the callref and sensor id)." :
          m.reason === "call ended" ? "The call has ended." : "Stopped: " + m.reason, m.type === "error" ? "err" : "");
        break;
    }
  }

  async function play(ev) {
    if (ev) ev.preventDefault();
    stop();
    const ref = $("callref").value.trim();
    if (!ref) { setStatus("Enter a callreference.", "err"); return; }
    const sensor = $("sensor").value.trim();
    setStatus("Connecting…");
    P.state = "connecting"; P.ended = null;
    try {
      await startAudio();
    } catch (e) {
      setStatus("Audio output failed: " + e, "err");
      return;
    }
    const u = new URL("/ws/listen", location.href);
    u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    u.searchParams.set("callref", ref);
    if (sensor) u.searchParams.set("sensor_id", sensor);
    u.searchParams.set("layout", $("layout").value);
    if (q.get("rate")) u.searchParams.set("rate", q.get("rate"));
    const nu = new URLSearchParams(location.search);
    nu.set("callref", ref);
    if (sensor) nu.set("sensor_id", sensor); else nu.delete("sensor_id");
    history.replaceState(null, "", "?" + nu.toString());
    ws = new WebSocket(u);
    ws.binaryType = "arraybuffer";
    let opened = false;
    ws.onopen = () => { opened = true; };
    ws.onmessage = (e) => (typeof e.data === "string" ? onStatus(e.data) : onFrame(e.data));
    ws.onclose = (e) => {
      if (!opened) {
        P.state = "refused";
        setStatus("The server refused the connection: log in on the live calls page (or lacking can_listen_active_call), or an unknown sensor id.", "err");
      } else if (P.state !== "ended") {
        P.state = "closed";
        setStatus("Connection closed" + (e.reason ? ": " + e.reason : "") + ".", "warn");
      }
      $("stop").disabled = true;
      $("play").disabled = false;
    };
    $("stop").disabled = false;
  }

  function stop() {
    if (ws) { ws.onclose = null; ws.close(); ws = null; }
    if (statTimer) { clearInterval(statTimer); statTimer = null; }
    if (ctx) { ctx.close(); ctx = null; node = null; sp = null; jb = null; }
    if (P.state === "playing") { P.state = "stopped"; setStatus("Stopped."); }
    $("stop").disabled = true;
  }

  $("form").addEventListener("submit", play);
  $("stop").addEventListener("click", stop);
  $("volume").addEventListener("input", () => { if (gain) gain.gain.value = Number($("volume").value); });
  if (q.get("autoplay") === "1" && $("callref").value) play();
})();
