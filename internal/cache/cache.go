package cache

import (
	"fmt"
	"hash/maphash"
	"strings"
	"sync/atomic"
	"time"

	"github.com/maypok86/otter/v2"
)

// Cache is an in-memory HTTP response cache bounded by bytes. It is safe for
// concurrent use. A hit does not allocate beyond what the response writer's
// header map needs; see Middleware for the request flow.
type Cache struct {
	o        Options
	seed     maphash.Seed
	store    *otter.Cache[uint64, *entry]
	flights  *flights
	params   *params
	sessions nameMatcher
	refresh  chan struct{} // semaphore of background refreshes
	inflight byteBudget    // InflightBytes: buffered bodies and flights
	storeMax int64         // the store's share of MaxBytes

	st counters
}

type counters struct {
	hits, misses, stale, bypass, coalesced, coalesceTimeouts atomic.Uint64
	stored, notStored, hitForPass, revalidated               atomic.Uint64
	evictions, expirations, purged                           atomic.Uint64
	refreshes, refreshesSkipped, missLimited                 atomic.Uint64
	droppedUnknown, safetyNet                                atomic.Uint64
	waiting                                                  atomic.Int64
}

// New validates o, fills its defaults and returns an empty Cache.
func New(o Options) (*Cache, error) {
	o.setDefaults()
	if err := o.validate(); err != nil {
		return nil, fmt.Errorf("cache: invalid options: %w", err)
	}
	c := &Cache{
		o:        o,
		seed:     maphash.MakeSeed(),
		sessions: newNameMatcher(o.SessionCookies),
		refresh:  make(chan struct{}, o.MaxRefreshes),
	}
	c.inflight.max = o.InflightBytes
	c.flights = newFlights(o.MaxFlights, &c.inflight)
	c.params = newParams(&o, c.seed)
	c.storeMax = o.MaxBytes - o.InflightBytes
	if c.params.learned != nil {
		c.storeMax -= int64(o.LearnCapacity) * LearnGroupBytes
	}
	store, err := otter.New(&otter.Options[uint64, *entry]{
		MaximumWeight:    uint64(c.storeMax),
		Weigher:          func(_ uint64, e *entry) uint32 { return e.weight },
		ExpiryCalculator: otter.ExpiryWritingFunc(c.expiresAfter),
		OnAtomicDeletion: c.onDeletion,
		Clock:            clock{now: o.Now},
		Logger:           slogLogger{o.Logger},
	})
	if err != nil {
		return nil, fmt.Errorf("cache: building the store: %w", err)
	}
	c.store = store
	return c, nil
}

// expiresAfter keeps an entry in the store as long as it can serve a
// request, as a hit or as a stale copy.
func (c *Cache) expiresAfter(e otter.Entry[uint64, *entry]) time.Duration {
	d := time.Duration(e.Value.expireAt() - c.o.Now().UnixNano())
	return max(d, time.Nanosecond)
}

func (c *Cache) onDeletion(ev otter.DeletionEvent[uint64, *entry]) {
	switch ev.Cause {
	case otter.CauseOverflow:
		c.st.evictions.Add(1)
	case otter.CauseExpiration:
		c.st.expirations.Add(1)
	}
}

// clock gives otter the cache's clock. It has no ticks: expired entries are
// dropped during reads and writes, and their bytes count against MaxBytes
// until then, so no goroutine outlives the cache.
type clock struct{ now func() time.Time }

func (c clock) NowNano() int64                    { return c.now().UnixNano() }
func (clock) Tick(time.Duration) <-chan time.Time { return nil }

// get returns the entry stored under h if its key is key.
func (c *Cache) get(h uint64, key []byte) *entry {
	e, ok := c.store.GetIfPresent(h)
	if !ok || e.key != string(key) {
		return nil
	}
	return e
}

// put stores e under its key.
func (c *Cache) put(e *entry) {
	c.store.Set(maphash.String(c.seed, e.key), e)
}

// Purge removes every entry whose key starts with prefix and returns how
// many responses it removed (Vary markers and hit-for-pass marks go too,
// uncounted). Keys read "host/path?query" with the host in lower case and
// without port, the path escaped and the query parameters sorted:
// Purge("www.example.org/news/") drops every news page of both schemes and
// all their variants; Purge("") empties the cache. The host part of prefix
// is lower-cased. Responses being fetched while Purge runs are stored
// afterwards. It walks the whole cache: O(entries).
func (c *Cache) Purge(prefix string) int {
	if i := strings.IndexByte(prefix, '/'); i != 0 {
		if i < 0 {
			i = len(prefix)
		}
		prefix = strings.ToLower(prefix[:i]) + prefix[i:]
	}
	n := 0
	for h, e := range c.store.All() {
		if !strings.HasPrefix(e.key, prefix) {
			continue
		}
		if _, ok := c.store.Invalidate(h); ok && e.kind == kindResponse {
			n++
		}
	}
	c.st.purged.Add(uint64(n))
	return n
}

