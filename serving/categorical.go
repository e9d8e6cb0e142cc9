package serving

import (
	"encoding/json"

	"github.com/pyfeat/pyfeat/catboost"
	"github.com/pyfeat/pyfeat/features"
	"github.com/pyfeat/pyfeat/internal/pferr"
)

// CatLayout describes the columns of a model's training table: which are
// float features and which categorical, with the categorical features'
// names. A model without categorical features has an empty Cat.
type CatLayout struct {
	Float    []int    `json:"float_flat"`
	Cat      []int    `json:"cat_flat"`
	CatNames []string `json:"cat_feature_names"`
}

// Layout returns m's column layout.
func Layout(m catboost.Model) CatLayout {
	cm, ok := m.(catboost.CategoricalModel)
	if !ok {
		l := CatLayout{Float: make([]int, m.NumFeatures()), Cat: []int{}, CatNames: []string{}}
		for i := range l.Float {
			l.Float[i] = i
		}
		return l
	}
	f, c := cm.FlatIndexes()
	l := CatLayout{Float: f, Cat: c, CatNames: make([]string, len(c))}
	if n, ok := m.(interface{ CatFeatureNames() []string }); ok {
		if names := n.CatFeatureNames(); len(names) == len(c) {
			l.CatNames = names
		}
	}
	return l
}

// PredictCat checks shapes and scores rows given as a row-major float32
// matrix of the float features (nFloat columns) and a row-major matrix of
// hashed categorical values (nCat columns, see catboost.HashCategorical).
func PredictCat(m catboost.Model, x []float32, cats []uint32, rows, nFloat, nCat int, threads int, out []float64) error {
	cm, ok := m.(catboost.CategoricalModel)
	if !ok {
		if nCat != 0 {
			return pferr.Argumentf("the model takes no categorical features, got %d per row", nCat)
		}
		return Predict(m, x, rows, nFloat, threads, out)
	}
	if rows < 0 || nFloat != m.NumFeatures() || nCat != cm.NumCatFeatures() {
		return pferr.Argumentf("the model takes %d float and %d categorical features per row, got %d and %d",
			m.NumFeatures(), cm.NumCatFeatures(), nFloat, nCat)
	}
	if len(x) != rows*nFloat || len(cats) != rows*nCat {
		return pferr.Argumentf("matrices have %d and %d values, want %d x %d and %d x %d", len(x), len(cats), rows, nFloat, rows, nCat)
	}
	if len(out) != rows*m.Dimensions() {
		return pferr.Argumentf("output has %d values, want %d x %d", len(out), rows, m.Dimensions())
	}
	return pferr.AsModel(cm.PredictRawCat(x, cats, rows, out, features.Threads(threads)))
}

// CatLayout is the JSON form of the column layout (Layout) of the model
// that handle h serves.
func (s *Service) CatLayout(h int64) ([]byte, error) {
	ref, err := s.Models.Acquire(h)
	if err != nil {
		return nil, err
	}
	defer ref.Release()
	text, err := json.Marshal(Layout(ref.Model()))
	return text, pferr.AsModel(err)
}

// PredictCat is the package's PredictCat with the model of handle h.
func (s *Service) PredictCat(h int64, x []float32, cats []uint32, rows, nFloat, nCat, threads int, out []float64) error {
	return s.withModel(h, threads, func(m catboost.Model, th int) error {
		return PredictCat(m, x, cats, rows, nFloat, nCat, th, out)
	})
}

// HashStrings writes CatBoost's hash of each categorical value given as
// strings back to back: value i is blob[offsets[i]:offsets[i+1]], offsets
// has len(out)+1 entries starting at 0.
func HashStrings(blob []byte, offsets []int64, out []uint32) error {
	if len(offsets) != len(out)+1 || offsets[0] != 0 || offsets[len(out)] != int64(len(blob)) {
		return pferr.Argumentf("offsets must be %d values from 0 to the %d bytes of the strings", len(out)+1, len(blob))
	}
	for i := range out {
		a, b := offsets[i], offsets[i+1]
		if a > b || b > int64(len(blob)) {
			return pferr.Argumentf("offsets[%d..%d] = %d, %d out of order", i, i+1, a, b)
		}
		out[i] = catboost.HashCategoricalBytes(blob[a:b])
	}
	return nil
}

// HashInts writes CatBoost's hash of each integer categorical value (that
// of its decimal string).
func HashInts(values []int64, out []uint32) error {
	if len(values) != len(out) {
		return pferr.Argumentf("%d values for %d hashes", len(values), len(out))
	}
	for i, v := range values {
		out[i] = catboost.HashCategoricalInt(v)
	}
	return nil
}
