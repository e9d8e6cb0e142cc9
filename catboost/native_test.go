package catboost

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

var (
	nan  = float32(math.NaN())
	pInf = float32(math.Inf(1))
	nInf = float32(math.Inf(-1))
)

// tinyModel has two features and two trees whose leaf values are powers of
// two, so that every expected sum below is exact and tells which leaves were
// taken.
const tinyModel = `{
  "model_info": {"pyfeat_spec_hash": "abc", "params": {"b": [1, 2.5], "a": "x"}},
  "features_info": {"float_features": [
    {"borders": [0.5, 1.5], "feature_id": "f0", "feature_index": 0, "flat_feature_index": 0, "has_nans": false, "nan_value_treatment": "AsIs"},
    {"borders": [-1], "feature_id": "f1", "feature_index": 1, "flat_feature_index": 1, "has_nans": true, "nan_value_treatment": "AsTrue"}
  ]},
  "oblivious_trees": [
    {"leaf_values": [1, 2, 4, 8], "leaf_weights": [1, 1, 1, 1], "splits": [
      {"border": 0.5, "float_feature_index": 0, "split_index": 0, "split_type": "FloatFeature"},
      {"border": -1, "float_feature_index": 1, "split_index": 2, "split_type": "FloatFeature"}]},
    {"leaf_values": [0.25, 0.5], "splits": [
      {"border": 1.5, "float_feature_index": 0, "split_index": 1, "split_type": "FloatFeature"}]}
  ],
  "scale_and_bias": [2, [0.125]]
}`

