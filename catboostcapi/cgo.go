package catboostcapi

/*
#cgo linux LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

// Declarations written for pyfeat from the documented CatBoost evaluation
// library C API (c_api.h). The library is opened with dlopen, so each
// function is a pointer type here rather than a prototype: the build must not
// need libcatboostmodel.so at link time.

typedef void ModelCalcerHandle;

enum EApiPredictionType {
	APT_RAW_FORMULA_VAL = 0
};

typedef ModelCalcerHandle* (*pf_ModelCalcerCreate)(void);
typedef void (*pf_ModelCalcerDelete)(ModelCalcerHandle* modelHandle);
typedef const char* (*pf_GetErrorString)(void);
typedef bool (*pf_LoadFullModelFromFile)(ModelCalcerHandle* modelHandle, const char* filename);
typedef bool (*pf_CalcModelPredictionFlat)(ModelCalcerHandle* modelHandle, size_t docCount,
	const float** floatFeatures, size_t floatFeaturesSize, double* result, size_t resultSize);
typedef size_t (*pf_GetFloatFeaturesCount)(ModelCalcerHandle* modelHandle);
typedef size_t (*pf_GetDimensionsCount)(ModelCalcerHandle* modelHandle);

// Optional: absent from some releases or from test doubles.
typedef size_t (*pf_GetCatFeaturesCount)(ModelCalcerHandle* modelHandle);
typedef size_t (*pf_GetTextFeaturesCount)(ModelCalcerHandle* modelHandle);
typedef size_t (*pf_GetEmbeddingFeaturesCount)(ModelCalcerHandle* modelHandle);
typedef bool (*pf_SetPredictionType)(ModelCalcerHandle* modelHandle, enum EApiPredictionType predictionType);
typedef bool (*pf_GetModelUsedFeaturesNames)(ModelCalcerHandle* modelHandle, char*** featureNames, size_t* featureCount);
typedef const char* (*pf_GetModelInfoValue)(ModelCalcerHandle* modelHandle, const char* keyPtr, size_t keySize);
typedef size_t (*pf_GetModelInfoValueSize)(ModelCalcerHandle* modelHandle, const char* keyPtr, size_t keySize);
typedef bool (*pf_CalcModelPredictionWithHashedCatFeatures)(ModelCalcerHandle* modelHandle, size_t docCount,
	const float** floatFeatures, size_t floatFeaturesSize, const int** catFeatures, size_t catFeaturesSize,
	double* result, size_t resultSize);
typedef bool (*pf_GetCatFeatureIndices)(ModelCalcerHandle* modelHandle, size_t** indices, size_t* count);
typedef bool (*pf_GetFloatFeatureIndices)(ModelCalcerHandle* modelHandle, size_t** indices, size_t* count);

typedef struct {
	pf_ModelCalcerCreate ModelCalcerCreate;
	pf_ModelCalcerDelete ModelCalcerDelete;
	pf_GetErrorString GetErrorString;
	pf_LoadFullModelFromFile LoadFullModelFromFile;
	pf_CalcModelPredictionFlat CalcModelPredictionFlat;
	pf_GetFloatFeaturesCount GetFloatFeaturesCount;
	pf_GetDimensionsCount GetDimensionsCount;

	pf_GetCatFeaturesCount GetCatFeaturesCount;
	pf_GetTextFeaturesCount GetTextFeaturesCount;
	pf_GetEmbeddingFeaturesCount GetEmbeddingFeaturesCount;
	pf_SetPredictionType SetPredictionType;
	pf_GetModelUsedFeaturesNames GetModelUsedFeaturesNames;
	pf_GetModelInfoValue GetModelInfoValue;
	pf_GetModelInfoValueSize GetModelInfoValueSize;
	pf_CalcModelPredictionWithHashedCatFeatures CalcModelPredictionWithHashedCatFeatures;
	pf_GetCatFeatureIndices GetCatFeatureIndices;
	pf_GetFloatFeatureIndices GetFloatFeatureIndices;
} pf_api;

// pf_dlopen opens a library and, on failure, returns a malloc'd copy of
// dlerror() in *err. Both happen in one C call because dlerror's state is
// per OS thread and a goroutine may change threads between cgo calls.
static void* pf_dlopen(const char* path, char** err) {
	dlerror();
	void* lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (lib == NULL) {
		const char* e = dlerror();
		*err = strdup(e != NULL ? e : "dlopen failed (no dlerror message)");
	}
	return lib;
}

// pf_dlclose is only for a library from which no model was ever created.
static void pf_dlclose(void* lib) {
	dlclose(lib);
}

#define PF_REQUIRED(name) \
	if ((api->name = (pf_##name)dlsym(lib, #name)) == NULL) return #name;
#define PF_OPTIONAL(name) \
	api->name = (pf_##name)dlsym(lib, #name);

// pf_resolve fills api and returns the name of the first missing required
// symbol, or NULL when all are present.
static const char* pf_resolve(void* lib, pf_api* api) {
	PF_REQUIRED(ModelCalcerCreate)
	PF_REQUIRED(ModelCalcerDelete)
	PF_REQUIRED(GetErrorString)
	PF_REQUIRED(LoadFullModelFromFile)
	PF_REQUIRED(CalcModelPredictionFlat)
	PF_REQUIRED(GetFloatFeaturesCount)
	PF_REQUIRED(GetDimensionsCount)
	PF_OPTIONAL(GetCatFeaturesCount)
	PF_OPTIONAL(GetTextFeaturesCount)
	PF_OPTIONAL(GetEmbeddingFeaturesCount)
	PF_OPTIONAL(SetPredictionType)
	PF_OPTIONAL(GetModelUsedFeaturesNames)
	PF_OPTIONAL(GetModelInfoValue)
	PF_OPTIONAL(GetModelInfoValueSize)
	PF_OPTIONAL(CalcModelPredictionWithHashedCatFeatures)
	PF_OPTIONAL(GetCatFeatureIndices)
	PF_OPTIONAL(GetFloatFeatureIndices)
	return NULL;
}

// pf_error copies the library's last error right after the failing call, in
// the same C call: the documented GetErrorString gives no guarantee the
// message survives another call (the stock library keeps one global string),
// and a test double may keep it per thread.
static char* pf_error(const pf_api* api, const char* fallback) {
	const char* s = api->GetErrorString();
	if (s == NULL || s[0] == '\0') {
		s = fallback;
	}
	return strdup(s);
}

static ModelCalcerHandle* pf_create(const pf_api* api, char** err) {
	ModelCalcerHandle* h = api->ModelCalcerCreate();
	if (h == NULL) {
		*err = pf_error(api, "ModelCalcerCreate returned NULL");
	}
	return h;
}

static void pf_delete(const pf_api* api, ModelCalcerHandle* h) {
	api->ModelCalcerDelete(h);
}

static bool pf_load(const pf_api* api, ModelCalcerHandle* h, const char* path, char** err) {
	if (!api->LoadFullModelFromFile(h, path)) {
		*err = pf_error(api, "LoadFullModelFromFile failed (no error message)");
		return false;
	}
	return true;
}

static bool pf_set_raw(const pf_api* api, ModelCalcerHandle* h, char** err) {
	if (api->SetPredictionType == NULL) {
		return true;
	}
	if (!api->SetPredictionType(h, APT_RAW_FORMULA_VAL)) {
		*err = pf_error(api, "SetPredictionType(APT_RAW_FORMULA_VAL) failed (no error message)");
		return false;
	}
	return true;
}

static size_t pf_float_count(const pf_api* api, ModelCalcerHandle* h) {
	return api->GetFloatFeaturesCount(h);
}

static size_t pf_dimensions(const pf_api* api, ModelCalcerHandle* h) {
	return api->GetDimensionsCount(h);
}

// pf_other_counts reports the categorical, text and embedding feature counts
// the library knows of; a count whose function is absent is reported as 0.
static void pf_other_counts(const pf_api* api, ModelCalcerHandle* h, size_t* cat, size_t* text, size_t* emb) {
	*cat = api->GetCatFeaturesCount != NULL ? api->GetCatFeaturesCount(h) : 0;
	*text = api->GetTextFeaturesCount != NULL ? api->GetTextFeaturesCount(h) : 0;
	*emb = api->GetEmbeddingFeaturesCount != NULL ? api->GetEmbeddingFeaturesCount(h) : 0;
}

enum { PF_BLOCK_ROWS = 1024 };

// pf_predict evaluates nrows row-major rows of nf floats starting at x into
// out (nrows*dims doubles). The float** array CalcModelPredictionFlat wants
// is built here, in C memory, because x may be Go memory: Go code may not
// store Go pointers in C memory, while C code may during the call as long
// as nothing keeps them afterwards (the array is freed before returning).
static bool pf_predict(const pf_api* api, ModelCalcerHandle* h, const float* x, size_t nrows, size_t nf,
		double* out, size_t dims, char** err) {
	static const float empty_row[1] = {0};
	size_t block = nrows < PF_BLOCK_ROWS ? nrows : PF_BLOCK_ROWS;
	if (block == 0) {
		return true;
	}
	const float** rows = (const float**)malloc(block * sizeof(*rows));
	if (rows == NULL) {
		*err = strdup("out of memory allocating row pointers");
		return false;
	}
	for (size_t start = 0; start < nrows; start += block) {
		size_t count = nrows - start < block ? nrows - start : block;
		for (size_t i = 0; i < count; i++) {
			rows[i] = nf > 0 ? x + (start + i) * nf : empty_row;
		}
		if (!api->CalcModelPredictionFlat(h, count, rows, nf, out + start * dims, count * dims)) {
			free(rows);
			*err = pf_error(api, "CalcModelPredictionFlat failed (no error message)");
			return false;
		}
	}
	free(rows);
	return true;
}

// pf_predict_cat is pf_predict for a model with categorical features: cats
// holds nc hashed values per row (CatBoost's 32-bit hashes, as int), passed
// to CalcModelPredictionWithHashedCatFeatures.
static bool pf_predict_cat(const pf_api* api, ModelCalcerHandle* h, const float* x, size_t nrows, size_t nf,
		const int* cats, size_t nc, double* out, size_t dims, char** err) {
	static const float empty_row[1] = {0};
	static const int empty_cats[1] = {0};
	size_t block = nrows < PF_BLOCK_ROWS ? nrows : PF_BLOCK_ROWS;
	if (block == 0) {
		return true;
	}
	const float** rows = (const float**)malloc(block * sizeof(*rows));
	const int** crows = (const int**)malloc(block * sizeof(*crows));
	if (rows == NULL || crows == NULL) {
		free(rows);
		free(crows);
		*err = strdup("out of memory allocating row pointers");
		return false;
	}
	for (size_t start = 0; start < nrows; start += block) {
		size_t count = nrows - start < block ? nrows - start : block;
		for (size_t i = 0; i < count; i++) {
			rows[i] = nf > 0 ? x + (start + i) * nf : empty_row;
			crows[i] = nc > 0 ? cats + (start + i) * nc : empty_cats;
		}
		if (!api->CalcModelPredictionWithHashedCatFeatures(h, count, rows, nf, crows, nc, out + start * dims, count * dims)) {
			free(rows);
			free(crows);
			*err = pf_error(api, "CalcModelPredictionWithHashedCatFeatures failed (no error message)");
			return false;
		}
	}
	free(rows);
	free(crows);
	return true;
}

// pf_indices calls GetCatFeatureIndices (cat) or GetFloatFeatureIndices;
// the caller frees *indices with free().
static bool pf_indices(const pf_api* api, ModelCalcerHandle* h, bool cat, size_t** indices, size_t* count) {
	*indices = NULL;
	*count = 0;
	pf_GetCatFeatureIndices fn = cat ? api->GetCatFeatureIndices : api->GetFloatFeatureIndices;
	if (fn == NULL) {
		return false;
	}
	return fn(h, indices, count);
}

// pf_feature_names returns the library's malloc'd names; the caller frees
// them with pf_free_names, as the API documents (free() on each string and
// on the array).
static bool pf_feature_names(const pf_api* api, ModelCalcerHandle* h, char*** names, size_t* count) {
	*names = NULL;
	*count = 0;
	if (api->GetModelUsedFeaturesNames == NULL) {
		return false;
	}
	return api->GetModelUsedFeaturesNames(h, names, count);
}

static void pf_free_names(char** names, size_t count) {
	if (names == NULL) {
		return;
	}
	for (size_t i = 0; i < count; i++) {
		free(names[i]);
	}
	free(names);
}

// pf_info_value returns the model's value for key (a pointer into the
// model, valid until ModelCalcerDelete) and its length, or NULL when the key
// is absent or the library lacks GetModelInfoValue.
static const char* pf_info_value(const pf_api* api, ModelCalcerHandle* h, const char* key, size_t keylen, size_t* vlen) {
	*vlen = 0;
	if (api->GetModelInfoValue == NULL) {
		return NULL;
	}
	const char* v = api->GetModelInfoValue(h, key, keylen);
	if (v == NULL) {
		return NULL;
	}
	*vlen = api->GetModelInfoValueSize != NULL ? api->GetModelInfoValueSize(h, key, keylen) : strlen(v);
	return v;
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// cAPI is the resolved function table of one opened library. The table
// lives in C memory (C.calloc) and is never freed, like the library itself.
type cAPI struct{ p *C.pf_api }

// takeCError converts a malloc'd C error string to Go and frees it.
func takeCError(s *C.char) string {
	if s == nil {
		return "(no error message: out of memory copying it)"
	}
	defer C.free(unsafe.Pointer(s))
	return C.GoString(s)
}

// dlopenLib opens path with RTLD_NOW|RTLD_LOCAL, resolves the function
// table and returns the dlopen handle and the table (C memory). missing is
// the first required symbol the library lacks, in which case the library has
// already been closed again.
func dlopenLib(path string) (lib unsafe.Pointer, api cAPI, missing string, err error) {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var cerr *C.char
	lib = C.pf_dlopen(cpath, &cerr)
	if lib == nil {
		return nil, cAPI{}, "", errors.New(takeCError(cerr))
	}
	p := (*C.pf_api)(C.calloc(1, C.size_t(unsafe.Sizeof(C.pf_api{}))))
	if p == nil {
		C.pf_dlclose(lib)
		return nil, cAPI{}, "", errors.New("out of memory allocating the function table")
	}
	if m := C.pf_resolve(lib, p); m != nil {
		// Safe to dlclose: nothing from this library was called yet, so no
		// model or library state can outlive the mapping.
		name := C.GoString(m)
		C.free(unsafe.Pointer(p))
		C.pf_dlclose(lib)
		return nil, cAPI{}, name, nil
	}
	return lib, cAPI{p}, "", nil
}

func (a cAPI) hasFeatureNames() bool { return a.p.GetModelUsedFeaturesNames != nil }
func (a cAPI) hasHashedCat() bool    { return a.p.CalcModelPredictionWithHashedCatFeatures != nil }
func (a cAPI) hasMetadata() bool     { return a.p.GetModelInfoValue != nil }

func (a cAPI) create() (unsafe.Pointer, error) {
	var cerr *C.char
	h := C.pf_create(a.p, &cerr)
	if h == nil {
		return nil, errors.New(takeCError(cerr))
	}
	return h, nil
}

func (a cAPI) delete(h unsafe.Pointer) { C.pf_delete(a.p, h) }

func (a cAPI) load(h unsafe.Pointer, path string) error {
	cpath := C.CString(path)
	defer C.free(unsafe.Pointer(cpath))
	var cerr *C.char
	if !C.pf_load(a.p, h, cpath, &cerr) {
		return errors.New(takeCError(cerr))
	}
	return nil
}

func (a cAPI) setRawFormulaVal(h unsafe.Pointer) error {
	var cerr *C.char
	if !C.pf_set_raw(a.p, h, &cerr) {
		return errors.New(takeCError(cerr))
	}
	return nil
}

func (a cAPI) floatFeatures(h unsafe.Pointer) uint64 { return uint64(C.pf_float_count(a.p, h)) }
func (a cAPI) dimensions(h unsafe.Pointer) uint64    { return uint64(C.pf_dimensions(a.p, h)) }

func (a cAPI) otherFeatureCounts(h unsafe.Pointer) (cat, text, emb uint64) {
	var c, t, e C.size_t
	C.pf_other_counts(a.p, h, &c, &t, &e)
	return uint64(c), uint64(t), uint64(e)
}

// predict evaluates nrows rows. x and out may be Go memory: each is passed
// as a direct cgo argument, which keeps it pinned for the call, and holds no
// Go pointers. x may be nil only when nf == 0.
func (a cAPI) predict(h unsafe.Pointer, x *float32, nrows, nf int, out *float64, dims int) error {
	var cerr *C.char
	if !C.pf_predict(a.p, h, (*C.float)(unsafe.Pointer(x)), C.size_t(nrows), C.size_t(nf),
		(*C.double)(unsafe.Pointer(out)), C.size_t(dims), &cerr) {
		return errors.New(takeCError(cerr))
	}
	return nil
}

// featureNames returns the names the library reports, ok=false when it has
// no GetModelUsedFeaturesNames or the call failed.
func (a cAPI) featureNames(h unsafe.Pointer) (names []string, ok bool) {
	var cnames **C.char
	var count C.size_t
	if !C.pf_feature_names(a.p, h, &cnames, &count) {
		return nil, false
	}
	defer C.pf_free_names(cnames, count)
	if count == 0 {
		return []string{}, true
	}
	if cnames == nil {
		return nil, false
	}
	list := unsafe.Slice(cnames, int(count))
	names = make([]string, len(list))
	for i, s := range list {
		if s == nil {
			return nil, false
		}
		names[i] = C.GoString(s)
	}
	return names, true
}

// infoValue looks key up in the model's metadata.
func (a cAPI) infoValue(h unsafe.Pointer, key string) (string, bool) {
	ckey := C.CString(key)
	defer C.free(unsafe.Pointer(ckey))
	var vlen C.size_t
	v := C.pf_info_value(a.p, h, ckey, C.size_t(len(key)), &vlen)
	if v == nil {
		return "", false
	}
	return C.GoStringN(v, C.int(vlen)), true
}

// predictCat evaluates nrows rows of nf floats and nc hashed categorical
// values; like predict, x, cats and out may be Go memory.
func (a cAPI) predictCat(h unsafe.Pointer, x *float32, nrows, nf int, cats *uint32, nc int, out *float64, dims int) error {
	var cerr *C.char
	if !C.pf_predict_cat(a.p, h, (*C.float)(unsafe.Pointer(x)), C.size_t(nrows), C.size_t(nf),
		(*C.int)(unsafe.Pointer(cats)), C.size_t(nc), (*C.double)(unsafe.Pointer(out)), C.size_t(dims), &cerr) {
		return errors.New(takeCError(cerr))
	}
	return nil
}

// featureIndices returns the training-table columns of the categorical (cat)
// or float features, ok=false when the library has no such function or the
// call failed.
func (a cAPI) featureIndices(h unsafe.Pointer, cat bool) ([]int, bool) {
	var p *C.size_t
	var n C.size_t
	if !C.pf_indices(a.p, h, C.bool(cat), &p, &n) {
		return nil, false
	}
	defer C.free(unsafe.Pointer(p))
	if n == 0 {
		return []int{}, true
	}
	if p == nil {
		return nil, false
	}
	out := make([]int, int(n))
	for i, v := range unsafe.Slice(p, int(n)) {
		out[i] = int(v)
	}
	return out, true
}
