// Package fault lets the fake servers answer with injected failures and
// latency, keyed by a path prefix or a method name.
package fault

import (
	"net/http"
	"strings"
	"sync"
	"time"
)

// Fault is what a matching request gets instead of (or before) its normal answer.
type Fault struct {
	// Status, when non-zero, is answered instead of the normal reply.
	Status int
	// RetryAfter is sent as the Retry-After header with Status (e.g. "2").
	RetryAfter string
	// Body replaces the server's default error body for Status.
	Body string
	// Delay is waited before answering (normally or with Status).
	Delay time.Duration
	// Times limits how many requests the fault affects; 0 means until cleared.
	Times int
}

// Set holds faults by key; it is safe for concurrent use.
type Set struct {
	mu sync.Mutex
	m  map[string]*Fault
}

// Put installs f for key, replacing any earlier fault.
func (s *Set) Put(key string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*Fault{}
	}
	s.m[key] = &f
}

// Clear removes the fault for key.
func (s *Set) Clear(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, key)
}

// Take returns the fault for exactly key, using up one of its Times.
func (s *Set) Take(key string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.takeLocked(key)
}

// TakePrefix returns the fault whose key is the longest prefix of path.
func (s *Set) TakePrefix(path string) (Fault, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	best := ""
	found := false
	for k := range s.m {
		if strings.HasPrefix(path, k) && (!found || len(k) > len(best)) {
			best, found = k, true
		}
	}
	if !found {
		return Fault{}, false
	}
	return s.takeLocked(best)
}

func (s *Set) takeLocked(key string) (Fault, bool) {
	f, ok := s.m[key]
	if !ok {
		return Fault{}, false
	}
	out := *f
	if f.Times > 0 {
		f.Times--
		if f.Times == 0 {
			delete(s.m, key)
		}
	}
	return out, true
}

// Apply waits f.Delay (or until the client gives up) and, when f.Status is
// set, writes the error reply. It reports whether the reply was written.
// defaultBody gives the body for a status when f.Body is empty.
func Apply(w http.ResponseWriter, r *http.Request, f Fault, defaultBody func(status int) string) bool {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return true
		}
	}
	if f.Status == 0 {
		return false
	}
	if f.RetryAfter != "" {
		w.Header().Set("Retry-After", f.RetryAfter)
	} else if f.Status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	body := f.Body
	if body == "" && defaultBody != nil {
		body = defaultBody(f.Status)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(f.Status)
	_, _ = w.Write([]byte(body))
	return true
}
