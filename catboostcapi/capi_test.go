package catboostcapi

import (
	"errors"
	"fmt"
	"github.com/pyfeat/pyfeat/catboost"
	"math"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// findCC returns a C compiler, or skips the test when there is none.
func findCC(t *testing.T) string {
	t.Helper()
	if cc := strings.Fields(os.Getenv("CC")); len(cc) > 0 {
		if p, err := exec.LookPath(cc[0]); err == nil {
			return p
		}
	}
	for _, name := range []string{"cc", "gcc", "clang"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no C compiler (CC, cc, gcc or clang) found: cannot build the fake libcatboostmodel test double")
	return ""
}

// buildSharedLib compiles a C source into a shared library in t.TempDir()
// with the command documented at the top of testdata/fake_catboostmodel.c.
func buildSharedLib(t *testing.T, src, name string) string {
	t.Helper()
	cc := findCC(t)
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command(cc, "-shared", "-fPIC", "-O2", "-o", out, src)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(cmd.Args, " "), err, b)
	}
	return out
}

// buildFake builds the test double and returns the library's path.
func buildFake(t *testing.T) string {
	t.Helper()
	src, err := filepath.Abs(filepath.Join("testdata", "fake_catboostmodel.c"))
	if err != nil {
		t.Fatal(err)
	}
	return buildSharedLib(t, src, "libfakecatboost.so")
}

func openFake(t *testing.T) *Library {
	t.Helper()
	lib, err := Open(buildFake(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return lib
}

// linearModel mirrors the test double's model: out[d] = sum_j w[d][j]*x[j]
// (NaN as 0, products rounded to float64, summed in order) + bias[d].
type linearModel struct {
	nf, dims int
	w        [][]float64
	bias     []float64
}

func newLinearModel(rng *rand.Rand, nf, dims int) linearModel {
	m := linearModel{nf: nf, dims: dims, w: make([][]float64, dims), bias: make([]float64, dims)}
	for d := range dims {
		m.w[d] = make([]float64, nf)
		for j := range nf {
			m.w[d][j] = rng.NormFloat64()
		}
		m.bias[d] = rng.NormFloat64()
	}
	return m
}

// write stores the model in the test double's format, followed by extra
// lines, and returns the file path.
func (m linearModel) write(t *testing.T, extra string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "fake-catboost-model v1\n%d %d\n", m.nf, m.dims)
	for d := range m.dims {
		for _, w := range m.w[d] {
			b.WriteString(strconv.FormatFloat(w, 'g', -1, 64) + " ")
		}
		b.WriteString(strconv.FormatFloat(m.bias[d], 'g', -1, 64) + "\n")
	}
	b.WriteString(extra)
	return writeFile(t, "model.txt", b.String())
}

func (m linearModel) predict(x []float32, n int) []float64 {
	out := make([]float64, n*m.dims)
	for r := range n {
		for d := range m.dims {
			s := 0.0
			for j := range m.nf {
				v := float64(x[r*m.nf+j])
				if math.IsNaN(v) {
					v = 0
				}
				// The explicit conversion forbids fusing into an FMA.
				s += float64(m.w[d][j] * v)
			}
			out[r*m.dims+d] = s + m.bias[d]
		}
	}
	return out
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func randomRows(rng *rand.Rand, n, nf int) []float32 {
	x := make([]float32, n*nf)
	for i := range x {
		if rng.Intn(10) == 0 {
			x[i] = float32(math.NaN())
		} else {
			x[i] = float32(rng.NormFloat64() * 10)
		}
	}
	return x
}

func loadLinear(t *testing.T, lib *Library, m linearModel, extra string) *Model {
	t.Helper()
	model, err := lib.LoadModel(m.write(t, extra))
	if err != nil {
		t.Fatalf("LoadModel: %v", err)
	}
	t.Cleanup(func() { model.Close() })
	return model
}

func assertSameBits(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: len %d, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
			t.Fatalf("%s: [%d] = %v (%#x), want %v (%#x)", what, i,
				got[i], math.Float64bits(got[i]), want[i], math.Float64bits(want[i]))
		}
	}
}

