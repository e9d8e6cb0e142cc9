package catboostcapi

import (
	"fmt"
	"maps"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/pyfeat/pyfeat/internal/faults"
	"github.com/pyfeat/pyfeat/internal/pferr"
)

// minRowsPerWorker is the smallest share of rows worth a goroutine: below
// it the cost of a cgo call and of scheduling outweighs the evaluation.
const minRowsPerWorker = 256

// maxRowsPerTask bounds one cgo call so that workers that start late or run
// slow still get a share of a large batch.
const maxRowsPerTask = 1 << 16

// Model is a CatBoost model loaded through the C API. It implements
// catboost.Model and is safe for concurrent use; Close waits for
// PredictRaw calls in progress.
type Model struct {
	lib   *Library
	path  string
	nf    int
	dims  int
	names []string
	meta  map[string]string
	// Categorical features: their count and the training-table columns of
	// each kind (nil when nc == 0).
	nc                 int
	floatFlat, catFlat []int

	mu sync.RWMutex   // guards h: read-held during C calls, write-held by Close
	h  unsafe.Pointer // ModelCalcerHandle, allocated by the library; nil once closed
}

// Path is the model file path given to LoadModel.
func (m *Model) Path() string { return m.path }

// Library is the library the model was loaded with.
func (m *Model) Library() *Library { return m.lib }

// NumFeatures is the number of float32 values a row must have
// (GetFloatFeaturesCount).
func (m *Model) NumFeatures() int { return m.nf }

// Dimensions is the number of float64 raw outputs per row
// (GetDimensionsCount).
func (m *Model) Dimensions() int { return m.dims }

// FeatureNames returns a copy of the model's feature names in column order
// (GetModelUsedFeaturesNames), or nil when the library cannot report one
// name per float feature. Unnamed features are reported by CatBoost as their
// column index ("0", "1", ...), as catboost's Python feature_names_ does.
func (m *Model) FeatureNames() []string { return slices.Clone(m.names) }

// Metadata returns a copy of the model's metadata for the keys read at load
// time (DefaultMetadataKeys and LoadModel's extra keys) that the model holds;
// never nil, empty when the library has no GetModelInfoValue.
func (m *Model) Metadata() map[string]string { return maps.Clone(m.meta) }

// MetadataValue looks up any metadata key in the model (GetModelInfoValue).
// ok is false when the model lacks the key, the library lacks the function,
// or the model is closed.
func (m *Model) MetadataValue(key string) (value string, ok bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.h == nil {
		return "", false
	}
	return m.lib.api.infoValue(m.h, key)
}

// PredictRaw writes RawFormulaVal predictions for n rows
// (CalcModelPredictionFlat). x is row-major float32, len(x) ==
// n*NumFeatures(); out is caller-allocated row-major float64, len(out) ==
// n*Dimensions(). Either may be Go or C memory; neither is kept after the
// call. Rows are split into blocks evaluated by up to threads goroutines;
// threads <= 0 means runtime.GOMAXPROCS(0). On error out may be partly
// written.
func (m *Model) PredictRaw(x []float32, n int, out []float64, threads int) error {
	if m.nc != 0 {
		return fmt.Errorf("capi: PredictRaw: model %q has %d categorical features: use PredictRawCat", m.path, m.nc)
	}
	return m.predict(x, nil, n, out, threads)
}

// NumCatFeatures is the number of categorical features (GetCatFeaturesCount).
func (m *Model) NumCatFeatures() int { return m.nc }

// FlatIndexes gives the training-table column of each float and each
// categorical feature (GetFloatFeatureIndices, GetCatFeatureIndices).
func (m *Model) FlatIndexes() (floats, cats []int) {
	if m.nc == 0 {
		floats = make([]int, m.nf)
		for i := range floats {
			floats[i] = i
		}
		return floats, []int{}
	}
	return slices.Clone(m.floatFlat), slices.Clone(m.catFlat)
}

