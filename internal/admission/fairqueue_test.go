package admission

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

// TestFairTurns: over the limit, a client with one request waiting is
// admitted within a turn of the queue although a flooding client queued
// many requests before it; within one client, requests keep their order.
func TestFairTurns(t *testing.T) {
	l, _ := limiterAt(t, 1, Options{Rand: fixedRand})
	hold, err := l.Acquire(t.Context(), verdict.ClassNormal, 0)
	if err != nil {
		t.Fatal(err)
	}
	const flooder, reader = 1, 2
	if l.bucketOf(flooder) == l.bucketOf(reader) {
		t.Fatal("the two clients share a bucket; pick other keys")
	}
	got := make(chan acquired, 32)
	enqueue := func(id int, flow uint64) {
		n := sum(l.Stats().Queued)
		go func() {
			tk, err := l.Acquire(context.Background(), verdict.ClassNormal, flow)
			got <- acquired{id: id, t: tk, err: err}
		}()
		eventually(t, "waiter queued", func() bool { return sum(l.Stats().Queued) == n+1 })
	}
	for i := range 20 {
		enqueue(i, flooder)
	}
	enqueue(100, reader)
	enqueue(101, reader)
	hold.Release(time.Millisecond, Success)
	// Turns alternate while both clients wait: flooder, reader, flooder,
	// reader, then the flooder's remaining 18 in order.
	want := []int{0, 100, 1, 101}
	for i := 2; i < 20; i++ {
		want = append(want, i)
	}
	for i, w := range want {
		a := <-got
		if a.err != nil || a.id != w {
			t.Fatalf("admission %d: waiter %d (%v), want %d", i, a.id, a.err, w)
		}
		a.t.Release(time.Millisecond, Success)
	}
}

// TestFullQueueShedsTheLongestClient: when a flooding client has filled the
// queue, a request from another client takes the place of the flooder's
// newest one instead of being refused; the flooder's own newcomers are
// refused.
func TestFullQueueShedsTheLongestClient(t *testing.T) {
	l, _ := limiterAt(t, 1, Options{QueueSize: 4, Rand: fixedRand})
	if l.bucketOf(7) == l.bucketOf(8) {
		t.Fatal("the two clients share a bucket; pick other keys")
	}
	hold, _ := l.Acquire(t.Context(), verdict.ClassNormal, 0)
	res := make(chan acquired, 8)
	for i := range 4 {
		go func() {
			tk, err := l.Acquire(context.Background(), verdict.ClassNormal, 7)
			res <- acquired{id: i, t: tk, err: err}
		}()
		eventually(t, "flooder queued", func() bool { return l.Stats().Queued[verdict.ClassNormal] == i+1 })
	}
	if _, err := l.Acquire(t.Context(), verdict.ClassNormal, 7); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("the flooder's fifth request: %v, want ErrQueueFull", err)
	}
	go func() {
		tk, err := l.Acquire(context.Background(), verdict.ClassNormal, 8)
		res <- acquired{id: 100, t: tk, err: err}
	}()
	shed := <-res
	if shed.id != 3 || !errors.Is(shed.err, ErrQueueFull) {
		t.Fatalf("shed waiter %d (%v), want the flooder's newest (3) with ErrQueueFull", shed.id, shed.err)
	}
	if s := l.Stats(); s.Shed[verdict.ClassNormal] != 1 {
		t.Errorf("shed counter %d, want 1", s.Shed[verdict.ClassNormal])
	}
	eventually(t, "reader queued", func() bool { return l.Stats().Queued[verdict.ClassNormal] == 4 })
	hold.Release(time.Millisecond, Success)
	for i, w := range []int{0, 100, 1, 2} {
		a := <-res
		if a.err != nil || a.id != w {
			t.Fatalf("admission %d: waiter %d (%v), want %d", i, a.id, a.err, w)
		}
		a.t.Release(time.Millisecond, Success)
	}
}

// fixedRand makes the bucket salt, and so the tests, deterministic.
func fixedRand() float64 { return 0.5 }

// TestFairQueueModel drives fairQueue with random pushes, pops and
// removals and checks it against a plain model: buckets served in the
// order they became non-empty, one request per turn, FIFO within a
// bucket, an emptied bucket leaving and rejoining at the end.
func TestFairQueueModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var q fairQueue
	type item struct {
		w *waiter
		b int
	}
	var ring []int               // model: bucket indexes in turn order
	lists := map[int][]*waiter{} // model: FIFO per bucket
	var all []item
	check := func(step int) {
		n := 0
		for _, l := range lists {
			n += len(l)
		}
		if q.n != n {
			t.Fatalf("step %d: n %d, model %d", step, q.n, n)
		}
		if l := q.longest(); (l == nil) != (n == 0) {
			t.Fatalf("step %d: longest %v with %d queued", step, l, n)
		}
	}
	for step := 0; step < 20000; step++ {
		switch op := rng.IntN(10); {
		case op < 5: // push
			b := rng.IntN(8)
			w := &waiter{}
			q.push(w, &q.buckets[b])
			if len(lists[b]) == 0 {
				ring = append(ring, b)
			}
			lists[b] = append(lists[b], w)
			all = append(all, item{w, b})
		case op < 8: // pop
			w := q.pop()
			if len(ring) == 0 {
				if w != nil {
					t.Fatalf("step %d: pop from an empty queue gave a waiter", step)
				}
				continue
			}
			b := ring[0]
			ring = ring[1:]
			if w != lists[b][0] {
				t.Fatalf("step %d: pop gave the wrong waiter (bucket %d)", step, b)
			}
			lists[b] = lists[b][1:]
			if len(lists[b]) > 0 {
				ring = append(ring, b)
			}
		default: // remove a random queued waiter
			var queued []item
			for _, it := range all {
				if it.w.b != nil {
					queued = append(queued, it)
				}
			}
			if len(queued) == 0 {
				continue
			}
			it := queued[rng.IntN(len(queued))]
			q.remove(it.w)
			l := lists[it.b]
			for i, w := range l {
				if w == it.w {
					lists[it.b] = append(l[:i:i], l[i+1:]...)
					break
				}
			}
			if len(lists[it.b]) == 0 {
				for i, b := range ring {
					if b == it.b {
						ring = append(ring[:i:i], ring[i+1:]...)
						break
					}
				}
			}
		}
		check(step)
	}
}
