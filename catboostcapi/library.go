// Package capi is the "capi" scoring backend: it evaluates CatBoost models
// through CatBoost's C API evaluation library (libcatboostmodel.so, published
// with CatBoost's GitHub releases), opened at run time with dlopen so that
// pyfeat builds and runs without it. Its *Model implements
// catboost.Model.
//
// The C declarations are written in this package from CatBoost's documented
// C API. Required: ModelCalcerCreate, ModelCalcerDelete, GetErrorString,
// LoadFullModelFromFile, CalcModelPredictionFlat, GetFloatFeaturesCount and
// GetDimensionsCount. Used when present: SetPredictionType,
// GetCatFeaturesCount, GetTextFeaturesCount, GetEmbeddingFeaturesCount,
// GetModelUsedFeaturesNames, GetModelInfoValue and GetModelInfoValueSize.
//
// The documented C API is thread-safe, so one model handle serves every
// goroutine.
package catboostcapi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"unsafe"

	"github.com/pyfeat/pyfeat/catboost"
)

// EnvLibrary is the environment variable Open reads when given an empty
// path: the file path of libcatboostmodel.so.
const EnvLibrary = "PYFEAT_CATBOOST_LIB"

// ErrNoLibrary is returned (wrapped, with instructions) by Open when neither
// a path nor PYFEAT_CATBOOST_LIB names the library.
var ErrNoLibrary = errors.New("capi: no CatBoost C API library given")

const howToGetLibrary = "download libcatboostmodel-linux-x86_64-<version>.so " +
	"(or the build for your platform) from CatBoost's GitHub releases " +
	"(https://github.com/catboost/catboost/releases), then pass its path " +
	"or set " + EnvLibrary + " to it"

// ErrClosed is returned by PredictRaw on a closed Model.
var ErrClosed = errors.New("capi: model is closed")

// Library is an opened CatBoost C API library. It stays loaded for the rest
// of the process: it is never dlclosed, because a model handle, a thread-local
// destructor or a static object of the library may still refer to its code.
// A Library is safe for concurrent use.
type Library struct {
	path string
	lib  unsafe.Pointer // dlopen handle; deliberately never passed to dlclose
	api  cAPI
}

var openLibs struct {
	sync.Mutex
	byPath map[string]*Library
}

// Open loads the CatBoost C API library at libPath (a file path; a relative
// path is relative to the working directory, the dynamic linker's search
// path is not used) with dlopen(RTLD_NOW|RTLD_LOCAL) and resolves its
// functions. An empty libPath means the value of PYFEAT_CATBOOST_LIB.
//
// Opening the same file again returns the same *Library; a library is never
// unloaded. Open fails, with dlerror's text, when the file is missing or not
// a loadable library, and names the symbol when a required function is
// missing.
func Open(libPath string) (*Library, error) {
	if libPath == "" {
		libPath = os.Getenv(EnvLibrary)
	}
	if libPath == "" {
		return nil, fmt.Errorf("%w: %s", ErrNoLibrary, howToGetLibrary)
	}
	key, err := filepath.Abs(libPath)
	if err != nil {
		return nil, fmt.Errorf("capi: CatBoost C API library path %q: %w", libPath, err)
	}
	if real, err := filepath.EvalSymlinks(key); err == nil {
		key = real
	}

	openLibs.Lock()
	defer openLibs.Unlock()
	if l, ok := openLibs.byPath[key]; ok {
		return l, nil
	}
	lib, api, missing, err := dlopenLib(key)
	if err != nil {
		hint := ""
		if _, statErr := os.Stat(key); errors.Is(statErr, fs.ErrNotExist) {
			hint = "; " + howToGetLibrary
		}
		return nil, fmt.Errorf("capi: cannot load CatBoost C API library %q: %v%s", libPath, err, hint)
	}
	if missing != "" {
		return nil, fmt.Errorf("capi: %q is not a usable CatBoost C API library: "+
			"required function %s not found", libPath, missing)
	}
	l := &Library{path: key, lib: lib, api: api}
	if openLibs.byPath == nil {
		openLibs.byPath = make(map[string]*Library)
	}
	openLibs.byPath[key] = l
	return l, nil
}

// Path is the absolute, symlink-resolved file path the library was opened
// from.
func (l *Library) Path() string { return l.path }

// HasFeatureNames reports whether the library exports
// GetModelUsedFeaturesNames, without which Model.FeatureNames is nil.
func (l *Library) HasFeatureNames() bool { return l.api.hasFeatureNames() }

// HasMetadata reports whether the library exports GetModelInfoValue, without
// which Model.Metadata is always empty.
func (l *Library) HasMetadata() bool { return l.api.hasMetadata() }

