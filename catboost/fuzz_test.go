package catboost

import (
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadJSON checks that no input makes LoadJSON panic, and that any model
// it accepts can be evaluated without panicking: validation must leave no
// leaf index or feature column out of range. Where the AVX2 kernels run,
// they must agree with the pure-Go evaluator bit for bit.
func FuzzLoadJSON(f *testing.F) {
	f.Add([]byte(tinyModel))
	f.Add([]byte(`{"oblivious_trees": [], "scale_and_bias": [1, [0, 0]]}`))
	f.Add([]byte(`{"trees": []}`))
	f.Add([]byte(strings.Replace(tinyModel, `"FloatFeature"`, `"OneHotFeature"`, 1)))
	if data, err := os.ReadFile(filepath.Join(goldenDir, "logloss_d1.json")); err == nil {
		f.Add(data)
	}
	// Categorical models: small ones, so that mutations reach every part.
	for _, name := range []string{"logloss_d2_onehot6", "rmse_d3_mean", "multiclass_d7_onehot"} {
		if data, err := os.ReadFile(filepath.Join(catGoldenDir, name+".json")); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(tinyCatModel))
	rng := rand.New(rand.NewPCG(7, 8))
	f.Add(randomSynthModel(rng, 3, 4, -1, 2, 5).json())
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := LoadJSON(data)
		if err != nil {
			return
		}
		if m.Dimensions() < 1 || m.NumFeatures() < 0 {
			t.Fatalf("loaded model has %d dimensions, %d features", m.Dimensions(), m.NumFeatures())
		}
		if m.NumFeatures() > 1<<16 {
			return
		}
		const n = 4
		x := make([]float32, n*m.NumFeatures())
		for i := range x {
			x[i] = []float32{float32(math.NaN()), 0, float32(math.Inf(1)), -1e30}[i%4]
		}
		if nc := m.NumCatFeatures(); nc > 0 {
			if nc > 1<<16 {
				return
			}
			cats := make([]uint32, n*nc)
			for i := range cats {
				cats[i] = []uint32{HashCategorical("a"), 0, HashCategoricalInt(1), 0xffffffff}[i%4]
			}
			out := predictCatPath(t, m, x, cats, n, false)
			if vecAvailable() {
				vec := predictCatPath(t, m, x, cats, n, true)
				for i := range out {
					if math.Float64bits(out[i]) != math.Float64bits(vec[i]) {
						t.Fatalf("output %d: %v with AVX2, %v in Go", i, vec[i], out[i])
					}
				}
			}
			return
		}
		out := predictPath(t, m, x, n, 1, false)
		if vecAvailable() {
			vec := predictPath(t, m, x, n, 1, true)
			for i := range out {
				if math.Float64bits(out[i]) != math.Float64bits(vec[i]) {
					t.Fatalf("output %d: %v with AVX2, %v in Go", i, vec[i], out[i])
				}
			}
		}
		_ = m.FeatureNames()
		_ = m.Metadata()
	})
}

func predictCatPath(t testing.TB, m *NativeModel, x []float32, cats []uint32, n int, vec bool) []float64 {
	t.Helper()
	saved := useAVX2
	defer func() { useAVX2 = saved }()
	useAVX2 = vec
	out := make([]float64, n*m.Dimensions())
	if err := m.PredictRawCat(x, cats, n, out, 1); err != nil {
		t.Fatal(err)
	}
	return out
}

// tinyCatModel has a one-hot split, a CTR over a cat feature and a float
// border, and the table for it: every categorical path in a few lines.
const tinyCatModel = `{
 "features_info": {
  "float_features": [{"borders": [0.5], "feature_index": 0, "flat_feature_index": 0, "has_nans": true, "nan_value_treatment": "AsTrue"}],
  "categorical_features": [{"feature_index": 0, "flat_feature_index": 1, "values": [-1, 7]}, {"feature_index": 1, "flat_feature_index": 2}],
  "ctrs": [{"borders": [0.25, 0.75], "ctr_type": "Borders", "prior_numerator": 0.5, "prior_denomerator": 1, "shift": 0, "scale": 1, "target_border_idx": 0,
    "elements": [{"cat_feature_index": 1, "combination_element": "cat_feature_value"}, {"border": 0.5, "combination_element": "float_feature", "float_feature_index": 0}, {"cat_feature_index": 0, "combination_element": "cat_feature_exact_value", "value": 7}]}]
 },
 "ctr_data": {"{\"identifier\":[{\"cat_feature_index\":1,\"combination_element\":\"cat_feature_value\"},{\"border\":0.5,\"combination_element\":\"float_feature\",\"float_feature_index\":0},{\"cat_feature_index\":0,\"combination_element\":\"cat_feature_exact_value\",\"value\":7}],\"type\":\"Borders\"}":
   {"hash_map": ["1", 3, 1, "18446744073709551615", 0, 5], "hash_stride": 3, "counter_denominator": 0}},
 "oblivious_trees": [
  {"leaf_values": [1, 2, 4, 8], "splits": [
    {"split_type": "OneHotFeature", "cat_feature_index": 0, "value": 7, "split_index": 2},
    {"split_type": "OnlineCtr", "ctr_target_border_idx": 0, "border": 0.75, "split_index": 4}]},
  {"leaf_values": [0.5, 0.25], "splits": [{"split_type": "FloatFeature", "float_feature_index": 0, "border": 0.5, "split_index": 0}]}
 ],
 "scale_and_bias": [1, [0]]
}`
