package serving

import (
	"errors"
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

func TestRegistryCloseWaitsForUsers(t *testing.T) {
	r := NewRegistry()
	var wg sync.WaitGroup
	for round := 0; round < 50; round++ {
		m := &constModel{nf: 2, dims: 1, w: 1}
		h := r.Add(m)
		for g := 0; g < 8; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := 0; k < 20; k++ {
					mm, release, err := r.Acquire(h)
					if err != nil {
						if !errors.Is(err, ErrUnknownHandle) {
							t.Error(err)
						}
						return
					}
					out := make([]float64, 1)
					_ = mm.PredictRaw([]float32{1, 2}, 1, out, 1)
					release()
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
	if r.Len() != 0 {
		t.Fatalf("%d handles leaked", r.Len())
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
