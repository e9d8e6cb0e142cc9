package catboost

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// synthModel is a model description from which tests write a CatBoost-style
// JSON export and compute the expected predictions with refPredict, a direct
// transcription of the semantics that shares no code with the evaluator.
type synthModel struct {
	features []synthFeature
	trees    []synthTree
	dims     int
	scale    float64
	bias     []float64
}

type synthFeature struct {
	nan     string // AsIs, AsFalse, AsTrue
	borders []float32
	name    string
}

type synthTree struct {
	feature []int
	border  []float32
	leaves  []float64 // [leaf][dim]
}

// loadScaled gives sm a random scale and bias and loads its JSON export.
func loadScaled(t *testing.T, rng *rand.Rand, sm *synthModel) *NativeModel {
	t.Helper()
	sm.scale = rng.NormFloat64()
	for j := range sm.bias {
		sm.bias[j] = rng.NormFloat64()
	}
	m, err := LoadJSON(sm.json())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// randomSynthModel makes a model with up to maxBorders borders per feature;
// features with more than 255 distinct used borders need the uint16 bins.
func randomSynthModel(rng *rand.Rand, numFeatures, numTrees, depth, dims, maxBorders int) *synthModel {
	m := &synthModel{dims: dims, scale: 1, bias: make([]float64, dims)}
	nans := []string{"AsIs", "AsFalse", "AsTrue"}
	for range numFeatures {
		n := rng.IntN(maxBorders + 1)
		set := map[float32]bool{}
		for range n {
			set[float32(rng.NormFloat64()*2)] = true
		}
		borders := make([]float32, 0, len(set))
		for b := range set {
			borders = append(borders, b)
		}
		slices.Sort(borders)
		m.features = append(m.features, synthFeature{nan: nans[rng.IntN(3)], borders: borders})
	}
	var withBorders []int
	for f, sf := range m.features {
		if len(sf.borders) > 0 {
			withBorders = append(withBorders, f)
		}
	}
	for range numTrees {
		d := depth
		if d < 0 {
			d = rng.IntN(9)
		}
		if len(withBorders) == 0 {
			d = 0
		}
		var t synthTree
		for range d {
			f := withBorders[rng.IntN(len(withBorders))]
			t.feature = append(t.feature, f)
			t.border = append(t.border, m.features[f].borders[rng.IntN(len(m.features[f].borders))])
		}
		t.leaves = make([]float64, dims<<d)
		for i := range t.leaves {
			t.leaves[i] = rng.NormFloat64() * 0.1
		}
		m.trees = append(m.trees, t)
	}
	return m
}

func (m *synthModel) json() []byte {
	type jsFeature struct {
		Borders      []float64 `json:"borders"`
		FeatureID    string    `json:"feature_id"`
		FeatureIndex int       `json:"feature_index"`
		FlatIndex    int       `json:"flat_feature_index"`
		HasNans      bool      `json:"has_nans"`
		NanTreatment string    `json:"nan_value_treatment"`
	}
	type jsSplit struct {
		Border     float64 `json:"border"`
		Feature    int     `json:"float_feature_index"`
		SplitIndex int     `json:"split_index"`
		SplitType  string  `json:"split_type"`
	}
	type jsTree struct {
		LeafValues []float64 `json:"leaf_values"`
		Splits     []jsSplit `json:"splits"`
	}
	var feats []jsFeature
	base := make([]int, len(m.features))
	next := 0
	for i, f := range m.features {
		bs := make([]float64, len(f.borders))
		for j, b := range f.borders {
			bs[j] = float64(b)
		}
		base[i] = next
		next += len(bs)
		feats = append(feats, jsFeature{bs, f.name, i, i, f.nan != "AsIs", f.nan})
	}
	trees := []jsTree{}
	for _, t := range m.trees {
		jt := jsTree{LeafValues: t.leaves, Splits: []jsSplit{}}
		for k, f := range t.feature {
			j := slices.Index(m.features[f].borders, t.border[k])
			jt.Splits = append(jt.Splits, jsSplit{float64(t.border[k]), f, base[f] + j, "FloatFeature"})
		}
		trees = append(trees, jt)
	}
	doc := map[string]any{
		"model_info":      map[string]any{"model_guid": "synthetic"},
		"features_info":   map[string]any{"float_features": feats},
		"oblivious_trees": trees,
		"scale_and_bias":  []any{m.scale, m.bias},
	}
	data, err := json.MarshalIndent(doc, "", " ")
	if err != nil {
		panic(err)
	}
	return data
}

// refPredict evaluates one row the slow, obvious way.
func (m *synthModel) refPredict(row []float32) []float64 {
	v := slices.Clone(row)
	for f, sf := range m.features {
		if math.IsNaN(float64(v[f])) {
			switch sf.nan {
			case "AsFalse":
				v[f] = float32(math.Inf(-1))
			case "AsTrue":
				v[f] = float32(math.Inf(1))
			}
		}
	}
	sum := make([]float64, m.dims)
	for _, t := range m.trees {
		leaf := 0
		for k, f := range t.feature {
			if v[f] > t.border[k] {
				leaf |= 1 << k
			}
		}
		for j := range sum {
			sum[j] += t.leaves[leaf*m.dims+j]
		}
	}
	out := make([]float64, m.dims)
	for j := range out {
		out[j] = float64(m.scale*sum[j]) + m.bias[j]
	}
	return out
}

// randomRows draws rows rich in the values where comparisons are decided:
// borders, their float32 neighbours, NaN and infinities.
func (m *synthModel) randomRows(rng *rand.Rand, n int) []float32 {
	nf := len(m.features)
	x := make([]float32, n*nf)
	specials := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1)), math.MaxFloat32, -math.MaxFloat32}
	for i := range x {
		f := m.features[i%nf]
		r := rng.Float64()
		switch {
		case r < 0.5 && len(f.borders) > 0:
			b := f.borders[rng.IntN(len(f.borders))]
			switch rng.IntN(3) {
			case 1:
				b = math.Nextafter32(b, float32(math.Inf(1)))
			case 2:
				b = math.Nextafter32(b, float32(math.Inf(-1)))
			}
			x[i] = b
		case r < 0.65:
			x[i] = specials[rng.IntN(len(specials))]
		default:
			x[i] = float32(rng.NormFloat64() * 2)
		}
	}
	return x
}