func predict(t *testing.T, model *Model, x []float32, n, threads int) []float64 {
	t.Helper()
	out := make([]float64, n*model.Dimensions())
	if err := model.PredictRaw(x, n, out, threads); err != nil {
		t.Fatalf("PredictRaw(n=%d, threads=%d): %v", n, threads, err)
	}
	return out
}

func TestOpenWithoutPath(t *testing.T) {
	t.Setenv(EnvLibrary, "")
	_, err := Open("")
	if !errors.Is(err, ErrNoLibrary) {
		t.Fatalf("Open(\"\") error = %v, want ErrNoLibrary", err)
	}
	for _, want := range []string{"PYFEAT_CATBOOST_LIB", "libcatboostmodel-linux-x86_64-<version>.so", "releases"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestOpenMissingFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "libcatboostmodel.so")
	_, err := Open(p)
	if err == nil {
		t.Fatal("Open of a missing file succeeded")
	}
	// The dlerror text says why.
	if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "No such file") {
		t.Fatalf("error %q should name the path and include dlerror()", err)
	}
}

func TestOpenNotALibrary(t *testing.T) {
	p := writeFile(t, "libcatboostmodel.so", "not an ELF file\n")
	_, err := Open(p)
	if err == nil || !strings.Contains(err.Error(), "cannot load") || !strings.Contains(err.Error(), p) {
		t.Fatalf("Open of a text file: error = %v", err)
	}
}

func TestOpenMissingSymbol(t *testing.T) {
	src := writeFile(t, "partial.c", `#include <stdbool.h>
#include <stddef.h>
void* ModelCalcerCreate(void) { return NULL; }
void ModelCalcerDelete(void* h) { (void)h; }
const char* GetErrorString(void) { return "partial"; }
bool LoadFullModelFromFile(void* h, const char* f) { (void)h; (void)f; return false; }
size_t GetFloatFeaturesCount(void* h) { (void)h; return 0; }
size_t GetDimensionsCount(void* h) { (void)h; return 0; }
/* CalcModelPredictionFlat is missing on purpose. */
`)
	p := buildSharedLib(t, src, "libpartial.so")
	_, err := Open(p)
	if err == nil {
		t.Fatal("Open of a library without CalcModelPredictionFlat succeeded")
	}
	if !strings.Contains(err.Error(), "CalcModelPredictionFlat") || !strings.Contains(err.Error(), p) {
		t.Fatalf("error %q should name the missing symbol and the path", err)
	}
	// A failed Open is not cached.
	if _, err2 := Open(p); err2 == nil || err2.Error() != err.Error() {
		t.Fatalf("second Open: %v", err2)
	}
}

func TestOpenIsCached(t *testing.T) {
	p := buildFake(t)
	a, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatal("Open of the same path returned two Libraries")
	}
	link := filepath.Join(t.TempDir(), "link.so")
	if err := os.Symlink(p, link); err != nil {
		t.Fatal(err)
	}
	t.Setenv(EnvLibrary, link)
	c, err := Open("")
	if err != nil {
		t.Fatalf("Open via %s: %v", EnvLibrary, err)
	}
	if c != a {
		t.Fatal("Open via a symlink in PYFEAT_CATBOOST_LIB returned another Library")
	}
	if a.Path() != p || !a.HasFeatureNames() || !a.HasMetadata() {
		t.Fatalf("Path %q HasFeatureNames %v HasMetadata %v", a.Path(), a.HasFeatureNames(), a.HasMetadata())
	}
}

func TestPredictMatchesLinearFormula(t *testing.T) {
	lib := openFake(t)
	rng := rand.New(rand.NewSource(1))
	lm := newLinearModel(rng, 7, 1)
	model := loadLinear(t, lib, lm, "")
	if model.NumFeatures() != 7 || model.Dimensions() != 1 {
		t.Fatalf("NumFeatures %d Dimensions %d, want 7 1", model.NumFeatures(), model.Dimensions())
	}
	for _, n := range []int{0, 1, 2, 1023, 1024, 1025, 3000} {
		x := randomRows(rng, n, lm.nf)
		assertSameBits(t, fmt.Sprintf("n=%d", n), predict(t, model, x, n, 1), lm.predict(x, n))
	}
}

