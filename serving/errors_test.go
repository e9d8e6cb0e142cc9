package serving

import (
	"errors"
	"runtime"
	"testing"

	"github.com/pyfeat/pyfeat/features"
	"github.com/pyfeat/pyfeat/internal/pferr"
	"github.com/tinylib/msgp/msgp"
)

// panicModel panics in PredictRaw: on the compute workers when Rank scores
// a block, on the calling goroutine for Predict.
type panicModel struct{ constModel }

func (m *panicModel) PredictRaw([]float32, int, []float64, int) error { panic("model bug") }

// failModel returns an error of its own from PredictRaw.
type failModel struct{ constModel }

func (m *failModel) PredictRaw([]float32, int, []float64, int) error {
	return errors.New("the evaluator refuses")
}

func record(kv ...any) []byte {
	b := msgp.AppendMapHeader(nil, uint32(len(kv)/2))
	for i := 0; i < len(kv); i += 2 {
		b = msgp.AppendString(b, kv[i].(string))
		b, _ = msgp.AppendIntf(b, kv[i+1])
	}
	return b
}

// request is a user context and n items (n > features.Block, so that a
// call with two threads has a worker besides the calling goroutine).
func request(n int, bad int) ([]byte, features.Items) {
	user := record("user_id", 1, "now", 1_767_225_600)
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = record("id", i, "title", "диван", "category", 3, "subcategory", 31, "price", 100.5,
			"created_at", 1_767_000_000, "seller_id", 7, "region", 5)
		if i == bad {
			recs[i] = record("id", i, "price", "cheap")
		}
	}
	return user, features.Concat(recs)
}

type kind int

const (
	none kind = iota
	input
	argument
	model
	panicked
)

func kindOf(err error) kind {
	var p *pferr.Panic
	var ie *features.InputError
	var a *pferr.Argument
	var m *pferr.Model
	switch {
	case err == nil:
		return none
	case errors.As(err, &p):
		return panicked
	case errors.As(err, &ie):
		return input
	case errors.As(err, &a):
		return argument
	case errors.As(err, &m):
		return model
	}
	return -1
}

// Every error the Service returns has its kind; the C ABI maps the kinds
// to status codes (cabi/status.go) and tests/test_abi_errors.py drives the
// exports through each.
func TestServiceErrorKinds(t *testing.T) {
	const n = 3 * features.Block
	s := New()
	good := s.Models.Add(&constModel{nf: features.NumFeatures, dims: 1, w: 1})
	twoDims := s.Models.Add(&constModel{nf: features.NumFeatures, dims: 2, w: 1})
	narrow := s.Models.Add(&constModel{nf: 3, dims: 1, w: 1})
	panics := s.Models.Add(&panicModel{constModel{nf: features.NumFeatures, dims: 1}})
	fails := s.Models.Add(&failModel{constModel{nf: features.NumFeatures, dims: 1}})
	closed := s.Models.Add(&constModel{nf: features.NumFeatures, dims: 1})
	if err := s.Models.Close(closed); err != nil {
		t.Fatal(err)
	}
	rank := func(h int64, bad int, k int) error {
		user, items := request(n, bad)
		return s.Rank(h, s.BeginUser(user), items, nil, 2, nil, nil, make([]float64, k), make([]int64, k), nil)
	}
	compute := func(bad int, out int) error {
		user, items := request(n, bad)
		return s.Compute(s.BeginUser(user), items, nil, 2, make([]float32, out), nil, nil, nil)
	}
	x := make([]float32, 2*features.NumFeatures)
	cases := []struct {
		name string
		err  error
		want kind
	}{
		{"rank", rank(good, -1, 5), none},
		{"rank: bad item", rank(good, 200, 5), input},
		{"rank: top k above n", rank(good, -1, n+1), argument},
		{"rank: unknown user handle", s.Rank(good, 12345, features.Items{Offsets: []int64{0}}, nil, 1, nil, nil, nil, nil, nil), argument},
		{"rank: closed model", rank(closed, -1, 5), model},
		{"rank: two outputs", rank(twoDims, -1, 5), model},
		{"rank: wrong width", rank(narrow, -1, 5), model},
		{"rank: evaluator error", rank(fails, -1, 5), model},
		{"rank: panic in the sink", rank(panics, -1, 5), panicked},
		{"compute", compute(-1, n*features.NumFeatures), none},
		{"compute: bad item", compute(7, n*features.NumFeatures), input},
		{"compute: short output", compute(-1, 5), argument},
		{"compute: unknown user handle", s.Compute(999, features.Items{Offsets: []int64{0}}, nil, 1, nil, nil, nil, nil), argument},
		{"discard: unknown user handle", s.DiscardUser(999), argument},
		{"predict", s.Predict(good, x, 2, features.NumFeatures, 1, make([]float64, 2)), none},
		{"predict: wrong width", s.Predict(good, x, 1, 2*features.NumFeatures, 1, make([]float64, 1)), argument},
		{"predict: closed model", s.Predict(closed, x, 2, features.NumFeatures, 1, make([]float64, 2)), model},
		{"predict: evaluator error", s.Predict(fails, x, 2, features.NumFeatures, 1, make([]float64, 2)), model},
		{"load: missing file", func() error { _, err := s.LoadModel("/nonexistent.json", "native", ""); return err }(), model},
		{"load: unknown backend", func() error { _, err := s.LoadModel("m.json", "onnx", ""); return err }(), argument},
		{"describe: closed model", func() error { _, err := s.DescribeModel(closed); return err }(), model},
		{"swap: closed model", s.Models.Swap(good, closed), model},
	}
	for _, c := range cases {
		if got := kindOf(c.err); got != c.want {
			t.Errorf("%s: kind %d, want %d (%v)", c.name, got, c.want, c.err)
		}
	}
}

// A call alone gets every core it asks for; calls running at once share
// them, one goroutine each at least.
func TestCoresAreShared(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(4))
	s := New()
	if got := s.enter(0); got != 4 {
		t.Fatalf("alone: %d goroutines, want 4", got)
	}
	if got := s.enter(0); got != 2 {
		t.Fatalf("second call: %d, want 2", got)
	}
	if got := s.enter(3); got != 1 {
		t.Fatalf("third call: %d, want 1", got)
	}
	for i := 0; i < 5; i++ {
		if got := s.enter(0); got != 1 {
			t.Fatalf("call %d: %d, want 1", 4+i, got)
		}
	}
	for i := 0; i < 8; i++ {
		s.leave()
	}
	if got := s.enter(2); got != 2 {
		t.Fatalf("alone again, asking for 2: %d", got)
	}
	s.leave()
}
