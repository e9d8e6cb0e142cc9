/*
 * fake_catboostmodel.c: a test double for CatBoost's C API evaluation library
 * (libcatboostmodel.so). It exports the functions pyfeat's capi backend uses,
 * with the documented signatures, and evaluates a trivial but real model, so
 * that the Go and Python tests can exercise dlopen, loading, prediction and
 * error paths without the real library.
 *
 * Build (the Go tests and the Python test suite use this same command):
 *
 *     cc -shared -fPIC -O2 -o libfakecatboost.so fake_catboostmodel.c
 *
 * Model file (text; tokens separated by spaces or tabs):
 *
 *     fake-catboost-model v1
 *     <float feature count F> <dimension count D>
 *     D lines, one per dimension d: F weights w[d][0..F-1], then bias[d]
 *     then, optionally, any number of:
 *       name <column> <name>      the name of float feature <column>
 *       meta <key> <value>        metadata; the value is the rest of the line
 *       cat <count>               <count> categorical features
 *       catflat <i0> <i1> ...     their columns in the training table
 *                                 (GetCatFeatureIndices); the float
 *                                 features take the other columns in
 *                                 order. Default: after the float ones.
 *     blank lines are ignored.
 *
 * Prediction (RawFormulaVal) for row x and dimension d, in double precision:
 *
 *     s = 0; for j = 0 .. F-1 in order: s += w[d][j] * (isnan(x[j]) ? 0 : (double)x[j]);
 *     result = s + bias[d]
 *
 * Each product is rounded to double before it is added (no fused
 * multiply-add), so a caller can reproduce the result bit for bit.
 *
 * With categorical features, CalcModelPredictionWithHashedCatFeatures
 * then adds, for j = 0 .. C-1 in order, (double)cat[j] / 2^(10 + j%40): the
 * hashed value as the C int the API passes, scaled exactly. A model with
 * categorical features refuses CalcModelPredictionFlat, so a caller that
 * forgets them is caught.
 *
 * Errors set a per-thread message returned by GetErrorString.
 */

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FAKE_HEADER "fake-catboost-model v1"
#define FAKE_MAX_FEATURES 1000000
#define FAKE_MAX_DIMENSIONS 10000

typedef struct {
    bool loaded;
    size_t nf;
    size_t dims;
    size_t cat;
    size_t* catflat; /* cat entries, or NULL for the default layout */
    double* w;      /* dims * nf, row d holds dimension d */
    double* bias;   /* dims */
    char** names;   /* nf, NULL entries for unnamed columns */
    size_t nmeta;
    char** keys;
    char** values;
} fake_model;

static __thread char fake_error[1024];

static void set_error(const char* fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(fake_error, sizeof(fake_error), fmt, ap);
    va_end(ap);
}

static void clear_model(fake_model* m) {
    if (m->names != NULL) {
        for (size_t i = 0; i < m->nf; i++) {
            free(m->names[i]);
        }
    }
    for (size_t i = 0; i < m->nmeta; i++) {
        free(m->keys[i]);
        free(m->values[i]);
    }
    free(m->w);
    free(m->bias);
    free(m->catflat);
    free(m->names);
    free(m->keys);
    free(m->values);
    memset(m, 0, sizeof(*m));
}

