#!/usr/bin/env python3
"""Live scenarios against a real Asterisk + pbx-agent (both started by run-scenarios.sh).
Usage: scenarios.py SCENARIO...   (answered pause listen busy cancel transfer originate srtp)
Env: RUN (run dir), AST_BIN, MGRPORT, HTTP (host:port), SOCK (MariaDB socket), SENSOR, AGENT_PID, OUT (evidence dir).
Each scenario prints a summary and writes its evidence under $OUT/<scenario>/."""
import base64, json, math, os, socket, struct, subprocess, sys, time, urllib.parse, urllib.request, wave

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import phones as ph

RUN = os.environ["RUN"]
AST = [os.environ["AST_BIN"], "-C", os.path.join(RUN, "etc", "asterisk.conf")]
MGRPORT = int(os.environ.get("MGRPORT", "25029"))
HTTP = os.environ.get("HTTP", "127.0.0.1:28080")
SOCK = os.environ["SOCK"]
SENSOR = os.environ.get("SENSOR", "3")
OUT = os.environ.get("OUT", os.path.join(RUN, "evidence"))
AUTH = {"user": "monitor", "password": "monpass"}
PHONES = {}


def log(*a):
    print(time.strftime("%H:%M:%S"), *a, flush=True)


def save(scn, name, data):
    d = os.path.join(OUT, scn)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "w") as f:
        f.write(data if isinstance(data, str) else json.dumps(data, indent=1, default=str))


def ast(cmd):
    return subprocess.run(AST + ["-rx", cmd], capture_output=True, text=True, timeout=20).stdout


def mgr(cmd, timeout=5):
    s = socket.create_connection(("127.0.0.1", MGRPORT), timeout=timeout)
    s.sendall(cmd.encode() + b"\n")
    s.shutdown(socket.SHUT_WR)
    buf = b""
    while True:
        try:
            c = s.recv(65536)
        except socket.timeout:
            break
        if not c:
            break
        buf += c
    s.close()
    return buf.decode(errors="replace")


def listcalls():
    raw = mgr("listcalls")
    try:
        j = json.loads(raw)
    except ValueError:
        return raw, []
    rows = []
    if isinstance(j, list) and j and isinstance(j[0], list):
        hdr = j[0]
        rows = [dict(zip(hdr, r)) for r in j[1:]]
    elif isinstance(j, list):
        rows = j
    return raw, rows


def api(task, params=None, auth=True):
    q = {"task": task}
    if auth:
        q.update(AUTH)
    q["params"] = json.dumps(params if params is not None else {})
    url = f"http://{HTTP}/php/api.php?" + urllib.parse.urlencode(q)
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def http_get(path):
    try:
        with urllib.request.urlopen(f"http://{HTTP}{path}", timeout=10) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def sql(q, vertical=False):
    args = ["mariadb", "--no-defaults", "-S", SOCK, "-upbx", "-ppbx", "voipmonitor", "-e", q]
    if not vertical:
        args.insert(2, "-B")
    r = subprocess.run(args, capture_output=True, text=True, timeout=20)
    return r.stdout + r.stderr


def max_cdr_id():
    out = sql("select coalesce(max(ID),0) from cdr").split()
    try:
        return int(out[-1])
    except (ValueError, IndexError):
        return 0


def agent_cpu():
    """(utime+stime seconds, rss KiB) of the agent."""
    pid = os.environ.get("AGENT_PID")
    if not pid:
        return None
    try:
        st = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        ticks = os.sysconf("SC_CLK_TCK")
        cpu = (int(st[11]) + int(st[12])) / ticks
        rss = 0
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        return cpu, rss
    except OSError:
        return None


def metrics(prefixes=("pbx_agent_capture", "pbx_agent_kernel", "pbx_agent_packets", "pbx_agent_active", "pbx_agent_ami", "pbx_agent_cdr", "pbx_agent_calls")):
    st, body = http_get("/metrics")
    keep = [l for l in body.splitlines() if not l.startswith("#") and any(p in l for p in ("drop", "packets", "active_calls", "ami", "cdr_queue", "calls"))]
    return st, keep


def phone(name):
    return PHONES[name]


def wait_registered(names, timeout=20):
    """True once Asterisk lists a contact for every phone (no qualify: status is NonQual/Unknown)."""
    end = time.time() + timeout
    out = ""
    while time.time() < end:
        out = ast("pjsip show contacts")
        if all(f"{ph.PHONES[n][0]}/sip:" in out for n in names):
            return True, out
        time.sleep(0.5)
    return False, out


def start_phones(names):
    root = os.path.join(RUN, "phones")
    for n in names:
        if n not in PHONES:
            PHONES[n] = ph.Phone(n, root).start()
    ok, out = wait_registered(names)
    log("phones", names, "registered" if ok else "NOT registered")
    return ok


def stop_phones():
    for p in PHONES.values():
        p.stop()
    PHONES.clear()


