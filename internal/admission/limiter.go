package admission

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// Errors returned by Acquire. Callers branch on them with errors.Is; a
// context's error is returned as is.
var (
	// ErrQueueFull means the queue was full and held nobody of a lower
	// class to shed, or that this waiter was shed for a higher class.
	ErrQueueFull = errors.New("admission: queue full")
	// ErrTimeout means the request's class deadline passed in the queue.
	ErrTimeout = errors.New("admission: queue deadline passed")
	// ErrCircuitOpen means the origin failed repeatedly and the breaker is
	// open: no request is sent until the trial after the open period.
	ErrCircuitOpen = errors.New("admission: circuit open")
)

// Outcome says what a released request tells about the origin.
type Outcome uint8

const (
	// Success is a response from the origin (any status but the overload
	// ones); its latency is a sample.
	Success Outcome = iota
	// Dropped is an overload signal: 502, 503 or 504 from the origin, a
	// timeout or a connection error. It shrinks the limit and counts
	// towards opening the breaker.
	Dropped
	// Ignore tells nothing: the client went away, the handler panicked.
	// Only the slot is returned.
	Ignore
)

// String returns the name of o for metrics.
func (o Outcome) String() string {
	switch o {
	case Success:
		return "success"
	case Dropped:
		return "dropped"
	case Ignore:
		return "ignore"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Limiter is an adaptive concurrency limit with a priority queue and a
// circuit breaker, for one upstream pool. It is safe for concurrent use;
// all state sits behind one mutex held for a few hundred nanoseconds per
// Acquire or Release. Admission under the limit allocates nothing; waiting
// reuses pooled waiters (a channel and a timer each).
type Limiter struct {
	o Options

	mu       sync.Mutex
	inFlight int
	queued   int
	queues   [verdict.NumClasses]fairQueue
	salt     uint64 // mixes client keys into fair-queue buckets
	alg      gradient
	br       breaker
	counters [verdict.NumClasses]classCounters
	drops    uint64

	retryAfter   string
	retryBreaker string
	waiters      sync.Pool
}

type classCounters struct {
	admitted, rejected, timedOut, canceled, shed uint64
}

// New validates o, fills its defaults and returns a Limiter that starts with
// a probe of the origin's unloaded latency at MinLimit concurrency.
func New(o Options) (*Limiter, error) {
	o.setDefaults()
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("admission: invalid options: %w", err)
	}
	l := &Limiter{o: o}
	l.salt = uint64(o.Rand()*(1<<53)) ^ uint64(o.Rand()*(1<<53))<<11
	l.alg.init(&l.o)
	l.br.init(&l.o)
	l.retryAfter = seconds(o.RetryAfter)
	l.retryBreaker = seconds(o.BreakerOpen)
	l.waiters.New = func() any {
		t := time.NewTimer(time.Hour)
		t.Stop()
		return &waiter{ch: make(chan struct{}, 1), timer: t}
	}
	return l, nil
}

func seconds(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if s < 1 {
		s = 1
	}
	return strconv.FormatInt(s, 10)
}

// Ticket is an admitted request's slot at the origin. Release it exactly
// once; the zero Ticket releases nothing.
type Ticket struct {
	l     *Limiter
	epoch uint32
	trial bool
}

// Release returns the slot and reports the request's latency to the origin
// (time to response headers) and its outcome. It may admit waiters.
func (t Ticket) Release(rtt time.Duration, outcome Outcome) {
	if t.l == nil {
		return
	}
	t.l.release(t, rtt, outcome)
}

// Acquire admits a request of the given class from the client flow (a key
// the caller derives from the client's address; equal keys are one client),
// waiting in the queue while the origin is at its limit. Within a class the
// queue is fair between clients: they are served in turn, one request each,
// so a client with a request or two waiting gets through however many a
// flooding client has queued. It returns ErrQueueFull, ErrTimeout,
// ErrCircuitOpen, or ctx's error; on error no slot is held.
func (l *Limiter) Acquire(ctx context.Context, class verdict.Class, flow uint64) (Ticket, error) {
	if class >= verdict.NumClasses {
		class = verdict.NumClasses - 1
	}
	if err := ctx.Err(); err != nil {
		return Ticket{}, err
	}
	l.mu.Lock()
	now := l.o.Now()
	trial, err := l.br.admit(now)
	if err != nil {
		l.counters[class].rejected++
		l.mu.Unlock()
		return Ticket{}, err
	}
	if trial {
		t := l.admitLocked(class)
		t.trial = true
		l.mu.Unlock()
		return t, nil
	}
	if l.inFlight < l.alg.effective() {
		t := l.admitLocked(class)
		l.mu.Unlock()
		return t, nil
	}
	maxWait := l.o.MaxWait[class]
	if maxWait < 0 {
		l.counters[class].rejected++
		l.mu.Unlock()
		return Ticket{}, ErrTimeout
	}
	b := &l.queues[class].buckets[l.bucketOf(flow)]
	if l.queued >= l.o.QueueSize && !l.makeRoomLocked(class, b) {
		l.counters[class].rejected++
		l.mu.Unlock()
		return Ticket{}, ErrQueueFull
	}
	w := l.waiters.Get().(*waiter)
	w.class = class
	l.queues[class].push(w, b)
	l.queued++
	l.mu.Unlock()

	w.timer.Reset(maxWait)
	var t Ticket
	select {
	case <-w.ch:
		t, err = w.ticket, w.err
	case <-w.timer.C:
		t, err = l.leave(w, ErrTimeout)
	case <-ctx.Done():
		t, err = l.leave(w, ctx.Err())
	}
	w.timer.Stop()
	w.reset()
	l.waiters.Put(w)
	return t, err
}

// leave takes w out of the queue after its deadline or its context ended. If
// it was granted or failed in the meantime, that result wins, except that a
// slot granted to a cancelled request is handed back.
func (l *Limiter) leave(w *waiter, cause error) (Ticket, error) {
	l.mu.Lock()
	if w.done {
		l.mu.Unlock()
		<-w.ch // the signal sent with the grant or failure
		if w.err == nil && cause != ErrTimeout {
			// Granted, but the caller is gone.
			l.release(w.ticket, 0, Ignore)
			return Ticket{}, cause
		}
		return w.ticket, w.err
	}
	l.queues[w.class].remove(w)
	l.queued--
	if cause == ErrTimeout {
		l.counters[w.class].timedOut++
	} else {
		l.counters[w.class].canceled++
	}
	l.mu.Unlock()
	return Ticket{}, cause
}

// admitLocked takes a slot for a request of class c.
func (l *Limiter) admitLocked(c verdict.Class) Ticket {
	l.inFlight++
	l.counters[c].admitted++
	l.alg.onAdmit(l.inFlight)
	return Ticket{l: l, epoch: l.alg.epoch}
}

// bucketOf maps a client key to its fair-queue bucket.
func (l *Limiter) bucketOf(flow uint64) uint64 {
	return ((flow ^ l.salt) * 0x9E3779B97F4A7C15) >> (64 - 10) // fairBuckets = 1<<10
}

// makeRoomLocked makes room in a full queue for a request of class c that
// would join bucket b: it fails the newest waiter of the longest bucket of
// the lowest class strictly below c or, failing that, of class c itself
// when that bucket is longer than b would be with the newcomer (so that a
// client flooding the queue loses its own newest requests, not the
// newcomers of other clients). It reports whether it made room.
func (l *Limiter) makeRoomLocked(c verdict.Class, b *bucket) bool {
	for i := int(verdict.NumClasses) - 1; i >= int(c); i-- {
		lc := verdict.Class(i)
		lb := l.queues[lc].longest()
		if lb == nil || (lc == c && lb.list.n <= b.list.n+1) {
			continue
		}
		w := lb.list.tail
		l.queues[lc].remove(w)
		l.queued--
		l.counters[lc].shed++
		l.counters[lc].rejected++
		w.finish(Ticket{}, ErrQueueFull)
		return true
	}
	return false
}

func (l *Limiter) release(t Ticket, rtt time.Duration, outcome Outcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.inFlight > 0 {
		l.inFlight--
	}
	now := l.o.Now()
	if outcome == Dropped {
		l.drops++
	}
	switch l.br.onRelease(t.trial, outcome, now) {
	case opened:
		l.o.Logger.Warn("admission: circuit opened: the origin keeps failing",
			"open_for", l.br.openFor, "consecutive_failures", l.br.failures)
		l.failAllLocked(ErrCircuitOpen)
		return
	case closedAgain:
		// The origin is back, perhaps restarted cold: measure it again
		// before letting the old limit at it.
		l.o.Logger.Warn("admission: circuit closed: the origin answers again")
		l.alg.startProbe(now)
	}
	if changed := l.alg.onRelease(t.epoch, rtt, outcome, now); changed {
		l.o.Logger.Debug("admission: limit changed", "limit", l.alg.effective(),
			"estimate", l.alg.limit, "min_rtt", l.alg.minRTT, "sample_rtt", l.alg.lastRTT, "probing", l.alg.probing)
	}
	l.grantLocked()
}

// grantLocked admits waiters, highest class first and clients in turn
// within a class, while there is room.
func (l *Limiter) grantLocked() {
	for l.queued > 0 && l.inFlight < l.alg.effective() && l.br.closed() {
		var w *waiter
		for c := range l.queues {
			if w = l.queues[c].pop(); w != nil {
				break
			}
		}
		l.queued--
		w.finish(l.admitLocked(w.class), nil)
	}
}

// failAllLocked empties the queue, failing every waiter with err.
func (l *Limiter) failAllLocked(err error) {
	for c := range l.queues {
		for w := l.queues[c].pop(); w != nil; w = l.queues[c].pop() {
			l.queued--
			l.counters[c].rejected++
			w.finish(Ticket{}, err)
		}
	}
}

// waiter is one request in the queue. It is pooled: after Acquire returns,
// nothing refers to it.
type waiter struct {
	ch         chan struct{} // capacity 1: the one grant or failure signal
	timer      *time.Timer
	class      verdict.Class
	b          *bucket // its bucket while queued
	prev, next *waiter
	done       bool // granted or failed, under Limiter.mu
	ticket     Ticket
	err        error
}

func (w *waiter) finish(t Ticket, err error) {
	w.done = true
	w.ticket, w.err = t, err
	w.ch <- struct{}{}
}

func (w *waiter) reset() {
	w.prev, w.next = nil, nil
	w.done = false
	w.ticket, w.err = Ticket{}, nil
}

// waitList is an intrusive FIFO of waiters with O(1) removal anywhere: the
// requests of one fair-queue bucket.
type waitList struct {
	head, tail *waiter
	n          int
}

func (q *waitList) pushBack(w *waiter) {
	w.prev, w.next = q.tail, nil
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
	q.n++
}

func (q *waitList) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.prev, w.next = nil, nil
	q.n--
}
