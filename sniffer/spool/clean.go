package spool

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// PoolLimits bound the spool as voipmonitor.conf's maxpool* options do
// (0 = no limit): when a limit is passed, the oldest minute directories
// go first (all kinds for Size and Days, one kind's directory for the
// per-kind limits). Sizes count the files of ended calls (apparent size,
// not disk blocks); the files of calls still open are never removed and
// come on top of the limits.
type PoolLimits struct {
	Size      int64 // maxpoolsize, bytes (the option is in MB)
	Days      int   // maxpooldays: minutes older than this many days go
	SIPSize   int64 // maxpoolsipsize, bytes of SIP pcaps
	RTPSize   int64 // maxpoolrtpsize, bytes of RTP pcaps
	AudioSize int64 // maxpoolaudiosize, bytes of WAV files
	SIPDays   int   // maxpoolsipdays
	RTPDays   int   // maxpoolrtpdays
	AudioDays int   // maxpoolaudiodays
	// Interval between cleaning passes (default 5 minutes, VoIPmonitor's
	// cleanspool period). A pass also starts as soon as a file completing
	// takes the spool past a size limit.
	Interval time.Duration
	// Now is the clock of the day limits (nil = time.Now).
	Now func() time.Time
}

func (l *PoolLimits) set() bool {
	return l.Size > 0 || l.Days > 0 || l.SIPSize > 0 || l.RTPSize > 0 || l.AudioSize > 0 ||
		l.SIPDays > 0 || l.RTPDays > 0 || l.AudioDays > 0
}

// Kinds of spool files, each under its own directory in the minute.
const (
	kindSIP uint8 = iota
	kindRTP
	kindAudio
	numKinds
)

var kindDirs = [numKinds]string{TypeSIP, TypeRTP, TypeAudio}

func kindOf(typ string) (uint8, bool) {
	for k, d := range kindDirs {
		if d == typ {
			return uint8(k), true
		}
	}
	return 0, false
}

// minuteKey is YYYYMMDDHHMM of t in loc: ordered as the minute directories
// are, and what names them.
func minuteKey(t time.Time, loc *time.Location) int64 {
	if loc == nil {
		loc = time.Local
	}
	t = t.In(loc)
	y, mo, d := t.Date()
	return int64(y)*1e8 + int64(mo)*1e6 + int64(d)*1e4 + int64(t.Hour())*100 + int64(t.Minute())
}

// minuteRel is the directory of a minute key relative to the spool root.
func minuteRel(key int64) string {
	return fmt.Sprintf("%04d-%02d-%02d/%02d/%02d", key/1e8, key/1e6%100, key/1e4%100, key/100%100, key%100)
}

// unit is one kind's directory of one minute, as the index knows it.
type unit struct {
	bytes    int64 // files completed (or found on disk)
	files    int   // their number
	open     int   // files being written (created, not yet completed)
	deleting bool  // the cleaner is removing the directory
}

type minuteUnits [numKinds]unit

func (m *minuteUnits) empty() bool {
	for i := range m {
		if u := &m[i]; u.files != 0 || u.open != 0 || u.deleting || u.bytes != 0 {
			return false
		}
	}
	return true
}

// cleaner keeps an index of the spool's minute directories and their
// sizes per kind (scanned once at start, then updated by the I/O
// goroutines as files are created and completed) and removes the oldest
// when a limit is passed. Its goroutine is started by New and joined by
// Close.
type cleaner struct {
	root    string
	loc     *time.Location
	lim     PoolLimits
	log     *slog.Logger
	started time.Time // ".tmp" files older than this are leftovers
	wake    chan struct{}
	indexed chan struct{} // closed when the start-up scan is over
	done    chan struct{}

	mu        sync.Mutex
	unlocked  *sync.Cond // a unit stopped being deleted
	minutes   []int64    // sorted keys of units
	units     map[int64]*minuteUnits
	total     int64
	kindTotal [numKinds]int64
	files     int
	scanned   struct {
		files int
		bytes int64
	} // the index after the start-up scan

	passMu     sync.Mutex // one pass at a time (the goroutine, tests)
	warnedOver bool       // under passMu

	passes, cleanedFiles, cleanedDirs, errs atomic.Uint64
	cleanedBytes                            atomic.Int64
}

