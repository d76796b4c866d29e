package manager

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"pbx-agent/agent/manager/wire"
	"pbx-agent/internal/every"
)

// Live listening limits (spec §1.4: FIFO max 10 MB, clients idle > 10 s dropped).
const (
	listenMaxBuffer   = 10 << 20
	listenClientIdle  = 10 * time.Second
	listenJanitorTick = time.Second
	listenMaxIDLen    = 19
	// listenMaxClients bounds the listen ids of all calls together: each
	// holds up to listenClientIdle of unread PCM (16 kB/s) until it idles
	// out, and every pull copies the new PCM to each of them.
	listenMaxClients = 256
	// ListenBlockBytes is one 50 ms block of 8 kHz mono s16le PCM (400 samples).
	ListenBlockBytes = 800
)

// AudioSource gives the live audio of active calls (implemented by the RTP side).
type AudioSource interface {
	// OpenAudio starts collecting call ref's audio: both directions decoded
	// and mixed into 8 kHz mono signed 16-bit little-endian PCM, ideally in
	// whole ListenBlockBytes blocks. An error wrapping call.ErrNoCall for an
	// unknown call.
	OpenAudio(ctx context.Context, ref uint64) (AudioStream, error)
}

// AudioStream is one call's live audio.
type AudioStream interface {
	// ReadPCM appends the PCM produced since the previous call to dst and
	// returns the extended slice. It must not block. ErrCallEnded (with any
	// last data) once the call is over.
	ReadPCM(dst []byte) ([]byte, error)
	Close() error
}

// listenRegistry is VoIPmonitor's listening workers: one per call, shared by
// clients (listen ids), each client with its own unread PCM.
type listenRegistry struct {
	src AudioSource
	now func() time.Time

	mu      sync.Mutex
	workers map[uint64]*listenWorker
	clients int    // listen ids of every worker
	dropped uint64 // PCM bytes dropped because a client's buffer was full
	refused uint64 // listen ids refused at listenMaxClients
}

type listenWorker struct {
	stream  AudioStream
	clients map[string]*listenClient
	scratch []byte
}

type listenClient struct {
	pending  []byte
	lastSeen time.Time
}

func newListenRegistry(src AudioSource) *listenRegistry {
	return &listenRegistry{src: src, now: time.Now, workers: map[uint64]*listenWorker{}}
}

// listen result texts (VoIPmonitor's).
const (
	listenSuccess  = "success"
	listenJoined   = "call already listening"
	listenNoCall   = wire.ReplyCallNotFound
	listenDisabled = wire.ReplyListenDisabled
)

// start registers client id on call ref, opening the audio when no worker exists.
func (l *listenRegistry) start(ctx context.Context, ref uint64, id string) string {
	if l.src == nil {
		return listenDisabled
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.workers[ref]
	if ok {
		if _, ok := w.clients[id]; ok {
			return listenJoined
		}
	}
	if l.clients >= listenMaxClients {
		l.refused++
		return "error: " + fmt.Errorf("%w: %d on all calls", ErrTooManyListeners, listenMaxClients).Error()
	}
	if ok {
		w.clients[id] = &listenClient{lastSeen: l.now()}
		l.clients++
		return listenJoined
	}
	st, err := l.src.OpenAudio(ctx, ref)
	if err != nil {
		return listenNoCall
	}
	l.workers[ref] = &listenWorker{stream: st, clients: map[string]*listenClient{id: {lastSeen: l.now()}}}
	l.clients++
	return listenSuccess
}

// read returns client id's PCM since its last read, or an error text.
func (l *listenRegistry) read(ref uint64, id string, dst []byte) ([]byte, string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.workers[ref]
	if !ok {
		return nil, "error: worker not found"
	}
	c, ok := w.clients[id]
	if !ok {
		return nil, "error: client of worker not found"
	}
	l.pullLocked(ref, w)
	c.lastSeen = l.now()
	if len(c.pending) == 0 {
		if _, alive := l.workers[ref]; !alive {
			return nil, "error: worker not found"
		}
		return nil, "information: wait for data"
	}
	dst = append(dst, c.pending...)
	c.pending = c.pending[:0]
	return dst, ""
}

// pullLocked moves new PCM from the stream into every client's buffer.
func (l *listenRegistry) pullLocked(ref uint64, w *listenWorker) {
	var err error
	w.scratch, err = w.stream.ReadPCM(w.scratch[:0])
	if len(w.scratch) > 0 {
		for _, c := range w.clients {
			c.pending = append(c.pending, w.scratch...)
			if over := len(c.pending) - listenMaxBuffer; over > 0 {
				over = (over + ListenBlockBytes - 1) / ListenBlockBytes * ListenBlockBytes
				over = min(over, len(c.pending))
				l.dropped += uint64(over)
				c.pending = c.pending[:copy(c.pending, c.pending[over:])]
			}
		}
	}
	if err != nil && errors.Is(err, ErrCallEnded) {
		// Keep what the clients have not read yet; the worker goes when they stop or idle out.
		_ = w.stream.Close()
		w.stream = endedStream{}
	}
}

// stop removes client id; the worker ends with its last client.
func (l *listenRegistry) stop(ref uint64, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	w, ok := l.workers[ref]
	if !ok {
		return
	}
	if _, ok := w.clients[id]; ok {
		delete(w.clients, id)
		l.clients--
	}
	if len(w.clients) == 0 {
		_ = w.stream.Close()
		delete(l.workers, ref)
	}
}

// expire drops clients idle for listenClientIdle and workers left without clients.
func (l *listenRegistry) expire() {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	for ref, w := range l.workers {
		l.pullLocked(ref, w)
		for id, c := range w.clients {
			if now.Sub(c.lastSeen) > listenClientIdle {
				delete(w.clients, id)
				l.clients--
			}
		}
		if len(w.clients) == 0 {
			_ = w.stream.Close()
			delete(l.workers, ref)
		}
	}
}

// janitor runs expire every second until ctx ends; it also keeps pulling
// audio so a source's own buffer never grows between two readaudio polls.
func (l *listenRegistry) janitor(ctx context.Context) {
	every.Tick(ctx, listenJanitorTick, func(time.Time) bool {
		l.expire()
		return true
	})
}

func (l *listenRegistry) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for ref, w := range l.workers {
		_ = w.stream.Close()
		delete(l.workers, ref)
	}
	l.clients = 0
}

func (l *listenRegistry) counts() (workers int, dropped, refused uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.workers), l.dropped, l.refused
}

// endedStream stands in for a stream whose call has ended.
type endedStream struct{}

func (endedStream) ReadPCM(dst []byte) ([]byte, error) { return dst, nil }
func (endedStream) Close() error                       { return nil }