func TestMultiDimensional(t *testing.T) {
	lib := openFake(t)
	rng := rand.New(rand.NewSource(2))
	lm := newLinearModel(rng, 4, 3)
	model := loadLinear(t, lib, lm, "")
	if model.Dimensions() != 3 {
		t.Fatalf("Dimensions %d, want 3", model.Dimensions())
	}
	n := 2500
	x := randomRows(rng, n, lm.nf)
	assertSameBits(t, "3 dimensions", predict(t, model, x, n, 0), lm.predict(x, n))
}

func TestThreadsGiveIdenticalResults(t *testing.T) {
	lib := openFake(t)
	rng := rand.New(rand.NewSource(3))
	lm := newLinearModel(rng, 9, 2)
	model := loadLinear(t, lib, lm, "")
	n := 20000
	x := randomRows(rng, n, lm.nf)
	one := predict(t, model, x, n, 1)
	assertSameBits(t, "threads=1", one, lm.predict(x, n))
	for _, threads := range []int{2, 0, -1, 7, 1000} {
		assertSameBits(t, fmt.Sprintf("threads=%d", threads), predict(t, model, x, n, threads), one)
	}
}

func TestZeroFeatureModel(t *testing.T) {
	lib := openFake(t)
	lm := linearModel{nf: 0, dims: 2, w: [][]float64{{}, {}}, bias: []float64{1.5, -2.25}}
	model := loadLinear(t, lib, lm, "")
	got := predict(t, model, nil, 600, 2)
	assertSameBits(t, "no features", got, lm.predict(nil, 600))
}

func TestBadLengths(t *testing.T) {
	lib := openFake(t)
	rng := rand.New(rand.NewSource(4))
	lm := newLinearModel(rng, 3, 2)
	model := loadLinear(t, lib, lm, "")
	x := randomRows(rng, 10, 3)
	out := make([]float64, 20)
	cases := []struct {
		name string
		x    []float32
		n    int
		out  []float64
		want string
	}{
		{"short x", x[:29], 10, out, "len(x)"},
		{"long x", append(x[:30:30], 1), 10, out, "len(x)"},
		{"short out", x, 10, out[:19], "len(out)"},
		{"long out", x, 10, make([]float64, 21), "len(out)"},
		{"n too big", x, 11, out, "len(x)"},
		{"negative n", x, -1, out, "negative"},
		{"huge n", x, math.MaxInt / 2, out, "too large"},
	}
	for _, c := range cases {
		err := model.PredictRaw(c.x, c.n, c.out, 1)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error = %v, want one mentioning %q", c.name, err, c.want)
		}
	}
}

func TestLoadModelErrors(t *testing.T) {
	lib := openFake(t)
	missing := filepath.Join(t.TempDir(), "missing.cbm")
	cases := []struct {
		name, path, want string
	}{
		{"missing file", missing, "cannot open model file"},
		{"bad header", writeFile(t, "m", "catboost v9\n1 1\n1 2\n"), "first line must be"},
		{"bad sizes", writeFile(t, "m", "fake-catboost-model v1\n2\n"), "line 2"},
		{"zero dimensions", writeFile(t, "m", "fake-catboost-model v1\n2 0\n"), "line 2"},
		{"short weights", writeFile(t, "m", "fake-catboost-model v1\n2 1\n0.5 1\n"), "line 3"},
		{"bad number", writeFile(t, "m", "fake-catboost-model v1\n1 1\n0.5 x\n"), "line 3"},
		{"unknown directive", writeFile(t, "m", "fake-catboost-model v1\n1 1\n0.5 1\nbogus 1\n"), "unknown directive"},
	}
	for _, c := range cases {
		m, err := lib.LoadModel(c.path)
		if err == nil {
			m.Close()
			t.Errorf("%s: LoadModel succeeded", c.name)
			continue
		}
		// Both our context and the library's GetErrorString text.
		if !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.want) ||
			!strings.Contains(err.Error(), "fake-catboost:") {
			t.Errorf("%s: error %q should name the path and contain %q from GetErrorString", c.name, err, c.want)
		}
	}
}