func newCleaner(root string, loc *time.Location, lim PoolLimits, log *slog.Logger) *cleaner {
	if lim.Interval <= 0 {
		lim.Interval = 5 * time.Minute
	}
	if lim.Now == nil {
		lim.Now = time.Now
	}
	if loc == nil {
		loc = time.Local
	}
	c := &cleaner{root: root, loc: loc, lim: lim, log: log.With("component", "cleanspool"),
		started: fsNow(root), wake: make(chan struct{}, 1), indexed: make(chan struct{}), done: make(chan struct{}),
		units: make(map[int64]*minuteUnits)}
	c.unlocked = sync.NewCond(&c.mu)
	return c
}

// fsNow is the file system's idea of now, on a clock tick no file written
// before it shares: files get their times from the kernel's coarse clock,
// which may be milliseconds behind time.Now, so a probe file in dir is
// written until its modification time moves on. Every file written before
// (a previous run's) is older than the result; every file written after is
// not.
func fsNow(dir string) time.Time {
	fallback := time.Now().Add(-50 * time.Millisecond)
	f, err := os.CreateTemp(dir, ".clock-*")
	if err != nil {
		return fallback
	}
	defer os.Remove(f.Name())
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fallback
	}
	first := info.ModTime()
	for range 200 {
		time.Sleep(time.Millisecond)
		if _, err := f.Write([]byte{0}); err != nil {
			return fallback
		}
		if info, err = f.Stat(); err != nil {
			return fallback
		}
		if info.ModTime().After(first) {
			return info.ModTime()
		}
	}
	return fallback
}

// entry returns the units of minute key, adding it to the index. Under mu.
func (c *cleaner) entry(key int64) *minuteUnits {
	m := c.units[key]
	if m == nil {
		m = new(minuteUnits)
		c.units[key] = m
		if n := len(c.minutes); n == 0 || c.minutes[n-1] < key {
			c.minutes = append(c.minutes, key)
		} else if i, found := slices.BinarySearch(c.minutes, key); !found {
			c.minutes = slices.Insert(c.minutes, i, key)
		}
	}
	return m
}

// forget drops minute key from the index when nothing is left in it and
// removes its directory, and the hour's and the day's, when empty and no
// other minute of theirs is indexed. Under mu: a worker registers its
// minute (opening) before making directories, so none is making them here.
func (c *cleaner) forget(key int64) {
	m := c.units[key]
	if m == nil || !m.empty() {
		return
	}
	delete(c.units, key)
	i, found := slices.BinarySearch(c.minutes, key)
	if !found {
		return
	}
	c.minutes = slices.Delete(c.minutes, i, i+1)
	near := func(div int64) bool {
		return (i > 0 && c.minutes[i-1]/div == key/div) || (i < len(c.minutes) && c.minutes[i]/div == key/div)
	}
	dir := filepath.Join(c.root, filepath.FromSlash(minuteRel(key)))
	if os.Remove(dir) != nil || near(100) {
		return
	}
	if os.Remove(filepath.Dir(dir)) != nil || near(1e4) {
		return
	}
	_ = os.Remove(filepath.Dir(filepath.Dir(dir)))
}

// opening registers a file about to be created in minute key, waiting
// while the cleaner removes that directory. Worker side.
func (c *cleaner) opening(key int64, kind uint8) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		u := &c.entry(key)[kind]
		if !u.deleting {
			u.open++
			return
		}
		c.unlocked.Wait()
	}
}

