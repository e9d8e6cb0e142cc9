// Command cabi is the C ABI of pyfeat (pyfeat.h), built with
// -buildmode=c-shared into libpyfeat.so. It only converts: C buffers
// become Go slices, the call goes to package features or to the Service of
// package serving, and the error comes back as a pf_status (status.go).
// The logic, and every policy (the model handles, the user contexts, the
// sharing of the cores), lives in those pure-Go packages.
package main

/*
#include "pyfeat.h"
*/
import "C"

import (
	"strings"
	"unsafe"

	"github.com/pyfeat/pyfeat/features"
	"github.com/pyfeat/pyfeat/internal/faults"
	"github.com/pyfeat/pyfeat/internal/pferr"
	"github.com/pyfeat/pyfeat/serving"
)

func main() {}

// svc is the process's state behind the exports.
var svc = serving.New()

// goBytes views C memory as a Go slice without copying. The slice must not
// outlive the call (the caller owns the memory).
func goBytes(p *C.uint8_t, n C.int64_t) []byte {
	if p == nil || n <= 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}

// view is unsafe.Slice for a caller's buffer of n elements; nil for none.
func view[T, P any](p *P, n C.int64_t) []T {
	if p == nil || n <= 0 {
		return nil
	}
	return unsafe.Slice((*T)(unsafe.Pointer(p)), int(n))
}

func writeText(s string, buf *C.char, capacity C.int64_t, needed *C.int64_t) error {
	if needed != nil {
		*needed = C.int64_t(len(s) + 1)
	}
	if buf == nil || int(capacity) < len(s)+1 {
		return pferr.Argumentf("buffer of %d bytes is too small, need %d", capacity, len(s)+1)
	}
	dst := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(capacity))
	copy(dst, s)
	dst[len(s)] = 0
	return nil
}

// items views the caller's concatenated records and offsets.
func items(blob *C.uint8_t, offsets *C.int64_t, n C.int64_t) (features.Items, error) {
	if n < 0 || (n > 0 && offsets == nil) {
		return features.Items{}, pferr.Argumentf("invalid item count %d or NULL offsets", n)
	}
	if offsets == nil {
		return features.Items{Offsets: []int64{0}}, nil
	}
	offs := unsafe.Slice((*int64)(unsafe.Pointer(offsets)), int(n)+1)
	return features.Items{Blob: goBytes(blob, C.int64_t(offs[n])), Offsets: offs}, nil
}

func candidates(n C.int64_t, source *C.int64_t, score *C.double, rank *C.int64_t) *features.Candidates {
	if source == nil && score == nil && rank == nil {
		return nil
	}
	return &features.Candidates{
		Source: view[int64](source, n),
		Score:  view[float64](score, n),
		Rank:   view[int64](rank, n),
	}
}

//export pf_abi_version
func pf_abi_version() (v C.int32_t) {
	defer guardValue(&v)
	return C.PF_ABI_VERSION
}

//export pf_num_features
func pf_num_features() (v C.int32_t) {
	defer guardValue(&v)
	faults.Point("pf_num_features")
	return features.NumFeatures
}

//export pf_num_cat_features
func pf_num_cat_features() (v C.int32_t) {
	defer guardValue(&v)
	faults.Point("pf_num_cat_features")
	return features.NumCatFeatures
}

//export pf_catalogue
func pf_catalogue(buf *C.char, capacity C.int64_t, needed *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_catalogue")
	var b strings.Builder
	for _, f := range features.Catalogue {
		b.WriteString(f.Name + "\t" + f.Group + "\t" + features.KindNumeric + "\t" + f.Def + "\n")
	}
	for _, f := range features.CatCatalogue {
		b.WriteString(f.Name + "\t" + f.Group + "\t" + features.KindCategorical + "\t" + f.Def + "\n")
	}
	return setStatus(st, writeText(b.String(), buf, capacity, needed))
}

//export pf_spec_hash
func pf_spec_hash(buf *C.char, capacity C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_spec_hash")
	return setStatus(st, writeText(features.SpecHash(), buf, capacity, nil))
}

//export pf_user_begin
func pf_user_begin(user *C.uint8_t, userLen C.int64_t, handle *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_user_begin")
	if handle == nil || userLen < 0 || (userLen > 0 && user == nil) {
		return setStatus(st, pferr.Argumentf("pf_user_begin: NULL argument or negative length"))
	}
	*handle = C.int64_t(svc.BeginUser(goBytes(user, userLen)))
	return setStatus(st, nil)
}

//export pf_user_discard
func pf_user_discard(handle C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_user_discard")
	return setStatus(st, svc.DiscardUser(int64(handle)))
}

