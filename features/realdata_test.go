package features

import (
	"encoding/binary"
	"os"
	"testing"
)

// BenchmarkComputeFile times Compute on a request dumped by the benchmark
// suite (PYFEAT_BENCH_REQUEST: int64 length-prefixed user blob, item count,
// then length-prefixed item blobs). Skipped without it.
func BenchmarkComputeFile(b *testing.B) {
	path := os.Getenv("PYFEAT_BENCH_REQUEST")
	if path == "" {
		b.Skip("PYFEAT_BENCH_REQUEST not set")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	next := func() []byte {
		n := int(binary.LittleEndian.Uint64(data))
		out := data[8 : 8+n]
		data = data[8+n:]
		return out
	}
	user := next()
	count := int(binary.LittleEndian.Uint64(data))
	data = data[8:]
	recs := make([][]byte, count)
	for i := range recs {
		recs[i] = next()
	}
	items := Concat(recs)
	out := make([]float32, count*NumFeatures)
	for _, threads := range []int{1, 2} {
		b.Run(map[int]string{1: "threads=1", 2: "threads=2"}[threads], func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if err := Compute(user, items, nil, threads, out); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
