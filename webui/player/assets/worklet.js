// pbx-agent ChunkPlayer: the playback side. One file serves two hosts:
// loaded with audioWorklet.addModule it registers the "chunk-player"
// AudioWorkletProcessor; loaded with a <script> tag (no AudioWorklet, e.g.
// plain http to a non-local host) it only defines ChunkJitter for the
// ScriptProcessor fallback.
//
// Frames come at the call's rate (8 kHz G.711, 16 kHz G.722, 48 kHz Opus;
// each frame says its rate): Upsampler brings each to 48 kHz (a polyphase
// windowed-sinc filter, so an 8 kHz call has no images above 4 kHz), and
// the jitter buffer holds 48 kHz.
//
// ChunkJitter is an adaptive jitter buffer: a 48 kHz ring per channel,
// read with linear interpolation at the output rate (the AudioContext's:
// 48000 or 44100 Hz, whatever the device runs at). The target
// depth follows the arrival jitter (a decaying peak of how far frames come
// from their 20 ms rhythm), at least 40 ms and at most 120 ms; an underrun
// raises it, calm lowers it. Playback drifts 2 % faster or slower to stay
// near the target (no skips). An underrun fades to silence over 5 ms and
// playback resumes with a fade-in once the target is buffered again: no
// clicks. Once the stream has ended (end) what is buffered plays out,
// target or not.
"use strict";

const RING_RATE = 48000;

// Upsampler raises one channel by an integer factor: zero-stuffing and a
// Blackman-windowed sinc low-pass (16 taps per phase), history kept
// between frames.
class Upsampler {
  constructor(factor) {
    const L = (this.L = factor), T = (this.T = 16), N = L * T, fc = 0.45 / L;
    this.coef = new Float32Array(N); // phase p's taps at p*T…, newest input first
    let sum = 0;
    const proto = new Float64Array(N);
    for (let i = 0; i < N; i++) {
      const x = i - (N - 1) / 2;
      const s = x === 0 ? 2 * fc : Math.sin(2 * Math.PI * fc * x) / (Math.PI * x);
      const w = 0.42 - 0.5 * Math.cos((2 * Math.PI * i) / (N - 1)) + 0.08 * Math.cos((4 * Math.PI * i) / (N - 1));
      proto[i] = s * w;
      sum += proto[i];
    }
    for (let p = 0; p < L; p++) for (let k = 0; k < T; k++) this.coef[p * T + k] = (proto[p + k * L] * L) / sum;
    this.hist = new Float32Array(2 * T);
    this.w = 0;
  }

  process(x) {
    const L = this.L, T = this.T, out = new Float32Array(x.length * L);
    for (let i = 0; i < x.length; i++) {
      this.w = (this.w + 1) % T;
      this.hist[this.w] = this.hist[this.w + T] = x[i];
      const newest = this.w + T;
      for (let p = 0; p < L; p++) {
        let acc = 0;
        const c = p * T;
        for (let k = 0; k < T; k++) acc += this.coef[c + k] * this.hist[newest - k];
        out[i * L + p] = acc;
      }
    }
    return out;
  }
}

// linearUp resamples by linear interpolation (a rate that does not divide
// 48 kHz: not sent by pbx-agent, kept for robustness).
function linearUp(x, from, to) {
  const n = Math.round((x.length * to) / from), out = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    const t = (j * from) / to, i = Math.floor(t), f = t - i;
    out[j] = x[Math.min(i, x.length - 1)] * (1 - f) + x[Math.min(i + 1, x.length - 1)] * f;
  }
  return out;
}

class ChunkJitter {
  constructor(outRate) {
    this.inRate = RING_RATE;
    this.frameRate = 0; // rate of the frames pushed (the call's)
    this.up = null;
    this.outRate = outRate;
    this.step = this.inRate / outRate;
    this.size = this.inRate * 4; // 4 s ring per channel
    this.l = new Float32Array(this.size);
    this.r = new Float32Array(this.size);
    this.w = 0; // samples written (absolute)
    this.pos = 0; // read position (absolute, fractional)
    this.playing = false;
    this.gain = 0; // fade envelope 0..1
    this.fade = 1 / (0.005 * outRate); // 5 ms
    this.minMs = 40;
    this.maxMs = 120;
    this.peak = 0; // decaying jitter peak, ms
    this.decay = Math.pow(0.5, 1 / (4 * outRate)); // half-life 4 s, per output sample
    this.lastArrival = -1;
    this.lastSeq = -1;
    this.underruns = 0;
    this.lateDrops = 0;
    this.ending = false; // the stream ended: play the rest below the target
    this.played = 0; // input samples consumed while playing
    this.sumL = 0; this.sumR = 0; this.nSum = 0;
    this.lastL = 0; this.lastR = 0;
  }

  targetMs() {
    return Math.min(this.maxMs, Math.max(this.minMs, 20 + 2 * this.peak));
  }

  depthMs() {
    return Math.max(0, this.w - this.pos) * 1000 / this.inRate;
  }

