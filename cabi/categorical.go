package main

/*
#include "pyfeat.h"
*/
import "C"

import (
	"github.com/pyfeat/pyfeat/internal/faults"
	"github.com/pyfeat/pyfeat/internal/pferr"
	"github.com/pyfeat/pyfeat/serving"
)

//export pf_model_cat_layout
func pf_model_cat_layout(handle C.int64_t, buf *C.char, capacity C.int64_t, needed *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_model_cat_layout")
	text, err := svc.CatLayout(int64(handle))
	if err == nil {
		err = writeText(string(text), buf, capacity, needed)
	}
	return setStatus(st, err)
}

//export pf_cat_hash_strings
func pf_cat_hash_strings(blob *C.uint8_t, offsets *C.int64_t, n C.int64_t, out *C.uint32_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_cat_hash_strings")
	if n < 0 || (n > 0 && (offsets == nil || out == nil)) {
		return setStatus(st, pferr.Argumentf("pf_cat_hash_strings: invalid count %d or NULL buffer", n))
	}
	if n == 0 {
		return setStatus(st, nil)
	}
	if n == 0 {
		return setStatus(st, nil)
	}
	offs := view[int64](offsets, n+1)
	if offs[n] < 0 || (offs[n] > 0 && blob == nil) {
		return setStatus(st, pferr.Argumentf("pf_cat_hash_strings: %d bytes of strings at NULL", offs[n]))
	}
	return setStatus(st, serving.HashStrings(goBytes(blob, C.int64_t(offs[n])), offs, view[uint32](out, n)))
}

//export pf_cat_hash_ints
func pf_cat_hash_ints(values *C.int64_t, n C.int64_t, out *C.uint32_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_cat_hash_ints")
	if n < 0 || (n > 0 && (values == nil || out == nil)) {
		return setStatus(st, pferr.Argumentf("pf_cat_hash_ints: invalid count %d or NULL buffer", n))
	}
	return setStatus(st, serving.HashInts(view[int64](values, n), view[uint32](out, n)))
}

//export pf_model_predict_cat
func pf_model_predict_cat(handle C.int64_t, x *C.float, rows, nFloat C.int64_t, cats *C.uint32_t, nCat C.int64_t,
	threads C.int32_t, out *C.double, outLen C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_model_predict_cat")
	if rows < 0 || nFloat < 0 || nCat < 0 || outLen < 0 || (rows*nFloat > 0 && x == nil) ||
		(rows*nCat > 0 && cats == nil) || (outLen > 0 && out == nil) {
		return setStatus(st, pferr.Argumentf("pf_model_predict_cat: invalid shape %d x (%d + %d) or NULL buffer", rows, nFloat, nCat))
	}
	return setStatus(st, svc.PredictCat(int64(handle), view[float32](x, rows*nFloat), view[uint32](cats, rows*nCat),
		int(rows), int(nFloat), int(nCat), int(threads), view[float64](out, outLen)))
}