func mustLoad(t *testing.T, js string) *NativeModel {
	t.Helper()
	m, err := LoadJSON([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func predict(t *testing.T, m *NativeModel, x []float32, threads int) []float64 {
	t.Helper()
	n := len(x) / m.NumFeatures()
	out := make([]float64, n*m.Dimensions())
	if err := m.PredictRaw(x, n, out, threads); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestTinyModelExact(t *testing.T) { forEachPath(t, testTinyModelExact) }

func testTinyModelExact(t *testing.T) {
	m := mustLoad(t, tinyModel)
	if m.NumFeatures() != 2 || m.Dimensions() != 1 || m.NumTrees() != 2 {
		t.Fatalf("shape %d features, %d dims, %d trees", m.NumFeatures(), m.Dimensions(), m.NumTrees())
	}
	cases := []struct {
		f0, f1 float32
		want   float64 // 2 * (tree1 + tree2) + 0.125
	}{
		{0, 0, 2*(4+0.25) + 0.125},     // f0 <= 0.5, f1 > -1
		{0.5, -1, 2*(1+0.25) + 0.125},  // exactly at both borders: not greater
		{0.6, -2, 2*(2+0.25) + 0.125},  // f0 > 0.5 only
		{1.5, 0, 2*(8+0.25) + 0.125},   // f0 at the second border
		{1.51, 0, 2*(8+0.5) + 0.125},   // f0 above both borders
		{nan, -5, 2*(1+0.25) + 0.125},  // AsIs NaN: every comparison false
		{nan, nan, 2*(4+0.25) + 0.125}, // AsTrue NaN: every comparison true
		{pInf, nInf, 2*(2+0.5) + 0.125},
		{nInf, pInf, 2*(4+0.25) + 0.125},
		{math.Nextafter32(0.5, 1), math.Nextafter32(-1, -2), 2*(2+0.25) + 0.125},
	}
	var x []float32
	for _, c := range cases {
		x = append(x, c.f0, c.f1)
	}
	for _, threads := range []int{1, 2, 0} {
		got := predict(t, m, x, threads)
		for i, c := range cases {
			if got[i] != c.want {
				t.Errorf("threads=%d row (%v, %v) = %v, want %v", threads, c.f0, c.f1, got[i], c.want)
			}
		}
	}
}

func TestNaNTreatments(t *testing.T) { forEachPath(t, testNaNTreatments) }

func testNaNTreatments(t *testing.T) {
	// One depth-1 tree per feature, all at border 0; leaf value 2^f on the
	// true side, so the sum's bits tell which splits held.
	js := `{"features_info": {"float_features": [
	  {"borders": [0], "feature_index": 0, "flat_feature_index": 0, "nan_value_treatment": "AsIs"},
	  {"borders": [0], "feature_index": 1, "flat_feature_index": 1, "nan_value_treatment": "AsFalse"},
	  {"borders": [0], "feature_index": 2, "flat_feature_index": 2, "nan_value_treatment": "AsTrue"},
	  {"borders": [3.4028234663852886e+38], "feature_index": 3, "flat_feature_index": 3, "nan_value_treatment": "AsTrue"},
	  {"borders": [-3.4028234663852886e+38], "feature_index": 4, "flat_feature_index": 4, "nan_value_treatment": "AsFalse"}]},
	 "oblivious_trees": [
	  {"leaf_values": [0, 1], "splits": [{"border": 0, "float_feature_index": 0, "split_type": "FloatFeature"}]},
	  {"leaf_values": [0, 2], "splits": [{"border": 0, "float_feature_index": 1, "split_type": "FloatFeature"}]},
	  {"leaf_values": [0, 4], "splits": [{"border": 0, "float_feature_index": 2, "split_type": "FloatFeature"}]},
	  {"leaf_values": [0, 8], "splits": [{"border": 3.4028234663852886e+38, "float_feature_index": 3, "split_type": "FloatFeature"}]},
	  {"leaf_values": [0, 16], "splits": [{"border": -3.4028234663852886e+38, "float_feature_index": 4, "split_type": "FloatFeature"}]}],
	 "scale_and_bias": [1, [0]]}`
	m := mustLoad(t, js)
	rows := []struct {
		x    []float32
		want float64
	}{
		{[]float32{nan, nan, nan, nan, nan}, 4 + 8}, // only AsTrue holds, even above the largest float32
		{[]float32{1, 1, 1, pInf, 1}, 1 + 2 + 4 + 8 + 16},
		{[]float32{0, 0, 0, math.MaxFloat32, -math.MaxFloat32}, 0},
		{[]float32{pInf, pInf, pInf, pInf, nInf}, 1 + 2 + 4 + 8},
		{[]float32{nInf, nInf, nInf, nInf, nInf}, 0},
		{[]float32{float32(math.Copysign(0, -1)), -1e-45, 1e-45, 0, 0}, 4 + 16},
	}
	var x []float32
	for _, r := range rows {
		x = append(x, r.x...)
	}
	got := predict(t, m, x, 1)
	for i, r := range rows {
		if got[i] != r.want {
			t.Errorf("row %v = %v, want %v", r.x, got[i], r.want)
		}
	}
}

func TestMultiDimensional(t *testing.T) { forEachPath(t, testMultiDimensional) }

func testMultiDimensional(t *testing.T) {
	js := `{"features_info": {"float_features": [
	  {"borders": [0], "feature_index": 0, "flat_feature_index": 0, "nan_value_treatment": "AsIs"}]},
	 "oblivious_trees": [
	  {"leaf_values": [1, 2, 3, 10, 20, 30], "splits": [{"border": 0, "float_feature_index": 0, "split_index": 0, "split_type": "FloatFeature"}]},
	  {"leaf_values": [100, 200, 300], "splits": []}],
	 "scale_and_bias": [0.5, [1, -1, 0.25]]}`
	m := mustLoad(t, js)
	if m.Dimensions() != 3 {
		t.Fatalf("Dimensions() = %d", m.Dimensions())
	}
	got := predict(t, m, []float32{-1, 1, nan}, 2)
	want := []float64{
		0.5*101 + 1, 0.5*202 - 1, 0.5*303 + 0.25, // leaf 0
		0.5*110 + 1, 0.5*220 - 1, 0.5*330 + 0.25, // leaf 1
		0.5*101 + 1, 0.5*202 - 1, 0.5*303 + 0.25, // NaN AsIs: leaf 0
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestNoTrees(t *testing.T) { forEachPath(t, testNoTrees) }

func testNoTrees(t *testing.T) {
	m := mustLoad(t, `{"oblivious_trees": [], "scale_and_bias": [3, [1.5, 2.5]]}`)
	if m.NumFeatures() != 0 || m.Dimensions() != 2 {
		t.Fatalf("shape %d features, %d dims", m.NumFeatures(), m.Dimensions())
	}
	out := make([]float64, 4)
	if err := m.PredictRaw(nil, 2, out, 0); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(out, []float64{1.5, 2.5, 1.5, 2.5}) {
		t.Errorf("got %v", out)
	}
	// Without scale_and_bias the model is scale 1, bias 0, one dimension.
	m = mustLoad(t, `{"oblivious_trees": []}`)
	if m.Dimensions() != 1 || m.NumTrees() != 0 {
		t.Fatalf("shape %d dims, %d trees", m.Dimensions(), m.NumTrees())
	}
}

func TestFeatureNamesAndMetadata(t *testing.T) {
	m := mustLoad(t, tinyModel)
	if got := m.FeatureNames(); !slices.Equal(got, []string{"f0", "f1"}) {
		t.Errorf("FeatureNames() = %q", got)
	}
	meta := m.Metadata()
	if meta["pyfeat_spec_hash"] != "abc" {
		t.Errorf("pyfeat_spec_hash = %q", meta["pyfeat_spec_hash"])
	}
	// Expanded "params" come back as compact JSON, as catboost's loader does.
	if meta["params"] != `{"b":[1,2.5],"a":"x"}` {
		t.Errorf("params = %q", meta["params"])
	}
	// Results are copies: changing them must not change the model.
	meta["pyfeat_spec_hash"] = "changed"
	names := m.FeatureNames()
	names[0] = "changed"
	if m.Metadata()["pyfeat_spec_hash"] != "abc" || m.FeatureNames()[0] != "f0" {
		t.Error("Metadata or FeatureNames exposes the model's own storage")
	}

	m = mustLoad(t, `{"features_info": {"float_features": [
	  {"borders": [], "feature_index": 0, "flat_feature_index": 0, "feature_id": "", "nan_value_treatment": "AsIs"},
	  {"borders": [], "feature_index": 1, "flat_feature_index": 1, "nan_value_treatment": "AsIs"}]},
	 "oblivious_trees": []}`)
	if m.FeatureNames() != nil {
		t.Errorf("unnamed features: FeatureNames() = %q, want nil", m.FeatureNames())
	}
	if meta := m.Metadata(); meta == nil || len(meta) != 0 {
		t.Errorf("no model_info: Metadata() = %v, want empty non-nil", meta)
	}

	m = mustLoad(t, `{"features_info": {"float_features": [
	  {"borders": [], "feature_index": 0, "flat_feature_index": 0, "feature_id": "", "nan_value_treatment": "AsIs"},
	  {"borders": [], "feature_index": 1, "flat_feature_index": 1, "feature_name": "b", "nan_value_treatment": "AsIs"}]},
	 "oblivious_trees": []}`)
	if got := m.FeatureNames(); !slices.Equal(got, []string{"", "b"}) {
		t.Errorf("partly named: FeatureNames() = %q", got)
	}
}

// mutate returns tinyModel with one substring replaced, failing the test
// when the substring is not there (so a refusal case cannot pass vacuously).
func mutate(t *testing.T, old, new string) string {
	t.Helper()
	if strings.Count(tinyModel, old) != 1 {
		t.Fatalf("%q occurs %d times in tinyModel", old, strings.Count(tinyModel, old))
	}
	return strings.Replace(tinyModel, old, new, 1)
}

func TestRefusesUnsupported(t *testing.T) {
	cases := []struct{ name, js, msg string }{
		{"text features", mutate(t, `"float_features": [`, `"text_features": [{}], "float_features": [`), "text features"},
		{"embedding features", mutate(t, `"float_features": [`, `"embedding_features": [{}], "float_features": [`), "embedding features"},
		{"unknown features_info key", mutate(t, `"float_features": [`, `"future_features": [], "float_features": [`), "future_features"},
		{"non-symmetric trees", `{"trees": [{"value": 1}], "features_info": {}}`, "non-symmetric"},
		{"unknown split type", mutate(t, `"split_index": 1, "split_type": "FloatFeature"`, `"split_index": 1, "split_type": "EstimatedFeature"`), "EstimatedFeature"},
		{"unknown top-level key", mutate(t, `"scale_and_bias"`, `"leaf_stats": [], "scale_and_bias"`), "leaf_stats"},
		{"non-float column", mutate(t, `"feature_index": 1, "flat_feature_index": 1`, `"feature_index": 1, "flat_feature_index": 3`), "neither float nor categorical"},
		{"unknown CTR type", mutate(t, `"float_features": [`, `"categorical_features": [{"feature_index": 0, "flat_feature_index": 2}], "ctrs": [{"ctr_type": "Mystery"}], "float_features": [`), "Mystery"},
		{"unknown NaN treatment", mutate(t, `"AsTrue"`, `"AsMean"`), "AsMean"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := LoadJSON([]byte(c.js))
			if err == nil {
				t.Fatalf("loaded: %v", m)
			}
			if !errors.Is(err, ErrUnsupported) {
				t.Errorf("error does not match ErrUnsupported: %v", err)
			}
			if !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), "catboost: load JSON model: ") {
				t.Errorf("error %q lacks the prefix or %q", err, c.msg)
			}
		})
	}
	// Categorical parts that contradict each other are broken files, not
	// unsupported ones.
	broken := []struct{ name, js, msg string }{
		{"ctrs without cat features", mutate(t, `"float_features": [`, `"ctrs": [{"ctr_type": "Borders", "elements": [{"combination_element": "cat_feature_value", "cat_feature_index": 0}], "prior_numerator": 0, "prior_denomerator": 1, "shift": 0, "scale": 1, "target_border_idx": 0, "borders": [0.5]}], "float_features": [`), "ctrs without categorical_features"},
		{"ctr_data without cat features", mutate(t, `"scale_and_bias"`, `"ctr_data": {"x": {}}, "scale_and_bias"`), "ctr_data without categorical"},
		{"one-hot split without cat features", mutate(t, `"split_index": 1, "split_type": "FloatFeature"`, `"split_index": 1, "split_type": "OneHotFeature"`), "OneHotFeature"},
		{"ctr split without cat features", mutate(t, `"split_index": 1, "split_type": "FloatFeature"`, `"split_index": 1, "split_type": "OnlineCtr"`), "OnlineCtr"},
		{"cat feature out of place", mutate(t, `"float_features": [`, `"categorical_features": [{"feature_index": 1, "flat_feature_index": 2}], "float_features": [`), "feature_index 1"},
	}
	for _, c := range broken {
		t.Run(c.name, func(t *testing.T) {
			m, err := LoadJSON([]byte(c.js))
			if err == nil {
				t.Fatalf("loaded: %v", m)
			}
			if errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q: want a plain error naming %q", err, c.msg)
			}
		})
	}
	// Empty categorical sections, as an export may write them, are harmless.
	mustLoad(t, mutate(t, `"float_features": [`, `"categorical_features": [], "ctrs": null, "float_features": [`))
	mustLoad(t, mutate(t, `"scale_and_bias"`, `"ctr_data": {}, "scale_and_bias"`))
}

func TestRefusesMalformed(t *testing.T) {
	deep := strings.Repeat("[", 100000)
	cases := []struct{ name, js, msg string }{
		{"empty", ``, "invalid JSON"},
		{"not JSON", `catboost`, "invalid JSON"},
		{"top-level array", `[]`, "invalid JSON"},
		{"top-level null", `null`, "null"},
		{"deep nesting", `{"oblivious_trees": ` + deep, "invalid JSON"},
		{"trailing garbage", tinyModel + `}`, "invalid JSON"},
		{"missing trees", `{"features_info": {}}`, `missing "oblivious_trees"`},
		{"null trees", `{"oblivious_trees": null}`, "oblivious_trees"},
		{"trees not array", `{"oblivious_trees": {}}`, "oblivious_trees"},
		{"leaf_values wrong type", mutate(t, `[0.25, 0.5]`, `"0.25"`), "oblivious_trees[1]"},
		{"missing leaf_values", mutate(t, `"leaf_values": [0.25, 0.5], `, ``), "oblivious_trees[1]: missing leaf_values"},
		{"too few leaf values", mutate(t, `[0.25, 0.5]`, `[0.25]`), "oblivious_trees[1]: 1 leaf_values for depth 1"},
		{"too many leaf values", mutate(t, `[0.25, 0.5]`, `[0.25, 0.5, 1]`), "oblivious_trees[1]"},
		{"dims differ between trees", mutate(t, `[0.25, 0.5]`, `[0.25, 0.5, 1, 2]`), "2 dimensions, but earlier trees have 1"},
		{"feature index out of range", mutate(t, `"border": 1.5, "float_feature_index": 0`, `"border": 1.5, "float_feature_index": 2`), "oblivious_trees[1].splits[0]: float_feature_index 2 out of range"},
		{"negative feature index", mutate(t, `"border": 1.5, "float_feature_index": 0`, `"border": 1.5, "float_feature_index": -1`), "out of range"},
		{"border not in features_info", mutate(t, `"border": 1.5,`, `"border": 1.25,`), "oblivious_trees[1].splits[0]: split_index 1 does not name"},
		{"split_index inconsistent", mutate(t, `"split_index": 2`, `"split_index": 1`), "oblivious_trees[0].splits[1]: split_index 1"},
		{"split_index out of range", mutate(t, `"split_index": 2`, `"split_index": 99`), "split_index 99"},
		{"missing split_type", mutate(t, `, "split_index": 1, "split_type": "FloatFeature"`, ``), "missing split_type"},
		{"missing border", mutate(t, `"border": 1.5, `, ``), "missing float_feature_index or border"},
		{"feature_index wrong", mutate(t, `"feature_index": 1, "flat_feature_index": 1`, `"feature_index": 0, "flat_feature_index": 1`), "features_info: float_features[1]: feature_index 0"},
		{"missing nan treatment", mutate(t, `, "nan_value_treatment": "AsTrue"`, ``), "float_features[1]: missing nan_value_treatment"},
		{"border wrong type", mutate(t, `"borders": [-1]`, `"borders": ["-1"]`), "float_features[1]"},
		{"bias length", mutate(t, `[0.125]`, `[0.125, 1]`), "scale_and_bias: 2 bias values for 1 model dimensions"},
		{"scale_and_bias shape", mutate(t, `[2, [0.125]]`, `[2]`), "scale_and_bias"},
		{"scale wrong type", mutate(t, `[2, [0.125]]`, `["2", [0.125]]`), "scale_and_bias: scale"},
		{"bias not a list", mutate(t, `[2, [0.125]]`, `[2, 0.125]`), "scale_and_bias: bias"},
		{"model_info not object", mutate(t, `"model_info": {"pyfeat_spec_hash": "abc", "params": {"b": [1, 2.5], "a": "x"}}`, `"model_info": 3`), "model_info"},
		{"features_info not object", `{"features_info": [1], "oblivious_trees": []}`, "features_info: json: cannot unmarshal array"},
		{"huge integer", mutate(t, `"split_index": 2`, `"split_index": 1e400`), "oblivious_trees[0]"},
		{"depth over 16", `{"features_info": {"float_features": [{"borders": [0], "feature_index": 0, "flat_feature_index": 0, "nan_value_treatment": "AsIs"}]},
		  "oblivious_trees": [{"leaf_values": [0], "splits": [` + strings.Repeat(`{"border": 0, "float_feature_index": 0, "split_type": "FloatFeature"},`, 16) +
			`{"border": 0, "float_feature_index": 0, "split_type": "FloatFeature"}]}]}`, "depth 17 exceeds"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := LoadJSON([]byte(c.js))
			if err == nil {
				t.Fatalf("loaded: %v", m)
			}
			if errors.Is(err, ErrUnsupported) {
				t.Errorf("malformed input reported as unsupported: %v", err)
			}
			if !strings.Contains(err.Error(), c.msg) || !strings.HasPrefix(err.Error(), "catboost: load JSON model: ") {
				t.Errorf("error %q lacks the prefix or %q", err, c.msg)
			}
		})
	}
}

// TestTruncated loads every proper prefix of a model: all must fail, none
// may panic.
func TestTruncated(t *testing.T) {
	data := []byte(tinyModel)
	for n := range len(data) {
		if _, err := LoadJSON(data[:n]); err == nil {
			t.Fatalf("prefix of %d bytes loaded", n)
		}
	}
	// Flipping single bytes must not panic either (most flips are errors,
	// some still give a valid model).
	for i := range data {
		c := slices.Clone(data)
		c[i] ^= 0x55
		_, _ = LoadJSON(c)
	}
}

func TestLoadJSONFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "model.json")
	if err := os.WriteFile(path, []byte(tinyModel), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := LoadJSONFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if m.NumTrees() != 2 {
		t.Errorf("NumTrees() = %d", m.NumTrees())
	}
	if _, err := LoadJSONFile(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("missing file: %v", err)
	}
	if err := os.WriteFile(path, []byte(tinyModel[:40]), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadJSONFile(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("truncated file: error %v does not name the file", err)
	}
}

func TestPredictRawArguments(t *testing.T) {
	m := mustLoad(t, tinyModel)
	x := make([]float32, 6)
	out := make([]float64, 3)
	cases := []struct {
		name string
		x    []float32
		n    int
		out  []float64
		msg  string
	}{
		{"negative n", x, -1, out, "negative row count"},
		{"short x", x[:5], 3, out, "len(x) = 5, want 3 rows x 2 features = 6"},
		{"long x", x, 2, out[:2], "len(x) = 6"},
		{"short out", x, 3, out[:2], "len(out) = 2"},
		{"nil out", x, 3, nil, "len(out) = 0"},
		{"overflowing n", x, math.MaxInt/2 + 1, out, "too large"},
	}
	for _, c := range cases {
		if err := m.PredictRaw(c.x, c.n, c.out, 1); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: error %v, want one containing %q", c.name, err, c.msg)
		}
	}
	if err := m.PredictRaw(nil, 0, nil, 0); err != nil {
		t.Errorf("zero rows: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := m.PredictRaw(x, 3, out, 1); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("after Close: %v", err)
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestCountBelow(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		borders := make([]float32, rng.IntN(20))
		for i := range borders {
			borders[i] = float32(rng.IntN(40) - 20)
		}
		slices.Sort(borders)
		borders = slices.Compact(borders)
		for _, v := range []float32{float32(rng.IntN(44)-22) / 1, float32(rng.IntN(88)-44) / 2, nan, pInf, nInf} {
			want := 0
			for _, b := range borders {
				if v > b {
					want++
				}
			}
			vals := []float32{v, v, v, v, v}
			counts := make([]int32, len(vals))
			countBelow(borders, vals, counts)
			for i, got := range counts {
				if int(got) != want {
					t.Fatalf("countBelow(%v, %v) = %d at %d, want %d", borders, v, got, i, want)
				}
			}
		}
	}
}

// TestAgainstReference compares the quantized evaluator with the plain
// definition on random models: every depth 0..8, up to 3 dimensions, narrow
// and wide (over 255 borders) bins, every NaN treatment, scale and bias.
func TestAgainstReference(t *testing.T) { forEachPath(t, testAgainstReference) }

func testAgainstReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for iter := range 40 {
		maxBorders := 20
		if iter%3 == 0 {
			maxBorders = 700
		}
		sm := randomSynthModel(rng, 1+rng.IntN(12), rng.IntN(60), -1, 1+rng.IntN(3), maxBorders)
		m := loadScaled(t, rng, sm)
		n := 1 + rng.IntN(3*blockSize)
		x := sm.randomRows(rng, n)
		for _, threads := range []int{1, 3} {
			got := predict(t, m, x, threads)
			nf := len(sm.features)
			for r := range n {
				want := sm.refPredict(x[r*nf : (r+1)*nf])
				for j, w := range want {
					g := got[r*sm.dims+j]
					if math.Float64bits(g) != math.Float64bits(w) {
						t.Fatalf("model %d threads=%d row %d dim %d: %v, want %v", iter, threads, r, j, g, w)
					}
				}
			}
		}
	}
}

// TestConcurrentPredict shares one model between goroutines that each use
// several threads; run with -race.
func TestConcurrentPredict(t *testing.T) { forEachPath(t, testConcurrentPredict) }

func testConcurrentPredict(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	sm := randomSynthModel(rng, 10, 50, 6, 2, 300)
	m, err := LoadJSON(sm.json())
	if err != nil {
		t.Fatal(err)
	}
	x := sm.randomRows(rng, 1000)
	want := predict(t, m, x, 1)
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]float64, len(want))
			for range 5 {
				if err := m.PredictRaw(x, 1000, out, g%3); err != nil {
					errs <- err.Error()
					return
				}
				if !slices.Equal(out, want) {
					errs <- "concurrent result differs"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// TestDeepTrees covers trees deeper than 8, whose leaf index needs a second
// byte per row.
func TestDeepTrees(t *testing.T) { forEachPath(t, testDeepTrees) }

func testDeepTrees(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 10))
	for _, c := range []struct{ depth, dims int }{{9, 1}, {12, 2}, {16, 1}} {
		sm := randomSynthModel(rng, 6, 3, c.depth, c.dims, 300)
		m, err := LoadJSON(sm.json())
		if err != nil {
			t.Fatal(err)
		}
		n := blockSize + 9
		x := sm.randomRows(rng, n)
		got := predict(t, m, x, 2)
		for r := range n {
			want := sm.refPredict(x[r*6 : (r+1)*6])
			for j, w := range want {
				if g := got[r*c.dims+j]; math.Float64bits(g) != math.Float64bits(w) {
					t.Fatalf("depth %d row %d dim %d: %v, want %v", c.depth, r, j, g, w)
				}
			}
		}
	}
}