// PredictRawCat is PredictRaw with the categorical values of each row as
// CatBoost's hashes (catboost.HashCategorical), NumCatFeatures per row,
// passed to CalcModelPredictionWithHashedCatFeatures.
func (m *Model) PredictRawCat(x []float32, cats []uint32, n int, out []float64, threads int) error {
	if m.nc == 0 {
		if len(cats) != 0 {
			return fmt.Errorf("capi: PredictRawCat: the model has no categorical features, got %d values", len(cats))
		}
		return m.predict(x, nil, n, out, threads)
	}
	if n < 0 {
		return fmt.Errorf("capi: PredictRawCat: negative row count %d", n)
	}
	if want, ok := mulInt(n, m.nc); !ok || len(cats) != want {
		return fmt.Errorf("capi: PredictRawCat: len(cats) = %d, want rows*categorical features = %d*%d", len(cats), n, m.nc)
	}
	return m.predict(x, cats, n, out, threads)
}

func (m *Model) predict(x []float32, cats []uint32, n int, out []float64, threads int) error {
	if n < 0 {
		return fmt.Errorf("capi: PredictRaw: negative row count %d", n)
	}
	wantX, okX := mulInt(n, m.nf)
	wantOut, okOut := mulInt(n, m.dims)
	if !okX || !okOut {
		return fmt.Errorf("capi: PredictRaw: row count %d too large", n)
	}
	if len(x) != wantX {
		return fmt.Errorf("capi: PredictRaw: len(x) = %d, want rows*features = %d*%d = %d",
			len(x), n, m.nf, wantX)
	}
	if len(out) != wantOut {
		return fmt.Errorf("capi: PredictRaw: len(out) = %d, want rows*dimensions = %d*%d = %d",
			len(out), n, m.dims, wantOut)
	}

	m.mu.RLock()
	defer m.mu.RUnlock()
	if m.h == nil {
		return ErrClosed
	}
	if n == 0 {
		return nil
	}

	workers := threads
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, (n+minRowsPerWorker-1)/minRowsPerWorker)
	if workers <= 1 {
		return m.predictRange(x, cats, out, 0, n)
	}

	// Tasks of a quarter of a worker's share balance uneven progress.
	task := min(max((n+4*workers-1)/(4*workers), minRowsPerWorker), maxRowsPerTask)
	var (
		next     atomic.Int64
		failed   atomic.Bool
		errOnce  sync.Once
		firstErr error
		wg       sync.WaitGroup
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				// A panic on a worker is the call's error, not the process's end.
				if p := recover(); p != nil {
					failed.Store(true)
					errOnce.Do(func() { firstErr = pferr.Recovered(p) })
				}
			}()
			faults.Point("predict-worker")
			for !failed.Load() {
				start := int(next.Add(int64(task))) - task
				if start >= n {
					return
				}
				end := min(start+task, n)
				if err := m.predictRange(x, cats, out, start, end); err != nil {
					failed.Store(true)
					errOnce.Do(func() { firstErr = err })
					return
				}
			}
		}()
	}
	wg.Wait()
	return firstErr
}

// predictRange evaluates rows [start, end); the caller holds m.mu and has
// validated the lengths.
func (m *Model) predictRange(x []float32, cats []uint32, out []float64, start, end int) error {
	var xp *float32
	if m.nf > 0 {
		xp = &x[start*m.nf]
	}
	if m.nc > 0 {
		if err := m.lib.api.predictCat(m.h, xp, end-start, m.nf, &cats[start*m.nc], m.nc, &out[start*m.dims], m.dims); err != nil {
			return fmt.Errorf("capi: CalcModelPredictionWithHashedCatFeatures (model %q, rows %d..%d): %v",
				m.path, start, end-1, err)
		}
		return nil
	}
	if err := m.lib.api.predict(m.h, xp, end-start, m.nf, &out[start*m.dims], m.dims); err != nil {
		return fmt.Errorf("capi: CalcModelPredictionFlat (model %q, rows %d..%d): %v",
			m.path, start, end-1, err)
	}
	return nil
}

// Close frees the model's handle (ModelCalcerDelete). It waits for
// PredictRaw calls in progress; later calls return ErrClosed. Closing twice
// is a no-op. The library stays loaded.
func (m *Model) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h == nil {
		return nil
	}
	m.lib.api.delete(m.h)
	m.h = nil
	return nil
}

// mulInt returns a*b for non-negative a, b, and false on overflow.
func mulInt(a, b int) (int, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > uint64(int(^uint(0)>>1)) {
		return 0, false
	}
	return int(lo), true
}