static char* dup_n(const char* s, size_t n) {
    char* d = (char*)malloc(n + 1);
    if (d != NULL) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static char* read_file(const char* path, size_t* size) {
    FILE* f = fopen(path, "rb");
    if (f == NULL) {
        set_error("fake-catboost: cannot open model file \"%s\": %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = 4096, len = 0;
    char* buf = (char*)malloc(cap + 1);
    while (buf != NULL) {
        len += fread(buf + len, 1, cap - len, f);
        if (len < cap) {
            break;
        }
        cap *= 2;
        char* grown = (char*)realloc(buf, cap + 1);
        if (grown == NULL) {
            free(buf);
            buf = NULL;
        } else {
            buf = grown;
        }
    }
    if (buf == NULL) {
        fclose(f);
        set_error("fake-catboost: out of memory reading \"%s\"", path);
        return NULL;
    }
    if (ferror(f)) {
        fclose(f);
        free(buf);
        set_error("fake-catboost: error reading \"%s\"", path);
        return NULL;
    }
    fclose(f);
    buf[len] = '\0';
    *size = len;
    return buf;
}

/* next_line returns the next line (NUL-terminated in place, without its
 * "\n" or "\r\n") and advances *cursor, or NULL at the end of the text. */
static char* next_line(char** cursor) {
    char* s = *cursor;
    if (s == NULL || *s == '\0') {
        return NULL;
    }
    char* nl = strchr(s, '\n');
    if (nl != NULL) {
        *nl = '\0';
        *cursor = nl + 1;
    } else {
        *cursor = s + strlen(s);
    }
    size_t n = strlen(s);
    if (n > 0 && s[n - 1] == '\r') {
        s[n - 1] = '\0';
    }
    return s;
}

static char* skip_space(char* s) {
    while (*s == ' ' || *s == '\t') {
        s++;
    }
    return s;
}

static bool parse_size(char** s, size_t max, size_t* out) {
    char* p = skip_space(*s);
    char* end;
    if (*p < '0' || *p > '9') {
        return false;
    }
    errno = 0;
    unsigned long long v = strtoull(p, &end, 10);
    if (errno != 0 || v > max) {
        return false;
    }
    *out = (size_t)v;
    *s = end;
    return true;
}

static bool parse_double(char** s, double* out) {
    char* p = skip_space(*s);
    char* end;
    if (*p == '\0') {
        return false;
    }
    errno = 0;
    double v = strtod(p, &end);
    if (end == p || errno == ERANGE || (*end != '\0' && *end != ' ' && *end != '\t')) {
        return false;
    }
    *out = v;
    *s = end;
    return true;
}

static bool at_end(char* s) {
    return *skip_space(s) == '\0';
}

/* parse fills m from the model text, or sets the error and returns false. */
static bool parse(const char* path, char* text, fake_model* m) {
    char* cursor = text;
    char* line = next_line(&cursor);
    if (line == NULL || strcmp(line, FAKE_HEADER) != 0) {
        set_error("fake-catboost: \"%s\" is not a model file: first line must be \"%s\"", path, FAKE_HEADER);
        return false;
    }
    line = next_line(&cursor);
    if (line == NULL || !parse_size(&line, FAKE_MAX_FEATURES, &m->nf) ||
        !parse_size(&line, FAKE_MAX_DIMENSIONS, &m->dims) || !at_end(line) || m->dims == 0) {
        set_error("fake-catboost: \"%s\" line 2: want \"<features 0..%d> <dimensions 1..%d>\"", path,
                  FAKE_MAX_FEATURES, FAKE_MAX_DIMENSIONS);
        return false;
    }
    m->w = (double*)calloc(m->dims * m->nf + 1, sizeof(double));
    m->bias = (double*)calloc(m->dims, sizeof(double));
    m->names = (char**)calloc(m->nf + 1, sizeof(char*));
    if (m->w == NULL || m->bias == NULL || m->names == NULL) {
        set_error("fake-catboost: out of memory loading \"%s\"", path);
        return false;
    }
    size_t lineno = 2;
    for (size_t d = 0; d < m->dims; d++) {
        line = next_line(&cursor);
        lineno++;
        bool ok = line != NULL;
        for (size_t j = 0; ok && j < m->nf; j++) {
            ok = parse_double(&line, &m->w[d * m->nf + j]);
        }
        ok = ok && parse_double(&line, &m->bias[d]) && at_end(line);
        if (!ok) {
            set_error("fake-catboost: \"%s\" line %zu: want %zu weights and a bias for dimension %zu", path,
                      lineno, m->nf, d);
            return false;
        }
    }
    while ((line = next_line(&cursor)) != NULL) {
        lineno++;
        char* p = skip_space(line);
        if (*p == '\0') {
            continue;
        }
        if (strncmp(p, "name ", 5) == 0 || strncmp(p, "name\t", 5) == 0) {
            size_t col;
            p += 5;
            if (!parse_size(&p, FAKE_MAX_FEATURES, &col) || col >= m->nf) {
                set_error("fake-catboost: \"%s\" line %zu: name needs a column below %zu", path, lineno, m->nf);
                return false;
            }
            p = skip_space(p);
            size_t n = strcspn(p, " \t");
            if (n == 0 || !at_end(p + n)) {
                set_error("fake-catboost: \"%s\" line %zu: want \"name <column> <name>\"", path, lineno);
                return false;
            }
            free(m->names[col]);
            m->names[col] = dup_n(p, n);
        } else if (strncmp(p, "meta ", 5) == 0 || strncmp(p, "meta\t", 5) == 0) {
            p = skip_space(p + 5);
            size_t n = strcspn(p, " \t");
            if (n == 0) {
                set_error("fake-catboost: \"%s\" line %zu: want \"meta <key> <value>\"", path, lineno);
                return false;
            }
            char* value = p + n;
            if (*value != '\0') {
                value++; /* one separator; the rest of the line is the value */
            }
            char** keys = (char**)realloc(m->keys, (m->nmeta + 1) * sizeof(char*));
            if (keys != NULL) {
                m->keys = keys;
            }
            char** values = (char**)realloc(m->values, (m->nmeta + 1) * sizeof(char*));
            if (values != NULL) {
                m->values = values;
            }
            if (keys == NULL || values == NULL) {
                set_error("fake-catboost: out of memory loading \"%s\"", path);
                return false;
            }
            m->keys[m->nmeta] = dup_n(p, n);
            m->values[m->nmeta] = dup_n(value, strlen(value));
            m->nmeta++;
        } else if (strncmp(p, "cat ", 4) == 0 || strncmp(p, "cat\t", 4) == 0) {
            p += 4;
            if (!parse_size(&p, FAKE_MAX_FEATURES, &m->cat) || !at_end(p)) {
                set_error("fake-catboost: \"%s\" line %zu: want \"cat <count>\"", path, lineno);
                return false;
            }
        } else if (strncmp(p, "catflat ", 8) == 0 || strncmp(p, "catflat\t", 8) == 0) {
            p += 8;
            free(m->catflat);
            m->catflat = (size_t*)calloc(m->cat > 0 ? m->cat : 1, sizeof(size_t));
            if (m->catflat == NULL) {
                set_error("fake-catboost: out of memory loading \"%s\"", path);
                return false;
            }
            for (size_t j = 0; j < m->cat; j++) {
                if (!parse_size(&p, FAKE_MAX_FEATURES, &m->catflat[j])) {
                    set_error("fake-catboost: \"%s\" line %zu: want \"catflat\" and one column per categorical feature", path, lineno);
                    return false;
                }
            }
            if (!at_end(p)) {
                set_error("fake-catboost: \"%s\" line %zu: more catflat columns than categorical features", path, lineno);
                return false;
            }
        } else {
            set_error("fake-catboost: \"%s\" line %zu: unknown directive \"%.40s\"", path, lineno, p);
            return false;
        }
    }
    m->loaded = true;
    return true;
}

/* ---- exported C API ---- */

void* ModelCalcerCreate(void) {
    fake_model* m = (fake_model*)calloc(1, sizeof(fake_model));
    if (m == NULL) {
        set_error("fake-catboost: out of memory creating a model handle");
    }
    return m;
}

void ModelCalcerDelete(void* modelHandle) {
    if (modelHandle != NULL) {
        clear_model((fake_model*)modelHandle);
        free(modelHandle);
    }
}

const char* GetErrorString(void) {
    return fake_error;
}

bool LoadFullModelFromFile(void* modelHandle, const char* filename) {
    if (modelHandle == NULL || filename == NULL) {
        set_error("fake-catboost: LoadFullModelFromFile: NULL argument");
        return false;
    }
    size_t size;
    char* text = read_file(filename, &size);
    if (text == NULL) {
        return false;
    }
    if (strncmp(text, "fake-catboost-crash", 19) == 0) {
        /* A file that crashes the reader, as a damaged .cbm can crash
           CatBoost's: pyfeat must only ever meet it in another process. */
        raise(SIGSEGV);
    }
    fake_model next;
    memset(&next, 0, sizeof(next));
    bool ok = parse(filename, text, &next);
    free(text);
    if (!ok) {
        clear_model(&next);
        return false;
    }
    /* Like CatBoost, a failed load leaves the handle's previous model. */
    clear_model((fake_model*)modelHandle);
    *(fake_model*)modelHandle = next;
    return true;
}

bool SetPredictionType(void* modelHandle, int predictionType) {
    (void)modelHandle;
    if (predictionType != 0) {
        set_error("fake-catboost: only APT_RAW_FORMULA_VAL (0) is supported, got %d", predictionType);
        return false;
    }
    return true;
}

/* The float features' share of dimension d of one row: w . x with NaN as
 * 0, summed in order. */
static double float_sum(const fake_model* m, const float* x, size_t d) {
    const double* w = m->w + d * m->nf;
    double s = 0;
    for (size_t j = 0; j < m->nf; j++) {
        double v = isnan(x[j]) ? 0.0 : (double)x[j];
        /* volatile: keeps the compiler from fusing into an FMA. */
        volatile double p = w[j] * v;
        s += p;
    }
    return s;
}

bool CalcModelPredictionFlat(void* modelHandle, size_t docCount, const float** floatFeatures,
                             size_t floatFeaturesSize, double* result, size_t resultSize) {
    const fake_model* m = (const fake_model*)modelHandle;
    if (m == NULL || !m->loaded) {
        set_error("fake-catboost: CalcModelPredictionFlat: no model loaded");
        return false;
    }
    if (m->cat > 0) {
        set_error("fake-catboost: CalcModelPredictionFlat: the model has %zu categorical features", m->cat);
        return false;
    }
    if (floatFeaturesSize < m->nf) {
        set_error("fake-catboost: CalcModelPredictionFlat: %zu features given, model needs %zu",
                  floatFeaturesSize, m->nf);
        return false;
    }
    if (resultSize != docCount * m->dims) {
        set_error("fake-catboost: CalcModelPredictionFlat: result size %zu, want %zu", resultSize,
                  docCount * m->dims);
        return false;
    }
    if (docCount > 0 && (floatFeatures == NULL || result == NULL)) {
        set_error("fake-catboost: CalcModelPredictionFlat: NULL argument");
        return false;
    }
    for (size_t r = 0; r < docCount; r++) {
        const float* x = floatFeatures[r];
        for (size_t d = 0; d < m->dims; d++) {
            result[r * m->dims + d] = float_sum(m, x, d) + m->bias[d];
        }
    }
    return true;
}

bool CalcModelPredictionWithHashedCatFeatures(void* modelHandle, size_t docCount, const float** floatFeatures,
                                              size_t floatFeaturesSize, const int** catFeatures, size_t catFeaturesSize,
                                              double* result, size_t resultSize) {
    const fake_model* m = (const fake_model*)modelHandle;
    if (m == NULL || !m->loaded) {
        set_error("fake-catboost: CalcModelPredictionWithHashedCatFeatures: no model loaded");
        return false;
    }
    if (floatFeaturesSize != m->nf || catFeaturesSize != m->cat) {
        set_error("fake-catboost: CalcModelPredictionWithHashedCatFeatures: %zu float and %zu categorical features "
                  "given, model needs %zu and %zu", floatFeaturesSize, catFeaturesSize, m->nf, m->cat);
        return false;
    }
    if (resultSize != docCount * m->dims) {
        set_error("fake-catboost: CalcModelPredictionWithHashedCatFeatures: result size %zu, want %zu", resultSize,
                  docCount * m->dims);
        return false;
    }
    if (docCount > 0 && (floatFeatures == NULL || catFeatures == NULL || result == NULL)) {
        set_error("fake-catboost: CalcModelPredictionWithHashedCatFeatures: NULL argument");
        return false;
    }
    for (size_t r = 0; r < docCount; r++) {
        const float* x = floatFeatures[r];
        const int* c = catFeatures[r];
        for (size_t d = 0; d < m->dims; d++) {
            double s = float_sum(m, x, d);
            for (size_t j = 0; j < m->cat; j++) {
                volatile double p = (double)c[j] / (double)(1ULL << (10 + j % 40));
                s += p;
            }
            result[r * m->dims + d] = s + m->bias[d];
        }
    }
    return true;
}

static bool fake_indices(const fake_model* m, bool cat, size_t** indices, size_t* count) {
    if (m == NULL || !m->loaded || indices == NULL || count == NULL) {
        set_error("fake-catboost: Get%sFeatureIndices: no model loaded or NULL argument", cat ? "Cat" : "Float");
        return false;
    }
    size_t total = m->nf + m->cat;
    bool* is_cat = (bool*)calloc(total > 0 ? total : 1, sizeof(bool));
    size_t n = cat ? m->cat : m->nf;
    size_t* out = (size_t*)malloc((n > 0 ? n : 1) * sizeof(size_t));
    if (is_cat == NULL || out == NULL) {
        free(is_cat);
        free(out);
        set_error("fake-catboost: out of memory");
        return false;
    }
    for (size_t j = 0; j < m->cat; j++) {
        size_t col = m->catflat != NULL ? m->catflat[j] : m->nf + j;
        if (col < total) {
            is_cat[col] = true;
        }
    }
    size_t k = 0;
    if (cat) {
        for (size_t j = 0; j < m->cat; j++) {
            out[k++] = m->catflat != NULL ? m->catflat[j] : m->nf + j;
        }
    } else {
        for (size_t col = 0; col < total && k < n; col++) {
            if (!is_cat[col]) {
                out[k++] = col;
            }
        }
    }
    free(is_cat);
    *indices = out;
    *count = k;
    return true;
}

bool GetCatFeatureIndices(void* modelHandle, size_t** indices, size_t* count) {
    return fake_indices((const fake_model*)modelHandle, true, indices, count);
}

bool GetFloatFeatureIndices(void* modelHandle, size_t** indices, size_t* count) {
    return fake_indices((const fake_model*)modelHandle, false, indices, count);
}

size_t GetFloatFeaturesCount(void* modelHandle) {
    const fake_model* m = (const fake_model*)modelHandle;
    return m != NULL ? m->nf : 0;
}

size_t GetCatFeaturesCount(void* modelHandle) {
    const fake_model* m = (const fake_model*)modelHandle;
    return m != NULL ? m->cat : 0;
}

size_t GetDimensionsCount(void* modelHandle) {
    const fake_model* m = (const fake_model*)modelHandle;
    return m != NULL ? m->dims : 0;
}

/* Names in column order; an unnamed column is reported as its index, as
 * CatBoost does. The caller frees each string and the array with free(). */
bool GetModelUsedFeaturesNames(void* modelHandle, char*** featureNames, size_t* featureCount) {
    const fake_model* m = (const fake_model*)modelHandle;
    if (m == NULL || featureNames == NULL || featureCount == NULL) {
        set_error("fake-catboost: GetModelUsedFeaturesNames: NULL argument");
        return false;
    }
    char** names = (char**)calloc(m->nf + 1, sizeof(char*));
    if (names == NULL) {
        set_error("fake-catboost: out of memory");
        return false;
    }
    for (size_t i = 0; i < m->nf; i++) {
        char index[32];
        const char* s = m->names[i];
        if (s == NULL) {
            snprintf(index, sizeof(index), "%zu", i);
            s = index;
        }
        names[i] = dup_n(s, strlen(s));
        if (names[i] == NULL) {
            for (size_t k = 0; k < i; k++) {
                free(names[k]);
            }
            free(names);
            set_error("fake-catboost: out of memory");
            return false;
        }
    }
    *featureNames = names;
    *featureCount = m->nf;
    return true;
}

static const char* find_meta(const fake_model* m, const char* key, size_t keySize) {
    if (m == NULL || key == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < m->nmeta; i++) {
        if (strlen(m->keys[i]) == keySize && memcmp(m->keys[i], key, keySize) == 0) {
            return m->values[i];
        }
    }
    return NULL;
}

bool CheckModelMetadataHasKey(void* modelHandle, const char* keyPtr, size_t keySize) {
    return find_meta((const fake_model*)modelHandle, keyPtr, keySize) != NULL;
}

size_t GetModelInfoValueSize(void* modelHandle, const char* keyPtr, size_t keySize) {
    const char* v = find_meta((const fake_model*)modelHandle, keyPtr, keySize);
    return v != NULL ? strlen(v) : 0;
}

const char* GetModelInfoValue(void* modelHandle, const char* keyPtr, size_t keySize) {
    return find_meta((const fake_model*)modelHandle, keyPtr, keySize);
}