//export pf_compute
func pf_compute(userHandle C.int64_t,
	blob *C.uint8_t, offsets *C.int64_t, n C.int64_t, lookup C.int64_t,
	source *C.int64_t, score *C.double, rank *C.int64_t,
	threads C.int32_t, out *C.float, outLen C.int64_t, itemIDs *C.int64_t, timings *C.int64_t,
	catOut *C.int64_t, catOutLen C.int64_t,
	st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_compute")
	its, done, err := requestItems(blob, offsets, n, lookup)
	if err == nil && outLen > 0 && out == nil {
		done()
		err = pferr.Argumentf("pf_compute: NULL output of %d floats", outLen)
	}
	if err == nil && catOut != nil && catOutLen != n*features.NumCatFeatures {
		done()
		err = pferr.Argumentf("pf_compute: categorical output of %d values, want %d x %d", catOutLen, n, features.NumCatFeatures)
	}
	if err != nil {
		_ = svc.DiscardUser(int64(userHandle)) // consumed whatever the outcome
		return setStatus(st, err)
	}
	var cats []int64
	if catOut != nil {
		cats = unsafe.Slice((*int64)(unsafe.Pointer(catOut)), int(catOutLen))
	}
	defer done()
	return setStatus(st, svc.Compute(int64(userHandle), its, candidates(n, source, score, rank),
		int(threads), view[float32](out, outLen), view[int64](itemIDs, n), cats, stagesOut(timings)))
}

//export pf_model_load
func pf_model_load(path, backend, libPath *C.char, handle *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_model_load")
	if path == nil || backend == nil || handle == nil {
		return setStatus(st, pferr.Argumentf("pf_model_load: NULL argument"))
	}
	lib := ""
	if libPath != nil {
		lib = C.GoString(libPath)
	}
	h, err := svc.LoadModel(C.GoString(path), C.GoString(backend), lib)
	if err == nil {
		*handle = C.int64_t(h)
	}
	return setStatus(st, err)
}

//export pf_model_close
func pf_model_close(handle C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_model_close")
	return setStatus(st, svc.Models.Close(int64(handle)))
}

//export pf_model_share
func pf_model_share(handle C.int64_t, shared *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_model_share")
	if shared == nil {
		return setStatus(st, pferr.Argumentf("pf_model_share: NULL argument"))
	}
	h, err := svc.Models.Share(int64(handle))
	if err == nil {
		*shared = C.int64_t(h)
	}
	return setStatus(st, err)
}

//export pf_model_swap
func pf_model_swap(dst, src C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_model_swap")
	return setStatus(st, svc.Models.Swap(int64(dst), int64(src)))
}

//export pf_model_shape
func pf_model_shape(handle C.int64_t, nFeatures, dims *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_model_shape")
	if nFeatures == nil || dims == nil {
		return setStatus(st, pferr.Argumentf("pf_model_shape: NULL argument"))
	}
	nf, d, err := svc.ModelShape(int64(handle))
	if err == nil {
		*nFeatures, *dims = C.int64_t(nf), C.int64_t(d)
	}
	return setStatus(st, err)
}

//export pf_model_describe
func pf_model_describe(handle C.int64_t, buf *C.char, capacity C.int64_t, needed *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_model_describe")
	text, err := svc.DescribeModel(int64(handle))
	if err == nil {
		err = writeText(string(text), buf, capacity, needed)
	}
	return setStatus(st, err)
}

//export pf_model_predict
func pf_model_predict(handle C.int64_t, x *C.float, rows, cols C.int64_t, threads C.int32_t,
	out *C.double, outLen C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_model_predict")
	if rows < 0 || cols < 0 || outLen < 0 || (rows*cols > 0 && x == nil) || (outLen > 0 && out == nil) {
		return setStatus(st, pferr.Argumentf("pf_model_predict: invalid shape %d x %d or NULL buffer", rows, cols))
	}
	return setStatus(st, svc.Predict(int64(handle), view[float32](x, rows*cols), int(rows), int(cols),
		int(threads), view[float64](out, outLen)))
}

//export pf_rank
func pf_rank(handle C.int64_t, userHandle C.int64_t,
	blob *C.uint8_t, offsets *C.int64_t, n C.int64_t, lookup C.int64_t,
	source *C.int64_t, score *C.double, rank *C.int64_t,
	threads C.int32_t, featuresOut *C.float, catOut *C.int64_t, scores *C.double, order *C.int64_t, topK C.int64_t,
	timings *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_rank")
	its, done, err := requestItems(blob, offsets, n, lookup)
	if err == nil && (topK < 0 || topK > n || (topK > 0 && (scores == nil || order == nil))) {
		done()
		err = pferr.Argumentf("pf_rank: top_k %d out of range for %d items, or NULL outputs", topK, n)
	}
	if err != nil {
		_ = svc.DiscardUser(int64(userHandle)) // consumed whatever the outcome
		return setStatus(st, err)
	}
	defer done()
	var feats []float32
	if featuresOut != nil {
		feats = unsafe.Slice((*float32)(unsafe.Pointer(featuresOut)), int(n)*features.NumFeatures)
	}
	var cats []int64
	if catOut != nil {
		cats = unsafe.Slice((*int64)(unsafe.Pointer(catOut)), int(n)*features.NumCatFeatures)
	}
	return setStatus(st, svc.Rank(int64(handle), int64(userHandle), its, candidates(n, source, score, rank),
		int(threads), feats, cats, view[float64](scores, topK), view[int64](order, topK), stagesOut(timings)))
}
