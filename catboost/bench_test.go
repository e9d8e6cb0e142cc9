package catboost

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// benchModel is a synthetic model of the benchmark's shape: 1000 depth-6
// trees over 70 features with up to 254 borders each (catboost's default
// border_count), and 3000 rows with 5% NaN.
func benchModel(b *testing.B) (*NativeModel, []float32, int) {
	b.Helper()
	rng := rand.New(rand.NewPCG(11, 12))
	sm := randomSynthModel(rng, 70, 1000, 6, 1, 254)
	m, err := LoadJSON(sm.json())
	if err != nil {
		b.Fatal(err)
	}
	const n = 3000
	x := make([]float32, n*70)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * 2)
		if rng.IntN(20) == 0 {
			x[i] = float32(math.NaN())
		}
	}
	return m, x, n
}

// BenchmarkPredictRaw reports the time of one 3000-row PredictRaw.
func BenchmarkPredictRaw(b *testing.B) {
	m, x, n := benchModel(b)
	benchPredict(b, m, x, n)
}

// BenchmarkPredictRawCatboostModel runs the same measurement on a model
// trained by catboost, written with testdata/bench_catboost.py into the
// directory named by PYFEAT_CATBOOST_BENCH_DIR; it first checks that the
// predictions equal catboost's bit for bit.
func BenchmarkPredictRawCatboostModel(b *testing.B) {
	dir := os.Getenv("PYFEAT_CATBOOST_BENCH_DIR")
	if dir == "" {
		b.Skip("PYFEAT_CATBOOST_BENCH_DIR not set")
	}
	m, err := LoadJSONFile(filepath.Join(dir, "bench_model.json"))
	if err != nil {
		b.Fatal(err)
	}
	x := readFloat32s(b, filepath.Join(dir, "bench_input.f32"))
	want := readFloat64s(b, filepath.Join(dir, "bench_expected.f64"))
	n := len(x) / m.NumFeatures()
	got := make([]float64, n*m.Dimensions())
	if err := m.PredictRaw(x, n, got, 0); err != nil {
		b.Fatal(err)
	}
	for i := range got {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			b.Fatalf("row %d: %v, catboost %v", i, got[i], want[i])
		}
	}
	benchPredict(b, m, x, n)
}

// benchPredict times PredictRaw on the n rows of x at 1 and 2 threads, then
// on one row at a time, then with the pure-Go evaluator where the AVX2
// kernels would run (sub-benchmarks ending in /go).
func benchPredict(b *testing.B, m *NativeModel, x []float32, n int) {
	out := make([]float64, n*m.Dimensions())
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("rows=%d/trees=%d/threads=%d", n, m.NumTrees(), threads), func(b *testing.B) {
			for b.Loop() {
				if err := m.PredictRaw(x, n, out, threads); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run(fmt.Sprintf("rows=1/trees=%d/threads=1", m.NumTrees()), func(b *testing.B) {
		nf, i := m.NumFeatures(), 0
		for b.Loop() {
			if err := m.PredictRaw(x[i*nf:(i+1)*nf], 1, out[:m.Dimensions()], 1); err != nil {
				b.Fatal(err)
			}
			i = (i + 1) % n
		}
	})
	if !vecAvailable() {
		return
	}
	saved := useAVX2
	defer func() { useAVX2 = saved }()
	useAVX2 = false
	b.Run(fmt.Sprintf("rows=%d/trees=%d/threads=1/go", n, m.NumTrees()), func(b *testing.B) {
		for b.Loop() {
			if err := m.PredictRaw(x, n, out, 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLoadJSON times loading benchModel's JSON (about 2.8 MB).
func BenchmarkLoadJSON(b *testing.B) {
	rng := rand.New(rand.NewPCG(11, 12))
	data := randomSynthModel(rng, 70, 1000, 6, 1, 254).json()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := LoadJSON(data); err != nil {
			b.Fatal(err)
		}
	}
}
