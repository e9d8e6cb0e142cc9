package catboost

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// catGoldenDir holds the fixtures written by testdata/make_cat_golden.py.
const catGoldenDir = "testdata/cat"

type catGoldenCase struct {
	Name          string   `json:"name"`
	Layout        string   `json:"layout"`
	Rows          int      `json:"rows"`
	FloatFeatures int      `json:"float_features"`
	CatFeatures   int      `json:"cat_features"`
	Dimensions    int      `json:"dimensions"`
	Trees         int      `json:"trees"`
	Ctrs          int      `json:"ctrs"`
	SplitTypes    []string `json:"split_types"`
}

func readCatManifest(t *testing.T) []catGoldenCase {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(catGoldenDir, "manifest.json"))
	if err != nil {
		t.Fatalf("categorical fixtures missing (regenerate with catboost/testdata/make_cat_golden.py): %v", err)
	}
	var m struct {
		Cases []catGoldenCase `json:"cases"`
	}
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(m.Cases) < 20 {
		t.Fatalf("manifest.json lists %d cases, want at least 20", len(m.Cases))
	}
	return m.Cases
}

// readCats reads NAME.cats.json and hashes it as the public functions do:
// strings with HashCategorical, integers with HashCategoricalInt.
func readCats(t testing.TB, path string, ncat int) []uint32 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var rows [][]any
	if err := dec.Decode(&rows); err != nil {
		t.Fatal(err)
	}
	out := make([]uint32, 0, len(rows)*ncat)
	for i, r := range rows {
		if len(r) != ncat {
			t.Fatalf("%s: row %d has %d values, want %d", path, i, len(r), ncat)
		}
		for _, v := range r {
			switch v := v.(type) {
			case string:
				out = append(out, HashCategorical(v))
			case json.Number:
				n, err := strconv.ParseInt(string(v), 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, HashCategoricalInt(n))
			default:
				t.Fatalf("%s: row %d: value %v of type %T", path, i, v, v)
			}
		}
	}
	return out
}

// TestCatGolden requires bit-identical agreement with catboost's own
// RawFormulaVal on models with categorical features, for every thread count
// and for row counts that end inside a block.
func TestCatGolden(t *testing.T) { forEachPath(t, testCatGolden) }

// TestCatGoldenNarrow is TestCatGolden with every table of one CTR in the
// narrow layout, which the fixtures' tables are too small to get.
func TestCatGoldenNarrow(t *testing.T) {
	saved := narrowMinSlots
	defer func() { narrowMinSlots = saved }()
	narrowMinSlots = 0
	m, err := LoadJSONFile(filepath.Join(catGoldenDir, "logloss_d6_cplx4.json"))
	if err != nil {
		t.Fatal(err)
	}
	narrow := 0
	for _, n := range m.cat.trie {
		for _, tb := range n.tables {
			if tb.narrow != nil {
				narrow++
			}
		}
	}
	if narrow == 0 {
		t.Fatal("no narrow table")
	}
	forEachPath(t, testCatGolden)
}

// TestCatGoldenWalks is TestCatGolden with every trie level walked row by
// row, and with every level walked by distinct hash, and with the bins
// written a word at a time as on a big-endian machine (the pure-Go trees
// only: the AVX2 kernels read bytes).
func TestCatGoldenWalks(t *testing.T) {
	savedD, savedP := distinctPct, pairPct
	defer func() { distinctPct, pairPct = savedD, savedP }()
	walks := [][2]int{{0, 0}, {100, 200}, {0, 200}, {100, 0}, {savedD, savedP}}
	for _, w := range walks[:4] {
		distinctPct, pairPct = w[0], w[1]
		t.Run(fmt.Sprintf("distinct=%d,pairs=%d", w[0], w[1]), func(t *testing.T) { forEachPath(t, testCatGolden) })
	}
	savedLE, savedVec := littleEndian, useAVX2
	defer func() { littleEndian, useAVX2 = savedLE, savedVec }()
	littleEndian, useAVX2 = false, false
	for _, w := range walks {
		distinctPct, pairPct = w[0], w[1]
		t.Run(fmt.Sprintf("words/distinct=%d,pairs=%d", w[0], w[1]), testCatGolden)
	}
}

