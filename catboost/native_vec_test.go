package catboost

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// vecAvailable reports whether this build and CPU can run the AVX2 kernels.
func vecAvailable() bool { return canAVX2 }

// forEachPath runs f as subtest "go" with the pure-Go evaluator and, when
// the CPU can run them, as subtest "avx2" with the AVX2 kernels, so that
// both are held to the same expectations.
func forEachPath(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	saved := useAVX2
	defer func() { useAVX2 = saved }()
	useAVX2 = false
	t.Run("go", f)
	if vecAvailable() {
		useAVX2 = true
		t.Run("avx2", f)
	}
}

// predictPath is PredictRaw with the AVX2 kernels on or off.
func predictPath(t testing.TB, m *NativeModel, x []float32, n, threads int, vec bool) []float64 {
	t.Helper()
	saved := useAVX2
	defer func() { useAVX2 = saved }()
	useAVX2 = vec
	out := make([]float64, n*m.Dimensions())
	if err := m.PredictRaw(x, n, out, threads); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPathsAgree requires the AVX2 kernels and the pure-Go evaluator to
// give the same bits on random models of every kind the kernels treat
// differently: each table shape and features past them, features over
// several slots, depths 0 to 8 (the vector layout) and deeper, several
// dimensions (the Go tree evaluation after the vector quantization), and
// row counts around the 16-row groups and the 128-row blocks.
func TestPathsAgree(t *testing.T) {
	if !vecAvailable() {
		t.Skip("no AVX2 kernels on this machine: only the pure-Go evaluator runs")
	}
	rng := rand.New(rand.NewPCG(21, 22))
	rowCounts := []int{1, 2, 7, 15, 16, 17, 31, 32, 33, 127, 128, 129, 200, 2*blockSize + 45}
	for iter := range 60 {
		maxBorders := []int{10, 60, 130, 260, 700}[iter%5]
		depth, trees := -1, rng.IntN(80) // depth 0..8
		if iter%7 == 6 {
			depth, trees = 9+rng.IntN(4), 1+rng.IntN(4)
		}
		dims := 1
		if iter%4 == 3 {
			dims = 2 + rng.IntN(2)
		}
		sm := randomSynthModel(rng, 1+rng.IntN(20), trees, depth, dims, maxBorders)
		m := loadScaled(t, rng, sm)
		n := rowCounts[iter%len(rowCounts)]
		x := sm.randomRows(rng, n)
		want := predictPath(t, m, x, n, 1, false)
		for _, threads := range []int{1, 2} {
			got := predictPath(t, m, x, n, threads, true)
			for i := range got {
				if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
					t.Fatalf("model %d (max %d borders, depth %d, %d dims), %d rows, threads=%d: output %d is %v with AVX2, %v in Go",
						iter, maxBorders, depth, dims, n, threads, i, got[i], want[i])
				}
			}
		}
	}
}

