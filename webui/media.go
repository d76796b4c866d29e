package webui

import (
	"archive/zip"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/google/gopacket/layers"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/render"
)

// safeName makes a Content-Disposition file name.
func safeName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e || strings.ContainsRune(`"\/;`, r) {
			return '_'
		}
		return r
	}, s)
	if len(s) > 120 {
		s = s[:120]
	}
	if s == "" {
		s = "call"
	}
	return s
}

func attachment(w http.ResponseWriter, ctype, name string) {
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", `attachment; filename="`+safeName(name)+`"`)
	w.Header().Set("Cache-Control", "no-store")
}

// writePCAP answers with the merged pcap of refs (one file), or a zip:
// of that one pcap (zip), or of one pcap per leg (separate).
func (h *Handler) writePCAP(w http.ResponseWriter, r *http.Request, refs []cdrRef, noRTP, zipped, separate bool) error {
	name := refs[0].Basename
	if !separate {
		files, readers, link, err := h.openMerged(r.Context(), refs, noRTP)
		if err != nil {
			return err
		}
		defer closeAll(files)
		if !zipped {
			attachment(w, "application/vnd.tcpdump.pcap", name+".pcap")
			return h.streamErr(mergeTo(w, readers, link))
		}
		attachment(w, "application/zip", name+".zip")
		zw := zip.NewWriter(w)
		f, err := zw.Create(safeName(name) + ".pcap")
		if err == nil {
			err = mergeTo(f, readers, link)
		}
		if err == nil {
			err = zw.Close()
		}
		return h.streamErr(err)
	}
	// One pcap per leg, zipped; open everything first so errors are JSON.
	type leg struct {
		name    string
		readers []packetReader
		link    layers.LinkType
	}
	var all []io.ReadCloser
	defer func() { closeAll(all) }()
	var legs []leg
	for _, c := range refs {
		files, err := h.callFiles(r.Context(), []cdrRef{c}, noRTP)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		all = append(all, files...)
		readers, link, err := prepareMerge(files)
		if err != nil {
			return err
		}
		legs = append(legs, leg{fmt.Sprintf("%s-%d.pcap", safeName(c.Basename), c.ID), readers, link})
	}
	if len(legs) == 0 {
		return fmt.Errorf("%w: no pcap of the call is in the spool", fs.ErrNotExist)
	}
	attachment(w, "application/zip", name+".zip")
	zw := zip.NewWriter(w)
	for _, l := range legs {
		f, err := zw.Create(l.name)
		if err == nil {
			err = mergeTo(f, l.readers, l.link)
		}
		if err != nil {
			return h.streamErr(err)
		}
	}
	return h.streamErr(zw.Close())
}

// streamErr: once bytes went out an error can only be logged (the client
// sees a truncated download); errAlreadyAnswered stops fail() from writing.
func (h *Handler) streamErr(err error) error {
	if err == nil {
		return nil
	}
	h.log.Warn("download interrupted", "err", err)
	return errAlreadyAnswered
}

// errAlreadyAnswered marks an error after the response started.
var errAlreadyAnswered = errors.New("webui: response already started")

// getPCAP: params callId, cidInterval, cidMerge, zip.
func (h *Handler) getPCAP(w http.ResponseWriter, r *http.Request, u *User, req *apiRequest) error {
	pr := paramReader{p: req.Params[0]}
	callID, interval := pr.str("callId"), pr.num("cidInterval", 0, 0, 86400)
	merge, zipped := pr.flag("cidMerge"), pr.flag("zip")
	if pr.err != nil {
		return pr.err
	}
	refs, err := h.legs(r.Context(), u, callID, interval)
	if err != nil {
		return err
	}
	separate := len(refs) > 1 && !merge
	return h.writePCAP(w, r, refs, false, zipped || separate, separate)
}

