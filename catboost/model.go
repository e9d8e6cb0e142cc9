// Package catboost evaluates CatBoost models in Go. Two backends share
// the Model interface: the native evaluator of oblivious trees read from
// CatBoost's JSON export (pure Go, this package), and the CatBoost C API
// (libcatboostmodel.so, opened with dlopen; package catboost/capi).
package catboost

// Model is a loaded CatBoost model. Implementations are safe for concurrent
// use by many goroutines; Close must not race with PredictRaw (callers
// serialise that, e.g. with a reference count).
type Model interface {
	// NumFeatures is the number of float features a row must have.
	NumFeatures() int
	// Dimensions is the number of raw outputs per row (1 for Logloss, RMSE,
	// YetiRank; the number of classes for MultiClass).
	Dimensions() int
	// FeatureNames returns the model's feature names in column order, or nil
	// when the model does not record them.
	FeatureNames() []string
	// Metadata returns the model's user metadata (key/value strings stored
	// with the model, e.g. "pyfeat_spec_hash"); never nil.
	Metadata() map[string]string
	// PredictRaw writes RawFormulaVal predictions for n rows. x is row-major,
	// len(x) == n*NumFeatures(), float32; out is caller-allocated, row-major,
	// len(out) == n*Dimensions(), float64. threads <= 0 means all cores.
	PredictRaw(x []float32, n int, out []float64, threads int) error
	// Close releases the model's resources; the model is unusable after it.
	Close() error
}