// completed accounts a file registered by opening that is done: n bytes
// on disk (0 and stored false when it was never created). A completion
// past a size limit wakes the cleaner. Worker side.
func (c *cleaner) completed(key int64, kind uint8, n int64, stored bool) {
	if c == nil {
		return
	}
	c.mu.Lock()
	m := c.entry(key)
	u := &m[kind]
	u.open--
	if stored {
		u.bytes += n
		u.files++
		c.files++
		c.total += n
		c.kindTotal[kind] += n
	}
	over := c.over()
	if !stored {
		c.forget(key)
	}
	c.mu.Unlock()
	if over {
		select {
		case c.wake <- struct{}{}:
		default: // a pass is already due
		}
	}
}

// over reports whether a size limit is passed. Under mu.
func (c *cleaner) over() bool {
	l := &c.lim
	return (l.Size > 0 && c.total > l.Size) || (l.SIPSize > 0 && c.kindTotal[kindSIP] > l.SIPSize) ||
		(l.RTPSize > 0 && c.kindTotal[kindRTP] > l.RTPSize) || (l.AudioSize > 0 && c.kindTotal[kindAudio] > l.AudioSize)
}

// run scans the spool, then cleans every Interval and whenever woken,
// until ctx ends.
func (c *cleaner) run(ctx context.Context) {
	defer close(c.done)
	c.passMu.Lock()
	c.scan(ctx)
	c.passMu.Unlock()
	close(c.indexed)
	c.pass(ctx)
	t := time.NewTicker(c.lim.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.wake:
		}
		c.pass(ctx)
	}
}

// isDigits reports whether s is n decimal digits.
func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < n; i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseMinute returns the key of root-relative date/hour/minute names, or
// false when they are not a spool minute (other directories of the spool,
// such as the CDR queue, are never touched).
func parseMinute(date, hour, minute string) (int64, bool) {
	if len(date) != 10 || date[4] != '-' || date[7] != '-' || !isDigits(date[:4], 4) ||
		!isDigits(date[5:7], 2) || !isDigits(date[8:], 2) || !isDigits(hour, 2) || !isDigits(minute, 2) {
		return 0, false
	}
	var k int64
	for _, s := range []string{date[:4], date[5:7], date[8:], hour, minute} {
		for i := 0; i < len(s); i++ {
			k = k*10 + int64(s[i]-'0')
		}
	}
	mo, d, h, mi := k/1e6%100, k/1e4%100, k/100%100, k%100
	if mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 {
		return 0, false
	}
	return k, true
}

// subdirs lists the directory names in dir, sorted.
func subdirs(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}

// scan indexes what is on disk: every kind directory of every minute.
func (c *cleaner) scan(ctx context.Context) {
	start := time.Now()
	n := 0
	for _, date := range subdirs(c.root) {
		for _, hour := range subdirs(filepath.Join(c.root, date)) {
			for _, minute := range subdirs(filepath.Join(c.root, date, hour)) {
				key, ok := parseMinute(date, hour, minute)
				if !ok {
					continue
				}
				for _, typ := range subdirs(filepath.Join(c.root, date, hour, minute)) {
					if kind, ok := kindOf(typ); ok {
						if ctx.Err() != nil {
							return
						}
						c.scanUnit(key, kind)
						n++
					}
				}
			}
		}
	}
	c.mu.Lock()
	c.scanned.files, c.scanned.bytes = c.files, c.total
	c.mu.Unlock()
	c.log.Info("spool indexed", "dir", c.root, "directories", n, "files", c.scanned.files, "bytes", c.scanned.bytes,
		"took", time.Since(start).Round(time.Millisecond))
}

func (c *cleaner) unitDir(key int64, kind uint8) string {
	return filepath.Join(c.root, filepath.FromSlash(minuteRel(key)), kindDirs[kind])
}

