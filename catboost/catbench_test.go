package catboost

import (
	"encoding/binary"
	"fmt"
	"os"
	"syscall"
	"testing"
)

// BenchmarkCatModel times a categorical model on rows dumped from Python;
// set PYFEAT_CAT_BENCH_MODEL to the model's JSON export and
// PYFEAT_CAT_BENCH_ROWS to the common prefix of ROWS.floats.f32 and
// ROWS.cats.u32 (skipped otherwise). It reports the process's CPU time per
// call too (of all threads): on a shared machine that is steadier than the
// wall time.
func BenchmarkCatModel(b *testing.B) {
	model, rows := os.Getenv("PYFEAT_CAT_BENCH_MODEL"), os.Getenv("PYFEAT_CAT_BENCH_ROWS")
	if model == "" || rows == "" {
		b.Skip("PYFEAT_CAT_BENCH_MODEL / PYFEAT_CAT_BENCH_ROWS not set")
	}
	m, err := LoadJSONFile(model)
	if err != nil {
		b.Fatal(err)
	}
	x := readFloat32s(b, rows+".floats.f32")
	data, err := os.ReadFile(rows + ".cats.u32")
	if err != nil {
		b.Fatal(err)
	}
	cats := make([]uint32, len(data)/4)
	for i := range cats {
		cats[i] = binary.LittleEndian.Uint32(data[4*i:])
	}
	n := len(cats) / m.NumCatFeatures()
	out := make([]float64, n*m.Dimensions())
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads=%d", threads), func(b *testing.B) {
			cpu0 := cpuTime()
			for b.Loop() {
				if err := m.PredictRawCat(x, cats, n, out, threads); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

func cpuTime() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
