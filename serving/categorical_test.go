package serving

import (
	"math"
	"slices"
	"sync"
	"testing"

	"github.com/pyfeat/pyfeat/catboost"
	"github.com/pyfeat/pyfeat/features"
)

// catModel is a constModel that takes categorical features too: a row's
// score mixes its float sum with its hashed categorical values, so a
// wrong hash, column or row shows in the score.
type catModel struct {
	constModel
	nCat      int
	floatFlat []int
	catFlat   []int
}

func newCatModel() *catModel {
	m := &catModel{constModel: constModel{nf: features.NumFeatures, dims: 1, w: 1}, nCat: features.NumCatFeatures}
	for i := 0; i < m.nf; i++ {
		m.floatFlat = append(m.floatFlat, i)
	}
	for i := 0; i < m.nCat; i++ {
		m.catFlat = append(m.catFlat, m.nf+i)
	}
	return m
}

func (m *catModel) NumCatFeatures() int { return m.nCat }
func (m *catModel) FlatIndexes() (floats, cats []int) {
	return slices.Clone(m.floatFlat), slices.Clone(m.catFlat)
}

func (m *catModel) PredictRawCat(x []float32, cats []uint32, n int, out []float64, threads int) error {
	if len(cats) != n*m.nCat {
		panic("bad categorical matrix")
	}
	for i := 0; i < n; i++ {
		out[i] = 0
		for _, v := range x[i*m.nf : (i+1)*m.nf] {
			if !math.IsNaN(float64(v)) {
				out[i] += float64(v)
			}
		}
		for j, h := range cats[i*m.nCat : (i+1)*m.nCat] {
			out[i] += float64(h%1000) * float64(j+1)
		}
	}
	return nil
}

// wantCatScores scores a request the slow way: the two matrices from
// features, each id hashed with catboost.HashCategoricalInt.
func wantCatScores(t *testing.T, m *catModel, user []byte, items features.Items, c *features.Candidates) ([]float64, []int64) {
	t.Helper()
	n := items.Len()
	x := make([]float32, n*features.NumFeatures)
	cats := make([]int64, n*features.NumCatFeatures)
	p := features.Begin(user, false)
	defer p.Close()
	if err := features.ComputeAllFrom(p, items, c, 1, x, nil, cats, nil); err != nil {
		t.Fatal(err)
	}
	hashed := make([]uint32, len(cats))
	for i, v := range cats {
		hashed[i] = catboost.HashCategoricalInt(v)
	}
	out := make([]float64, n)
	if err := m.PredictRawCat(x, hashed, n, out, 1); err != nil {
		t.Fatal(err)
	}
	return out, cats
}

func catRequest(n int) ([]byte, features.Items, *features.Candidates) {
	user := record("user_id", 1, "now", 1_767_225_600, "platform", "android", "region", 12)
	recs := make([][]byte, n)
	c := &features.Candidates{Source: make([]int64, n)}
	for i := range recs {
		// Small ids (the table) and large ones (hashed per value), and
		// items without city or condition (the missing value).
		kv := []any{"id", i, "title", "диван", "category", i % 9, "subcategory", 100 + i%50, "price", 100.5,
			"created_at", 1_767_000_000, "seller_id", int64(i) * 1_000_003, "region", -i}
		if i%3 == 0 {
			kv = append(kv, "city", i, "condition", "used", "vas", "x2")
		}
		recs[i] = record(kv...)
		c.Source[i] = int64(i % 8)
	}
	return user, features.Concat(recs), c
}

// Rank with a categorical model scores every item with its numeric row and
// its hashed categorical row, whatever the threads; the categorical matrix
// it returns is features'.
func TestRankCategorical(t *testing.T) {
	m := newCatModel()
	const n = 5*features.Block + 17
	user, items, c := catRequest(n)
	want, wantCats := wantCatScores(t, m, user, items, c)
	for _, threads := range []int{1, 2, 4} {
		scores, order := make([]float64, n), make([]int64, n)
		cats := make([]int64, n*features.NumCatFeatures)
		p := features.Begin(user, threads == 2)
		err := Rank(m, p, items, c, threads, nil, cats, scores, order, nil)
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(cats, wantCats) {
			t.Fatalf("threads=%d: categorical matrix differs", threads)
		}
		for i, o := range order {
			if scores[i] != want[o] {
				t.Fatalf("threads=%d: item %d scored %v, want %v", threads, o, scores[i], want[o])
			}
		}
		if !slices.IsSortedFunc(scores, func(a, b float64) int { return -cmpF(a, b) }) {
			t.Fatal("scores not descending")
		}
	}
	// Concurrent calls (run with -race).
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			scores, order := make([]float64, 10), make([]int64, 10)
			p := features.Begin(user, false)
			defer p.Close()
			if err := Rank(m, p, items, c, 2, nil, nil, scores, order, nil); err != nil {
				t.Error(err)
				return
			}
			if scores[0] != want[order[0]] {
				t.Error("concurrent rank differs")
			}
		}()
	}
	wg.Wait()
}

func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// hashID is catboost.HashCategoricalInt, table or not.
func TestHashID(t *testing.T) {
	for _, v := range []int64{0, 1, 9, 4095, 4096, -1, 1 << 40, math.MaxInt64, features.CatMissing, features.CatMissing + 1} {
		if hashID(v) != catboost.HashCategoricalInt(v) {
			t.Fatalf("hashID(%d) differs", v)
		}
	}
}

// A categorical model whose columns are not pyfeat's is refused.
func TestRankCategoricalLayout(t *testing.T) {
	user, items, c := catRequest(10)
	scores, order := make([]float64, 10), make([]int64, 10)
	cases := map[string]func(m *catModel){
		"fewer categorical":   func(m *catModel) { m.nCat--; m.catFlat = m.catFlat[:m.nCat] },
		"another order":       func(m *catModel) { m.catFlat[0], m.catFlat[1] = m.catFlat[1], m.catFlat[0] },
		"interleaved columns": func(m *catModel) { m.floatFlat[76], m.catFlat[0] = m.catFlat[0], m.floatFlat[76] },
	}
	for name, change := range cases {
		m := newCatModel()
		change(m)
		p := features.Begin(user, false)
		err := Rank(m, p, items, c, 1, nil, nil, scores, order, nil)
		p.Close()
		if kindOf(err) != model {
			t.Fatalf("%s: got %v, want a model error", name, err)
		}
	}
	// A numeric model still ranks, and can return the categorical matrix.
	cats := make([]int64, 10*features.NumCatFeatures)
	p := features.Begin(user, false)
	defer p.Close()
	if err := Rank(&constModel{nf: features.NumFeatures, dims: 1, w: 1}, p, items, c, 1, nil, cats, scores, order, nil); err != nil {
		t.Fatal(err)
	}
	if cats[features.NumCatFeatures*1+0] != 1 { // item 1's category
		t.Fatalf("categorical matrix not written: %v", cats[:features.NumCatFeatures*2])
	}
}
