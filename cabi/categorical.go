package main

/*
#include "pyfeat.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"unsafe"

	"github.com/pyfeat/pyfeat/catboost"
	"github.com/pyfeat/pyfeat/serving"
)

//export pf_model_cat_layout
func pf_model_cat_layout(handle C.int64_t, buf *C.char, capacity C.int64_t, needed *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	m, release, err := models.Acquire(int64(handle))
	if err != nil {
		return setStatus(st, modelError(err))
	}
	defer release()
	text, err := json.Marshal(serving.Layout(m))
	if err != nil {
		return setStatus(st, err)
	}
	return writeText(string(text), buf, capacity, needed, st)
}

//export pf_cat_hash_strings
func pf_cat_hash_strings(blob *C.uint8_t, offsets *C.int64_t, n C.int64_t, out *C.uint32_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	if n < 0 || (n > 0 && (offsets == nil || out == nil)) {
		return setStatus(st, fmt.Errorf("pf_cat_hash_strings: invalid count %d or NULL buffer", n))
	}
	if n == 0 {
		return setStatus(st, nil)
	}
	offs := unsafe.Slice((*int64)(unsafe.Pointer(offsets)), int(n)+1)
	total := offs[n]
	if offs[0] != 0 || total < 0 || (total > 0 && blob == nil) {
		return setStatus(st, fmt.Errorf("pf_cat_hash_strings: invalid offsets [%d, %d]", offs[0], total))
	}
	data := goBytes(blob, C.int64_t(total))
	dst := unsafe.Slice((*uint32)(unsafe.Pointer(out)), int(n))
	for i := range dst {
		a, b := offs[i], offs[i+1]
		if a > b || b > total {
			return setStatus(st, fmt.Errorf("pf_cat_hash_strings: offsets[%d..%d] = %d, %d out of order", i, i+1, a, b))
		}
		dst[i] = catboost.HashCategoricalBytes(data[a:b])
	}
	return setStatus(st, nil)
}

//export pf_cat_hash_ints
func pf_cat_hash_ints(values *C.int64_t, n C.int64_t, out *C.uint32_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	if n < 0 || (n > 0 && (values == nil || out == nil)) {
		return setStatus(st, fmt.Errorf("pf_cat_hash_ints: invalid count %d or NULL buffer", n))
	}
	if n == 0 {
		return setStatus(st, nil)
	}
	src := unsafe.Slice((*int64)(unsafe.Pointer(values)), int(n))
	dst := unsafe.Slice((*uint32)(unsafe.Pointer(out)), int(n))
	for i, v := range src {
		dst[i] = catboost.HashCategoricalInt(v)
	}
	return setStatus(st, nil)
}

//export pf_model_predict_cat
func pf_model_predict_cat(handle C.int64_t, x *C.float, rows, nFloat C.int64_t, cats *C.uint32_t, nCat C.int64_t,
	threads C.int32_t, out *C.double, outLen C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	m, release, err := models.Acquire(int64(handle))
	if err != nil {
		return setStatus(st, modelError(err))
	}
	defer release()
	if rows < 0 || nFloat < 0 || nCat < 0 || outLen < 0 || (rows*nFloat > 0 && x == nil) ||
		(rows*nCat > 0 && cats == nil) || (outLen > 0 && out == nil) {
		return setStatus(st, fmt.Errorf("pf_model_predict_cat: invalid shape %d x (%d + %d) or NULL buffer", rows, nFloat, nCat))
	}
	xs := unsafe.Slice((*float32)(unsafe.Pointer(x)), int(rows*nFloat))
	cs := unsafe.Slice((*uint32)(unsafe.Pointer(cats)), int(rows*nCat))
	os := unsafe.Slice((*float64)(unsafe.Pointer(out)), int(outLen))
	th := enter(int(threads))
	defer leave()
	return setStatus(st, serving.PredictCat(m, xs, cs, int(rows), int(nFloat), int(nCat), th, os))
}
