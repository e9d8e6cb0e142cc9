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