// TestQuantizeColumn checks the AVX2 quantizer against a plain count, for
// border counts around each table shape's capacity, borders and values at
// the extremes of float32, both NaN treatments, and strided, odd-length
// columns.
func TestQuantizeColumn(t *testing.T) {
	if !vecAvailable() {
		t.Skip("no AVX2 kernels on this machine")
	}
	rng := rand.New(rand.NewPCG(23, 24))
	specials := []float32{nan, pInf, nInf, 0, float32(math.Copysign(0, -1)), math.MaxFloat32, -math.MaxFloat32,
		math.SmallestNonzeroFloat32, -math.SmallestNonzeroFloat32}
	for _, nb := range []int{0, 1, 2, 7, 8, 30, 62, 63, 64, 100, 126, 127, 128, 200, 254, 255} {
		for iter := range 20 {
			set := map[float32]bool{}
			for len(set) < nb {
				b := float32(rng.NormFloat64() * 3)
				if rng.IntN(10) == 0 {
					b = specials[1+rng.IntN(len(specials)-1)] // no NaN border
				}
				set[b] = true
			}
			borders := make([]float32, 0, nb)
			for b := range set {
				borders = append(borders, b)
			}
			slices.Sort(borders)
			// slices.Sort leaves -0 and +0 in either order; the model
			// keeps one of them, as should this test.
			borders = slices.CompactFunc(borders, func(a, b float32) bool { return a == b })
			nanValue := []float32{nInf, pInf}[iter%2]
			q := []quantizer{{borders: borders, nanValue: nanValue}}
			buildTables(q)
			if q[0].table == nil {
				t.Fatalf("%d borders: no table", len(borders))
			}

			const stride = 3
			n := 1 + rng.IntN(2*blockSize)
			x := make([]float32, n*stride)
			for i := range x {
				switch r := rng.IntN(10); {
				case r < 4 && len(borders) > 0:
					b := borders[rng.IntN(len(borders))]
					x[i] = []float32{b, math.Nextafter32(b, pInf), math.Nextafter32(b, nInf)}[rng.IntN(3)]
				case r < 6:
					x[i] = specials[rng.IntN(len(specials))]
				default:
					x[i] = float32(rng.NormFloat64() * 4)
				}
			}
			col := 1 + rng.IntN(stride-1)
			kind := 2 * q[0].shape
			if nanValue > 0 {
				kind++
			}
			dst := make([]byte, n+1)
			dst[n] = 0xaa
			quantizeColumn(&x[col], stride*4, n, &q[0].table[0], kind, q[0].nanMax, &dst[0])
			if dst[n] != 0xaa {
				t.Fatalf("%d borders, %d values: wrote past the column", len(borders), n)
			}
			for i := range n {
				v := x[i*stride+col]
				if v != v {
					v = nanValue
				}
				want := 0
				for _, b := range borders {
					if v > b {
						want++
					}
				}
				if int(dst[i]) != want {
					t.Fatalf("%d borders (shape %d), nan as %v: value %v counted %d, want %d",
						len(borders), q[0].shape, nanValue, x[i*stride+col], dst[i], want)
				}
			}
		}
	}
}

// TestVecLayout checks which models get the AVX2 tree layout: one
// dimension and no tree deeper than 8.
func TestVecLayout(t *testing.T) {
	if !vecAvailable() {
		t.Skip("no AVX2 kernels on this machine")
	}
	rng := rand.New(rand.NewPCG(25, 26))
	for _, c := range []struct {
		depth, dims int
		vec         bool
	}{{0, 1, true}, {6, 1, true}, {8, 1, true}, {9, 1, false}, {6, 2, false}} {
		m, err := LoadJSON(randomSynthModel(rng, 4, 5, c.depth, c.dims, 20).json())
		if err != nil {
			t.Fatal(err)
		}
		if (m.vec != nil) != c.vec {
			t.Errorf("depth %d, %d dims: vector layout %v, want %v", c.depth, c.dims, m.vec != nil, c.vec)
		}
	}
}

// TestPairIDsAVX2 checks the AVX2 loop of bitIDs against the Go one on
// floats around the border, NaN and infinities, for either NaN bit.
func TestPairIDsAVX2(t *testing.T) {
	if !vecAvailable() {
		t.Skip("no AVX2")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	const n = 16 * 9
	border := float32(0.25)
	specials := []float32{border, math.Nextafter32(border, 1), math.Nextafter32(border, -1), float32(math.NaN()),
		float32(math.Inf(1)), float32(math.Inf(-1)), 0, float32(math.Copysign(0, -1))}
	x := make([]float32, n)
	pids := make([]uint16, n)
	for i := range x {
		if i%3 == 0 {
			x[i] = specials[rng.IntN(len(specials))]
		} else {
			x[i] = float32(rng.NormFloat64())
		}
		pids[i] = uint16(rng.IntN(1 << 14))
	}
	for _, nanValue := range []float32{-1, 1} {
		node := &trieNode{kind: 'f', border: border, nanValue: nanValue}
		got := make([]uint16, n)
		pairIDsAVX2(&x[0], &pids[0], &got[0], n, border, floatBit(node, nanValue))
		for i, v := range x {
			if want := 2*pids[i] + floatBit(node, v); got[i] != want {
				t.Fatalf("nanValue %v: row %d (x=%v, pid %d): id %d, want %d", nanValue, i, v, pids[i], got[i], want)
			}
		}
	}
}
