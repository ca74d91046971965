package shield

import (
	"encoding/json"
	"os"
	"path/filepath"
	"time"
)

// The detector's baseline is kept in the state directory, so a restart
// (an upgrade, a configuration rollout, a crash) does not begin from zero:
// from zero, a busy site's ordinary traffic would look like a surge and
// raise the mode to elevated, which challenges visitors without a
// clearance on every page the cache does not hold, for the minutes the
// baseline takes to learn the traffic again.

// baselineFile is the file name in the state directory.
const baselineFile = "baseline.json"

// baselineMaxAge is how old a saved baseline may be and still be used: a
// site's traffic a week ago says little about today's.
const baselineMaxAge = 7 * 24 * time.Hour

type savedBaseline struct {
	RequestsPerS float64   `json:"requests_per_s"`
	OriginPerS   float64   `json:"origin_per_s"`
	Saved        time.Time `json:"saved"`
}

// loadBaseline reads the saved baseline; ok is false when there is none,
// it is unreadable, or too old.
func (s *Shield) loadBaseline() (b savedBaseline, ok bool) {
	data, err := os.ReadFile(filepath.Join(s.stateDir, baselineFile))
	if err != nil {
		if !os.IsNotExist(err) {
			s.log.Warn("detector baseline not read; learning it from zero", "err", err.Error())
		}
		return b, false
	}
	if err := json.Unmarshal(data, &b); err != nil || b.RequestsPerS < 0 || b.OriginPerS < 0 {
		s.log.Warn("detector baseline file is not valid; learning it from zero", "file", filepath.Join(s.stateDir, baselineFile))
		return b, false
	}
	if age := s.now().Sub(b.Saved); age > baselineMaxAge || age < -time.Hour {
		s.log.Info("detector baseline is too old; learning it from zero", "saved", b.Saved)
		return b, false
	}
	return b, true
}

// saveBaseline writes the detector's baseline, if it has learned one
// (atomically: a temporary file renamed over the old one).
func (s *Shield) saveBaseline() {
	s.modeMu.Lock()
	det := s.detector
	var req, origin float64
	learned := false
	if det != nil {
		req, origin = det.Baseline()
		learned = det.Learned()
	}
	s.modeMu.Unlock()
	if !learned {
		return
	}
	data, _ := json.Marshal(savedBaseline{RequestsPerS: req, OriginPerS: origin, Saved: s.now().UTC()})
	path := filepath.Join(s.stateDir, baselineFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		s.log.Warn("detector baseline not saved", "err", err.Error())
		return
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		s.log.Warn("detector baseline not saved", "err", err.Error())
	}
}
