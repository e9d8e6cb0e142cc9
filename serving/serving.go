// Package serving joins the feature engine and CatBoost models: Rank,
// which computes the features, scores and order of one request in a single
// call; the model handles (models.go), which own every model's lifetime;
// and the Service (service.go) behind the C ABI, which holds the handles,
// the user contexts handed over early and the sharing of the cores. Pure
// Go, so that `go test -race` covers the reload and close paths; package
// cabi only converts C arguments and forwards to it.
package serving

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/pyfeat/pyfeat/catboost"
	"github.com/pyfeat/pyfeat/features"
	"github.com/pyfeat/pyfeat/internal/faults"
	"github.com/pyfeat/pyfeat/internal/pferr"
)

// Predict checks shapes and scores a row-major float32 matrix.
func Predict(m catboost.Model, x []float32, rows, cols int, threads int, out []float64) error {
	if rows < 0 || cols != m.NumFeatures() {
		return pferr.Argumentf("the model takes %d features per row, got %d", m.NumFeatures(), cols)
	}
	if len(x) != rows*cols {
		return pferr.Argumentf("matrix has %d values, want %d x %d", len(x), rows, cols)
	}
	if len(out) != rows*m.Dimensions() {
		return pferr.Argumentf("output has %d values, want %d x %d", len(out), rows, m.Dimensions())
	}
	return pferr.AsModel(m.PredictRaw(x, rows, out, features.Threads(threads)))
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
		return pferr.Modelf("rank needs a model with one output per item; this one has %d (use predict)", m.Dimensions())
	}
	if m.NumFeatures() != features.NumFeatures {
		return pferr.Modelf("the model takes %d features, pyfeat computes %d", m.NumFeatures(), features.NumFeatures)
	}
	k := len(order)
	if len(scores) != k || k > n {
		return pferr.Argumentf("order and scores must have the same length <= %d items, got %d and %d", n, k, len(scores))
	}
	if featuresOut != nil && len(featuresOut) != n*features.NumFeatures {
		return pferr.Argumentf("features buffer has %d values, want %d x %d", len(featuresOut), n, features.NumFeatures)
	}
	sc := getRankScratch(n)
	defer rankScratchPool.Put(sc)
	raw, idx := sc.raw[:n], sc.idx[:n]
	// Each block of rows is scored by the goroutine that computed it, while
	// the rows are still in its cache; without a features buffer the
	// request's feature matrix is never held in memory at once.
	score := func(start, end int, rows []float32) error {
		faults.Point("rank-sink")
		return pferr.AsModel(m.PredictRaw(rows, end-start, raw[start:end], 1))
	}
	var ftm *features.Timings
	if tm != nil {
		ftm = &tm.Timings
	}
	if err := features.ComputeBlocksTimed(user, items, c, threads, featuresOut, nil, score, ftm); err != nil {
		return err
	}
	var t0 time.Time
	if tm != nil {
		t0 = time.Now()
		defer func() { tm.TopK = int64(time.Since(t0)) }()
	}
	top := topK(raw, idx, k)
	for i, j := range top {
		order[i] = j
		scores[i] = raw[j]
	}
	return nil
}

// topK returns the indices of the k best scores, best first: descending,
// NaN last, ties in input order. The order is total (the index breaks
// ties), so any correct selection gives the same answer; for k well below
// n a bounded heap (n log k) replaces sorting all n. idx is scratch of
// len(raw).
func topK(raw []float64, idx []int64, k int) []int64 {
	// before(a, b) < 0 when a ranks before b.
	before := func(a, b int64) int {
		sa, sb := raw[a], raw[b]
		an, bn := math.IsNaN(sa), math.IsNaN(sb)
		switch {
		case an || bn:
			if an != bn {
				return cmp.Compare(b2i(an), b2i(bn)) // NaN last
			}
		case sa != sb:
			return cmp.Compare(sb, sa) // descending
		}
		return cmp.Compare(a, b) // ties: input order
	}
	n := len(raw)
	if k == 0 {
		return idx[:0]
	}
	if k*4 >= n {
		for i := range idx {
			idx[i] = int64(i)
		}
		slices.SortFunc(idx, before)
		return idx[:k]
	}
	// A heap of the k best so far, the worst of them at the root.
	h := idx[:0]
	down := func(i int) {
		for {
			w, l, r := i, 2*i+1, 2*i+2
			if l < len(h) && before(h[l], h[w]) > 0 {
				w = l
			}
			if r < len(h) && before(h[r], h[w]) > 0 {
				w = r
			}
			if w == i {
				return
			}
			h[i], h[w] = h[w], h[i]
			i = w
		}
	}
	for i := 0; i < n; i++ {
		j := int64(i)
		if len(h) < k {
			h = append(h, j)
			for c := len(h) - 1; c > 0; { // up
				p := (c - 1) / 2
				if before(h[c], h[p]) <= 0 {
					break
				}
				h[c], h[p] = h[p], h[c]
				c = p
			}
		} else if before(j, h[0]) < 0 {
			h[0] = j
			down(0)
		}
	}
	slices.SortFunc(h, before)
	return h
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