  // push adds one frame (Float32Array per channel, at rate Hz) that
  // arrived at t ms (performance.now() of the page).
  push(l, r, t, seq, rate) {
    rate = rate || 8000;
    this.ending = false;
    if (rate !== this.frameRate) {
      // A new stream or a codec change (re-INVITE PCMU → G.722).
      this.frameRate = rate;
      this.up = rate < RING_RATE && RING_RATE % rate === 0 ? [new Upsampler(RING_RATE / rate), new Upsampler(RING_RATE / rate)] : null;
    }
    if (this.up) {
      l = this.up[0].process(l);
      r = this.up[1].process(r);
    } else if (rate !== RING_RATE) {
      l = linearUp(l, rate, RING_RATE);
      r = linearUp(r, rate, RING_RATE);
    }
    if (this.lastArrival >= 0) {
      const dev = Math.abs(t - this.lastArrival - 20 * (seq > this.lastSeq && this.lastSeq >= 0 ? Math.min(seq - this.lastSeq, 5) : 1));
      if (dev > this.peak) this.peak = Math.min(dev, 200);
    }
    this.lastArrival = t;
    this.lastSeq = seq;
    const n = l.length;
    if (this.w - this.pos + n > this.size - 8) {
      // Far too much buffered (a stalled output): drop the oldest.
      this.pos = this.w + n - this.size / 2;
      this.lateDrops++;
    }
    for (let i = 0; i < n; i++) {
      const k = (this.w + i) % this.size;
      this.l[k] = l[i];
      this.r[k] = r[i];
    }
    this.w += n;
  }

  // render fills one block of output (outL, outR: Float32Array), returns
  // the samples rendered. steady, when given (Uint8Array), gets 1 for each
  // sample played from the frames at full gain and 0 for the rest (fades,
  // the held sample of an underrun, silence before the first frames).
  render(outL, outR, steady) {
    const n = outL.length;
    const target = this.targetMs();
    for (let i = 0; i < n; i++) {
      this.peak *= this.decay;
      const avail = this.w - this.pos;
      if (!this.playing) {
        if (avail * 1000 / this.inRate >= target || (this.ending && avail >= 2)) {
          this.playing = true;
        }
      } else if (avail < 2) {
        this.playing = false;
        this.underruns++;
        this.peak = Math.min(this.peak + 10, 200); // grow the target after an underrun
      }
      let sl = this.lastL, sr = this.lastR;
      if (this.playing) {
        this.gain = Math.min(1, this.gain + this.fade);
        const p = Math.floor(this.pos);
        const fr = this.pos - p;
        const a = p % this.size, b = (p + 1) % this.size;
        sl = this.l[a] + (this.l[b] - this.l[a]) * fr;
        sr = this.r[a] + (this.r[b] - this.r[a]) * fr;
        this.lastL = sl; this.lastR = sr;
        const depth = avail * 1000 / this.inRate;
        let adj = 1;
        if (depth > target + 20) adj = 1.02;
        else if (depth < target - 20 && depth > 0) adj = 0.98;
        const s = this.step * adj;
        this.pos += s;
        this.played += s;
      } else {
        this.gain = Math.max(0, this.gain - this.fade);
      }
      const ol = sl * this.gain, or = sr * this.gain;
      if (steady) steady[i] = this.playing && this.gain === 1 ? 1 : 0;
      outL[i] = ol;
      if (outR) outR[i] = or;
      this.sumL += ol * ol; this.sumR += or * or; this.nSum++;
    }
    return n;
  }

  // end says no frame follows: what is buffered plays out even below the
  // target (after an underrun near the end of a call, the rest, less than
  // the target, stayed in the buffer for good: 80 and 100 ms of two calls).
  end() {
    this.ending = true;
  }

  // levels returns the RMS of each channel since the previous call.
  levels() {
    const n = Math.max(1, this.nSum);
    const out = [Math.sqrt(this.sumL / n), Math.sqrt(this.sumR / n)];
    this.sumL = 0; this.sumR = 0; this.nSum = 0;
    return out;
  }

  stats() {
    return {
      depthMs: this.depthMs(), targetMs: this.targetMs(), underruns: this.underruns,
      playing: this.playing, played: Math.floor(this.played), levels: this.levels(), frameRate: this.frameRate,
      lastSeq: this.lastSeq,
    };
  }
}

if (typeof registerProcessor === "function") {
  class ChunkPlayerProcessor extends AudioWorkletProcessor {
    constructor(options) {
      super();
      const o = (options && options.processorOptions) || {};
      this.jb = new ChunkJitter(sampleRate);
      this.capLeft = Math.floor((o.captureSeconds || 0) * sampleRate);
      this.cap = null;
      this.capN = 0;
      this.steady = new Uint8Array(128);
      this.nextStat = 0;
      this.port.onmessage = (e) => {
        const m = e.data;
        if (m.type === "frame") this.jb.push(m.l, m.r, m.t, m.seq, m.rate);
        else if (m.type === "end") this.jb.end();
      };
    }

    process(inputs, outputs) {
      const out = outputs[0];
      const l = out[0], r = out.length > 1 ? out[1] : null;
      if (this.steady.length < l.length) this.steady = new Uint8Array(l.length);
      this.jb.render(l, r, this.steady);
      if (this.capLeft > 0) {
        if (!this.cap) this.cap = [new Float32Array(4096), new Float32Array(4096), new Uint8Array(4096)];
        const k = Math.min(l.length, this.capLeft, 4096 - this.capN);
        this.cap[0].set(l.subarray(0, k), this.capN);
        this.cap[1].set((r || l).subarray(0, k), this.capN);
        this.cap[2].set(this.steady.subarray(0, k), this.capN);
        this.capN += k;
        this.capLeft -= k;
        if (this.capN === 4096 || this.capLeft === 0) {
          this.port.postMessage({ type: "capture", l: this.cap[0].slice(0, this.capN), r: this.cap[1].slice(0, this.capN),
            steady: this.cap[2].slice(0, this.capN) });
          this.capN = 0;
        }
      }
      if (currentTime >= this.nextStat) {
        this.nextStat = currentTime + 0.1;
        this.port.postMessage({ type: "stats", stats: this.jb.stats(), time: currentTime });
      }
      return true;
    }
  }
  registerProcessor("chunk-player", ChunkPlayerProcessor);
}