// TestCategoricalFeatures: hashed categorical values reach
// CalcModelPredictionWithHashedCatFeatures row by row, as the C int the API
// takes, and the column layout comes from Get{Float,Cat}FeatureIndices.
func TestCategoricalFeatures(t *testing.T) {
	lib := openFake(t)
	rng := rand.New(rand.NewSource(5))
	lm := newLinearModel(rng, 2, 2)
	model, err := lib.LoadModel(lm.write(t, "cat 3\ncatflat 0 2 4\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	if model.NumFeatures() != 2 || model.NumCatFeatures() != 3 {
		t.Fatalf("%d float, %d categorical features", model.NumFeatures(), model.NumCatFeatures())
	}
	floats, cats := model.FlatIndexes()
	if fmt.Sprint(floats, cats) != "[1 3] [0 2 4]" {
		t.Fatalf("FlatIndexes() = %v, %v", floats, cats)
	}
	for _, n := range []int{0, 1, 7, 1500} {
		x := randomRows(rng, n, 2)
		h := make([]uint32, n*3)
		for i := range h {
			h[i] = catboost.HashCategorical(strconv.Itoa(rng.Intn(100)))
		}
		if n > 0 {
			h[0] = 0xffffffff // -1 as a C int
		}
		// The double's sum: float terms, then categorical terms, then bias.
		want := make([]float64, n*lm.dims)
		for r := range n {
			for d := range lm.dims {
				s := 0.0
				for j := range lm.nf {
					v := float64(x[r*lm.nf+j])
					if math.IsNaN(v) {
						v = 0
					}
					s += float64(lm.w[d][j] * v)
				}
				for j := range 3 {
					s += float64(int32(h[r*3+j])) / float64(uint64(1)<<(10+j))
				}
				want[r*lm.dims+d] = s + lm.bias[d]
			}
		}
		for _, threads := range []int{1, 3} {
			got := make([]float64, n*lm.dims)
			if err := model.PredictRawCat(x, h, n, got, threads); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
					t.Fatalf("n=%d threads=%d: out[%d] = %v, want %v", n, threads, i, got[i], want[i])
				}
			}
		}
	}
	x := randomRows(rng, 2, 2)
	if err := model.PredictRaw(x, 2, make([]float64, 4), 1); err == nil || !strings.Contains(err.Error(), "PredictRawCat") {
		t.Errorf("PredictRaw on a categorical model: %v", err)
	}
	if err := model.PredictRawCat(x, make([]uint32, 5), 2, make([]float64, 4), 1); err == nil {
		t.Error("PredictRawCat with 5 values for 2 rows x 3: no error")
	}

	// Default layout: categorical columns after the float ones.
	plain, err := lib.LoadModel(lm.write(t, "cat 2\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if floats, cats := plain.FlatIndexes(); fmt.Sprint(floats, cats) != "[0 1] [2 3]" {
		t.Errorf("FlatIndexes() = %v, %v", floats, cats)
	}
	// A layout that does not number the columns is refused.
	if _, err := lib.LoadModel(lm.write(t, "cat 2\ncatflat 0 0\n")); err == nil || !strings.Contains(err.Error(), "layout") {
		t.Errorf("LoadModel with clashing columns: %v", err)
	}
}

