package catboost

import (
	"errors"
	"testing"

	"github.com/pyfeat/pyfeat/internal/pferr"
)

// A panic on a predict worker (here: a tree's leaves cut short behind the loader's
// back) comes back as a *pferr.Panic, which the C ABI reports as an
// internal error, not as a model error and not as a dead process.
func TestPanicOnPredictWorkerIsAPanicError(t *testing.T) { forEachPath(t, testPanicOnPredictWorker) }

func testPanicOnPredictWorker(t *testing.T) {
	m := mustLoad(t, tinyModel)
	m.trees[0].leaves = []float64{1}
	m.vec = nil
	n := 4096 // several blocks, so that both workers run
	x := make([]float32, n*m.NumFeatures())
	out := make([]float64, n)
	var p *pferr.Panic
	if err := m.PredictRaw(x, n, out, 2); !errors.As(err, &p) {
		t.Fatalf("got %v, want a *pferr.Panic", err)
	}
}
