package webui

import (
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"

	"github.com/google/gopacket/layers"

	"pbx-agent/sniffer/fax"
)

// faxCacheSize is how many decoded calls' faxes are kept (their TIFFs on
// disk, under one temporary directory); faxDecoders bounds concurrent
// decodes (each is CPU-bound: spandsp demodulates G.711 faxes).
const (
	faxCacheSize = 16
	faxDecoders  = 2
)

// faxTable keeps what each decoded fax call held (VoIPmonitor's cdr has
// no column for pages or the T.30 result: only payload 1000/1001).
const faxTable = "pbx_agent_fax"

const faxDDL = "CREATE TABLE IF NOT EXISTS `" + faxTable + "` (" +
	"`cdr_ID` bigint unsigned NOT NULL," +
	"`decoded_at` datetime(3) NOT NULL," +
	"`mode` varchar(8) NOT NULL," +
	"`pages` int NOT NULL," +
	"`code` int NOT NULL," +
	"`status` varchar(255) DEFAULT NULL," +
	"`remote_station_id` varchar(64) DEFAULT NULL," +
	"`src` varchar(64) DEFAULT NULL," +
	"`dst` varchar(64) DEFAULT NULL," +
	"PRIMARY KEY (`cdr_ID`)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"

type faxEntry struct {
	done chan struct{}
	dir  string
	file string
	res  fax.Result
	err  error
	// dropped: the decoding request was cancelled and the entry left the
	// cache (set before done is closed)
	dropped bool
}

// faxCache decodes a call's fax on demand (from the spool's pcaps, after
// the call) and keeps the last faxCacheSize results.
type faxCache struct {
	mu      sync.Mutex
	base    string
	entries map[uint64]*faxEntry
	order   []uint64
	sem     chan struct{}
	once    sync.Once // logs "no fax decoder in this build" once
	created bool      // faxTable exists
}

// store records a decode's outcome in faxTable (a call without fax pages
// too: pages 0); failures are logged, the answer does not depend on them.
func (c *faxCache) store(ctx context.Context, h *Handler, id uint64, r fax.Result) {
	if h.o.DB == nil {
		return
	}
	c.mu.Lock()
	created := c.created
	c.mu.Unlock()
	if !created {
		if _, err := h.o.DB.ExecContext(ctx, faxDDL); err != nil {
			h.log.Error("fax table", "err", err)
			return
		}
		c.mu.Lock()
		c.created = true
		c.mu.Unlock()
	}
	_, err := h.o.DB.ExecContext(ctx, "REPLACE INTO `"+faxTable+"` (cdr_ID, decoded_at, mode, pages, code, status, remote_station_id, src, dst) VALUES (?,?,?,?,?,?,?,?,?)",
		id, h.now().UTC().Format("2006-01-02 15:04:05.000"), r.Mode, r.Pages, r.Code, truncate(r.Status, 255),
		truncate(r.RemoteID, 64), truncate(r.Src, 64), truncate(r.Dst, 64))
	if err != nil {
		h.log.Error("fax result not stored", "cdr", id, "err", err)
	}
}

