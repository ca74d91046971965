package admission

// fairBuckets is the number of flows a class's queue tells apart. Clients
// are hashed into the buckets with a per-Limiter salt, so an attacker cannot
// pick addresses that share a bucket with a given reader; two clients that
// do share one share its turn.
const fairBuckets = 1024

// fairQueue is one class's queue: a FIFO per bucket of clients, and the
// non-empty buckets in a ring served round robin, one request per turn
// (deficit round robin with a quantum of one request). A client with one
// request waiting is therefore served within one turn of the ring however
// many requests a flooding client has queued, and when the queue is full the
// request that goes is the newest of the longest bucket (see
// Limiter.makeRoomLocked). All methods run under Limiter.mu.
type fairQueue struct {
	buckets [fairBuckets]bucket
	// next is the bucket served next; the ring runs through next and
	// prev. nil when the queue is empty.
	next *bucket
	n    int
}

type bucket struct {
	list       waitList
	prev, next *bucket // in the ring of non-empty buckets
}

// push appends w to bucket b. A bucket that was empty joins the ring last,
// so it is served after every bucket already waiting.
func (q *fairQueue) push(w *waiter, b *bucket) {
	w.b = b
	b.list.pushBack(w)
	q.n++
	if b.list.n > 1 {
		return
	}
	if q.next == nil {
		b.prev, b.next = b, b
		q.next = b
		return
	}
	last := q.next.prev
	b.prev, b.next = last, q.next
	last.next = b
	q.next.prev = b
}

// pop takes the oldest waiter of the bucket whose turn it is and passes the
// turn on; nil when the queue is empty.
func (q *fairQueue) pop() *waiter {
	b := q.next
	if b == nil {
		return nil
	}
	w := b.list.head
	q.next = b.next
	q.remove(w)
	return w
}

// remove takes w out of the queue; an emptied bucket leaves the ring.
func (q *fairQueue) remove(w *waiter) {
	b := w.b
	b.list.remove(w)
	w.b = nil
	q.n--
	if b.list.n > 0 {
		return
	}
	if b.next == b {
		q.next = nil
	} else {
		b.prev.next = b.next
		b.next.prev = b.prev
		if q.next == b {
			q.next = b.next
		}
	}
	b.prev, b.next = nil, nil
}

// longest returns the bucket with the most waiters (the first found on a
// tie), nil when the queue is empty. It walks the ring: at most
// min(fairBuckets, queued) steps, only when the queue is full.
func (q *fairQueue) longest() *bucket {
	if q.next == nil {
		return nil
	}
	best := q.next
	for b := q.next.next; b != q.next; b = b.next {
		if b.list.n > best.list.n {
			best = b
		}
	}
	return best
}
