package challenge

// ForceJSFallback makes pages ask their workers for the pure-JavaScript
// SHA-256 (test builds only).
func ForceJSFallback(o *Options) { o.forceJSFallback = true }

// ReplayAdd exposes the replay filter to tests.
func (s *Service) ReplayAdd(fp uint64, expires int64) bool { return s.replay.add(fp, expires) }
