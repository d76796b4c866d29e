package manager

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"pbx-agent/agent/manager/client"
	"pbx-agent/agent/manager/wire"
	"pbx-agent/sniffer/audio"
	"pbx-agent/sniffer/call"
	"pbx-agent/sniffer/rtp"
)

// frameCalls is a FrameSource over real audio.Calls fed by the test.
type frameCalls struct {
	mu    sync.Mutex
	calls map[uint64]*audio.Call
}

func (f *frameCalls) Subscribe(_ context.Context, ref uint64, depth int) (*audio.Subscription, error) {
	f.mu.Lock()
	c := f.calls[ref]
	f.mu.Unlock()
	if c == nil {
		return nil, call.ErrNoCall
	}
	return c.Subscribe(depth)
}

// waitSubscribers waits until c has n subscribers (the server subscribed).
func waitSubscribers(t *testing.T, c *audio.Call, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for c.Stats().Subscribers != n {
		if time.Now().After(deadline) {
			t.Fatalf("subscribers = %d, want %d", c.Stats().Subscribers, n)
		}
		time.Sleep(time.Millisecond)
	}
}

var streamT0 = time.Date(2026, 4, 14, 10, 0, 0, 0, time.UTC)

// feedTone feeds n 20 ms packets per direction: the caller sends µ-law
// byte cb, the callee cb2 (constant signals, easy to check after decode).
func feedTone(c *audio.Call, from, n int, cb, cb2 byte) {
	for i := from; i < from+n; i++ {
		at := streamT0.Add(time.Duration(i) * audio.FrameDuration)
		h := rtp.Header{Version: 2, PayloadType: rtp.PTPCMU, SSRC: 1, Timestamp: uint32(i * audio.FrameSamples)}
		c.Feed(audio.FromCaller, &h, bytes.Repeat([]byte{cb}, audio.FrameSamples), at, false)
		h2 := rtp.Header{Version: 2, PayloadType: rtp.PTPCMU, SSRC: 2, Timestamp: uint32(i * audio.FrameSamples)}
		c.Feed(audio.FromCallee, &h2, bytes.Repeat([]byte{cb2}, audio.FrameSamples), at, false)
	}
}

func TestListenStream(t *testing.T) {
	const ref = 0x7f3a5c012340
	key := testKey(t)
	for _, tc := range []struct {
		name    string
		aes     bool // server has a key
		sealed  bool // with the authenticated scheme
		sendKey bool // client encrypts
		layout  byte
		wantErr string
	}{
		{name: "plain stereo", layout: wire.StreamStereo},
		{name: "plain mono", layout: wire.StreamMono},
		{name: "aes stereo", aes: true, sendKey: true, layout: wire.StreamStereo},
		{name: "aes mono", aes: true, sendKey: true, layout: wire.StreamMono},
		{name: "aes key but plaintext request", aes: true, layout: wire.StreamStereo, wantErr: "need aes!"},
		{name: "sealed stereo", aes: true, sendKey: true, sealed: true, layout: wire.StreamStereo},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := audio.NewCall(audio.Config{Delay: 40 * time.Millisecond})
			src := &frameCalls{calls: map[uint64]*audio.Call{ref: c}}
			ts := startServer(t, func(cfg *Config) {
				cfg.Commands = map[string]Command{"listen_stream": ListenStreamCommand(src)}
				if tc.aes {
					cfg.Keys = wire.StaticKey(key)
				}
			})
			var k *wire.AESKey
			if tc.sendKey {
				kk := key
				kk.Sealed = tc.sealed
				k = &kk
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			st, err := client.DialStream(ctx, "tcp", ts.addr, ref, tc.layout, k)
			if tc.wantErr != "" {
				if err == nil || !errors.Is(err, wire.ErrBadReply) || !bytes.Contains([]byte(err.Error()), []byte(tc.wantErr)) {
					t.Fatalf("DialStream err = %v, want ErrBadReply with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			waitSubscribers(t, c, 1)
			const n = 50
			feedTone(c, 0, n, 0x80, 0x20) // µ-law 0x80 = +32124, 0x20 = -3900ish
			c.Close()
			wantL, wantR := rtp.ULawToLinear(0x80), rtp.ULawToLinear(0x20)
			var frames int
			var f audio.Frame
			for {
				rec, err := st.Next()
				if err != nil {
					t.Fatalf("after %d frames: %v", frames, err)
				}
				if rec.Kind == wire.StreamKeepalive {
					continue
				}
				if rec.Kind == wire.StreamEnd {
					if rec.Reason != wire.StreamReasonCallEnded {
						t.Errorf("end reason %q, want %q", rec.Reason, wire.StreamReasonCallEnded)
					}
					break
				}
				if rec.Layout != tc.layout {
					t.Fatalf("layout %d, want %d", rec.Layout, tc.layout)
				}
				if int(rec.Seq) != frames {
					t.Fatalf("seq %d, want %d", rec.Seq, frames)
				}
				if want := streamT0.Add(time.Duration(frames) * audio.FrameDuration); !rec.Time.Equal(want) {
					t.Fatalf("frame %d time %v, want %v", frames, rec.Time, want)
				}
				if err := rec.Frame(&f); err != nil {
					t.Fatal(err)
				}
				m := f.Mix(make([]int16, f.Samples()))
				mix := int16(max(min(int32(wantL)+int32(wantR), 32767), -32768))
				if tc.layout == wire.StreamStereo && (f.Caller[7] != wantL || f.Callee[7] != wantR) {
					t.Fatalf("frame %d: L/R = %d/%d, want %d/%d", frames, f.Caller[7], f.Callee[7], wantL, wantR)
				}
				if m[7] != mix {
					t.Fatalf("frame %d: mix %d, want %d", frames, m[7], mix)
				}
				frames++
			}
			if frames != n {
				t.Errorf("got %d frames, want %d", frames, n)
			}
			if _, err := st.Next(); err != io.EOF {
				t.Errorf("Next after end: %v, want io.EOF", err)
			}
		})
	}
}

func TestListenStreamRefused(t *testing.T) {
	for _, tc := range []struct {
		name    string
		src     FrameSource
		ref     uint64
		wantErr error
		want    string
	}{
		{name: "unknown call", src: &frameCalls{}, ref: 0x1234, wantErr: call.ErrNoCall},
		{name: "no audio source", src: nil, ref: 0x1234, wantErr: wire.ErrBadReply, want: listenDisabled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, func(cfg *Config) {
				cfg.Commands = map[string]Command{"listen_stream": ListenStreamCommand(tc.src)}
			})
			_, err := client.DialStream(context.Background(), "tcp", ts.addr, tc.ref, wire.StreamStereo, nil)
			if !errors.Is(err, tc.wantErr) || (tc.want != "" && !bytes.Contains([]byte(err.Error()), []byte(tc.want))) {
				t.Fatalf("err = %v, want %v %q", err, tc.wantErr, tc.want)
			}
		})
	}
}

