//go:build !cgo || nocodecs

package fax

import (
	"fmt"
	"image"
	"time"
)

// Built says whether this build decodes faxes: not without cgo.
const Built = false

var errBuild = fmt.Errorf("%w: built without cgo", ErrUnsupported)

// T38Receiver is unavailable in this build.
type T38Receiver struct{ res Result }

// NewT38Receiver returns ErrUnsupported in this build.
func NewT38Receiver(string) (*T38Receiver, error) { return nil, errBuild }

// Advance does nothing in this build.
func (*T38Receiver) Advance(int) {}

// IFP does nothing in this build.
func (*T38Receiver) IFP(uint16, []byte) {}

// Result is empty in this build.
func (r *T38Receiver) Result() Result { return r.res }

// Close does nothing in this build.
func (*T38Receiver) Close() {}

// AudioReceiver is unavailable in this build.
type AudioReceiver struct{ res Result }

// NewAudioReceiver returns ErrUnsupported in this build.
func NewAudioReceiver(string) (*AudioReceiver, error) { return nil, errBuild }

// Audio does nothing in this build.
func (*AudioReceiver) Audio([]int16) {}

// Result is empty in this build.
func (r *AudioReceiver) Result() Result { return r.res }

// Close does nothing in this build.
func (*AudioReceiver) Close() {}

// PageInfo describes one page of a TIFF-F.
type PageInfo struct {
	Width, Rows int
	XRes, YRes  float64
}

// CountPages returns ErrUnsupported in this build.
func CountPages(string) (int, error) { return 0, errBuild }

// ReadPage returns ErrUnsupported in this build.
func ReadPage(string, int) (*image.Gray, PageInfo, error) { return nil, PageInfo{}, errBuild }

// WriteTIFF returns ErrUnsupported in this build.
func WriteTIFF(string, []*image.Gray, float64, float64) error { return errBuild }

// SimulateT38 returns ErrUnsupported in this build.
func SimulateT38(string, string, string, time.Duration, func(bool, time.Duration, []byte)) error {
	return errBuild
}
