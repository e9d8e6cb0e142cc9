package main

/*
#include "pyfeat.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"time"
	"unsafe"

	"github.com/pyfeat/pyfeat/catboost"
	"github.com/pyfeat/pyfeat/catboostcapi"
	"github.com/pyfeat/pyfeat/features"
	"github.com/pyfeat/pyfeat/serving"
)

var models = serving.NewRegistry()

func modelError(err error) error {
	if err == nil {
		return nil
	}
	return statusError{C.PF_MODEL_ERROR, err.Error()}
}

//export pf_model_load
func pf_model_load(path, backend, libPath *C.char, handle *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	if path == nil || backend == nil || handle == nil {
		return setStatus(st, fmt.Errorf("pf_model_load: NULL argument"))
	}
	p, b := C.GoString(path), C.GoString(backend)
	var m catboost.Model
	var err error
	switch b {
	case "native":
		m, err = catboost.LoadJSONFile(p)
	case "capi":
		lib := ""
		if libPath != nil {
			lib = C.GoString(libPath)
		}
		var l *catboostcapi.Library
		if l, err = catboostcapi.Open(lib); err == nil {
			m, err = l.LoadModel(p)
		}
	default:
		err = fmt.Errorf("unknown backend %q: use \"native\" or \"capi\"", b)
	}
	if err != nil {
		return setStatus(st, modelError(err))
	}
	*handle = C.int64_t(models.Add(m))
	return setStatus(st, nil)
}

//export pf_model_close
func pf_model_close(handle C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	return setStatus(st, modelError(models.Close(int64(handle))))
}

//export pf_model_shape
func pf_model_shape(handle C.int64_t, nFeatures, dims *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	m, release, err := models.Acquire(int64(handle))
	if err != nil {
		return setStatus(st, modelError(err))
	}
	defer release()
	*nFeatures = C.int64_t(m.NumFeatures())
	*dims = C.int64_t(m.Dimensions())
	return setStatus(st, nil)
}

//export pf_model_describe
func pf_model_describe(handle C.int64_t, buf *C.char, capacity C.int64_t, needed *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	m, release, err := models.Acquire(int64(handle))
	if err != nil {
		return setStatus(st, modelError(err))
	}
	defer release()
	desc := map[string]any{"feature_names": m.FeatureNames(), "metadata": m.Metadata(), "trees": nil}
	if t, ok := m.(interface{ NumTrees() int }); ok {
		desc["trees"] = t.NumTrees()
	}
	text, err := json.Marshal(desc)
	if err != nil {
		return setStatus(st, err)
	}
	return writeText(string(text), buf, capacity, needed, st)
}

//export pf_model_predict
func pf_model_predict(handle C.int64_t, x *C.float, rows, cols C.int64_t, threads C.int32_t,
	out *C.double, outLen C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	m, release, err := models.Acquire(int64(handle))
	if err != nil {
		return setStatus(st, modelError(err))
	}
	defer release()
	if rows < 0 || cols < 0 || outLen < 0 || (rows*cols > 0 && x == nil) || (outLen > 0 && out == nil) {
		return setStatus(st, fmt.Errorf("pf_model_predict: invalid shape %d x %d or NULL buffer", rows, cols))
	}
	xs := unsafe.Slice((*float32)(unsafe.Pointer(x)), int(rows*cols))
	os := unsafe.Slice((*float64)(unsafe.Pointer(out)), int(outLen))
	th := enter(int(threads))
	defer leave()
	return setStatus(st, serving.Predict(m, xs, int(rows), int(cols), th, os))
}

//export pf_rank
func pf_rank(handle C.int64_t, userHandle C.int64_t,
	blob *C.uint8_t, offsets *C.int64_t, n C.int64_t, lookup C.int64_t,
	source *C.int64_t, score *C.double, rank *C.int64_t,
	threads C.int32_t, featuresOut *C.float, scores *C.double, order *C.int64_t, topK C.int64_t,
	timings *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	entered := time.Now()
	user, err := users.take(int64(userHandle))
	if err != nil {
		return setStatus(st, err)
	}
	defer user.Close()
	m, release, err := models.Acquire(int64(handle))
	if err != nil {
		return setStatus(st, modelError(err))
	}
	defer release()
	its, done, err := requestItems(blob, offsets, n, lookup)
	if err != nil {
		return setStatus(st, err)
	}
	defer done()
	if topK < 0 || topK > n || (topK > 0 && (scores == nil || order == nil)) {
		return setStatus(st, fmt.Errorf("pf_rank: top_k %d out of range for %d items, or NULL outputs", topK, n))
	}
	var feats []float32
	if featuresOut != nil {
		feats = unsafe.Slice((*float32)(unsafe.Pointer(featuresOut)), int(n)*features.NumFeatures)
	}
	sc := unsafe.Slice((*float64)(unsafe.Pointer(scores)), int(topK))
	ord := unsafe.Slice((*int64)(unsafe.Pointer(order)), int(topK))
	th := enter(int(threads))
	defer leave()
	wait := time.Since(entered)
	var tm serving.Timings
	err = serving.Rank(m, user, its, candidates(n, source, score, rank), th, feats, sc, ord, &tm)
	putStages(timings, entered, wait, &tm)
	var ie *features.InputError
	if err != nil && !asInputError(err, &ie) {
		err = modelError(err)
	}
	return setStatus(st, err)
}
