package simulate

// evKind says what an event does when its time comes.
type evKind uint8

const (
	evSpawn    evKind = iota // start the next call (if a slot is free)
	evSIP                    // send step n of call c's SIP schedule
	evRTP                    // nominal send time of RTP packet n of stream dir of call c
	evArrive                 // a jittered RTP packet reaches the capture point
	evRegister               // start the next REGISTER
)

// event is one entry of the generator's time-ordered queue.
type event struct {
	at     int64  // ns since Options.Start
	order  uint64 // insertion counter: ties leave in insertion order
	c      *callState
	n      int32
	rtpTS  uint32
	rtpSeq uint16
	kind   evKind
	dir    uint8
	marker bool
}

func (a *event) before(b *event) bool {
	if a.at != b.at {
		return a.at < b.at
	}
	return a.order < b.order
}

// eventQueue is a binary min-heap of events by (at, order). It is written out
// rather than built on container/heap to avoid boxing every event.
type eventQueue struct {
	ev    []event
	order uint64
}

func (q *eventQueue) len() int { return len(q.ev) }

func (q *eventQueue) push(e event) {
	e.order = q.order
	q.order++
	q.ev = append(q.ev, e)
	i := len(q.ev) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !e.before(&q.ev[p]) {
			break
		}
		q.ev[i] = q.ev[p]
		i = p
	}
	q.ev[i] = e
}

// top returns the earliest event; the queue must not be empty.
func (q *eventQueue) top() *event { return &q.ev[0] }

// pop removes the earliest event.
func (q *eventQueue) pop() {
	last := len(q.ev) - 1
	e := q.ev[last]
	q.ev[last] = event{} // drop pointers for the GC
	q.ev = q.ev[:last]
	if last > 0 {
		q.down(e)
	}
}

// replaceTop replaces the earliest event by e: a pop and a push in one
// sift, for the common "same stream, 20 ms later" case.
func (q *eventQueue) replaceTop(e event) {
	e.order = q.order
	q.order++
	q.down(e)
}

// down places e at the root's position and sifts it down.
func (q *eventQueue) down(e event) {
	n := len(q.ev)
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && q.ev[r].before(&q.ev[l]) {
			m = r
		}
		if !q.ev[m].before(&e) {
			break
		}
		q.ev[i] = q.ev[m]
		i = m
	}
	q.ev[i] = e
}