def dial(caller, callee, ext, ring=2.0, accept=True):
    """caller dials ext; callee (phone object) accepts after ring s. Returns timestamps."""
    t = {"dial": time.time()}
    r = caller.cmd("dial", f"sip:{ext}@127.0.0.1")
    t["dial_resp"] = r
    e = callee.wait_event("CALL_INCOMING", 10, since=t["dial"]) if callee else None
    t["incoming"] = e and e["_t"]
    if not e or not accept:
        return t
    time.sleep(ring)
    t["accept"] = time.time()
    callee.cmd("accept")
    e = caller.wait_event("CALL_ESTABLISHED", 10, since=t["dial"])
    t["established"] = e and e["_t"]
    return t


def hangup(p):
    t = time.time()
    p.cmd("hangup")
    return t


def asterisk_channels():
    return ast("core show channels concise")


def find_call(rows, want_caller=None, want_called=None):
    out = []
    for r in rows:
        if not isinstance(r, dict):
            continue
        if want_called and str(r.get("called", "")) != want_called:
            continue
        if want_caller and str(r.get("caller", "")) != want_caller:
            continue
        out.append(r)
    return out


# ---------------- audio analysis ----------------

def wav_read(path):
    w = wave.open(path, "rb")
    ch, sw, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
    data = w.readframes(n)
    w.close()
    if sw != 2:
        return rate, ch, []
    samples = struct.unpack("<%dh" % (len(data) // 2), data)
    chans = [samples[i::ch] for i in range(ch)]
    return rate, ch, chans


def silent_stretches(samples, rate, win_ms=20, thr=300, min_s=0.2):
    w = rate * win_ms // 1000
    res, start = [], None
    nwin = len(samples) // w
    for i in range(nwin):
        seg = samples[i * w:(i + 1) * w]
        silent = max(abs(min(seg)), abs(max(seg))) < thr
        if silent and start is None:
            start = i
        if not silent and start is not None:
            if (i - start) * win_ms / 1000 >= min_s:
                res.append((round(start * win_ms / 1000, 2), round(i * win_ms / 1000, 2)))
            start = None
    if start is not None and (nwin - start) * win_ms / 1000 >= min_s:
        res.append((round(start * win_ms / 1000, 2), round(nwin * win_ms / 1000, 2)))
    return res


def goertzel(samples, rate, freq):
    k = 2 * math.cos(2 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for x in samples:
        s0 = x + k * s1 - s2
        s2, s1 = s1, s0
    return (s1 * s1 + s2 * s2 - k * s1 * s2) / max(1, len(samples)) ** 2


def tones(samples, rate, freqs=(700, 1300, 1900)):
    """relative power (dB re. strongest) of each tone in the middle second of samples, plus RMS."""
    if not samples:
        return {}
    mid = len(samples) // 2
    seg = samples[max(0, mid - rate // 2): mid + rate // 2]
    p = {f: goertzel(seg, rate, f) for f in freqs}
    top = max(p.values()) or 1e-12
    rms = math.sqrt(sum(x * x for x in seg) / max(1, len(seg)))
    return {"rms": round(rms, 1), **{f"{f}Hz_dB": round(10 * math.log10(max(v, 1e-12) / top), 1) for f, v in p.items()}}


def separation(samples, rate, want, other):
    """dB of the want tone above the other tone over the middle of samples (None without samples)."""
    if len(samples) < rate:
        return None
    mid = len(samples) // 2
    seg = samples[max(0, mid - rate): mid + rate]
    return round(10 * math.log10(max(goertzel(seg, rate, want), 1e-12) / max(goertzel(seg, rate, other), 1e-12)), 1)


def tshark_rtp_counts(pcap, since=None):
    """{ssrc (int): packets} of RTP in pcap (heuristic RTP decoding), optionally only frames after since (epoch s)."""
    flt = "rtp" + (f" and frame.time_epoch >= {since}" if since else "")
    r = subprocess.run(["tshark", "-n", "-r", pcap, "-o", "rtp.heuristic_rtp:TRUE", "-Y", flt, "-T", "fields", "-e", "rtp.ssrc"],
                       capture_output=True, text=True, timeout=120)
    out = {}
    for line in r.stdout.split():
        try:
            k = int(line, 16)
        except ValueError:
            continue
        out[k] = out.get(k, 0) + 1
    return out


def compare_rtp_counts(scn, first_id, since, pcap_dir=None):
    """cdr_rtp.received per stream against tshark's count of the same SSRC on the independent tcpdump capture."""
    truth = tshark_rtp_counts(os.path.join(RUN, "sip-rtp.pcap"), since)
    rows = sql(f"select cdr_ID,ssrc,received,loss from cdr_rtp where cdr_ID > {first_id} order by cdr_ID").splitlines()[1:]
    res = []
    for row in rows:
        f = row.split("\t")
        if len(f) < 3:
            continue
        ssrc = int(f[1]) & 0xffffffff
        res.append({"cdr_ID": f[0], "ssrc": hex(ssrc), "cdr_rtp.received": int(f[2]), "tshark": truth.get(ssrc), "diff": int(f[2]) - truth.get(ssrc, 0)})
    save(scn, "rtp-counts.json", res)
    log(f"{scn}: cdr_rtp.received vs tshark (tcpdump -i lo) per stream:", res)
    return res


def wav_summary(path, t0=None):
    rate, ch, chans = wav_read(path)
    out = {"path": path, "rate": rate, "channels": ch, "seconds": round(len(chans[0]) / rate, 2) if chans else 0}
    for i, c in enumerate(chans):
        out[f"ch{i}_silent"] = silent_stretches(c, rate)
        out[f"ch{i}_tones"] = tones(c, rate)
    return out


# ---------------- websocket listener ----------------

def ws_listen(path, secs):
    """Connect, read for secs; decode frames (20-byte header + PCM s16le). Returns stats + PCM per channel."""
    s = socket.create_connection(tuple(HTTP.split(":")) if False else (HTTP.split(":")[0], int(HTTP.split(":")[1])), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET {path} HTTP/1.1\r\nHost: {HTTP}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        c = s.recv(4096)
        if not c:
            break
        buf += c
    head, _, buf = buf.partition(b"\r\n\r\n")
    status = head.split(b" ", 2)[1].decode() if head else "none"
    res = {"status": status, "binary": 0, "text": 0, "bytes": 0, "texts": [], "seq_first": None, "seq_last": None,
           "gaps": 0, "dropflag": 0, "layouts": set(), "lat_ms": []}
    left, right = [], []
    if status != "101":
        res["body"] = buf.decode(errors="replace")[:300]
        res["layouts"] = []
        return res, left, right
    t_start = time.time()
    end = t_start + secs
    s.settimeout(0.5)

    def need(n):
        nonlocal buf
        while len(buf) < n:
            if time.time() > end:
                raise TimeoutError
            try:
                c = s.recv(65536)
            except socket.timeout:
                continue
            if not c:
                raise EOFError
            buf += c
    try:
        while time.time() < end:
            need(2)
            op, ln, off = buf[0] & 0x0F, buf[1] & 0x7F, 2
            if ln == 126:
                need(4); ln = struct.unpack(">H", buf[2:4])[0]; off = 4
            elif ln == 127:
                need(10); ln = struct.unpack(">Q", buf[2:10])[0]; off = 10
            need(off + ln)
            p, buf = buf[off:off + ln], buf[off + ln:]
            if op == 2:
                res["binary"] += 1
                res["bytes"] += ln
                ver, layout, codec, flags, rate, nsamp, seq, cap = struct.unpack("<BBBBHHId", p[:20])
                res["layouts"].add(layout)
                if flags & 1:
                    res["dropflag"] += 1
                if res["seq_first"] is None:
                    res["seq_first"] = seq
                elif seq != res["seq_last"] + 1:
                    res["gaps"] += 1
                res["seq_last"] = seq
                res["lat_ms"].append(time.time() * 1000 - (cap + 20))
                pcm = struct.unpack("<%dh" % ((ln - 20) // 2), p[20:])
                if layout == 2:
                    left.extend(pcm[0::2]); right.extend(pcm[1::2])
                else:
                    left.extend(pcm)
            elif op == 1:
                res["text"] += 1
                if len(res["texts"]) < 6:
                    res["texts"].append(p.decode(errors="replace")[:300])
                else:
                    res["last_text"] = p.decode(errors="replace")[:300]
            elif op == 8:
                res["close"] = p[2:].decode(errors="replace")
                break
    except (TimeoutError, EOFError):
        pass
    res["wall_s"] = round(time.time() - t_start, 2)
    res["audio_s"] = round(res["binary"] * 0.02, 2)
    res["layouts"] = sorted(res["layouts"])
    lat = sorted(res.pop("lat_ms"))
    if lat:
        res["latency_ms_p50_p95"] = [round(lat[len(lat) // 2], 1), round(lat[int(len(lat) * 0.95)], 1)]
    s.close()
    return res, left, right


# ---------------- common per-call evidence ----------------

def during_call(scn, caller_num, called_num):
    raw, rows = listcalls()
    save(scn, "listcalls.json", raw)
    mine = [r for r in rows if isinstance(r, dict) and (str(r.get("caller")) == caller_num or str(r.get("called")) == called_num)]
    st, body = api("listActiveCalls", {})
    save(scn, "listActiveCalls.json", body)
    chans = asterisk_channels()
    save(scn, "asterisk-channels.txt", chans)
    dst, dash = http_get("/api/chunkplayer/calls.json?user=monitor&password=monpass")
    save(scn, "dashboard-calls.json", dash)
    log("dashboard calls.json:", dash[:1500])
    return rows, mine, st, body, chans


def after_call(scn, first_id, wait=7):
    time.sleep(wait)
    q = f"where ID > {first_id}"
    cdr = sql(f"select * from cdr {q}", vertical=True)
    save(scn, "cdr.txt", cdr)
    brief = sql(f"select ID,calldate,callend,duration,connect_duration,caller,called,lastSIPresponseNum,lastSIPresponse_id,bye,a_received,b_received,a_lost,b_lost,a_mos_f1_mult10,b_mos_f1_mult10,payload,id_sensor from cdr {q} order by ID")
    nxt = sql(f"select * from cdr_next where cdr_ID > {first_id}", vertical=True)
    save(scn, "cdr_next.txt", nxt)
    rtp = sql(f"select * from cdr_rtp where cdr_ID > {first_id} order by cdr_ID")
    save(scn, "cdr_rtp.txt", rtp)
    return brief, nxt, rtp


def spool_files(since):
    root = os.path.join(RUN, "spool-agent")
    out = []
    for d, _, fs in os.walk(root):
        for f in fs:
            p = os.path.join(d, f)
            try:
                st = os.stat(p)
            except OSError:
                continue
            if st.st_mtime >= since - 1:
                out.append((os.path.relpath(p, root), st.st_size))
    return sorted(out)


def monitor_files(since):
    d = os.path.join(RUN, "spool", "monitor")
    out = []
    if os.path.isdir(d):
        for f in os.listdir(d):
            p = os.path.join(d, f)
            if os.stat(p).st_mtime >= since - 1:
                out.append(p)
    return sorted(out)


# ---------------- scenario helpers ----------------

def two_phones(caller, callee):
    """Start the phones caller and callee; return their controls."""
    start_phones([caller, callee])
    return phone(caller), phone(callee)


def cdr_after(scn, first, **kw):
    """after_call, with the CDR brief logged; returns (brief, cdr_next, cdr_rtp)."""
    brief, nxt, rtp = after_call(scn, first, **kw)
    log("cdr:\n" + brief)
    return brief, nxt, rtp


def listen_query(ref):
    """The query string of /ws/listen for call ref, with credentials."""
    return urllib.parse.urlencode({"callref": ref, "sensor_id": SENSOR, **AUTH})


def ref_of(rows, called):
    """The callreference of the first listcalls row whose called number is called."""
    return [r for r in rows if r.get("called") == called][0]["callreference"]


def handle_call(cmd, ref):
    """handleActiveCall with command cmd (pausecall, unpausecall) on call ref."""
    return api("handleActiveCall", {"sensorId": SENSOR, "command": cmd, "callRef": ref})


def log_spool_wavs(since, label):
    """Log a summary of every WAV the agent spooled since the time since."""
    for f, size in spool_files(since):
        if f.endswith(".wav"):
            log("  " + label, wav_summary(os.path.join(RUN, "spool-agent", f)))


def log_monitor_wavs(since, label):
    """Log a summary of every MixMonitor WAV Asterisk wrote since the time since."""
    for m_ in monitor_files(since):
        log("  " + label, wav_summary(m_))


def call_up(caller, callee, number, settle):
    """Start caller and callee, dial number (answered after 1 s), wait settle
    seconds and read listcalls; returns (caller, callee, timeline, rows)."""
    a, b = two_phones(caller, callee)
    t = dial(a, b, number, ring=1.0)
    time.sleep(settle)
    raw, rows = listcalls()
    return a, b, t, rows


def ring_unanswered(scn, settle):
    """Start alice and bob, dial 1002 without answering, wait settle seconds and
    take the during-call views; returns (alice, bob, first CDR id, timeline,
    listcalls rows of the call, listActiveCalls body)."""
    a, b = two_phones("alice", "bob")
    first = max_cdr_id()
    t = dial(a, b, "1002", accept=False)
    time.sleep(settle)
    rows, mine, st, body, chans = during_call(scn, "1001", "1002")
    return a, b, first, t, mine, body


def close_scenario(scn, first, t, **kw):
    """Log the call's CDR (cdr_after) and save the scenario's timeline t."""
    cdr_after(scn, first, **kw)
    save(scn, "timeline.json", t)


def answer_incoming(p, t, since, incoming, accept):
    """Wait for phone p's incoming call (after t[since]), answer it 1.5 s later
    and let it run 4 s; the times go to t[incoming] and t[accept]."""
    e = p.wait_event("CALL_INCOMING", 10, since=t[since])
    t[incoming] = e and e["_t"]
    time.sleep(1.5)
    p.cmd("accept")
    t[accept] = time.time()
    time.sleep(4)


# ---------------- scenarios ----------------

def s_answered():
    scn = "answered"
    a, b = two_phones("alice", "bob")
    first = max_cdr_id()
    cpu0 = agent_cpu()
    t = dial(a, b, "1002", ring=2.0)
    log("answered: established", bool(t.get("established")))
    time.sleep(3)
    rows, mine, st, body, chans = during_call(scn, "1001", "1002")
    log(f"listcalls: {len(rows)} rows total, {len(mine)} for 1001/1002")
    for r in mine:
        log("  row:", {k: r.get(k) for k in ("callreference", "callid", "caller", "called", "callercodec", "calledcodec", "src_received", "dst_received", "src_mosf1", "dst_mosf1", "connect_duration", "duration", "lastSIPresponseNum", "id_sensor") if k in r} or r)
    log("listActiveCalls HTTP", st, body[:1500])
    log("asterisk channels:\n" + chans)
    st_m, m = metrics()
    save(scn, "metrics.txt", "\n".join(m))
    time.sleep(5)
    cpu1 = agent_cpu()
    t["hangup"] = hangup(a)
    # the CDR's arrival in MariaDB after the hangup (the BYE's 200 OK follows the hangup by a few ms)
    while max_cdr_id() == first and time.time() - t["hangup"] < 90:
        time.sleep(0.1)
    t["cdr_in_db"] = time.time()
    log(f"answered: first CDR in MariaDB {t['cdr_in_db'] - t['hangup']:.2f}s after the hangup")
    time.sleep(1)
    brief, nxt, rtp = cdr_after(scn, first, wait=1)
    log("cdr_rtp:\n" + rtp)
    compare_rtp_counts(scn, first, t["dial"] - 1)
    for f, size in spool_files(t["dial"]):
        if "/RTP/" in f and (f.endswith(".pcap") or f.endswith(".pcap.gz")):
            p = os.path.join(RUN, "spool-agent", f)
            n = subprocess.run(["tshark", "-n", "-r", p, "-T", "fields", "-e", "frame.number"], capture_output=True, text=True).stdout.split()
            d = subprocess.run(["tshark", "-n", "-r", p, "-o", "rtp.heuristic_rtp:TRUE", "-Y", "rtp", "-T", "fields", "-e", "rtp.ssrc", "-e", "rtp.seq"], capture_output=True, text=True).stdout.splitlines()
            log(f"  spool pcap {f}: {len(n)} packets, {len(d) - len(set(d))} duplicate (ssrc, seq) pairs")
    log("cdr_next fbasename/callid:\n" + "\n".join(l for l in nxt.splitlines() if "fbasename" in l or "callid" in l.lower() or "match_header" in l))
    files = spool_files(t["dial"])
    log("spool files:", files)
    for f, size in files:
        if f.endswith(".wav"):
            log("  wav", wav_summary(os.path.join(RUN, "spool-agent", f)))
    mons = monitor_files(t["dial"])
    for m_ in mons:
        log("  mixmonitor", wav_summary(m_))
    if cpu0 and cpu1:
        log(f"agent CPU during ~{t['hangup'] - t['dial']:.1f}s call window: {cpu1[0] - cpu0[0]:.2f}s CPU; RSS {cpu1[1]} KiB")
    log("metrics:", m)
    log(f"real call: ring {t['established'] - t['dial']:.2f}s talk {t['hangup'] - t['established']:.2f}s total {t['hangup'] - t['dial']:.2f}s")
    save(scn, "timeline.json", t)


def s_pause():
    scn = "pause"
    a, b = two_phones("alice", "bob")
    first = max_cdr_id()
    t = dial(a, b, "1002", ring=1.0)
    time.sleep(3)
    raw, rows = listcalls()
    mine = find_call(rows, want_called="1002")
    save(scn, "listcalls.json", raw)
    log("pause: listcalls rows for 1002:", len(mine), [r.get("callreference") for r in mine])
    if not mine:
        log("no call to pause")
        hangup(a)
        return
    ref = mine[0]["callreference"]
    t["pause"] = time.time()
    st, body = handle_call("pausecall", ref)
    log("pausecall ->", st, body)
    time.sleep(0.3)
    raw2, rows2 = listcalls()
    save(scn, "listcalls-paused.json", raw2)
    time.sleep(3.7)
    t["unpause"] = time.time()
    st2, body2 = handle_call("unpausecall", ref)
    log("unpausecall ->", st2, body2)
    time.sleep(4)
    t["hangup"] = hangup(a)
    brief, nxt, rtp = cdr_after(scn, first)
    est = t["established"]
    log(f"pause at +{t['pause'] - est:.2f}s after answer (+{t['pause'] - t['dial']:.2f}s after dial), unpause at +{t['unpause'] - est:.2f}s, hangup +{t['hangup'] - est:.2f}s")
    log_spool_wavs(t["dial"], "agent spool wav")
    log_monitor_wavs(t["dial"], "asterisk mixmonitor wav")
    save(scn, "timeline.json", t)


def s_listen():
    scn = "listen"
    a, b, t, rows = call_up("alice", "bob", "1002", 1.5)
    mine = find_call(rows, want_called="1002")
    if not mine:
        log("listen: call not in listcalls")
        hangup(a)
        return
    ref = mine[0]["callreference"]
    q = listen_query(ref)
    cpu0 = agent_cpu()
    t0 = time.time()
    res, left, right = ws_listen(f"/ws/listen?{q}", 8)
    cpu1 = agent_cpu()
    log("ws stereo:", json.dumps(res))
    log("  left (caller) tones:", tones(left, 8000), " right (callee) tones:", tones(right, 8000))
    log("  silent stretches left:", silent_stretches(left, 8000), "right:", silent_stretches(right, 8000))
    if cpu0 and cpu1:
        log(f"  agent CPU while 1 listener for {time.time() - t0:.1f}s: {cpu1[0] - cpu0[0]:.2f}s; RSS {cpu1[1]} KiB")
    res2, mono, _ = ws_listen(f"/ws/listen?{q}&layout=mono", 3)
    log("ws mono:", json.dumps({k: res2[k] for k in ("status", "binary", "audio_s", "wall_s", "layouts", "gaps")}), "tones:", tones(mono, 8000))
    # unauthenticated
    q2 = urllib.parse.urlencode({"callref": ref, "sensor_id": SENSOR})
    res3, _, _ = ws_listen(f"/ws/listen?{q2}", 1)
    log("ws without credentials ->", res3["status"], res3.get("body", "")[:120])
    res4, _, _ = ws_listen(f"/ws/listen?" + urllib.parse.urlencode({"callref": "0x1", "sensor_id": SENSOR, **AUTH}), 2)
    log("ws unknown callref ->", res4["status"], res4.get("texts"))
    # listener through the end of the call
    import threading
    box = {}
    th = threading.Thread(target=lambda: box.update(r=ws_listen(f"/ws/listen?{q}", 10)))
    th.start()
    time.sleep(2)
    t["hangup"] = hangup(a)
    th.join()
    r5 = box["r"][0]
    log("ws across hangup: texts", r5.get("texts"), "last", r5.get("last_text"), "close", r5.get("close"), "wall", r5.get("wall_s"))
    # ChunkPlayer page is served?
    st, body = http_get("/api/chunkplayer/index.html")
    log("chunkplayer page HTTP", st, len(body), "bytes")
    save(scn, "ws.json", {"stereo": res, "mono": {k: v for k, v in res2.items()}, "noauth": res3, "unknown": res4, "end": r5})
    save(scn, "timeline.json", t)


def s_busy():
    scn = "busy"
    a, b, first, t, mine, body = ring_unanswered(scn, 1.5)
    log("busy: ringing listcalls rows:", len(mine), [{k: r.get(k) for k in ("callreference", "caller", "called", "lastSIPresponseNum")} for r in mine])
    log("listActiveCalls while ringing:", body[:800])
    t["reject"] = time.time()
    b.cmd("hangup")  # baresip rejects an incoming call with 486 Busy Here
    time.sleep(1)
    close_scenario(scn, first, t)


def s_cancel():
    scn = "cancel"
    a, b, first, t, mine, body = ring_unanswered(scn, 3)
    log("cancel: ringing listcalls rows:", len(mine))
    t["cancel"] = hangup(a)
    time.sleep(1)
    close_scenario(scn, first, t)


def s_transfer():
    scn = "transfer"
    start_phones(["alice", "bob", "carol"])
    a, b, c = phone("alice"), phone("bob"), phone("carol")
    first = max_cdr_id()
    t = dial(a, b, "1002", ring=1.5)
    time.sleep(3)
    rows, mine, st, body, chans = during_call(scn + "-before", "1001", "1002")
    log("transfer: before REFER listcalls rows", len(mine))
    t["refer"] = time.time()
    r = b.cmd("transfer", "sip:1003@127.0.0.1")
    log("bob transfer ->", r)
    answer_incoming(c, t, "refer", "carol_incoming", "carol_accept")
    raw, rows2 = listcalls()
    save(scn, "listcalls-after.json", raw)
    st, body2 = api("listActiveCalls", {})
    save(scn, "listActiveCalls-after.json", body2)
    log("after transfer listcalls rows:", [{k: r_.get(k) for k in ("callreference", "caller", "called")} for r_ in rows2 if isinstance(r_, dict)])
    log("after transfer listActiveCalls:", body2[:2000])
    dst, dash = http_get("/api/chunkplayer/calls.json?user=monitor&password=monpass")
    save(scn, "dashboard-after.json", dash)
    log("after transfer dashboard calls.json:", dash[:2000])
    log("asterisk channels:\n" + asterisk_channels())
    t["hangup"] = hangup(c)
    time.sleep(1)
    # bob may still hold the call
    b.cmd("hangup"); a.cmd("hangup")
    close_scenario(scn, first, t, wait=5)


def ami_session(actions, wait=1.0, user="monitor", secret="monpass"):
    s = socket.create_connection(("127.0.0.1", 5038), timeout=5)
    out = s.recv(4096).decode()
    s.sendall(f"Action: Login\r\nUsername: {user}\r\nSecret: {secret}\r\nEvents: off\r\n\r\n".encode())
    for a in actions:
        s.sendall(("".join(f"{k}: {v}\r\n" for k, v in a) + "\r\n").encode())
    time.sleep(wait)
    s.settimeout(0.5)
    try:
        while True:
            c = s.recv(65536)
            if not c:
                break
            out += c.decode(errors="replace")
    except socket.timeout:
        pass
    s.sendall(b"Action: Logoff\r\n\r\n")
    s.close()
    return out


def s_originate():
    scn = "originate"
    start_phones(["bob"])
    b = phone("bob")
    first = max_cdr_id()
    t = {"originate": time.time()}
    out = ami_session([[("Action", "Originate"), ("ActionID", "orig-1"), ("Channel", "PJSIP/1002"), ("Context", "from-internal"),
                        ("Exten", "600"), ("Priority", "1"), ("CallerID", '"AMI Test" <9999>'), ("Async", "true")]], wait=0.5)
    log("originate response:", out.replace("\r\n", " | ")[:400])
    answer_incoming(b, t, "originate", "incoming", "accept")
    rows, mine, st, body, chans = during_call(scn, "9999", "1002")
    raw, rows = listcalls()
    log("originate listcalls rows:", [{k: r.get(k) for k in ("callreference", "caller", "called", "callername")} for r in rows if isinstance(r, dict)])
    log("listActiveCalls:", body[:1500])
    log("asterisk channels:\n" + chans)
    t["hangup"] = hangup(b)
    close_scenario(scn, first, t)


def s_srtp():
    scn = "srtp"
    a, b = two_phones("alices", "bobs")
    first = max_cdr_id()
    t = dial(a, b, "1012", ring=1.0)
    log("srtp: established", bool(t.get("established")))
    time.sleep(3)
    raw, rows = listcalls()
    save(scn, "listcalls.json", raw)
    mine = find_call(rows, want_called="1012")
    log("srtp listcalls rows:", len(mine), [{k: r.get(k) for k in ("callreference", "caller", "called", "codec_a", "a_received")} for r in mine])
    if mine:
        ref = mine[0]["callreference"]
        q = listen_query(ref)
        res, left, right = ws_listen(f"/ws/listen?{q}", 8)
        log("srtp ws:", json.dumps(res))
        log("  left tones", tones(left, 8000), "right tones", tones(right, 8000))
        log("  silent left", silent_stretches(left, 8000), "right", silent_stretches(right, 8000))
        log("asterisk channels during tap:\n" + asterisk_channels())
        save(scn, "ws.json", res)
    time.sleep(1)
    t["hangup"] = hangup(a)
    time.sleep(3)
    log("asterisk channels after hangup (tap torn down?):\n" + asterisk_channels())
    log("bridges:\n" + ast("bridge show all"))
    brief, nxt, rtp = cdr_after(scn, first)
    log_spool_wavs(t["dial"], "srtp call spool wav")
    save(scn, "timeline.json", t)


def s_listenend():
    """When does a listener get {"type":"end"} after the hangup? Both legs listened, caller hangs up."""
    import threading
    scn = "listenend"
    a, b, t, rows = call_up("alice", "bob", "1002", 1.5)
    box = {}

    def run(ref):
        q = listen_query(ref)
        r, _, _ = ws_listen(f"/ws/listen?{q}", 75)
        box[ref] = (r, time.time())
    ths = []
    for r in rows:
        th = threading.Thread(target=run, args=(r["callreference"],))
        th.start()
        ths.append(th)
    time.sleep(3)
    t["hangup"] = hangup(a)
    for th in ths:
        th.join()
    for r in rows:
        res, t_end = box[r["callreference"]]
        log(f"leg {r['callreference']} ({r.get('callid')}, called {r.get('called')}): socket ended {t_end - t['hangup']:.1f}s after hangup; close={res.get('close')!r} last={res.get('last_text')!r}")
    save(scn, "ws.json", {k: v[0] for k, v in box.items()})


def s_mgrpause():
    """pausecall/unpausecall through the manager API (TCP), plus listregisters / sniffer_stat / active_call_info."""
    scn = "mgrpause"
    a, b, t, rows = call_up("alice", "bob", "1002", 2)
    ref = ref_of(rows, "1002")
    t["pause"] = time.time()
    log("manager pausecall ->", repr(mgr(f"pausecall {ref}")))
    time.sleep(3)
    t["unpause"] = time.time()
    log("manager unpausecall ->", repr(mgr(f"unpausecall {ref}")))
    log("manager pausecall bad ref ->", repr(mgr("pausecall 0x1")))
    # the same pause through the manager's unix socket and the dashboard's button (session cookie, via=dashboard)
    us = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    us.connect(os.path.join(RUN, "pbx-agent-manager.sock"))
    us.sendall(f"pausecall {ref}\n".encode()); us.shutdown(socket.SHUT_WR); log("manager socket pausecall ->", repr(us.recv(4096))); us.close()
    us = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    us.connect(os.path.join(RUN, "pbx-agent-manager.sock"))
    us.sendall(f"unpausecall {ref}\n".encode()); us.shutdown(socket.SHUT_WR); log("manager socket unpausecall ->", repr(us.recv(4096))); us.close()
    st, body = http_get("/php/model/sql.php?module=bypass_login&user=monitor&pass=monpass")
    sid = json.loads(body).get("SID", "") if st == 200 else ""
    for cmd in ("pausecall", "unpausecall"):
        req = urllib.request.Request(f"http://{HTTP}/php/api.php?via=dashboard", method="POST", headers={"Content-Type": "application/json", "Cookie": "PHPSESSID=" + sid},
                                     data=json.dumps({"task": "handleActiveCall", "params": {"command": cmd, "callRef": ref, "sensorId": SENSOR}}).encode())
        with urllib.request.urlopen(req, timeout=10) as r:
            log(f"dashboard {cmd} ->", r.status, r.read()[:200])
    log("audit table:\n" + sql("select id, created_at, user, address, via, task, params, result from pbx_agent_api_audit order by id desc limit 8"))
    log("manager active_call_info ->", mgr(f"active_call_info {ref}")[:600])
    log("manager listregisters ->", mgr("listregisters")[:600])
    log("manager sniffer_stat ->", mgr("sniffer_stat")[:800])
    time.sleep(2)
    t["hangup"] = hangup(a)
    time.sleep(2)
    est = t["established"]
    log(f"pause +{t['pause'] - est:.2f}s after answer, unpause +{t['unpause'] - est:.2f}s")
    log_monitor_wavs(t["dial"], "asterisk mixmonitor wav")
    time.sleep(6)
    log_spool_wavs(t["dial"], "agent spool wav")


def s_browser():
    """Headless Chromium (scripts/asterisk-live/shot, built by run-scenarios.sh setup as $SHOT): dashboard + ChunkPlayer on a live call."""
    scn = "browser"
    shot = os.environ.get("SHOT", "")
    if not shot or not os.path.exists(shot):
        log("browser: no shot binary ($SHOT); skipped")
        return
    a, b, t, rows = call_up("alice", "bob", "1002", 1.5)
    ref = ref_of(rows, "1002")
    d = os.path.join(OUT, scn)
    os.makedirs(d, exist_ok=True)
    c0 = agent_cpu()
    t0 = time.time()
    r = subprocess.run([shot, "-base", "http://" + HTTP, "-callref", ref, "-sensor", SENSOR, "-out", d, "-secs", "6"],
                       capture_output=True, text=True, timeout=120)
    c1 = agent_cpu()
    log("browser:\n" + r.stdout[-3000:] + r.stderr[-1500:])
    if c0 and c1:
        log(f"agent CPU during the browser listen ({time.time() - t0:.1f}s): {c1[0] - c0[0]:.2f}s; RSS {c1[1]} KiB")
    log("screenshots:", sorted(os.listdir(d)))
    hangup(a)


def s_srtptap():
    """ARI tap on an SRTP call: how often does the tap come up, mono layout, and pause while tapped."""
    import threading
    scn = "srtptap"
    a, b, t, rows = call_up("alices", "bobs", "1012", 2)
    ref = ref_of(rows, "1012")
    q = listen_query(ref)
    ok = 0
    tries = int(os.environ.get("TAP_TRIES", "8"))
    seps = []
    for i in range(tries):
        res, l, r = ws_listen(f"/ws/listen?{q}", 2.5)
        up = res["binary"] > 0
        ok += up
        sep = (separation(l, 8000, 700, 1300), separation(r, 8000, 1300, 700)) if up else None
        if sep:
            seps.append(sep)
        log(f"tap attempt {i + 1}: {'audio ' + str(res['audio_s']) + ' s, caller 700 Hz left / callee 1300 Hz right dB above the other: ' + str(sep) if up else res.get('texts')}")
        time.sleep(float(os.environ.get("TAP_GAP", "3")))  # let the idle tap go down so the next attempt sets up a new one
    log(f"ARI tap came up {ok}/{tries} times")
    good = [x for x in seps if x[0] is not None and x[1] is not None]
    if good:
        log(f"stereo separation over {len(good)} taps: left (700 Hz over 1300 Hz) min {min(x[0] for x in good)} dB, right (1300 over 700) min {min(x[1] for x in good)} dB")
    save(scn, "taps.json", {"tries": tries, "ok": ok, "separation": seps})
    res, mono, _ = ws_listen(f"/ws/listen?{q}&layout=mono", 3)
    log("tap mono:", {k: res.get(k) for k in ("status", "binary", "audio_s", "texts")}, "tones", tones(mono, 8000))
    box = {}
    th = threading.Thread(target=lambda: box.update(r=ws_listen(f"/ws/listen?{q}", 9)))
    th.start()
    time.sleep(3)
    tp = time.time()
    log("pausecall ->", handle_call("pausecall", ref))
    time.sleep(2)
    log("unpausecall ->", handle_call("unpausecall", ref))
    th.join()
    res, l, r = box["r"]
    log("tap with pause 3..5 s:", {k: res.get(k) for k in ("binary", "audio_s", "latency_ms_p50_p95")}, "silent left", silent_stretches(l, 8000), "right", silent_stretches(r, 8000)[:3])
    hangup(a)


SCENARIOS = {"srtptap": s_srtptap, "browser": s_browser, "mgrpause": s_mgrpause, "listenend": s_listenend, "answered": s_answered, "pause": s_pause, "listen": s_listen, "busy": s_busy, "cancel": s_cancel,
             "transfer": s_transfer, "originate": s_originate, "srtp": s_srtp}

if __name__ == "__main__":
    try:
        for name in sys.argv[1:]:
            log(f"===== scenario {name} =====")
            try:
                SCENARIOS[name]()
            except Exception as e:  # keep going: report it
                import traceback
                log(f"scenario {name} raised: {e!r}\n{traceback.format_exc()}")
            time.sleep(2)
    finally:
        stop_phones()