// TestListenStreamSlowClient: a client that does not read never blocks the
// feeding side; the frames its queue lost are counted and reported in the
// records it reads later.
func TestListenStreamSlowClient(t *testing.T) {
	const ref = 0x42
	c := audio.NewCall(audio.Config{Delay: 40 * time.Millisecond})
	src := &frameCalls{calls: map[uint64]*audio.Call{ref: c}}
	ts := startServer(t, func(cfg *Config) {
		cfg.Commands = map[string]Command{"listen_stream": ListenStreamCommand(src)}
	})
	st, err := client.DialStream(context.Background(), "tcp", ts.addr, ref, wire.StreamStereo, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	waitSubscribers(t, c, 1)
	// 30,000 frames (10 min of audio, ~19 MB stereo) fed at once: far more
	// than socket buffers hold, so the server's writer blocks and the
	// subscription (DefaultDepth frames) drops.
	const n = 30000
	done := make(chan struct{})
	go func() {
		defer close(done)
		feedTone(c, 0, n, 0x80, 0x20)
	}()
	<-done // feeding finished while nobody read: the packet path was never blocked
	st2 := c.Stats()
	if st2.Dropped == 0 {
		t.Fatalf("no frame dropped: %+v", st2)
	}
	c.Close()
	var got int
	var lastDropped uint32
	for {
		rec, err := st.Next()
		if err != nil {
			t.Fatal(err)
		}
		if rec.Kind == wire.StreamEnd {
			break
		}
		if rec.Kind == wire.StreamAudio {
			got++
			lastDropped = rec.Dropped
		}
	}
	if got+int(lastDropped) != n {
		// Every frame was either delivered or counted as dropped.
		t.Errorf("delivered %d + dropped %d = %d, want %d", got, lastDropped, got+int(lastDropped), n)
	}
	t.Logf("delivered %d, dropped %d (call stats %+v)", got, lastDropped, st2)
}

func TestParseStreamArgs(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   streamArgs
		wantOK bool
	}{
		{in: "0x10", want: streamArgs{ref: 16, layout: wire.StreamStereo, rate: 8000}, wantOK: true},
		{in: "16 mono", want: streamArgs{ref: 16, layout: wire.StreamMono, rate: 8000}, wantOK: true},
		{in: "0x10 stereo 10", want: streamArgs{ref: 16, layout: wire.StreamStereo, depth: 10, rate: 8000}, wantOK: true},
		{in: "0x10 stereo 10 rate=48000", want: streamArgs{ref: 16, layout: wire.StreamStereo, depth: 10, rate: 48000}, wantOK: true},
		{in: "0x10 RATE=16000 mono", want: streamArgs{ref: 16, layout: wire.StreamMono, rate: 16000}, wantOK: true},
		{in: "0x10 rate=44100"},
		{in: "0x10 rate="},
		{in: "0x10 surround"},
		{in: "0x10 0"},
		{in: ""},
		{in: "zz"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := parseStreamArgs(tc.in)
			if ok != tc.wantOK || (ok && got != tc.want) {
				t.Errorf("parseStreamArgs(%q) = %+v, %v; want %+v, %v", tc.in, got, ok, tc.want, tc.wantOK)
			}
		})
	}
}