// get returns the decoded fax of ref, decoding it if needed.
func (c *faxCache) get(ctx context.Context, h *Handler, ref cdrRef) (*faxEntry, error) {
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[uint64]*faxEntry{}
		c.sem = make(chan struct{}, faxDecoders)
	}
	e, ok := c.entries[ref.ID]
	if !ok {
		e = &faxEntry{done: make(chan struct{})}
		c.entries[ref.ID] = e
		c.order = append(c.order, ref.ID)
		c.evictLocked()
	}
	c.mu.Unlock()
	if ok {
		select {
		case <-e.done:
			if e.dropped && ctx.Err() == nil {
				return c.get(ctx, h, ref) // not this request's cancellation: decode it again
			}
			return e, e.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	e.err = c.decode(ctx, h, ref, e)
	if e.err != nil && ctx.Err() != nil {
		c.mu.Lock()
		delete(c.entries, ref.ID) // cancelled: the next request tries again
		e.dropped = true
		c.mu.Unlock()
		if e.dir != "" {
			os.RemoveAll(e.dir) // its partial TIFFs: no eviction will see the entry again
		}
	}
	close(e.done)
	return e, e.err
}

// evictLocked drops the oldest finished entries beyond faxCacheSize.
func (c *faxCache) evictLocked() {
	for i := 0; len(c.entries) > faxCacheSize && i < len(c.order); {
		id := c.order[i]
		e, ok := c.entries[id]
		if !ok {
			c.order = append(c.order[:i], c.order[i+1:]...)
			continue
		}
		select {
		case <-e.done:
			delete(c.entries, id)
			c.order = append(c.order[:i], c.order[i+1:]...)
			if e.dir != "" {
				os.RemoveAll(e.dir)
			}
		default:
			i++
		}
	}
}

// turn waits for one of the faxDecoders turns (a decode, or a page's
// preview: each holds a page's images) until ctx ends; release gives it back.
func (c *faxCache) turn(ctx context.Context) (release func(), err error) {
	select {
	case c.sem <- struct{}{}:
		return func() { <-c.sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (c *faxCache) decode(ctx context.Context, h *Handler, ref cdrRef, e *faxEntry) error {
	release, err := c.turn(ctx)
	if err != nil {
		return err
	}
	defer release()
	files, readers, link, err := h.openMerged(ctx, []cdrRef{ref}, false)
	if err != nil {
		return err
	}
	defer closeAll(files)
	c.mu.Lock()
	if c.base == "" {
		c.base, err = os.MkdirTemp("", "pbx-agent-fax-")
	}
	base := c.base
	c.mu.Unlock()
	if err != nil {
		return fmt.Errorf("fax: %w", err)
	}
	if e.dir, err = os.MkdirTemp(base, "cdr-"+strconv.FormatUint(ref.ID, 10)+"-"); err != nil {
		return fmt.Errorf("fax: %w", err)
	}
	e.res, e.file, err = fax.DecodeFrames(ctx, &mergedFrames{m: merger{readers: readers}, link: link}, e.dir)
	if err == nil || errors.Is(err, fax.ErrNoFax) {
		c.store(ctx, h, ref.ID, e.res)
	}
	switch {
	case errors.Is(err, fax.ErrUnsupported):
		c.once.Do(func() { h.log.Warn("fax pages cannot be decoded: " + err.Error()) })
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	case errors.Is(err, fax.ErrNoFax):
		return fmt.Errorf("%w: call %d carries no fax page (T.38 or G.711)", ErrNotFound, ref.ID)
	}
	return err
}

// mergedFrames feeds the spool's pcaps of a call, in time order, to the
// fax decoder.
type mergedFrames struct {
	m    merger
	link layers.LinkType
}

func (f *mergedFrames) ReadPacketData() ([]byte, fax.CaptureInfo, error) {
	it, ok, err := f.m.next()
	if !ok && err == nil {
		err = io.EOF
	}
	return it.data, fax.CaptureInfo{Timestamp: it.ci.Timestamp}, err
}

func (f *mergedFrames) LinkType() layers.LinkType { return f.link }

// getFax is api.php task getFax (pbx-agent's own: VoIPmonitor's GUI shows
// faxes to users with can_show_fax). params: cdrId; format json (default:
// mode, pages, status, remote station id and the links), tiff (the
// TIFF-F as received) or png (page, from 1: a preview with square
// pixels).
func (h *Handler) getFax(w http.ResponseWriter, r *http.Request, u *User, req *apiRequest) error {
	p := req.Params[0]
	ctx := r.Context()
	cdrID, err := p.str("cdrId")
	if err != nil {
		return err
	}
	id, err := parseID("params.cdrId", cdrID)
	if err != nil {
		return err
	}
	format, err := p.str("format")
	if err != nil {
		return err
	}
	page, err := p.num("page", 1, 1, 1000)
	if err != nil {
		return err
	}
	ref, err := h.cdrByID(ctx, u, id)
	if err != nil {
		return err
	}
	e, err := h.faxes.get(ctx, h, ref)
	if err != nil {
		return err
	}
	link := func(q string) string {
		return "/php/api.php?task=getFax&params=" + url.QueryEscape(fmt.Sprintf(`{"cdrId":%d,%s}`, id, q))
	}
	switch format {
	case "", "json":
		pngs := make([]string, e.res.Pages)
		for i := range pngs {
			pngs[i] = link(fmt.Sprintf(`"format":"png","page":%d`, i+1))
		}
		writeJSON(w, http.StatusOK, obj{{"success", true}, {"cdrId", id}, {"mode", e.res.Mode}, {"pages", e.res.Pages},
			{"status", e.res.Status}, {"code", e.res.Code}, {"remote_station_id", e.res.RemoteID},
			{"src", e.res.Src}, {"dst", e.res.Dst}, {"tiff", link(`"format":"tiff"`)}, {"png", pngs}})
		return nil
	case "tiff":
		f, err := os.Open(e.file)
		if err != nil {
			return err
		}
		defer f.Close()
		attachment(w, "image/tiff", ref.Basename+".tif")
		_, err = io.Copy(w, f)
		return h.streamErr(err)
	case "png":
		if int(page) > e.res.Pages {
			return fmt.Errorf("%w: call %d's fax has %d page(s), not %d", ErrNotFound, id, e.res.Pages, page)
		}
		// A page may be 4864 × 16384 dots (≈ 240 MB as grey and two-colour
		// images): previews take a decoder's turn, so few are held at once.
		release, err := h.faxes.turn(ctx)
		if err != nil {
			return err
		}
		defer release()
		img, info, err := fax.ReadPage(e.file, int(page-1))
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("Cache-Control", "no-store")
		return h.streamErr(png.Encode(w, preview(img, info)))
	}
	return fmt.Errorf("%w: params.format %q (json, tiff or png)", ErrBadRequest, format)
}

// preview turns a fax page into a two-colour image with square pixels: a
// standard-resolution page (98 lines per inch for 204 dots) has each row
// repeated.
func preview(img *image.Gray, info fax.PageInfo) *image.Paletted {
	rep := 1
	if info.YRes > 0 && info.XRes/info.YRes > 1.5 {
		rep = 2
	}
	b := img.Bounds()
	out := image.NewPaletted(image.Rect(0, 0, b.Dx(), b.Dy()*rep), color.Palette{color.Black, color.White})
	for y := range b.Dy() {
		src := img.Pix[y*img.Stride : y*img.Stride+b.Dx()]
		for k := range rep {
			dst := out.Pix[(y*rep+k)*out.Stride:]
			for x, v := range src {
				dst[x] = v >> 7
			}
		}
	}
	return out
}
