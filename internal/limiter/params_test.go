package limiter

import (
	"errors"
	"math"
	"testing"
	"time"
)

func mustParams(t testing.TB, rate float64, burst int) Params {
	t.Helper()
	p, err := NewParams(rate, burst)
	if err != nil {
		t.Fatalf("NewParams(%v, %d): %v", rate, burst, err)
	}
	return p
}

func TestNewParams(t *testing.T) {
	tests := []struct {
		name         string
		rate         float64
		burst        int
		wantErr      bool
		wantInterval time.Duration
	}{
		{name: "ten per second", rate: 10, burst: 20, wantInterval: 100 * time.Millisecond},
		{name: "one per minute", rate: 1.0 / 60, burst: 1, wantInterval: time.Minute},
		{name: "rounded interval", rate: 3, burst: 1, wantInterval: 333333333},
		{name: "one per nanosecond", rate: 1e9, burst: 1, wantInterval: 1},
		{name: "zero rate", rate: 0, burst: 1, wantErr: true},
		{name: "negative rate", rate: -1, burst: 1, wantErr: true},
		{name: "NaN rate", rate: math.NaN(), burst: 1, wantErr: true},
		{name: "infinite rate", rate: math.Inf(1), burst: 1, wantErr: true},
		{name: "faster than a nanosecond", rate: 3e9, burst: 1, wantErr: true},
		{name: "zero burst", rate: 1, burst: 0, wantErr: true},
		{name: "negative burst", rate: 1, burst: -5, wantErr: true},
		{name: "horizon overflow", rate: 1e-9, burst: 1 << 20, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewParams(tt.rate, tt.burst)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("NewParams(%v, %d) = %v, want an error", tt.rate, tt.burst, p)
				}
				if !errors.Is(err, ErrInvalidParams) {
					t.Errorf("error %v does not wrap ErrInvalidParams", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewParams: %v", err)
			}
			if p.Interval() != tt.wantInterval {
				t.Errorf("Interval() = %v, want %v", p.Interval(), tt.wantInterval)
			}
			if p.Rate() != tt.rate || p.Burst() != tt.burst {
				t.Errorf("Rate, Burst = %v, %d; want %v, %d", p.Rate(), p.Burst(), tt.rate, tt.burst)
			}
			if want := tt.wantInterval * time.Duration(tt.burst); p.MaxLockout() != want {
				t.Errorf("MaxLockout() = %v, want Burst*T = %v", p.MaxLockout(), want)
			}
		})
	}
}

func TestWithMaxLockout(t *testing.T) {
	p := mustParams(t, 10, 5)
	if _, err := p.WithMaxLockout(time.Millisecond); err == nil {
		t.Error("lockout below the emission interval accepted")
	}
	if _, err := (Params{}).WithMaxLockout(time.Second); err == nil {
		t.Error("lockout on the zero Params accepted")
	}
	q, err := p.WithMaxLockout(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if q.MaxLockout() != time.Minute || p.MaxLockout() != 500*time.Millisecond {
		t.Errorf("MaxLockout: copy %v, original %v", q.MaxLockout(), p.MaxLockout())
	}
	if !(Params{}).IsZero() || p.IsZero() {
		t.Error("IsZero wrong")
	}
	if got := p.String(); got != "10/s burst 5" {
		t.Errorf("String() = %q", got)
	}
}