// TestManyBorders splits one feature on every one of n borders, one depth-1
// tree per border with leaves [0, 1], so a row's prediction is the number
// of borders below its value: around multiples of 127 the bin moves from
// one 7-bit slot to the next.
func TestManyBorders(t *testing.T) { forEachPath(t, testManyBorders) }

func testManyBorders(t *testing.T) {
	for _, n := range []int{1, 126, 127, 128, 253, 254, 255, 381, 1000} {
		sm := &synthModel{dims: 1, scale: 1, bias: []float64{0}}
		f := synthFeature{nan: "AsTrue"}
		for i := range n {
			f.borders = append(f.borders, float32(i)-0.5)
		}
		sm.features = []synthFeature{f}
		for i := range n {
			sm.trees = append(sm.trees, synthTree{feature: []int{0}, border: []float32{f.borders[i]}, leaves: []float64{0, 1}})
		}
		m, err := LoadJSON(sm.json())
		if err != nil {
			t.Fatal(err)
		}
		var x []float32
		var want []float64
		for i := -1; i <= n+1; i++ {
			b := float32(i) - 0.5
			x = append(x, b, math.Nextafter32(b, pInf), math.Nextafter32(b, nInf))
			below := float64(min(max(i, 0), n)) // borders strictly below b
			want = append(want, below, min(below+1, float64(n)), below)
		}
		// NaN is AsTrue: above every border.
		x = append(x, nan)
		want = append(want, float64(n))
		want[1] = 0 // just above -1.5 is still below every border
		got := predict(t, m, x, 1)
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("n=%d: value %v gives %v, want %v", n, x[i], got[i], want[i])
			}
		}
	}
}
