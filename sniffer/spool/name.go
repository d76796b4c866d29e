package spool

import (
	"fmt"
	"hash/fnv"
	"path/filepath"
	"strings"
	"time"
)

// maxBase bounds a file base name in bytes, leaving room for ".pcap.tmp"
// under the usual 255-byte file name limit (cdr_next.fbasename is
// varchar(255)).
const maxBase = 200

// FBasename returns the spool file base name for a Call-ID, as stored in
// cdr_next.fbasename: the Call-ID with '/', '\\', control and non-ASCII
// bytes replaced by '_'. "", "." and ".." become "_"; a name longer than
// 200 bytes is cut and given a hash of the whole Call-ID so names stay
// distinct.
func FBasename(callID string) string {
	var b strings.Builder
	b.Grow(min(len(callID), maxBase))
	for i := 0; i < len(callID); i++ {
		c := callID[i]
		if c <= ' ' || c >= 0x7f || c == '/' || c == '\\' {
			c = '_'
		}
		b.WriteByte(c)
	}
	s := b.String()
	switch {
	case s == "" || s == "." || s == "..":
		return "_"
	case len(s) > maxBase:
		h := fnv.New64a()
		h.Write([]byte(callID))
		return fmt.Sprintf("%s_%016x", s[:maxBase-17], h.Sum64())
	}
	return s
}

// Spool file types: the directory under the minute and the file extension.
const (
	TypeSIP   = "SIP"
	TypeRTP   = "RTP"
	TypeAudio = "AUDIO"
)

// Path returns where VoIPmonitor's layout puts a call's file:
// root/YYYY-MM-DD/HH/MM/<typ>/<fbasename>.<ext>, the minute being the
// call's first packet in loc (nil = time.Local).
func Path(root string, start time.Time, loc *time.Location, typ, fbasename, ext string) string {
	return filepath.Join(MinuteDir(root, start, loc), typ, fbasename+"."+ext)
}

// MinuteDir returns root/YYYY-MM-DD/HH/MM for t in loc (nil = time.Local).
func MinuteDir(root string, t time.Time, loc *time.Location) string {
	if loc == nil {
		loc = time.Local
	}
	t = t.In(loc)
	return filepath.Join(root, t.Format("2006-01-02"), t.Format("15"), t.Format("04"))
}