// Stats is a snapshot of the cache's size and counters, for metrics.
// Counters only grow.
type Stats struct {
	// Entries is the number of stored values (responses and markers); Bytes
	// their weight (bodies, headers and keys at their allocated sizes, and
	// a per-entry overhead), bounded by StoreMaxBytes: MaxBytes less
	// InflightBytes and the learning table's reserve.
	Entries       int    `json:"entries"`
	Bytes         uint64 `json:"bytes"`
	MaxBytes      int64  `json:"max_bytes"`
	StoreMaxBytes int64  `json:"store_max_bytes"`
	// InflightBytes is the memory of fetches under way (buffered bodies and
	// the in-flight table), at most InflightMaxBytes; InflightRefused
	// counts responses not stored and misses not coalesced because it was
	// exhausted.
	InflightBytes    int64  `json:"inflight_bytes"`
	InflightMaxBytes int64  `json:"inflight_max_bytes"`
	InflightRefused  uint64 `json:"inflight_refused"`
	// Hits were served fresh from the cache; Misses went to the origin as
	// the leader of their key; Stale were served a stale copy (origin
	// failure, stale-while-revalidate, under_attack, miss limit, coalesce
	// timeout); Coalesced were served the response fetched for another
	// request; Bypass went to the origin untouched (method, Authorization,
	// session cookie, Range below NormaliseIn, hit-for-pass, released
	// followers).
	Hits      uint64 `json:"hits"`
	Misses    uint64 `json:"misses"`
	Stale     uint64 `json:"stale"`
	Coalesced uint64 `json:"coalesced"`
	Bypass    uint64 `json:"bypass"`
	// CoalesceTimeouts counts followers that stopped waiting after
	// CoalesceWait.
	CoalesceTimeouts uint64 `json:"coalesce_timeouts"`
	// Stored counts responses stored; NotStored responses that could not
	// be (the key then turns hit-for-pass); HitForPass the pass marks set;
	// Revalidated copies refreshed by a 304.
	Stored      uint64 `json:"stored"`
	NotStored   uint64 `json:"not_stored"`
	HitForPass  uint64 `json:"hit_for_pass"`
	Revalidated uint64 `json:"revalidated"`
	// Evictions were pushed out by MaxBytes; Expirations outlived their use.
	Evictions   uint64 `json:"evictions"`
	Expirations uint64 `json:"expirations"`
	// Purged counts responses removed by Purge.
	Purged uint64 `json:"purged"`
	// Refreshes counts background refreshes started; RefreshesSkipped
	// those not started because MaxRefreshes were running.
	Refreshes        uint64 `json:"refreshes"`
	RefreshesSkipped uint64 `json:"refreshes_skipped"`
	// MissLimited counts misses refused by AdmitMiss.
	MissLimited uint64 `json:"miss_limited"`
	// Flights is the number of keys being fetched now (at most MaxFlights);
	// Waiting the number of followers waiting for them.
	Flights int `json:"flights"`
	Waiting int `json:"waiting"`
	// LearnedPaths is the number of path groups in the learned-parameters
	// table (at most LearnCapacity); LearnedNames the parameter names
	// tracked in them (at most 16 each), of which LearnedKept are kept in
	// keys from NormaliseIn up and LearnedBusters were proven
	// cache-busters. LearnReservedBytes is the table's worst case,
	// reserved out of MaxBytes.
	LearnedPaths       int   `json:"learned_paths"`
	LearnedNames       int   `json:"learned_names"`
	LearnedKept        int   `json:"learned_kept"`
	LearnedBusters     int   `json:"learned_busters"`
	LearnReservedBytes int64 `json:"learn_reserved_bytes"`
	// DroppedUnknown counts requests whose key dropped a parameter that
	// may change the page (neither ignored nor a proven cache-buster);
	// SafetyNet those of them denied a stale micro-cached copy (see
	// Middleware).
	DroppedUnknown uint64 `json:"dropped_unknown"`
	SafetyNet      uint64 `json:"safety_net"`
}

// Stats returns a snapshot. It first runs the store's pending maintenance
// (evictions, dropping expired entries), so that Entries and Bytes are
// exact: the metrics endpoint calling it every few seconds doubles as the
// store's periodic clean-up. It is safe for concurrent use.
func (c *Cache) Stats() Stats {
	c.store.CleanUp()
	s := Stats{
		Entries:          c.store.EstimatedSize(),
		Bytes:            c.store.WeightedSize(),
		MaxBytes:         c.o.MaxBytes,
		StoreMaxBytes:    c.storeMax,
		InflightBytes:    c.inflight.used.Load(),
		InflightMaxBytes: c.inflight.max,
		InflightRefused:  c.inflight.refused.Load(),
		DroppedUnknown:   c.st.droppedUnknown.Load(),
		SafetyNet:        c.st.safetyNet.Load(),
		Hits:             c.st.hits.Load(),
		Misses:           c.st.misses.Load(),
		Stale:            c.st.stale.Load(),
		Coalesced:        c.st.coalesced.Load(),
		Bypass:           c.st.bypass.Load(),
		CoalesceTimeouts: c.st.coalesceTimeouts.Load(),
		Stored:           c.st.stored.Load(),
		NotStored:        c.st.notStored.Load(),
		HitForPass:       c.st.hitForPass.Load(),
		Revalidated:      c.st.revalidated.Load(),
		Evictions:        c.st.evictions.Load(),
		Expirations:      c.st.expirations.Load(),
		Purged:           c.st.purged.Load(),
		Refreshes:        c.st.refreshes.Load(),
		RefreshesSkipped: c.st.refreshesSkipped.Load(),
		MissLimited:      c.st.missLimited.Load(),
		Flights:          c.flights.size(),
		Waiting:          int(c.st.waiting.Load()),
	}
	if t := c.params.learned; t != nil {
		s.LearnedPaths = int(t.groups.Load())
		s.LearnedNames = int(t.slots.Load())
		s.LearnedKept = int(t.kept.Load())
		s.LearnedBusters = int(t.busters.Load())
		s.LearnReservedBytes = int64(c.o.LearnCapacity) * LearnGroupBytes
	}
	return s
}