func testCatGolden(t *testing.T) {
	for _, c := range readCatManifest(t) {
		t.Run(c.Name, func(t *testing.T) {
			m, err := LoadJSONFile(filepath.Join(catGoldenDir, c.Name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if m.NumFeatures() != c.FloatFeatures || m.NumCatFeatures() != c.CatFeatures || m.Dimensions() != c.Dimensions || m.NumTrees() != c.Trees {
				t.Fatalf("shape: %d+%d features, %d dims, %d trees; want %d+%d, %d, %d", m.NumFeatures(), m.NumCatFeatures(),
					m.Dimensions(), m.NumTrees(), c.FloatFeatures, c.CatFeatures, c.Dimensions, c.Trees)
			}
			floats, cats := m.FlatIndexes()
			for _, fl := range floats {
				if c.Layout[fl] != 'f' {
					t.Fatalf("float feature at column %d of layout %s", fl, c.Layout)
				}
			}
			for _, fl := range cats {
				if c.Layout[fl] != 'c' {
					t.Fatalf("categorical feature at column %d of layout %s", fl, c.Layout)
				}
			}
			x := readFloat32s(t, filepath.Join(catGoldenDir, c.Name+".floats.f32"))
			h := readCats(t, filepath.Join(catGoldenDir, c.Name+".cats.json"), c.CatFeatures)
			want := readFloat64s(t, filepath.Join(catGoldenDir, c.Name+".expected.f64"))
			if len(x) != c.Rows*c.FloatFeatures || len(want) != c.Rows*c.Dimensions || len(h) != c.Rows*c.CatFeatures {
				t.Fatalf("fixture sizes %d, %d, %d do not match the manifest", len(x), len(h), len(want))
			}
			if err := m.PredictRaw(x, c.Rows, make([]float64, c.Rows*c.Dimensions), 1); err == nil {
				t.Error("PredictRaw without categorical values: no error")
			}
			for _, threads := range []int{1, 2, 0} {
				for _, n := range []int{c.Rows, 1, blockSize + 1, c.Rows - 3} {
					got := make([]float64, n*c.Dimensions)
					if err := m.PredictRawCat(x[:n*c.FloatFeatures], h[:n*c.CatFeatures], n, got, threads); err != nil {
						t.Fatal(err)
					}
					for i := range got {
						if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
							r := i / c.Dimensions
							t.Fatalf("threads=%d n=%d: row %d dim %d = %v (%#x), catboost %v (%#x)",
								threads, n, r, i%c.Dimensions, got[i], math.Float64bits(got[i]), want[i], math.Float64bits(want[i]))
						}
					}
				}
			}
		})
	}
}

// TestHashCategorical checks the value hash against the one-hot values of
// the fixtures: catboost stores each one-hot value as the hash of the
// training string it saw, and the training strings are known, across every
// CityHash64 length path (0, 1-3, 4-8, 9-16, 17-32, 33-64, > 64 bytes).
func TestHashCategorical(t *testing.T) {
	known := map[uint32]bool{}
	for _, c := range readCatManifest(t) {
		data, err := os.ReadFile(filepath.Join(catGoldenDir, c.Name+".json"))
		if err != nil {
			t.Fatal(err)
		}
		var js struct {
			FeaturesInfo struct {
				Cat []struct {
					Values []int64 `json:"values"`
				} `json:"categorical_features"`
			} `json:"features_info"`
		}
		if err := json.Unmarshal(data, &js); err != nil {
			t.Fatal(err)
		}
		for _, f := range js.FeaturesInfo.Cat {
			for _, v := range f.Values {
				known[uint32(v)] = true
			}
		}
	}
	// Values the generator trains with (POOLS in make_cat_golden.py).
	var values []string
	values = append(values, "a", "b", "c", "город", "東京", "ñandú", "Zürich", "naïve", "Ελλάδα", "😀", "x")
	for _, k := range []int{5, 12, 20, 30, 40, 60, 70, 90, 130, 200} {
		values = append(values, "seller-"+strings.Repeat("x", k)+strconv.Itoa(k))
	}
	for i := range 8 {
		values = append(values, strconv.Itoa(i))
	}
	lengths := map[int]bool{}
	found := 0
	for _, v := range values {
		if known[HashCategorical(v)] {
			found++
			lengths[cityPath(len(v))] = true
		}
	}
	if found < 8 || len(lengths) < 4 {
		t.Errorf("only %d training values (length paths %v) found among the one-hot hashes of the fixtures", found, lengths)
	}
	for i := int64(-3); i < 40; i++ {
		if HashCategoricalInt(i) != HashCategorical(strconv.FormatInt(i, 10)) {
			t.Fatalf("HashCategoricalInt(%d) differs from the hash of its decimal string", i)
		}
	}
	if HashCategoricalBytes([]byte("город")) != HashCategorical("город") {
		t.Error("HashCategoricalBytes differs from HashCategorical")
	}
}

func cityPath(n int) int {
	switch {
	case n == 0:
		return 0
	case n < 4:
		return 1
	case n <= 8:
		return 2
	case n <= 16:
		return 3
	case n <= 32:
		return 4
	case n <= 64:
		return 5
	}
	return 6
}

// TestCityHashLengths runs every length up to 300 (each of CityHash64's
// paths and the 64-byte loop's iterations) without reading out of bounds;
// the values themselves are checked against catboost's by
// TestHashCategorical and by every golden model.
func TestCityHashLengths(t *testing.T) {
	seen := map[uint64]int{}
	buf := make([]byte, 300)
	for i := range buf {
		buf[i] = byte(i*7 + 3)
	}
	for n := 0; n <= len(buf); n++ {
		h := cityHash64(buf[:n])
		if p, dup := seen[h]; dup {
			t.Fatalf("lengths %d and %d hash alike", p, n)
		}
		seen[h] = n
	}
}

// TestFeatureFreqAsCounter: catboost's CPU trainer cannot make FeatureFreq
// CTRs, but its evaluator treats them exactly as Counter; a Counter model
// with its CTRs renamed must give the same outputs.
func TestFeatureFreqAsCounter(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(catGoldenDir, "logloss_d4_counter.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"Counter"`)) {
		t.Fatal("fixture has no Counter CTR")
	}
	renamed := bytes.ReplaceAll(data, []byte(`"Counter"`), []byte(`"FeatureFreq"`))
	renamed = bytes.ReplaceAll(renamed, []byte(`\"type\":\"Counter\"`), []byte(`\"type\":\"FeatureFreq\"`))
	a, err := LoadJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	b, err := LoadJSON(renamed)
	if err != nil {
		t.Fatal(err)
	}
	var c catGoldenCase
	for _, cc := range readCatManifest(t) {
		if cc.Name == "logloss_d4_counter" {
			c = cc
		}
	}
	x := readFloat32s(t, filepath.Join(catGoldenDir, c.Name+".floats.f32"))
	h := readCats(t, filepath.Join(catGoldenDir, c.Name+".cats.json"), c.CatFeatures)
	oa, ob := make([]float64, c.Rows), make([]float64, c.Rows)
	if err := a.PredictRawCat(x, h, c.Rows, oa, 1); err != nil {
		t.Fatal(err)
	}
	if err := b.PredictRawCat(x, h, c.Rows, ob, 1); err != nil {
		t.Fatal(err)
	}
	for i := range oa {
		if oa[i] != ob[i] {
			t.Fatalf("row %d: FeatureFreq %v, Counter %v", i, ob[i], oa[i])
		}
	}
}

// TestCatBrokenFiles: contradictions in the categorical parts are plain
// errors naming the place, not panics and not ErrUnsupported.
func TestCatBrokenFiles(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(catGoldenDir, "logloss_d2_onehot6.json"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadJSON(data); err != nil {
		t.Fatal(err)
	}
	var js map[string]any
	if err := json.Unmarshal(data, &js); err != nil {
		t.Fatal(err)
	}
	edit := func(f func(m map[string]any)) []byte {
		var m map[string]any
		_ = json.Unmarshal(data, &m)
		f(m)
		out, _ := json.Marshal(m)
		return out
	}
	fi := func(m map[string]any) map[string]any { return m["features_info"].(map[string]any) }
	cases := []struct {
		name string
		js   []byte
		msg  string
	}{
		{"no ctr_data", edit(func(m map[string]any) { delete(m, "ctr_data") }), "ctr_data has no table"},
		{"bad hash", edit(func(m map[string]any) {
			for _, v := range m["ctr_data"].(map[string]any) {
				v.(map[string]any)["hash_map"].([]any)[0] = "x"
			}
		}), "hash_map[0]"},
		{"bad stride", edit(func(m map[string]any) {
			for _, v := range m["ctr_data"].(map[string]any) {
				v.(map[string]any)["hash_stride"] = 7
			}
		}), "hash_stride"},
		{"ctr cat index", edit(func(m map[string]any) {
			for _, c := range fi(m)["ctrs"].([]any) {
				for _, e := range c.(map[string]any)["elements"].([]any) {
					if e.(map[string]any)["combination_element"] == "cat_feature_value" {
						e.(map[string]any)["cat_feature_index"] = 99
					}
				}
			}
		}), "out of range"},
		{"split index", edit(func(m map[string]any) {
			for _, tr := range m["oblivious_trees"].([]any) {
				for _, s := range tr.(map[string]any)["splits"].([]any) {
					if s.(map[string]any)["split_type"] != "FloatFeature" {
						s.(map[string]any)["split_index"] = 100000
					}
				}
			}
		}), "split_index"},
		{"one-hot value", edit(func(m map[string]any) {
			for _, tr := range m["oblivious_trees"].([]any) {
				for _, s := range tr.(map[string]any)["splits"].([]any) {
					if s.(map[string]any)["split_type"] == "OneHotFeature" {
						s.(map[string]any)["value"] = 12345
					}
				}
			}
		}), "does not name"},
		{"flat index clash", edit(func(m map[string]any) {
			fi(m)["categorical_features"].([]any)[0].(map[string]any)["flat_feature_index"] = 0
		}), "flat_feature_index"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadJSON(c.js)
			if err == nil {
				t.Fatal("loaded")
			}
			if errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q: want a plain error naming %q", err, c.msg)
			}
		})
	}
}

