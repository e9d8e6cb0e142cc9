/* pyfeat.h - the C ABI of libpyfeat.so.
 *
 * This header is the single declaration of the ABI: cgo compiles the exports
 * against it (a signature that drifts fails the build) and the Python binding
 * reads it for cffi (of the preprocessor lines, only the PF_ integer
 * constants are kept there). The process model behind it: DESIGN.md,
 * "Process model".
 *
 * Conventions:
 * - Every function returns a status code, PF_OK (0) on success, and on
 *   failure fills the caller's pf_status. Go panics, on any goroutine of
 *   the call, are recovered and reported as PF_INTERNAL_ERROR; the process
 *   survives.
 * - The constants below are the only definition of the status codes and of
 *   the ABI version: Go compiles against them and the Python binding reads
 *   them through cffi.
 * - The caller owns every buffer. Go reads inputs and writes outputs only
 *   during the call and keeps no pointer to them afterwards.
 * - Models cross as opaque int64 handles. Go owns every model's lifetime:
 *   a model lives while a handle holds it or a call uses it.
 */
#ifndef PYFEAT_H
#define PYFEAT_H

#include <stdint.h>

/* PF_ABI_VERSION: bumped whenever a signature below changes; the binding
 * refuses a library that reports another version (a stale build). */
#define PF_ABI_VERSION 7

/* Status codes. */
#define PF_OK 0
#define PF_INPUT_ERROR 1    /* the caller's data: a record, a value, a candidate array */
#define PF_TYPE_ERROR 2     /* as PF_INPUT_ERROR, a value of the wrong type */
#define PF_ARGUMENT_ERROR 3 /* a call against the contract: buffer sizes, NULL, unknown user handle */
#define PF_MODEL_ERROR 4    /* a model that cannot be loaded, is closed, or does not fit */
#define PF_INTERNAL_ERROR 5 /* a bug in pyfeat (a recovered panic) */
#define PF_POSITION_USER -1 /* pf_status.position: the user context */
#define PF_POSITION_NONE -2 /* pf_status.position: not about an item */

typedef struct pf_status {
    int32_t code;
    int64_t position;   /* item position; -1: user context; -2: not about an item */
    char key[256];      /* offending key, NUL-terminated, may be empty */
    char message[2048]; /* NUL-terminated, UTF-8 */
} pf_status;

/* pf_abi_version: PF_ABI_VERSION of the header the library was built
 * with; -1 if Go panicked. */
int32_t pf_abi_version(void);

/* pf_num_features: columns of the (numeric, float32) feature matrix; -1 if
 * Go panicked. */
int32_t pf_num_features(void);

/* pf_num_cat_features: columns of the categorical (int64) matrix; -1 if Go
 * panicked. */
int32_t pf_num_cat_features(void);

/* PF_CAT_MISSING: a missing categorical value (INT64_MIN). */
#define PF_CAT_MISSING (-9223372036854775807 - 1)

/* pf_catalogue: writes "name\tgroup\tkind\tdefinition\n" per column into
 * buf (cap bytes, caller-allocated), the numeric columns then the
 * categorical ones; kind is "numeric" or "categorical". *needed receives
 * the size required. */
int32_t pf_catalogue(char* buf, int64_t cap, int64_t* needed, pf_status* st);

/* pf_spec_hash: writes the 16-hex-digit spec hash and a NUL into buf. */
int32_t pf_spec_hash(char* buf, int64_t cap, pf_status* st);

/* pf_user_begin: copies the user context (MessagePack, user_len bytes) and
 * starts decoding and preparing it on another core, so that it is ready
 * when the items follow; *user_handle receives a handle that the next
 * pf_compute or pf_rank consumes. Errors in the context are reported by
 * that call. */
int32_t pf_user_begin(uint8_t* user, int64_t user_len, int64_t* user_handle, pf_status* st);

/* pf_user_discard: releases a user handle that no call consumed. */
int32_t pf_user_discard(int64_t user_handle, pf_status* st);

/* pf_compute: the feature matrix of one request.
 * user_handle: from pf_user_begin; consumed, whatever the outcome.
 * items: the item records back to back; record i is
 *   items[offsets[i]:offsets[i+1]], offsets has n_items + 1 entries.
 * lookup: 0, or an item cache lookup (pf_cache_lookup, filled) whose
 *   n_items records are used instead; items and offsets are NULL then.
 * source, source_score, source_rank: candidate arrays of n_items entries
 *   each, or NULL when absent.
 * threads: goroutines to use, <= 0 for all cores.
 * out: n_items x pf_num_features() float32, row-major, out_len floats.
 * item_ids: NULL, or n_items int64 to receive each record's "id" (the
 *   decoder reads it anyway; the caller need not decode the records).
 * cat_out: NULL, or n_items x pf_num_cat_features() int64, row-major,
 *   cat_out_len values, to receive the categorical matrix as well.
 * timings: NULL, or PF_STAGES int64 receiving where the call's time went
 *   (nanoseconds; see PF_STAGE_*). */