// DefaultMetadataKeys returns the metadata keys LoadModel reads into
// Model.Metadata. The C API can look a key up but cannot list the keys a
// model holds, so Metadata is limited to these plus the extra keys given to
// LoadModel; Model.MetadataValue looks up any key. The result is a fresh
// slice the caller may modify.
func DefaultMetadataKeys() []string {
	return []string{
		"pyfeat_spec_hash",
		"catboost_version_info",
		"model_guid",
		"params",
		"train_finish_time",
		"training",
		"output_options",
	}
}

// LoadModel loads a CatBoost model file (CatBoost's binary .cbm format, as
// LoadFullModelFromFile reads it) and sets it to produce RawFormulaVal. The
// model owns a C-allocated handle: call Close to free it.
//
// Metadata is read for DefaultMetadataKeys and extraMetadataKeys. Models with
// text or embedding features are refused; a model with categorical features
// is scored by PredictRawCat (CalcModelPredictionWithHashedCatFeatures).
func (l *Library) LoadModel(path string, extraMetadataKeys ...string) (*Model, error) {
	// CatBoost would block on a FIFO and read a device without end. A
	// missing file is left to CatBoost, whose message says so.
	if err := catboost.CheckModelFile(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("capi: %w", err)
	}
	h, err := l.api.create()
	if err != nil {
		return nil, fmt.Errorf("capi: ModelCalcerCreate: %v", err)
	}
	m, err := l.initModel(h, path, extraMetadataKeys)
	if err != nil {
		l.api.delete(h)
		return nil, err
	}
	return m, nil
}

func (l *Library) initModel(h unsafe.Pointer, path string, extraKeys []string) (*Model, error) {
	if err := l.api.load(h, path); err != nil {
		return nil, fmt.Errorf("capi: loading CatBoost model %q: %v", path, err)
	}
	if err := l.api.setRawFormulaVal(h); err != nil {
		return nil, fmt.Errorf("capi: model %q: %v", path, err)
	}
	cat, text, emb := l.api.otherFeatureCounts(h)
	if text != 0 || emb != 0 {
		return nil, fmt.Errorf("capi: model %q has %d text and %d embedding "+
			"features; pyfeat scores float and categorical features only", path, text, emb)
	}
	if cat != 0 && !l.api.hasHashedCat() {
		return nil, fmt.Errorf("capi: model %q has %d categorical features, but %s lacks "+
			"CalcModelPredictionWithHashedCatFeatures", path, cat, l.path)
	}
	const maxInt = int(^uint(0) >> 1)
	nf, dims := l.api.floatFeatures(h), l.api.dimensions(h)
	if nf > uint64(maxInt) || dims > uint64(maxInt) {
		return nil, fmt.Errorf("capi: model %q reports implausible sizes: %d float features, %d dimensions",
			path, nf, dims)
	}
	if dims == 0 {
		return nil, fmt.Errorf("capi: model %q reports 0 output dimensions", path)
	}
	m := &Model{
		lib:  l,
		path: path,
		h:    h,
		nf:   int(nf),
		dims: int(dims),
		meta: make(map[string]string),
	}
	if cat != 0 {
		if cat > uint64(maxInt) {
			return nil, fmt.Errorf("capi: model %q reports %d categorical features", path, cat)
		}
		// The columns of each kind in the training table, which rows given
		// as one table are split by; without them the split is a guess.
		floats, okF := l.api.featureIndices(h, false)
		cats, okC := l.api.featureIndices(h, true)
		if !okF || !okC || len(floats) != m.nf || len(cats) != int(cat) || !isLayout(floats, cats) {
			return nil, fmt.Errorf("capi: model %q has %d categorical features, but %s does not report "+
				"a consistent column layout (GetFloatFeatureIndices, GetCatFeatureIndices)", path, cat, l.path)
		}
		m.nc, m.floatFlat, m.catFlat = int(cat), floats, cats
	}
	// Names are kept only when there is one per column: the function lists
	// the features the model stores, in column order, and a count that
	// differs from the float feature count cannot be matched to columns.
	if names, ok := l.api.featureNames(h); ok && len(names) == m.nf && m.nf > 0 {
		m.names = names
	}
	for _, k := range append(DefaultMetadataKeys(), extraKeys...) {
		if v, ok := l.api.infoValue(h, k); ok {
			m.meta[k] = v
		}
	}
	return m, nil
}

// isLayout tells that the float and categorical columns, each increasing,
// together number 0..n-1.
func isLayout(floats, cats []int) bool {
	seen := make([]bool, len(floats)+len(cats))
	for _, list := range [][]int{floats, cats} {
		prev := -1
		for _, c := range list {
			if c <= prev || c >= len(seen) || seen[c] {
				return false
			}
			seen[c], prev = true, c
		}
	}
	return true
}
