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
// (n x NumFeatures), catOut the categorical one (n x NumCatFeatures). user
// is the user context, started with features.Begin (the caller closes it).
// len(order) == len(scores) == top_k <= n (the caller allocates all three).
// tm, when not nil, receives where the time went.
//
// m takes the numeric columns, or the numeric columns and then the
// categorical ones (a model trained with them as cat_features): then the
// categorical ids are hashed as CatBoost hashes their decimal strings and
// the request is scored once its features are all computed.
func Rank(m catboost.Model, user *features.Pending, items features.Items, c *features.Candidates,
	threads int, featuresOut []float32, catOut []int64, scores []float64, order []int64, tm *Timings) error {
	n := items.Len()
	if m.Dimensions() != 1 {
		return pferr.Modelf("rank needs a model with one output per item; this one has %d (use predict)", m.Dimensions())
	}
	cm, err := rankLayout(m)
	if err != nil {
		return err
	}
	k := len(order)
	if len(scores) != k || k > n {
		return pferr.Argumentf("order and scores must have the same length <= %d items, got %d and %d", n, k, len(scores))
	}
	if featuresOut != nil && len(featuresOut) != n*features.NumFeatures {
		return pferr.Argumentf("features buffer has %d values, want %d x %d", len(featuresOut), n, features.NumFeatures)
	}
	if catOut != nil && len(catOut) != n*features.NumCatFeatures {
		return pferr.Argumentf("categorical features buffer has %d values, want %d x %d", len(catOut), n, features.NumCatFeatures)
	}
	sc := getRankScratch(n)
	defer rankScratchPool.Put(sc)
	raw, idx := sc.raw[:n], sc.idx[:n]
	// A numeric model's blocks of rows are scored by the goroutine that
	// computed them, while the rows are still in its cache; without a
	// features buffer the request's feature matrix is never held in memory
	// at once.
	var ftm *features.Timings
	if tm != nil {
		ftm = &tm.Timings
	}
	if cm == nil && catOut == nil {
		score := func(start, end int, rows []float32) error {
			faults.Point("rank-sink")
			return pferr.AsModel(m.PredictRaw(rows, end-start, raw[start:end], 1))
		}
		err = features.ComputeBlocksTimed(user, items, c, threads, featuresOut, nil, score, ftm)
	} else if cm == nil {
		// A numeric model on a request whose categorical columns are wanted.
		score := func(start, end int, rows []float32, _ []int64) error {
			faults.Point("rank-sink")
			return pferr.AsModel(m.PredictRaw(rows, end-start, raw[start:end], 1))
		}
		err = features.ComputeAllTimed(user, items, c, threads, featuresOut, nil, catOut, score, ftm)
	} else {
		// A categorical model scores the whole request at once, after the
		// features: its CTR tables are then walked once for all the rows,
		// by all the threads (see catboost.PredictRawCat), not once per
		// block of rows, and the rows share their combinations' lookups.
		rows, cats := featuresOut, catOut
		if rows == nil {
			rows = sc.floats(n * features.NumFeatures)
		}
		if cats == nil {
			cats = sc.ids(n * features.NumCatFeatures)
		}
		// Each block's ids are hashed by the goroutine that computed them.
		hashed := sc.hashes(n * features.NumCatFeatures)
		hash := func(start, end int, _ []float32, cats []int64) error {
			faults.Point("rank-sink")
			h := hashed[start*features.NumCatFeatures : end*features.NumCatFeatures]
			for i, v := range cats {
				h[i] = hashID(v)
			}
			return nil
		}
		if err = features.ComputeAllTimed(user, items, c, threads, rows, nil, cats, hash, ftm); err != nil {
			return err
		}
		var t0 time.Time
		if tm != nil {
			t0 = time.Now()
		}
		err = pferr.AsModel(cm.PredictRawCat(rows, hashed, n, raw, features.Threads(threads)))
		if tm != nil {
			tm.Score = int64(time.Since(t0))
		}
	}
	if err != nil {
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

// rankLayout checks that m takes pyfeat's columns: the numeric ones, or the
// numeric ones then the categorical ones, in order. It returns m as a
// CategoricalModel in the second case, nil in the first.
func rankLayout(m catboost.Model) (catboost.CategoricalModel, error) {
	cm, ok := m.(catboost.CategoricalModel)
	if !ok || cm.NumCatFeatures() == 0 {
		if m.NumFeatures() != features.NumFeatures {
			return nil, pferr.Modelf("the model takes %d features, pyfeat computes %d", m.NumFeatures(), features.NumFeatures)
		}
		return nil, nil
	}
	if m.NumFeatures() != features.NumFeatures || cm.NumCatFeatures() != features.NumCatFeatures {
		return nil, pferr.Modelf("the model takes %d numeric and %d categorical features, pyfeat computes %d and %d",
			m.NumFeatures(), cm.NumCatFeatures(), features.NumFeatures, features.NumCatFeatures)
	}
	floats, cats := cm.FlatIndexes()
	for i, f := range floats {
		if f != i {
			return nil, pferr.Modelf("the model's numeric feature %d is column %d of its training table, want %d", i, f, i)
		}
	}
	for i, f := range cats {
		if f != features.NumFeatures+i {
			return nil, pferr.Modelf("the model's categorical feature %d is column %d of its training table, want %d",
				i, f, features.NumFeatures+i)
		}
	}
	return cm, nil
}

// smallIDHashes holds the hashes of the ids 0..4095 and catMissingHash
// that of features.CatMissing: codes, categories and regions are small ids,
// and a table lookup costs less than formatting and hashing them.
var (
	smallIDHashes = func() (t [4096]uint32) {
		for i := range t {
			t[i] = catboost.HashCategoricalInt(int64(i))
		}
		return
	}()
	catMissingHash = catboost.HashCategoricalInt(features.CatMissing)
)

// hashID is catboost.HashCategoricalInt(v): CatBoost's hash of v's decimal
// string, the string pyfeat train gives CatBoost for the id.
func hashID(v int64) uint32 {
	if uint64(v) < uint64(len(smallIDHashes)) {
		return smallIDHashes[v]
	}
	if v == features.CatMissing {
		return catMissingHash
	}
	return catboost.HashCategoricalInt(v)
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
	// For categorical models: the request's feature rows, categorical ids
	// and their hashes.
	rows   []float32
	catIDs []int64
	cat    []uint32
}

// grow returns buf with length n, reallocated if it is too small.
func grow[T any](buf *[]T, n int) []T {
	if cap(*buf) < n {
		*buf = make([]T, n)
	}
	return (*buf)[:n]
}

func (s *rankScratch) hashes(n int) []uint32  { return grow(&s.cat, n) }
func (s *rankScratch) floats(n int) []float32 { return grow(&s.rows, n) }
func (s *rankScratch) ids(n int) []int64      { return grow(&s.catIDs, n) }

var rankScratchPool = sync.Pool{New: func() any { return new(rankScratch) }}

func getRankScratch(n int) *rankScratch {
	s := rankScratchPool.Get().(*rankScratch)
	if cap(s.raw) < n {
		s.raw = make([]float64, n)
		s.idx = make([]int64, n)
	}
	return s
}