#define PF_STAGES 8
#define PF_STAGE_TOTAL 0     /* the whole call in Go; the others add up to it */
#define PF_STAGE_WAIT 1      /* before the computation started: handles, a share of the cores */
#define PF_STAGE_USER 2      /* preparing the user context */
#define PF_STAGE_DECODE 3    /* decoding item records */
#define PF_STAGE_FEATURES 4  /* computing the feature rows */
#define PF_STAGE_SCORING 5   /* scoring (pf_rank) */
#define PF_STAGE_TOPK 6      /* ordering the scores (pf_rank) */
#define PF_STAGE_OTHER 7     /* the rest */
int32_t pf_compute(int64_t user_handle,
                   uint8_t* items, int64_t* offsets, int64_t n_items, int64_t lookup,
                   int64_t* source, double* source_score, int64_t* source_rank,
                   int32_t threads, float* out, int64_t out_len, int64_t* item_ids, int64_t* timings,
                   int64_t* cat_out, int64_t cat_out_len, pf_status* st);

/* ---- models ------------------------------------------------------------
 * backend: "native" (CatBoost JSON export, evaluated in Go) or "capi"
 * (CatBoost's libcatboostmodel.so, opened at lib_path, or at
 * $PYFEAT_CATBOOST_LIB when lib_path is empty; the model is a .cbm). */

/* pf_model_load: loads the model at path; *handle receives its handle. */
int32_t pf_model_load(char* path, char* backend, char* lib_path, int64_t* handle, pf_status* st);

/* pf_model_close: retires a handle; new calls with it fail. Its model is
 * closed once no handle holds it and the calls using it have finished. */
int32_t pf_model_close(int64_t handle, pf_status* st);

/* pf_model_share: *shared receives a new handle that serves the model
 * handle serves now (a Ranker's own handle). */
int32_t pf_model_share(int64_t handle, int64_t* shared, pf_status* st);

/* pf_model_swap: from now on, handle dst serves the model that src serves
 * (src keeps it too); atomically: a call with dst uses either the old model
 * or the new one, from start to end. The old model is released. */
int32_t pf_model_swap(int64_t dst, int64_t src, pf_status* st);

/* pf_model_shape: float features per row and outputs per row. */
int32_t pf_model_shape(int64_t handle, int64_t* n_features, int64_t* dimensions, pf_status* st);

/* pf_model_describe: writes a JSON object {"feature_names": [...] or null,
 * "metadata": {...}, "trees": n or null} into buf (cap bytes); *needed
 * receives the size required. */
int32_t pf_model_describe(int64_t handle, char* buf, int64_t cap, int64_t* needed, pf_status* st);

/* pf_model_predict: raw values (RawFormulaVal) for x, n_rows x n_cols
 * float32 row-major; out: n_rows x dimensions float64, out_len values. */
int32_t pf_model_predict(int64_t handle, float* x, int64_t n_rows, int64_t n_cols,
                         int32_t threads, double* out, int64_t out_len, pf_status* st);

/* ---- categorical models ---------------------------------------------
 * A model's training table has float and categorical columns. Categorical
 * values cross as CatBoost's 32-bit hashes of their strings (integers as
 * their decimal strings), computed by pf_cat_hash_strings/_ints. */

/* pf_model_cat_layout: writes a JSON object {"float_flat": [...],
 * "cat_flat": [...], "cat_feature_names": [...]}: the training-table column
 * of each float and each categorical feature. */
int32_t pf_model_cat_layout(int64_t handle, char* buf, int64_t cap, int64_t* needed, pf_status* st);

/* pf_cat_hash_strings: out[i] = hash of bytes blob[offsets[i]:offsets[i+1]]
 * for i < n (offsets has n+1 entries, offsets[0] = 0). */
int32_t pf_cat_hash_strings(uint8_t* blob, int64_t* offsets, int64_t n, uint32_t* out, pf_status* st);

/* pf_cat_hash_ints: out[i] = hash of the decimal string of values[i]. */
int32_t pf_cat_hash_ints(int64_t* values, int64_t n, uint32_t* out, pf_status* st);

