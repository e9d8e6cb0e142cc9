// Package serving joins the feature engine and a CatBoost model: the model
// handles that cross the C ABI, and Rank, which computes features, scores
// and the order of one request in a single call. Pure Go, so that `go test
// -race` covers the reload and close paths.
package serving

import (
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/pyfeat/pyfeat/catboost"
	"github.com/pyfeat/pyfeat/features"
)

// ErrUnknownHandle is returned for a handle that was never issued or was
// already closed.
var ErrUnknownHandle = errors.New("unknown or closed model handle")

type entry struct {
	model   catboost.Model
	users   int  // calls in flight
	closing bool // Close was called; the last user closes the model
}

// Registry hands out int64 handles for models. A handle stays valid until
// Close; a model is closed only after the last call that acquired it has
// released it, so a Python thread may close (or reload) a model while
// others are still scoring with it.
type Registry struct {
	mu      sync.Mutex
	next    int64
	entries map[int64]*entry
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{next: 1, entries: map[int64]*entry{}}
}

// Add registers m and returns its handle (never 0).
func (r *Registry) Add(m catboost.Model) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.next
	r.next++
	r.entries[h] = &entry{model: m}
	return h
}

// Acquire returns the model of handle h for one call; the caller must call
// the returned release exactly once when done.
func (r *Registry) Acquire(h int64) (catboost.Model, func(), error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.entries[h]
	if !ok || e.closing {
		return nil, nil, fmt.Errorf("%w: %d", ErrUnknownHandle, h)
	}
	e.users++
	var once sync.Once
	return e.model, func() { once.Do(func() { r.release(h, e) }) }, nil
}

func (r *Registry) release(h int64, e *entry) {
	r.mu.Lock()
	e.users--
	last := e.closing && e.users == 0
	if last {
		delete(r.entries, h)
	}
	r.mu.Unlock()
	if last {
		_ = e.model.Close()
	}
}

// Close retires handle h. New calls with h fail at once; the model itself
// is closed when the calls in flight have finished.
func (r *Registry) Close(h int64) error {
	r.mu.Lock()
	e, ok := r.entries[h]
	if !ok || e.closing {
		r.mu.Unlock()
		return fmt.Errorf("%w: %d", ErrUnknownHandle, h)
	}
	e.closing = true
	idle := e.users == 0
	if idle {
		delete(r.entries, h)
	}
	r.mu.Unlock()
	if idle {
		return e.model.Close()
	}
	return nil
}

// Len is the number of live handles (including those closing).
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.entries)
}

// Predict checks shapes and scores a row-major float32 matrix.
func Predict(m catboost.Model, x []float32, rows, cols int, threads int, out []float64) error {
	if rows < 0 || cols != m.NumFeatures() {
		return fmt.Errorf("the model takes %d features per row, got %d", m.NumFeatures(), cols)
	}
	if len(x) != rows*cols {
		return fmt.Errorf("matrix has %d values, want %d x %d", len(x), rows, cols)
	}
	if len(out) != rows*m.Dimensions() {
		return fmt.Errorf("output has %d values, want %d x %d", len(out), rows, m.Dimensions())
	}
	return m.PredictRaw(x, rows, out, features.Threads(threads))
}

// Rank computes the features of one request, scores them with m and writes
// the order: order[i] is the index into items of the i-th best item, scores
// are written in that (descending) order, ties keep input order and NaN
// scores go last. featuresOut, if non-nil, receives the feature matrix
// (n x NumFeatures). user is the user context, started with
// features.Begin (the caller closes it). len(order) ==
// len(scores) == top_k <= n (the caller allocates all three). tm, when not
// nil, receives where the time went.
func Rank(m catboost.Model, user *features.Pending, items features.Items, c *features.Candidates,
	threads int, featuresOut []float32, scores []float64, order []int64, tm *Timings) error {
	n := items.Len()
	if m.Dimensions() != 1 {
		return fmt.Errorf("rank needs a model with one output per item; this one has %d (use predict)", m.Dimensions())
	}
	if m.NumFeatures() != features.NumFeatures {
		return fmt.Errorf("the model takes %d features, pyfeat computes %d", m.NumFeatures(), features.NumFeatures)
	}
	k := len(order)
	if len(scores) != k || k > n {
		return fmt.Errorf("order and scores must have the same length <= %d items, got %d and %d", n, k, len(scores))
	}
	if featuresOut != nil && len(featuresOut) != n*features.NumFeatures {
		return fmt.Errorf("features buffer has %d values, want %d x %d", len(featuresOut), n, features.NumFeatures)
	}
	sc := getRankScratch(n)
	defer rankScratchPool.Put(sc)
	raw, idx := sc.raw[:n], sc.idx[:n]
	// Each block of rows is scored by the goroutine that computed it, while
	// the rows are still in its cache; without a features buffer the
	// request's feature matrix is never held in memory at once.
	score := func(start, end int, rows []float32) error {
		return m.PredictRaw(rows, end-start, raw[start:end], 1)
	}
	var ftm *features.Timings
	if tm != nil {
		ftm = &tm.Timings
	}
	if err := features.ComputeBlocksTimed(user, items, c, threads, featuresOut, score, ftm); err != nil {
		return err
	}
	var t0 time.Time
	if tm != nil {
		t0 = time.Now()
		defer func() { tm.TopK = int64(time.Since(t0)) }()
	}
	for i := range idx {
		idx[i] = int64(i)
	}
	slices.SortStableFunc(idx, func(a, b int64) int {
		sa, sb := raw[a], raw[b]
		an, bn := math.IsNaN(sa), math.IsNaN(sb)
		switch {
		case an || bn:
			return cmp.Compare(b2i(an), b2i(bn)) // NaN last
		default:
			return cmp.Compare(sb, sa) // descending
		}
	})
	for i := 0; i < k; i++ {
		order[i] = idx[i]
		scores[i] = raw[idx[i]]
	}
	return nil
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// rankScratch is Rank's per-call working memory, pooled: a service ranks
// thousands of items per request, many requests a second.
type rankScratch struct {
	raw []float64
	idx []int64
}

var rankScratchPool = sync.Pool{New: func() any { return new(rankScratch) }}

func getRankScratch(n int) *rankScratch {
	s := rankScratchPool.Get().(*rankScratch)
	if cap(s.raw) < n {
		s.raw = make([]float64, n)
		s.idx = make([]int64, n)
	}
	return s
}