// pcapPHP is php/pcap.php?id=N[&disable_rtp=1].
func (h *Handler) pcapPHP(w http.ResponseWriter, r *http.Request) {
	u, ok := h.needForm(w, r, CanPCAP)
	if !ok {
		return
	}
	id, err := parseID("id", r.Form.Get("id"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	noRTP := false
	if v := r.Form.Get("disable_rtp"); v != "" {
		noRTP = v == "1" || strings.EqualFold(v, "true") || strings.EqualFold(v, "yes")
	}
	ref, err := h.cdrByID(r.Context(), u, id)
	if err == nil {
		err = h.writePCAP(w, r, []cdrRef{ref}, noRTP, false, false)
	}
	if err != nil {
		h.fail(w, r, err)
	}
}

// --- getVoiceRecording -------------------------------------------------------

func (h *Handler) getVoiceRecording(w http.ResponseWriter, r *http.Request, u *User, req *apiRequest) error {
	p := req.Params[0]
	ctx := r.Context()
	refs, err := h.recordingCalls(ctx, u, p)
	if err != nil {
		return err
	}
	pr := paramReader{p: p}
	zipped, afterConnect, ogg := pr.flag("zip"), pr.flag("saveaudio_afterconnect"), pr.flag("ogg")
	if pr.err != nil {
		return pr.err
	}
	legs := &recordingLegs{h: h, refs: refs, format: audio.FormatWAV, afterConnect: afterConnect, i: -1}
	if ogg {
		legs.format = audio.FormatOgg
	}
	// A leg without a file is left out, unless it is the only one.
	first, err := legs.next(ctx, len(refs) > 1)
	if err != nil {
		return err
	}
	if first == nil {
		return fmt.Errorf("%w: no audio of the call is in the spool", fs.ErrNotExist)
	}
	if !zipped {
		defer first.Close()
		attachment(w, legs.format.ContentType(), legs.name())
		if first.size >= 0 {
			w.Header().Set("Content-Length", strconv.FormatInt(first.size, 10))
		}
		_, err := io.Copy(w, first)
		return h.streamErr(err)
	}
	attachment(w, "application/zip", refs[0].Basename+".zip")
	return h.streamErr(legs.zip(ctx, w, first))
}

// recordingCalls finds the calls whose audio getVoiceRecording sends: one
// by cdrId, the legs of a Call-ID (within cidInterval seconds), or those
// whose customHeader has customHeaderValue on the day of calldate.
func (h *Handler) recordingCalls(ctx context.Context, u *User, p params) ([]cdrRef, error) {
	cdrID, err := p.str("cdrId")
	if err != nil {
		return nil, err
	}
	callID, err := p.str("callId")
	if err != nil {
		return nil, err
	}
	header, err := p.str("customHeader")
	if err != nil {
		return nil, err
	}
	switch {
	case cdrID != "":
		id, err := parseID("params.cdrId", cdrID)
		if err != nil {
			return nil, err
		}
		ref, err := h.cdrByID(ctx, u, id)
		if err != nil {
			return nil, err
		}
		return []cdrRef{ref}, nil
	case callID != "":
		interval, err := p.num("cidInterval", 0, 0, 86400)
		if err != nil {
			return nil, err
		}
		return h.legs(ctx, u, callID, interval)
	case header != "":
		value, err := p.str("customHeaderValue")
		if err != nil {
			return nil, err
		}
		day, _, err := h.parseTimeParam(p, "calldate", true)
		if err != nil {
			return nil, err
		}
		day = time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, day.Location())
		return h.byCustomHeader(ctx, u, header, value, day)
	}
	return nil, fmt.Errorf("%w: params needs cdrId, callId, or customHeader with customHeaderValue and calldate", ErrBadRequest)
}

// recordingLegs opens the recordings of a call's legs one after the other:
// at most one leg's file is open (and, decoded from RTP, one leg's samples
// held) at a time.
type recordingLegs struct {
	h            *Handler
	refs         []cdrRef
	format       audio.Format
	afterConnect bool // skip what came before the answer
	i            int  // the leg last opened
}

// next opens the recording of the next leg that has one (skipMissing) or
// the very next leg. It returns nil, nil after the last leg.
func (l *recordingLegs) next(ctx context.Context, skipMissing bool) (*wavStream, error) {
	for l.i++; l.i < len(l.refs); l.i++ {
		ws, err := l.open(ctx, l.refs[l.i])
		if errors.Is(err, fs.ErrNotExist) && skipMissing {
			continue
		}
		return ws, err
	}
	return nil, nil
}

func (l *recordingLegs) open(ctx context.Context, c cdrRef) (*wavStream, error) {
	var skip time.Duration
	if l.afterConnect {
		if c.ConnectDuration < 0 {
			return nil, fmt.Errorf("%w: call %d was not answered: no audio after connect", ErrNotFound, c.ID)
		}
		skip = time.Duration((c.Duration - c.ConnectDuration - c.FirstRTP) * float64(time.Second))
	}
	return l.h.openRecording(ctx, c, skip, l.format)
}

// name is the file name of the leg last opened.
func (l *recordingLegs) name() string {
	return fmt.Sprintf("%s.%s", safeName(l.refs[l.i].Basename), l.format.Ext())
}

// zip writes first (open) and the recordings of the legs after it into
// one zip archive, numbered in call order; legs without a file are left out.
func (l *recordingLegs) zip(ctx context.Context, w io.Writer, first *wavStream) error {
	zw := zip.NewWriter(w)
	for ws, n := first, 1; ws != nil; n++ {
		f, err := zw.Create(fmt.Sprintf("%d-%s", n, l.name()))
		if err == nil {
			_, err = io.Copy(f, ws)
		}
		ws.Close()
		if err != nil {
			return err
		}
		if ws, err = l.next(ctx, true); err != nil {
			return err
		}
	}
	return zw.Close()
}

// openRecording opens the call's recording in format as a stream, less
// its first skip (saveaudio_afterconnect), from the first of:
//   - the spool's AUDIO file in that format;
//   - the call's RTP pcap, decoded (every codec this build decodes, named
//     by the SIP pcap's SDP) at the call's native rate;
//   - for Ogg, the spool's WAV, encoded as it is read.
//
// Nothing is held whole in memory: files are copied, decoding and encoding
// run in a goroutine writing into a pipe as the response is read.
func (h *Handler) openRecording(ctx context.Context, c cdrRef, skip time.Duration, format audio.Format) (*wavStream, error) {
	if h.o.Spool == nil {
		return nil, fmt.Errorf("%w: no spool configured", ErrUnavailable)
	}
	file := func(kind FileKind, ext string) (io.ReadCloser, error) {
		return h.o.Spool.Open(ctx, SpoolFile{Kind: kind, CallDate: c.CallDate, Basename: c.Basename, SensorID: c.Sensor, Ext: ext})
	}
	f, err := file(KindAudio, format.Ext())
	switch {
	case err == nil && format == audio.FormatOgg:
		return oggFile(f, skip), nil
	case err == nil:
		ws, err := wavFile(f, skip)
		if err != nil {
			f.Close()
			return nil, err
		}
		return ws, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, err
	}
	s, err := render.Render(ctx, render.Input{
		RTP: func() (io.ReadCloser, error) { return file(KindRTP, "") },
		SIP: func() (io.ReadCloser, error) { return file(KindSIP, "") },
	}, render.Options{Format: format, Skip: skip, Log: h.log.With("cdr", c.ID)})
	if err == nil {
		return &wavStream{Reader: s, size: s.Size, format: format, close: s.Close}, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, noEncoder(err)
	}
	if format == audio.FormatOgg {
		if f, werr := file(KindAudio, "wav"); werr == nil {
			ws, werr := wavFile(f, skip)
			if werr != nil {
				f.Close()
				return nil, werr
			}
			enc, werr := wavToOgg(ws)
			if werr != nil {
				ws.Close()
				return nil, noEncoder(werr)
			}
			return enc, nil
		}
	}
	return nil, fmt.Errorf("%w: no %s recording, no decodable RTP of call %d in the spool: %v", fs.ErrNotExist, format, c.ID, err)
}

// noEncoder says a build without libopus cannot make Ogg (503).
func noEncoder(err error) error {
	if errors.Is(err, audio.ErrNoEncoder) {
		return fmt.Errorf("%w: %v (this build has no libopus: ask without ogg for WAV)", ErrUnavailable, err)
	}
	return err
}

// --- share links -------------------------------------------------------------

// shareClaims is what a share link grants.
type shareClaims struct {
	IDs     []uint64 `json:"i"`
	RTP     bool     `json:"r,omitempty"`
	SIP     bool     `json:"s,omitempty"` // SIP history page instead of the pcap
	Expires int64    `json:"e"`
}

func (h *Handler) signShare(c shareClaims) string {
	body, _ := json.Marshal(c)
	m := hmac.New(sha256.New, h.share)
	m.Write(body)
	return base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

func (h *Handler) verifyShare(tok string) (shareClaims, error) {
	var c shareClaims
	b64, sig, ok := strings.Cut(tok, ".")
	if !ok || len(tok) > 8192 {
		return c, ErrBadToken
	}
	body, err1 := base64.RawURLEncoding.DecodeString(b64)
	mac, err2 := base64.RawURLEncoding.DecodeString(sig)
	if err1 != nil || err2 != nil {
		return c, ErrBadToken
	}
	m := hmac.New(sha256.New, h.share)
	m.Write(body)
	if !hmac.Equal(mac, m.Sum(nil)) {
		return c, ErrBadToken
	}
	if err := json.Unmarshal(body, &c); err != nil || len(c.IDs) == 0 {
		return c, ErrBadToken
	}
	if h.now().Unix() > c.Expires {
		return c, ErrBadToken
	}
	return c, nil
}

// getShareURL: params callId, cidInterval, rtp, sip_history → a signed,
// expiring public link.
func (h *Handler) getShareURL(w http.ResponseWriter, r *http.Request, u *User, req *apiRequest) error {
	pr := paramReader{p: req.Params[0]}
	callID, interval := pr.str("callId"), pr.num("cidInterval", 0, 0, 86400)
	rtp, sipHistory := pr.flag("rtp"), pr.flag("sip_history")
	if pr.err != nil {
		return pr.err
	}
	refs, err := h.legs(r.Context(), u, callID, interval)
	if err != nil {
		return err
	}
	c := shareClaims{SIP: sipHistory, RTP: rtp && !sipHistory, Expires: h.now().Add(h.o.ShareTTL).Unix()}
	for _, ref := range refs {
		c.IDs = append(c.IDs, ref.ID)
	}
	base, err := h.publicBase(r)
	if err != nil {
		return err
	}
	url := strings.TrimRight(base, "/") + "/share.php?token=" + h.signShare(c)
	writeJSON(w, http.StatusOK, obj{{"success", true}, {"url", url},
		{"expires", time.Unix(c.Expires, 0).In(h.o.Location).Format("2006-01-02 15:04:05")}})
	return nil
}

// publicBase is scheme://host[:port] of share links: http_public_url, else
// http_bind when it names one address, else the request's Host when it is
// an allowed one (never an arbitrary name a client put in Host).
func (h *Handler) publicBase(r *http.Request) (string, error) {
	if h.o.PublicURL != "" {
		return h.o.PublicURL, nil
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if ap, err := netip.ParseAddrPort(h.o.BindAddr); err == nil && !ap.Addr().IsUnspecified() {
		return scheme + "://" + ap.String(), nil
	}
	if host, _, err := net.SplitHostPort(h.o.BindAddr); err == nil && host != "" {
		if _, err := netip.ParseAddr(host); err != nil {
			return scheme + "://" + h.o.BindAddr, nil // a name in http_bind
		}
	}
	if r.Host != "" && h.AllowedHost(r.Host) {
		return scheme + "://" + r.Host, nil
	}
	return "", fmt.Errorf("%w: set http_public_url: share links are not built from the request's Host %q", ErrUnavailable, r.Host)
}

// sharePHP serves a share link: the legs' pcap, or their SIP history page.
func (h *Handler) sharePHP(w http.ResponseWriter, r *http.Request) {
	c, err := h.verifyShare(r.URL.Query().Get("token"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	var refs []cdrRef
	for _, id := range c.IDs {
		ref, err := h.cdrByID(r.Context(), anonymous, id)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		refs = append(refs, ref)
	}
	if c.SIP {
		hist, err := h.sipHistory(r.Context(), refs, nil)
		if err != nil {
			h.fail(w, r, err)
			return
		}
		writeMSC(w, hist)
		return
	}
	if err := h.writePCAP(w, r, refs, !c.RTP, false, false); err != nil {
		h.fail(w, r, err)
	}
}
