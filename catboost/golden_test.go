package catboost

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// goldenDir holds the fixtures written by testdata/make_golden.py.
const goldenDir = "testdata"

type goldenCase struct {
	Name         string            `json:"name"`
	Rows         int               `json:"rows"`
	Features     int               `json:"features"`
	Dimensions   int               `json:"dimensions"`
	Trees        int               `json:"trees"`
	FeatureNames []string          `json:"feature_names"`
	Metadata     map[string]string `json:"metadata"`
}

type goldenManifest struct {
	CatboostVersion string       `json:"catboost_version"`
	Cases           []goldenCase `json:"cases"`
}

func readGoldenManifest(t *testing.T) goldenManifest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goldenDir, "manifest.json"))
	if err != nil {
		t.Fatalf("golden fixtures missing (regenerate with catboost/testdata/make_golden.py): %v", err)
	}
	var m goldenManifest
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	if len(m.Cases) == 0 {
		t.Fatal("manifest.json lists no cases")
	}
	return m
}

func readFloat32s(t testing.TB, path string) []float32 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data)%4 != 0 {
		t.Fatalf("%s: %d bytes is not a whole number of float32", path, len(data))
	}
	out := make([]float32, len(data)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(data[4*i:]))
	}
	return out
}

func readFloat64s(t testing.TB, path string) []float64 {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data)%8 != 0 {
		t.Fatalf("%s: %d bytes is not a whole number of float64", path, len(data))
	}
	out := make([]float64, len(data)/8)
	for i := range out {
		out[i] = math.Float64frombits(binary.LittleEndian.Uint64(data[8*i:]))
	}
	return out
}

// TestGolden requires bit-identical agreement with catboost's own
// RawFormulaVal on models it trained, for every thread count and for row
// counts that end inside a block.
func TestGolden(t *testing.T) { forEachPath(t, testGolden) }

func testGolden(t *testing.T) {
	manifest := readGoldenManifest(t)
	for _, c := range manifest.Cases {
		t.Run(c.Name, func(t *testing.T) {
			m, err := LoadJSONFile(filepath.Join(goldenDir, c.Name+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if m.NumFeatures() != c.Features || m.Dimensions() != c.Dimensions || m.NumTrees() != c.Trees {
				t.Fatalf("shape: %d features, %d dims, %d trees; want %d, %d, %d",
					m.NumFeatures(), m.Dimensions(), m.NumTrees(), c.Features, c.Dimensions, c.Trees)
			}
			if !slices.Equal(m.FeatureNames(), c.FeatureNames) {
				t.Errorf("FeatureNames() = %q, want %q", m.FeatureNames(), c.FeatureNames)
			}
			meta := m.Metadata()
			for k, v := range c.Metadata {
				if meta[k] != v {
					t.Errorf("Metadata()[%q] = %q, want %q", k, meta[k], v)
				}
			}
			if meta["model_guid"] == "" {
				t.Errorf("Metadata() lacks catboost's model_guid: %v", meta)
			}

			x := readFloat32s(t, filepath.Join(goldenDir, c.Name+".input.f32"))
			want := readFloat64s(t, filepath.Join(goldenDir, c.Name+".expected.f64"))
			if len(x) != c.Rows*c.Features || len(want) != c.Rows*c.Dimensions {
				t.Fatalf("fixture sizes %d, %d do not match the manifest", len(x), len(want))
			}
			for _, threads := range []int{1, 2, 0, 7} {
				for _, n := range []int{c.Rows, 1, blockSize + 1, c.Rows - 3} {
					got := make([]float64, n*c.Dimensions)
					if err := m.PredictRaw(x[:n*c.Features], n, got, threads); err != nil {
						t.Fatal(err)
					}
					for i := range got {
						if math.Float64bits(got[i]) != math.Float64bits(want[i]) {
							r := i / c.Dimensions
							t.Fatalf("threads=%d n=%d: row %d dim %d = %v (%#x), catboost %v (%#x); row %v",
								threads, n, r, i%c.Dimensions, got[i], math.Float64bits(got[i]),
								want[i], math.Float64bits(want[i]), x[r*c.Features:(r+1)*c.Features])
						}
					}
				}
			}
		})
	}
}
