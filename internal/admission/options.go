package admission

import (
	_ "embed"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/rampart-shield/rampart/internal/verdict"
)

//go:embed overload.html
var defaultOverloadPage []byte

// DefaultOverloadPage returns a copy of the embedded overload page served
// when Options.OverloadPage is empty: a short static HTML page in English
// that asks the visitor to reload in a few seconds.
func DefaultOverloadPage() []byte {
	return append([]byte(nil), defaultOverloadPage...)
}

// Defaults of Options. Each is used when the field is zero.
const (
	// DefaultInitialLimit is the limit restored after the start-up probe
	// when the origin has given no signal yet: 20 concurrent requests is
	// what a small CMS on one machine serves without queueing.
	DefaultInitialLimit = 20
	// DefaultMinLimit is the floor of the limit and the concurrency of a
	// minRTT probe: 2 keeps pages flowing while the origin recovers.
	DefaultMinLimit = 2
	// DefaultMaxLimit is the ceiling of the limit: far above any origin
	// rampart fronts, so it only stops runaway growth.
	DefaultMaxLimit = 1000
	// DefaultQueueSize bounds the requests waiting for the origin.
	DefaultQueueSize = 1024
	// DefaultSampleWindow is how long latency samples are aggregated before
	// the limit moves: 100 ms reacts within a second to a drowning origin.
	DefaultSampleWindow = 100 * time.Millisecond
	// DefaultMinSamples is the fewest successful samples in a window for the
	// limit to move on latency (drops move it regardless).
	DefaultMinSamples = 10
	// DefaultTolerance lets the window's median latency exceed minRTT by 25%
	// before the limit shrinks: scheduling noise and a mix of cheap and
	// expensive pages must not read as overload.
	DefaultTolerance = 0.25
	// DefaultSlack is the absolute latency rise always tolerated: below a
	// couple of milliseconds, a rise is scheduling noise on a busy host,
	// not an origin filling up.
	DefaultSlack = 2 * time.Millisecond
	// DefaultSmoothing is the weight of each new limit estimate.
	DefaultSmoothing = 0.2
	// DefaultBackoff multiplies the limit after a window in which the origin
	// signalled overload (502, 503, 504).
	DefaultBackoff = 0.9
	// DefaultProbeInterval is the period of minRTT probes.
	DefaultProbeInterval = 30 * time.Second
	// DefaultProbeJitter spreads probes of several nodes apart: ±10%.
	DefaultProbeJitter = 0.1
	// DefaultProbeSamples is how many samples at MinLimit concurrency make
	// one minRTT measurement.
	DefaultProbeSamples = 10
	// DefaultBreakerFailures is how many overload outcomes in a row open the
	// circuit.
	DefaultBreakerFailures = 10
	// DefaultBreakerOpen is how long the circuit stays open the first time;
	// each failed trial doubles it up to DefaultBreakerMaxOpen.
	DefaultBreakerOpen = 5 * time.Second
	// DefaultBreakerMaxOpen caps the open period.
	DefaultBreakerMaxOpen = time.Minute
	// DefaultRetryAfter is the Retry-After advised with a 503 for a full
	// queue or a passed deadline.
	DefaultRetryAfter = 5 * time.Second
)

// DefaultMaxWait is the queue deadline per class when Options.MaxWait holds a
// zero: priority visitors (clearance holders, allow-listed) wait up to 10 s,
// ordinary ones 5 s, suspicious ones 1 s.
var DefaultMaxWait = [verdict.NumClasses]time.Duration{
	verdict.ClassPriority:   10 * time.Second,
	verdict.ClassNormal:     5 * time.Second,
	verdict.ClassSuspicious: time.Second,
}

