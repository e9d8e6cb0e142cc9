package serving

import (
	"cmp"
	"errors"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// constModel scores every row with the sum of its features times w.
type constModel struct {
	nf, dims int
	w        float64
	closed   atomic.Bool
	inFlight atomic.Int64
}

func (m *constModel) NumFeatures() int            { return m.nf }
func (m *constModel) Dimensions() int             { return m.dims }
func (m *constModel) FeatureNames() []string      { return nil }
func (m *constModel) Metadata() map[string]string { return map[string]string{} }
func (m *constModel) Close() error {
	if m.inFlight.Load() != 0 {
		panic("closed while in use")
	}
	m.closed.Store(true)
	return nil
}
func (m *constModel) PredictRaw(x []float32, n int, out []float64, threads int) error {
	m.inFlight.Add(1)
	defer m.inFlight.Add(-1)
	if m.closed.Load() {
		panic("used after close")
	}
	for i := 0; i < n; i++ {
		s := 0.0
		for _, v := range x[i*m.nf : (i+1)*m.nf] {
			s += float64(v)
		}
		out[i] = s * m.w
	}
	return nil
}

func TestCloseWaitsForUsers(t *testing.T) {
	r := NewModels()
	var wg sync.WaitGroup
	for round := 0; round < 50; round++ {
		m := &constModel{nf: 2, dims: 1, w: 1}
		h := r.Add(m)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < 20; k++ {
					ref, err := r.Acquire(h)
					if err != nil {
						if !errors.Is(err, ErrUnknownHandle) {
							t.Error(err)
						}
						return
					}
					out := make([]float64, 1)
					_ = ref.Model().PredictRaw([]float32{1, 2}, 1, out, 1)
					ref.Release()
				}
			}()
		}
		if err := r.Close(h); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if !m.closed.Load() {
			t.Fatal("model not closed after its last user")
		}
		if err := r.Close(h); !errors.Is(err, ErrUnknownHandle) {
			t.Fatalf("double close: %v", err)
		}
	}
	if r.open() != 0 {
		t.Fatalf("%d handles leaked", r.open())
	}
}

// A handle swapped to another model while eight goroutines acquire it:
// every acquire succeeds and gets a model that stays open until released
// (constModel panics when used after Close), and every model is closed once
// nothing holds it.
func TestSwapWhileAcquiring(t *testing.T) {
	r := NewModels()
	first := &constModel{nf: 2, dims: 1, w: 1}
	loaded := r.Add(first)
	serving, err := r.Share(loaded)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(loaded); err != nil {
		t.Fatal(err)
	}
	if first.closed.Load() {
		t.Fatal("model closed while the shared handle still holds it")
	}
	all := []*constModel{first}
	var stop atomic.Bool
	var calls atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]float64, 1)
			for !stop.Load() {
				ref, err := r.Acquire(serving)
				if err != nil {
					t.Error(err)
					return
				}
				if err := ref.Model().PredictRaw([]float32{1, 2}, 1, out, 1); err != nil {
					t.Error(err)
				}
				ref.Release()
				calls.Add(1)
				runtime.Gosched() // the swapping goroutine gets its turn
			}
		}()
	}
	for k := 0; k < 400; k++ {
		for seen := calls.Load(); calls.Load() < seen+8; {
			runtime.Gosched() // let some calls run with each model
		}
		m := &constModel{nf: 2, dims: 1, w: float64(k)}
		all = append(all, m)
		h := r.Add(m)
		if err := r.Swap(serving, h); err != nil {
			t.Fatal(err)
		}
		if err := r.Close(h); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if err := r.Close(serving); err != nil {
		t.Fatal(err)
	}
	for i, m := range all {
		if !m.closed.Load() {
			t.Fatalf("model %d of %d never closed", i, len(all))
		}
	}
	if r.open() != 0 || calls.Load() == 0 {
		t.Fatalf("%d handles left, %d calls", r.open(), calls.Load())
	}
	if err := r.Swap(serving, serving); !errors.Is(err, ErrUnknownHandle) {
		t.Fatalf("swap into a closed handle: %v", err)
	}
}

// The interleaving that Acquire must survive, made deterministic: a call
// has read the slot's model when a swap (here a close) drops the last
// reference. Taking a reference then must fail, not revive a closed model.
func TestDroppedModelCannotBeAcquired(t *testing.T) {
	r := NewModels()
	m := &constModel{nf: 1, dims: 1}
	h := r.Add(m)
	s := r.slot(h)
	seen := s.cur.Load() // the call's read, before the swap
	if err := r.Close(h); err != nil || !m.closed.Load() {
		t.Fatalf("close: %v, closed %v", err, m.closed.Load())
	}
	if seen.tryAcquire() {
		t.Fatal("a reference was taken on a model whose count had dropped to zero")
	}
	if s.acquire() != nil {
		t.Fatal("a closed slot handed out a model")
	}
}

func TestPredictShapes(t *testing.T) {
	m := &constModel{nf: 3, dims: 1, w: 2}
	out := make([]float64, 2)
	if err := Predict(m, []float32{1, 2, 3, 4, 5, 6}, 2, 3, 1, out); err != nil || out[0] != 12 || out[1] != 30 {
		t.Fatalf("%v %v", err, out)
	}
	if err := Predict(m, []float32{1, 2}, 1, 2, 1, out[:1]); err == nil {
		t.Fatal("accepted a matrix of the wrong width")
	}
	if err := Predict(m, []float32{1, 2, 3}, 1, 3, 1, out); err == nil {
		t.Fatal("accepted an output of the wrong length")
	}
}

// topK agrees with a stable sort of all the scores (descending, NaN last,
// ties in input order) for every k, with ties and NaNs among the scores.
func TestTopKAgreesWithAStableSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 7, 100, 3000} {
		raw := make([]float64, n)
		for i := range raw {
			switch rng.IntN(10) {
			case 0:
				raw[i] = math.NaN()
			case 1, 2:
				raw[i] = float64(rng.IntN(3)) // ties
			default:
				raw[i] = rng.NormFloat64()
			}
		}
		want := make([]int64, n)
		for i := range want {
			want[i] = int64(i)
		}
		slices.SortStableFunc(want, func(a, b int64) int {
			an, bn := math.IsNaN(raw[a]), math.IsNaN(raw[b])
			if an || bn {
				return cmp.Compare(b2i(an), b2i(bn))
			}
			return cmp.Compare(raw[b], raw[a])
		})
		for _, k := range []int{0, 1, 5, n / 10, n / 4, n / 2, n} {
			if k > n {
				continue
			}
			got := topK(raw, make([]int64, n), k)
			if !slices.Equal(got, want[:k]) {
				t.Fatalf("n=%d k=%d: got %v, want %v", n, k, got[:min(k, 10)], want[:min(k, 10)])
			}
		}
	}
}