// listUnit sums the files of a unit directory on disk; with onlyOld, only
// those older than the spool (leftovers of a previous run: a file this run
// wrote is accounted by completed), and ".tmp" files only when older.
func (c *cleaner) listUnit(dir string, onlyOld bool) (files int, bytes int64) {
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if (onlyOld || strings.HasSuffix(e.Name(), ".tmp")) && !info.ModTime().Before(c.started) {
			continue
		}
		files++
		bytes += info.Size()
	}
	return files, bytes
}

// scanUnit adds to a unit what a previous run left on disk. Files this
// run writes are accounted by completed only: the scan runs while the first
// calls are written, and a file is renamed into place before its completion
// is accounted, so counting them here too counted some twice. Passes wait
// for the scan (passMu), so nothing is removed meanwhile.
func (c *cleaner) scanUnit(key int64, kind uint8) {
	files, bytes := c.listUnit(c.unitDir(key, kind), true)
	c.mu.Lock()
	defer c.mu.Unlock()
	u := &c.entry(key)[kind]
	u.files += files
	u.bytes += bytes
	c.files += files
	c.total += bytes
	c.kindTotal[kind] += bytes
	c.forget(key)
}

// passResult is what one pass removed.
type passResult struct {
	files, dirs   int
	bytes         int64
	first, last   string // oldest and newest directory touched
	reasons       []string
	kept, errored int
}

func (r *passResult) touched(dir, reason string) {
	if r.first == "" {
		r.first = dir
	}
	r.last = dir
	if !slices.Contains(r.reasons, reason) {
		r.reasons = append(r.reasons, reason)
	}
}

// pass removes the oldest directories until every limit holds: days
// first, then each kind's size, then the whole size.
func (c *cleaner) pass(ctx context.Context) passResult {
	c.passMu.Lock()
	defer c.passMu.Unlock()
	c.passes.Add(1)
	var r passResult
	l := &c.lim
	now := l.Now()
	var cutoff [numKinds]int64
	maxCut := int64(0)
	for k, days := range [numKinds]int{l.SIPDays, l.RTPDays, l.AudioDays} {
		for _, d := range []int{days, l.Days} {
			if d > 0 {
				cutoff[k] = max(cutoff[k], minuteKey(now.AddDate(0, 0, -d), c.loc))
			}
		}
		maxCut = max(maxCut, cutoff[k])
	}
	if maxCut > 0 {
		c.sweep(ctx, &r, "maxpooldays", false, func(key int64, k uint8) bool { return key < cutoff[k] },
			func(key int64) bool { return key >= maxCut })
	}
	for k, lim := range [numKinds]int64{l.SIPSize, l.RTPSize, l.AudioSize} {
		if lim <= 0 {
			continue
		}
		kind := uint8(k)
		c.sweep(ctx, &r, "maxpool"+strings.ToLower(kindDirs[k])+"size", false, func(_ int64, k uint8) bool { return k == kind },
			func(int64) bool { return c.kindTotal[kind] <= lim })
	}
	if l.Size > 0 {
		c.sweep(ctx, &r, "maxpoolsize", true, func(int64, uint8) bool { return true },
			func(int64) bool { return c.total <= l.Size })
	}
	c.mu.Lock()
	total, over := c.total, c.over()
	c.mu.Unlock()
	if r.files > 0 || r.errored > 0 {
		c.log.Info("spool cleaned", "reason", strings.Join(r.reasons, ","), "files", r.files, "bytes", r.bytes,
			"directories", r.dirs, "oldest", r.first, "newest", r.last, "kept_open", r.kept, "errors", r.errored, "pool_bytes", total)
	}
	if over && !c.warnedOver {
		c.log.Warn("spool still over a size limit: what is left belongs to calls still open", "pool_bytes", total)
	}
	c.warnedOver = over
	return r
}