/* pf_model_predict_cat: raw values for n_rows rows of n_float float32
 * features (x) and n_cat hashed categorical values (cats), both row-major;
 * out: n_rows x dimensions float64, out_len values. */
int32_t pf_model_predict_cat(int64_t handle, float* x, int64_t n_rows, int64_t n_float,
                             uint32_t* cats, int64_t n_cat, int32_t threads,
                             double* out, int64_t out_len, pf_status* st);

/* pf_rank: features, scores and order of one request in one call, with
 * the model that handle serves when the call starts (request arguments and
 * timings as in pf_compute). The model takes the numeric columns, or the
 * numeric then the categorical columns (scored with the categorical ids
 * hashed in Go). features: NULL, or n_items x pf_num_features() float32 to
 * receive the matrix; cat_features: NULL, or n_items x
 * pf_num_cat_features() int64 to receive the categorical matrix. scores,
 * order: top_k entries each (top_k <= n_items); order[i] indexes items,
 * scores descending, ties in input order. */
int32_t pf_rank(int64_t handle, int64_t user_handle,
                uint8_t* items, int64_t* offsets, int64_t n_items, int64_t lookup,
                int64_t* source, double* source_score, int64_t* source_rank,
                int32_t threads, float* features, int64_t* cat_features,
                double* scores, int64_t* order, int64_t top_k, int64_t* timings, pf_status* st);

/* pf_profile: records a CPU profile of the Go code in this process for ns
 * nanoseconds (the call blocks meanwhile) and writes it to path in pprof
 * format (whole or not at all). One at a time. */
int32_t pf_profile(char* path, int64_t ns, pf_status* st);

/* ---- item cache --------------------------------------------------------
 * A cache holds decoded item records keyed by item id, at most max_bytes of
 * them, each fresh for ttl_ns (0: until evicted or invalidated). A request
 * looks its candidates up (pf_cache_lookup: a snapshot of the records held
 * now), fills in the missing ones (pf_lookup_fill) and passes the lookup to
 * pf_compute / pf_rank instead of the items. */

/* pf_cache_new: *handle receives the cache's handle; pf_cache_close
 * releases it (lookups made from it stay valid). */
int32_t pf_cache_new(int64_t max_bytes, int64_t ttl_ns, int64_t* handle, pf_status* st);
int32_t pf_cache_close(int64_t handle, pf_status* st);

/* pf_cache_stats: out receives PF_CACHE_STATS counters: records held, bytes held,
 * max_bytes, hits, misses, expired, inserts, evictions, invalidations,
 * refused (records larger than the whole cache). */
#define PF_CACHE_STATS 10
int32_t pf_cache_stats(int64_t handle, int64_t* out, pf_status* st);

/* pf_cache_invalidate: drops the records of ids; *dropped receives how many
 * were held. pf_cache_clear drops them all. */
int32_t pf_cache_invalidate(int64_t handle, int64_t* ids, int64_t n, int64_t* dropped, pf_status* st);
int32_t pf_cache_clear(int64_t handle, pf_status* st);

/* pf_cache_lookup: snapshots the records of ids (n candidates, request
 * order); *lookup receives the request's lookup handle, missing (n entries,
 * caller-allocated) the positions of the distinct ids that are absent or
 * stale, *n_missing their count. */
int32_t pf_cache_lookup(int64_t handle, int64_t* ids, int64_t n, int64_t* lookup,
                        int64_t* missing, int64_t* n_missing, pf_status* st);

/* pf_lookup_fill: the records of the missing ids, in that order, back to
 * back (as pf_compute's items); each is decoded, checked (a bad record is a
 * PF_INPUT_ERROR at its candidate position) and stored in the cache. */
int32_t pf_lookup_fill(int64_t lookup, uint8_t* items, int64_t* offsets, int64_t n_items, pf_status* st);

/* pf_lookup_raw: the exact bytes of every candidate's record, back to back,
 * into blob (blob_len bytes) with n_offsets = n + 1 offsets; *needed receives the size
 * (offsets NULL: the size only). What a logged request records. */
int32_t pf_lookup_raw(int64_t lookup, uint8_t* blob, int64_t blob_len, int64_t* offsets, int64_t n_offsets,
                      int64_t* needed, pf_status* st);

/* pf_lookup_close: releases a lookup. */
int32_t pf_lookup_close(int64_t lookup, pf_status* st);

#endif /* PYFEAT_H */
