package serving

import (
	"fmt"

	"github.com/pyfeat/pyfeat/catboost"
	"github.com/pyfeat/pyfeat/features"
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
			return fmt.Errorf("the model takes no categorical features, got %d per row", nCat)
		}
		return Predict(m, x, rows, nFloat, threads, out)
	}
	if rows < 0 || nFloat != m.NumFeatures() || nCat != cm.NumCatFeatures() {
		return fmt.Errorf("the model takes %d float and %d categorical features per row, got %d and %d",
			m.NumFeatures(), cm.NumCatFeatures(), nFloat, nCat)
	}
	if len(x) != rows*nFloat || len(cats) != rows*nCat {
		return fmt.Errorf("matrices have %d and %d values, want %d x %d and %d x %d", len(x), len(cats), rows, nFloat, rows, nCat)
	}
	if len(out) != rows*m.Dimensions() {
		return fmt.Errorf("output has %d values, want %d x %d", len(out), rows, m.Dimensions())
	}
	return cm.PredictRawCat(x, cats, rows, out, features.Threads(threads))
}
