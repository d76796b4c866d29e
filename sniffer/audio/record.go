package audio

import (
	"fmt"
	"strings"
)

// Format is a recording's file format (voipmonitor.conf saveaudio).
type Format uint8

const (
	FormatNone Format = iota // saveaudio = no
	FormatWAV                // saveaudio = wav: 16-bit PCM at the call's rate
	FormatOgg                // saveaudio = ogg: Ogg/Opus (RFC 7845)
)

// ParseFormat parses a saveaudio value: wav, ogg, or no/empty. mp3 is
// VoIPmonitor's too but not written here: ErrFormat.
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "no", "0", "false", "off":
		return FormatNone, nil
	case "wav", "yes", "1":
		return FormatWAV, nil
	case "ogg":
		return FormatOgg, nil
	}
	return FormatNone, fmt.Errorf("%w: saveaudio %q (wav, ogg or no)", ErrFormat, s)
}

// Ext is the file extension of the format ("wav", "ogg").
func (f Format) Ext() string {
	switch f {
	case FormatWAV:
		return "wav"
	case FormatOgg:
		return "ogg"
	}
	return ""
}

// ContentType is the format's media type.
func (f Format) ContentType() string {
	switch f {
	case FormatWAV:
		return "audio/x-wav"
	case FormatOgg:
		return "audio/ogg"
	}
	return "application/octet-stream"
}

func (f Format) String() string {
	if e := f.Ext(); e != "" {
		return e
	}
	return "no"
}

// RecorderConfig sets up a Recorder.
type RecorderConfig struct {
	Format Format
	// Mono mixes both directions into one channel (saveaudio_stereo = no);
	// else caller left, callee right.
	Mono bool
	// Rate fixes the file's sample rate; 0 takes the first frame's (the
	// call's native rate). Frames at another rate are resampled to it.
	Rate int
	// Samples, when > 0, is the recording's length in samples per channel
	// at Rate, known in advance (decoding a stored call): the WAV header
	// says so from the start, later samples are dropped and Finish pads
	// with silence up to it. 0: the WAV header is patched at the end.
	Samples int64
	// Serial is the Ogg stream's serial number.
	Serial uint32
}

// Recorder turns a call's decoded frames into the bytes of one recording
// file, WAV or Ogg/Opus, as they come: each call appends the bytes
// completed so far to a caller's buffer, so neither the file nor the call
// is ever held in memory (at most one Ogg page, one second). Not safe for
// concurrent use.
type Recorder struct {
	cfg      RecorderConfig
	channels int
	started  bool
	written  int64 // samples per channel so far
	conv     *Converter
	pcm      []int16 // one frame interleaved (or mixed)
	ogg      *OggOpusWriter
	dataSize int64 // WAV data bytes written
}

// NewRecorder returns a recorder; nothing is written before the first
// frame (or Finish).
func NewRecorder(cfg RecorderConfig) (*Recorder, error) {
	if cfg.Format != FormatWAV && cfg.Format != FormatOgg {
		return nil, fmt.Errorf("%w: recorder for %v", ErrFormat, cfg.Format)
	}
	r := &Recorder{cfg: cfg, channels: 2}
	if cfg.Mono {
		r.channels = 1
	}
	return r, nil
}

// Format is what the recorder writes.
func (r *Recorder) Format() Format { return r.cfg.Format }

// Rate is the file's sample rate (0 before the first frame when not fixed).
func (r *Recorder) Rate() int { return r.cfg.Rate }

// Samples is the samples per channel written so far.
func (r *Recorder) Samples() int64 { return r.written }

// Left is how many samples per channel are still to come when the length
// is fixed (RecorderConfig.Samples), else 0.
func (r *Recorder) Left() int64 { return max(0, r.cfg.Samples-r.written) }