// TestStreamRecordsAreBlocks: every record is whole AES blocks, so the
// encrypted stream holds nothing back between records.
func TestStreamRecordsAreBlocks(t *testing.T) {
	f := &audio.Frame{Index: 3, Time: streamT0}
	f.Reset(audio.SampleRate)
	for _, b := range [][]byte{
		wire.AppendStreamFrame(nil, f, wire.StreamStereo, 0),
		wire.AppendStreamFrame(nil, f, wire.StreamMono, 0),
		wire.AppendStreamEnd(nil, wire.StreamReasonCallEnded),
		wire.AppendStreamEnd(nil, ""),
	} {
		if len(b)%16 != 0 {
			t.Errorf("record of %d bytes is not whole blocks", len(b))
		}
	}
}

// TestStreamRecordRate: an 8 kHz record is byte for byte what older
// sensors sent (rate field 0); a wideband one says its rate at offset 24
// and reads back at it.
func TestStreamRecordRate(t *testing.T) {
	for _, rate := range []int{8000, 16000, 48000} {
		f := &audio.Frame{Index: 3, Time: streamT0}
		f.Reset(rate)
		f.Caller[1], f.Callee[rate/50-1] = 1234, -4321
		b := wire.AppendStreamFrame(nil, f, wire.StreamStereo, 0)
		field := binary.LittleEndian.Uint32(b[24:])
		if want := uint32(rate); (rate == 8000 && field != 0) || (rate != 8000 && field != want) || binary.LittleEndian.Uint32(b[28:]) != 0 {
			t.Errorf("%d Hz: header bytes 24–31 % x", rate, b[24:32])
		}
		rec, err := wire.NewStreamReader(bytes.NewReader(b)).Next()
		if err != nil {
			t.Fatal(err)
		}
		var g audio.Frame
		if err := rec.Frame(&g); err != nil {
			t.Fatal(err)
		}
		if g.Rate != rate || g.Samples() != rate/50 || g.Caller[1] != 1234 || g.Callee[rate/50-1] != -4321 {
			t.Errorf("%d Hz: read back %d samples at %d Hz", rate, g.Samples(), g.Rate)
		}
	}
}

func BenchmarkAppendStreamFrame(b *testing.B) {
	f := &audio.Frame{Index: 3, Time: streamT0}
	f.Reset(audio.SampleRate)
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = wire.AppendStreamFrame(buf[:0], f, wire.StreamStereo, 0)
	}
	_ = fmt.Sprint(len(buf))
}

// TestListenStreamBounded: listen_stream connections hold their manager
// slot while the call lasts; past maxListenStreams at once a new one is
// refused, and commands keep slots of their own (before, 8 addresses' 16
// streams each took all 128 slots until the calls ended).
func TestListenStreamBounded(t *testing.T) {
	const ref = 0x51
	c := audio.NewCall(audio.Config{Delay: 40 * time.Millisecond})
	src := &frameCalls{calls: map[uint64]*audio.Call{ref: c}}
	ts := startServer(t, func(cfg *Config) {
		cfg.Commands = map[string]Command{"listen_stream": ListenStreamCommand(src)}
		cfg.MaxConnsPerSource = DefaultMaxConns // one test address stands for many
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var streams []*client.Stream
	defer func() {
		for _, st := range streams {
			if st != nil {
				st.Close()
			}
		}
	}()
	// A stream answers with its first record (a keepalive after a second
	// without audio): dialled together.
	streams = make([]*client.Stream, maxListenStreams)
	errs := make([]error, maxListenStreams)
	var wg sync.WaitGroup
	for i := range streams {
		wg.Go(func() { streams[i], errs[i] = client.DialStream(ctx, "tcp", ts.addr, ref, wire.StreamStereo, nil) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("stream %d: %v", i+1, err)
		}
	}
	waitSubscribers(t, c, maxListenStreams)
	_, err := client.DialStream(ctx, "tcp", ts.addr, ref, wire.StreamStereo, nil)
	if !errors.Is(err, wire.ErrBadReply) || !bytes.Contains([]byte(err.Error()), []byte("too many listen streams")) {
		t.Fatalf("stream %d: err = %v, want the refusal", maxListenStreams+1, err)
	}
	if reply := exchange(t, "tcp", ts.addr, []byte("listcalls\n"), true); !bytes.HasPrefix(reply, []byte("[")) {
		t.Errorf("listcalls while the streams run: %q", reply)
	}
	streams[0].Close()
	streams = streams[1:]
	waitSubscribers(t, c, maxListenStreams-1)
	st, err := client.DialStream(ctx, "tcp", ts.addr, ref, wire.StreamStereo, nil)
	if err != nil {
		t.Fatalf("a stream after one ended: %v", err)
	}
	streams = append(streams, st)
}