// Options configures a Limiter. Every zero field takes the default named in
// its comment; New validates the rest.
type Options struct {
	// InitialLimit is the limit after the start-up probe (default 20).
	// MinLimit (default 2) is the floor of the limit and the concurrency at
	// which minRTT is probed. MaxLimit (default 1000) is the ceiling.
	InitialLimit, MinLimit, MaxLimit int

	// QueueSize bounds the requests waiting over the limit, all classes
	// together (default 1024). When it is full, an arrival sheds the newest
	// waiter of the lowest class below its own, or is refused if none is
	// below it.
	QueueSize int

	// MaxWait is how long a request of each class may wait in the queue
	// (default DefaultMaxWait: priority 10 s, normal 5 s, suspicious 1 s).
	// A negative value means the class never waits: over the limit it is
	// refused at once.
	MaxWait [verdict.NumClasses]time.Duration

	// SampleWindow (default 100 ms) and MinSamples (default 10): the limit
	// moves once per window holding at least MinSamples successes, on the
	// median latency of the window.
	SampleWindow time.Duration
	MinSamples   int

	// Tolerance is how far the median may exceed minRTT before the limit
	// shrinks, as a fraction (default 0.25). At equilibrium in front of an
	// origin of fixed capacity C the limit settles near (1+Tolerance)·C and
	// the origin's latency near (1+Tolerance) times its unloaded latency.
	Tolerance float64

	// Slack is an absolute rise of the median over (1+Tolerance)·minRTT
	// that is still not congestion. Without it a fast origin (sub-millisecond
	// pages) sees CPU scheduling jitter as a doubling of its latency and the
	// limit collapses to MinLimit. In front of an origin of fixed capacity C
	// and unloaded latency D the limit settles near (1+Tolerance+Slack/D)·C.
	// Default DefaultSlack; negative means none.
	Slack time.Duration

	// Smoothing is the weight of each new estimate, in (0, 1] (default 0.2).
	Smoothing float64

	// Backoff multiplies the limit after a window with overload outcomes, in
	// (0, 1) (default 0.9).
	Backoff float64

	// ProbeInterval is the period of minRTT probes (default 30 s; negative:
	// only the start-up probe). A probe holds concurrency at MinLimit until
	// ProbeSamples (default 10) requests admitted during it have returned,
	// then restores the limit. ProbeJitter spreads the period by ± that
	// fraction (default 0.1; negative: none).
	ProbeInterval time.Duration
	ProbeSamples  int
	ProbeJitter   float64

	// BreakerFailures is how many overload outcomes in a row (502, 503, 504,
	// connection errors) open the circuit (default 10; negative: no
	// breaker). While open, Acquire fails at once with ErrCircuitOpen and
	// the queue is emptied, so the cache serves stale copies at once. After
	// BreakerOpen (default 5 s) one trial request goes through: a success
	// closes the circuit, a failure opens it for twice as long, up to
	// BreakerMaxOpen (default 1 min).
	BreakerFailures int
	BreakerOpen     time.Duration
	BreakerMaxOpen  time.Duration

	// RetryAfter is advised with a 503 for a full queue or a passed deadline
	// (default 5 s, rounded up to whole seconds).
	RetryAfter time.Duration

	// OverloadPage is the body of the 503 (default: the embedded friendly
	// page, DefaultOverloadPage). OverloadContentType is its Content-Type
	// (default "text/html; charset=utf-8").
	OverloadPage        []byte
	OverloadContentType string

	// Now is the clock for the algorithm and the breaker (default
	// time.Now). Queue deadlines use real timers.
	Now func() time.Time
	// Rand returns a float in [0, 1) for probe jitter (default
	// math/rand/v2.Float64).
	Rand func() float64
	// Logger receives limit changes at debug level and breaker transitions
	// at warn level (default: discard). Nothing is logged per request.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if o.InitialLimit == 0 {
		o.InitialLimit = DefaultInitialLimit
	}
	if o.MinLimit == 0 {
		o.MinLimit = DefaultMinLimit
	}
	if o.MaxLimit == 0 {
		o.MaxLimit = DefaultMaxLimit
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	for i := range o.MaxWait {
		if o.MaxWait[i] == 0 {
			o.MaxWait[i] = DefaultMaxWait[i]
		}
	}
	if o.SampleWindow == 0 {
		o.SampleWindow = DefaultSampleWindow
	}
	if o.MinSamples == 0 {
		o.MinSamples = DefaultMinSamples
	}
	if o.Slack == 0 {
		o.Slack = DefaultSlack
	} else if o.Slack < 0 {
		o.Slack = 0
	}
	if o.Tolerance == 0 {
		o.Tolerance = DefaultTolerance
	}
	if o.Smoothing == 0 {
		o.Smoothing = DefaultSmoothing
	}
	if o.Backoff == 0 {
		o.Backoff = DefaultBackoff
	}
	if o.ProbeInterval == 0 {
		o.ProbeInterval = DefaultProbeInterval
	}
	if o.ProbeSamples == 0 {
		o.ProbeSamples = DefaultProbeSamples
	}
	if o.ProbeJitter == 0 {
		o.ProbeJitter = DefaultProbeJitter
	}
	if o.BreakerFailures == 0 {
		o.BreakerFailures = DefaultBreakerFailures
	}
	if o.BreakerOpen == 0 {
		o.BreakerOpen = DefaultBreakerOpen
	}
	if o.BreakerMaxOpen == 0 {
		o.BreakerMaxOpen = DefaultBreakerMaxOpen
	}
	if o.RetryAfter == 0 {
		o.RetryAfter = DefaultRetryAfter
	}
	if len(o.OverloadPage) == 0 {
		o.OverloadPage = defaultOverloadPage
	}
	if o.OverloadContentType == "" {
		o.OverloadContentType = "text/html; charset=utf-8"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Float64
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

func (o *Options) validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if o.MinLimit < 1 {
		bad("min limit %d: must be at least 1", o.MinLimit)
	}
	if o.MaxLimit < o.MinLimit {
		bad("max limit %d: below min limit %d", o.MaxLimit, o.MinLimit)
	}
	if o.InitialLimit < o.MinLimit || o.InitialLimit > o.MaxLimit {
		bad("initial limit %d: outside [min limit %d, max limit %d]", o.InitialLimit, o.MinLimit, o.MaxLimit)
	}
	if o.QueueSize < 0 {
		bad("queue size %d: must not be negative", o.QueueSize)
	}
	if o.SampleWindow < 0 {
		bad("sample window %v: must not be negative", o.SampleWindow)
	}
	if o.MinSamples < 1 || o.MinSamples > windowSamples {
		bad("min samples %d: must be in [1, %d]", o.MinSamples, windowSamples)
	}
	if o.ProbeSamples < 1 || o.ProbeSamples > windowSamples {
		bad("probe samples %d: must be in [1, %d]", o.ProbeSamples, windowSamples)
	}
	if o.Tolerance < 0 || o.Tolerance > 10 {
		bad("tolerance %g: must be in [0, 10]", o.Tolerance)
	}
	if o.Smoothing <= 0 || o.Smoothing > 1 {
		bad("smoothing %g: must be in (0, 1]", o.Smoothing)
	}
	if o.Backoff <= 0 || o.Backoff >= 1 {
		bad("backoff %g: must be in (0, 1)", o.Backoff)
	}
	if o.ProbeJitter >= 1 {
		bad("probe jitter %g: must be below 1", o.ProbeJitter)
	}
	if o.BreakerOpen < 0 || o.BreakerMaxOpen < o.BreakerOpen {
		bad("breaker open %v / max open %v: need 0 < open <= max open", o.BreakerOpen, o.BreakerMaxOpen)
	}
	if o.RetryAfter < 0 {
		bad("retry after %v: must not be negative", o.RetryAfter)
	}
	return errors.Join(errs...)
}