// Start writes the file's header at rate (or the fixed Rate): the first
// Frame does it when not called. For Ogg it makes the encoder: an error
// wrapping ErrNoEncoder in a build without libopus.
func (r *Recorder) Start(dst []byte, rate int) ([]byte, error) {
	if r.started {
		return dst, nil
	}
	r.started = true
	if r.cfg.Rate <= 0 {
		r.cfg.Rate = rate
	}
	if r.cfg.Rate <= 0 {
		r.cfg.Rate = SampleRate
	}
	if r.cfg.Format == FormatOgg {
		r.cfg.Rate = opusRate(r.cfg.Rate)
	}
	r.conv = NewConverter(r.cfg.Rate)
	if r.cfg.Format == FormatWAV {
		size := uint32(0)
		if r.cfg.Samples > 0 {
			size = uint32(min(r.cfg.Samples*2*int64(r.channels), 1<<32-1-WAVHeaderSize))
		}
		return AppendWAVHeader(dst, r.cfg.Rate, r.channels, size), nil
	}
	w, dst, err := NewOggOpusWriter(dst, r.cfg.Rate, r.channels, r.cfg.Serial)
	if err != nil {
		return dst, err
	}
	r.ogg = w
	return dst, nil
}

// Frame appends one frame of both directions to the file (resampled to
// its rate): the header first, then the samples (or the Ogg pages they
// completed). Samples beyond Samples, when set, are dropped.
func (r *Recorder) Frame(dst []byte, f *Frame) ([]byte, error) {
	var err error
	if !r.started {
		if dst, err = r.Start(dst, f.Rate); err != nil {
			return dst, err
		}
	}
	f = r.conv.Convert(f)
	n := min(len(f.Caller), len(f.Callee))
	if r.cfg.Samples > 0 {
		n = int(max(0, min(int64(n), r.cfg.Samples-r.written)))
	}
	if n == 0 {
		return dst, nil
	}
	r.pcm = r.pcm[:0]
	if r.channels == 1 {
		for i := range n {
			r.pcm = append(r.pcm, int16(max(min(int32(f.Caller[i])+int32(f.Callee[i]), 32767), -32768)))
		}
	} else {
		for i := range n {
			r.pcm = append(r.pcm, f.Caller[i], f.Callee[i])
		}
	}
	r.written += int64(n)
	return r.put(dst, r.pcm)
}

// put appends interleaved samples at the file's rate.
func (r *Recorder) put(dst []byte, pcm []int16) ([]byte, error) {
	if r.ogg == nil {
		r.dataSize += int64(2 * len(pcm))
		return AppendS16LE(dst, pcm), nil
	}
	return r.ogg.Append(dst, pcm)
}

// Finish appends the end of the file (silence up to Samples when set; the
// Ogg stream's last page) and returns the header to write over the file's
// start, if any (a WAV header with the real sizes), then frees the
// encoder. A recorder that never got a frame writes a file of no audio at
// the fixed rate (8 kHz when not fixed).
func (r *Recorder) Finish(dst []byte) (out, patch []byte, err error) {
	if dst, err = r.Start(dst, 0); err != nil {
		return dst, nil, err
	}
	if pad := r.cfg.Samples - r.written; pad > 0 {
		silence := make([]int16, min(pad, int64(r.cfg.Rate))*int64(r.channels))
		for r.written < r.cfg.Samples {
			k := min(int64(len(silence)/r.channels), r.cfg.Samples-r.written)
			r.written += k
			if dst, err = r.put(dst, silence[:k*int64(r.channels)]); err != nil {
				return dst, nil, err
			}
		}
	}
	if r.ogg != nil {
		dst, err = r.ogg.Finish(dst)
		return dst, nil, err
	}
	if r.cfg.Samples > 0 {
		return dst, nil, nil
	}
	return dst, AppendWAVHeader(nil, r.cfg.Rate, r.channels, uint32(min(r.dataSize, 1<<32-1-WAVHeaderSize))), nil
}

// Close frees the encoder without finishing the file.
func (r *Recorder) Close() {
	if r.ogg != nil {
		r.ogg.Close()
	}
}