// sweep visits the units oldest first while stop is false (asked before
// each unit, or before each minute when whole) and removes those sel
// picks: a unit with no open file goes whole; in one with open files only
// the completed files go. stop and sel run under mu.
func (c *cleaner) sweep(ctx context.Context, r *passResult, reason string, whole bool, sel func(key int64, k uint8) bool, stop func(key int64) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// The next unit to visit is the first at or after (curKey, curKind);
	// the index may change whenever remove releases mu.
	curKey, curKind := int64(-1), uint8(0)
	for ctx.Err() == nil {
		i, _ := slices.BinarySearch(c.minutes, curKey)
		if i >= len(c.minutes) {
			return
		}
		key := c.minutes[i]
		if key != curKey {
			curKind = 0
		}
		if curKind >= numKinds {
			curKey, curKind = key+1, 0
			continue
		}
		if (curKind == 0 || !whole) && stop(key) {
			return
		}
		k := curKind
		curKey, curKind = key, k+1
		u := &c.units[key][k]
		if !sel(key, k) || (u.files == 0 && u.bytes == 0) || u.deleting {
			continue
		}
		c.remove(r, reason, key, k)
	}
}

// remove deletes one unit (whole, or its completed files when some are
// open) and accounts it. Called and returns under mu, released meanwhile.
func (c *cleaner) remove(r *passResult, reason string, key int64, kind uint8) {
	u := &c.entry(key)[kind]
	dir := c.unitDir(key, kind)
	r.touched(filepath.ToSlash(filepath.Join(minuteRel(key), kindDirs[kind])), reason)
	if u.open == 0 {
		u.deleting = true
		c.mu.Unlock()
		err := os.RemoveAll(dir)
		files, bytes := 0, int64(0)
		if err != nil {
			files, bytes = c.listUnit(dir, false) // what is left
		}
		c.mu.Lock()
		u = &c.entry(key)[kind]
		u.deleting = false
		c.unlocked.Broadcast()
		c.account(r, u, kind, u.files-files, u.bytes-bytes)
		if err != nil {
			c.fail(r, err)
			u.files, u.bytes = files, bytes
		} else {
			r.dirs++
			c.cleanedDirs.Add(1)
			c.log.Debug("spool directory removed", "dir", dir, "reason", reason)
		}
		c.forget(key)
		return
	}
	// Calls still open write here: remove only completed files (a ".tmp"
	// is an open call's, or a leftover counted by the scan).
	c.mu.Unlock()
	ents, _ := os.ReadDir(dir)
	var files int
	var bytes int64
	var errs []error
	for _, e := range ents {
		if !e.Type().IsRegular() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			continue
		}
		files++
		bytes += info.Size()
	}
	c.mu.Lock()
	u = &c.entry(key)[kind]
	c.account(r, u, kind, files, bytes)
	r.kept += u.open
	for _, err := range errs {
		c.fail(r, err)
	}
}

// account subtracts removed files from a unit and the totals. Under mu.
func (c *cleaner) account(r *passResult, u *unit, kind uint8, files int, bytes int64) {
	u.files -= files
	u.bytes -= bytes
	c.files -= files
	c.total -= bytes
	c.kindTotal[kind] -= bytes
	r.files += files
	r.bytes += bytes
	c.cleanedFiles.Add(uint64(files))
	c.cleanedBytes.Add(bytes)
}

func (c *cleaner) fail(r *passResult, err error) {
	r.errored++
	c.errs.Add(1)
	c.log.Warn("spool clean failed", "err", err)
}

// poolStats fills the cleaner's figures into st.
func (c *cleaner) poolStats(st *Stats) {
	if c == nil {
		return
	}
	c.mu.Lock()
	st.PoolBytes, st.PoolFiles = c.total, c.files
	c.mu.Unlock()
	st.CleanPasses = c.passes.Load()
	st.CleanedFiles = c.cleanedFiles.Load()
	st.CleanedBytes = c.cleanedBytes.Load()
	st.CleanedDirs = c.cleanedDirs.Load()
	st.CleanErrors = c.errs.Load()
}