func TestFeatureNamesAndMetadata(t *testing.T) {
	lib := openFake(t)
	lm := newLinearModel(rand.New(rand.NewSource(6)), 3, 1)

	named := lm.write(t, "name 0 age\nname 2 price_log\nmeta pyfeat_spec_hash abc123\n"+
		"meta custom hello  world\nmeta model_guid g-1\n")
	model, err := lib.LoadModel(named, "custom", "absent")
	if err != nil {
		t.Fatal(err)
	}
	defer model.Close()
	if got, want := fmt.Sprint(model.FeatureNames()), "[age 1 price_log]"; got != want {
		t.Errorf("FeatureNames = %s, want %s", got, want)
	}
	want := map[string]string{"pyfeat_spec_hash": "abc123", "custom": "hello  world", "model_guid": "g-1"}
	if got := model.Metadata(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Metadata = %v, want %v", got, want)
	}
	model.Metadata()["pyfeat_spec_hash"] = "mutated"
	model.FeatureNames()[0] = "mutated"
	if model.Metadata()["pyfeat_spec_hash"] != "abc123" || model.FeatureNames()[0] != "age" {
		t.Error("Metadata or FeatureNames returned shared state")
	}
	if v, ok := model.MetadataValue("custom"); !ok || v != "hello  world" {
		t.Errorf("MetadataValue(custom) = %q, %v", v, ok)
	}
	if _, ok := model.MetadataValue("nope"); ok {
		t.Error("MetadataValue(nope) found a value")
	}

	plain, err := lib.LoadModel(lm.write(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if m := plain.Metadata(); m == nil || len(m) != 0 {
		t.Errorf("Metadata of a model without metadata = %#v, want empty non-nil", m)
	}
	if got := fmt.Sprint(plain.FeatureNames()); got != "[0 1 2]" {
		t.Errorf("FeatureNames of an unnamed model = %s, want the column indices", got)
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	lib := openFake(t)
	lm := newLinearModel(rand.New(rand.NewSource(7)), 2, 1)
	model, err := lib.LoadModel(lm.write(t, "meta k v\n"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := model.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	err = model.PredictRaw([]float32{1, 2}, 1, make([]float64, 1), 1)
	if !errors.Is(err, ErrClosed) {
		t.Fatalf("PredictRaw after Close: %v, want ErrClosed", err)
	}
	if _, ok := model.MetadataValue("k"); ok {
		t.Error("MetadataValue after Close found a value")
	}
	if model.NumFeatures() != 2 || model.Dimensions() != 1 || model.Metadata() == nil {
		t.Error("sizes or metadata changed by Close")
	}
}

func TestConcurrentPredict(t *testing.T) {
	lib := openFake(t)
	rng := rand.New(rand.NewSource(8))
	lm := newLinearModel(rng, 6, 2)
	model := loadLinear(t, lib, lm, "")
	type job struct {
		x    []float32
		n    int
		want []float64
	}
	jobs := make([]job, 8)
	for i := range jobs {
		n := 100 + 700*i
		x := randomRows(rng, n, lm.nf)
		jobs[i] = job{x, n, lm.predict(x, n)}
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(jobs))
	for g, jb := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range 20 {
				out := make([]float64, jb.n*lm.dims)
				if err := model.PredictRaw(jb.x, jb.n, out, 1+(g+it)%3); err != nil {
					errs <- err
					return
				}
				for i := range out {
					if math.Float64bits(out[i]) != math.Float64bits(jb.want[i]) {
						errs <- fmt.Errorf("goroutine %d iteration %d: [%d] = %v, want %v", g, it, i, out[i], jb.want[i])
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestCloseWaitsForPredict(t *testing.T) {
	lib := openFake(t)
	rng := rand.New(rand.NewSource(9))
	lm := newLinearModel(rng, 4, 1)
	model, err := lib.LoadModel(lm.write(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	n := 50000
	x := randomRows(rng, n, lm.nf)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out := make([]float64, n)
			if err := model.PredictRaw(x, n, out, 2); err != nil && !errors.Is(err, ErrClosed) {
				t.Error(err)
			}
		}()
	}
	if err := model.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

func TestPredictErrorCarriesLibraryMessage(t *testing.T) {
	lib := openFake(t)
	rng := rand.New(rand.NewSource(10))
	lm := newLinearModel(rng, 3, 1)
	model := loadLinear(t, lib, lm, "")
	// A view of the same handle that under-reports the row width makes the
	// library itself reject the call.
	narrow := &Model{lib: lib, path: model.path, nf: 2, dims: 1, h: model.h, meta: map[string]string{}}
	for _, threads := range []int{1, 4} {
		n := 3000
		err := narrow.PredictRaw(randomRows(rng, n, 2), n, make([]float64, n), threads)
		if err == nil || !strings.Contains(err.Error(), "2 features given, model needs 3") ||
			!strings.Contains(err.Error(), "CalcModelPredictionFlat") {
			t.Fatalf("threads=%d: error = %v, want the library's message", threads, err)
		}
	}
}