func TestTinyCatModel(t *testing.T) {
	m, err := LoadJSON([]byte(tinyCatModel))
	if err != nil {
		t.Fatal(err)
	}
	if m.NumFeatures() != 1 || m.NumCatFeatures() != 2 {
		t.Fatalf("%d float, %d cat features", m.NumFeatures(), m.NumCatFeatures())
	}
	// The CTR's table holds no hash a row can reach here, so its value is
	// the prior's, 0.5/1 = 0.5: between the borders, so "ctr > 0.75" is
	// false. The one-hot split is true for a value hashing to 7.
	x := []float32{0, 1}
	cats := []uint32{7, 0, 8, 0}
	out := make([]float64, 2)
	if err := m.PredictRawCat(x, cats, 2, out, 1); err != nil {
		t.Fatal(err)
	}
	if out[0] != 2+0.5 || out[1] != 1+0.25 {
		t.Errorf("outputs %v, want [2.5 1.25]", out)
	}
}

// TestNarrowProbing looks up hashes that share their home slot (so lie up
// to narrowMaxProbe slots off it), hashes next to them that are not in the
// table, and others, in narrow and packed tables against the plain one.
func TestNarrowProbing(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var keys []uint64
	for home := range uint64(3) {
		for i := range uint64(narrowMaxProbe - 1) {
			keys = append(keys, home<<53|i*7919+1)
		}
	}
	keys = append(keys, math.MaxUint64, 0)
	for range 900 {
		keys = append(keys, rng.Uint64())
	}
	lk := newCtrLookup(keys)
	lk.outs = []ctrOut{{off: 0, slots: 1}}
	lk.bins = make([]uint16, len(keys)+1)
	for e := range keys {
		lk.bins[e] = uint16(e%120 + 1)
	}
	lk.bins[len(keys)] = 3 // a missing hash's bin; some entries have it too
	queries := slices.Clone(keys)
	for home := range uint64(4) {
		for i := range uint64(narrowMaxProbe + 2) {
			queries = append(queries, home<<53|i*7919+2, home<<53|i*7919+1)
		}
	}
	for range 500 {
		queries = append(queries, rng.Uint64())
	}
	want := make([]byte, len(queries))
	for d, h := range queries {
		want[d] = byte(lk.bins[lk.find(h)])
	}
	for _, minSlots := range []int{0, math.MaxInt} {
		saved := narrowMinSlots
		narrowMinSlots = minSlots
		t2 := &ctrLookup{keys: slices.Clone(lk.keys), entry: slices.Clone(lk.entry), shift: lk.shift,
			outs: lk.outs, bins: slices.Clone(lk.bins)}
		t2.pack()
		narrowMinSlots = saved
		if (t2.narrow != nil) != (minSlots == 0) {
			t.Fatalf("narrowMinSlots %d: narrow table %v", minSlots, t2.narrow != nil)
		}
		stride := blockWords
		nblk := (len(queries) + blockSize - 1) / blockSize
		super := make([]uint64, nblk*stride)
		superBytes := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(super))), len(super)*8)
		for _, asBytes := range [][]byte{superBytes, nil} {
			clear(super)
			vals := make([]uint64, 2*len(queries))
			if t2.narrow != nil {
				fillNarrow(t2, queries, vals, super, asBytes, stride)
			} else {
				fillPacked(t2, queries, vals, super, asBytes, stride)
			}
			for d := range queries {
				got := byte(super[(d/blockSize)*stride+(d%blockSize)/8] >> (8 * (d % 8)))
				if got != want[d] {
					t.Fatalf("narrow %v, bytes %v: hash %#x: bin %d, want %d", t2.narrow != nil, asBytes != nil, queries[d], got, want[d])
				}
			}
		}
	}
}
