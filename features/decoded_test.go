package features

import (
	"testing"
	"time"
)

// decodedItems decodes every record of items once, as an item cache does.
func decodedItems(t testing.TB, items Items) Items {
	recs := make([]*Decoded, items.Len())
	for i := range recs {
		d, err := DecodeOwned(items.At(i))
		if err != nil {
			t.Fatal(err)
		}
		recs[i] = d
	}
	return Items{Decoded: recs}
}

// Features from records decoded before (a cache's) are bit-identical to
// features from the raw records, with and without staging during a slow
// preparation, and the shared records are left untouched.
func TestDecodedRecordsGiveTheSameFeatures(t *testing.T) {
	for _, tc := range []struct{ n, threads int }{{700, 4}, {3000, 2}, {1, 1}} {
		user, items := sampleRequest(t, tc.n)
		want := make([]float32, items.Len()*NumFeatures)
		if err := Compute(user, items, nil, 1, want); err != nil {
			t.Fatal(err)
		}
		dec := decodedItems(t, items)
		before := string(dec.Decoded[0].tok.buf)
		for _, slow := range []bool{false, true} {
			prep := func() (*Request, error) {
				if slow {
					time.Sleep(30 * time.Millisecond)
				}
				return NewRequest(user)
			}
			got := make([]float32, len(want))
			var tm Timings
			if err := compute(prep, dec, nil, tc.threads, got, nil, nil, false, nil, &tm); err != nil {
				t.Fatal(err)
			}
			for i := range got {
				if !sameFloat32(got[i], want[i]) {
					t.Fatalf("n=%d slow=%v: value %d (item %d) differs: %v vs %v", tc.n, slow, i, i/NumFeatures, got[i], want[i])
				}
			}
			if tm.Wall <= 0 || tm.Features <= 0 {
				t.Fatalf("timings not filled: %+v", tm)
			}
		}
		if string(dec.Decoded[0].tok.buf) != before {
			t.Fatal("a worker wrote into a shared record's tokens")
		}
	}
	if err := (Items{Decoded: []*Decoded{nil}}).Validate(nil); err == nil {
		t.Fatal("a nil record must be refused")
	}
}

// The stage timings of a call account for its wall time: the CPU stages,
// summed over the goroutines, cover the workers' busy time.
func TestTimingsCoverTheCall(t *testing.T) {
	user, items := sampleRequest(t, 3000)
	out := make([]float32, items.Len()*NumFeatures)
	sink := func(start, end int, rows []float32) error {
		time.Sleep(100 * time.Microsecond)
		return nil
	}
	var tm Timings
	p := Begin(user, false)
	defer p.Close()
	t0 := time.Now()
	if err := ComputeBlocksTimed(p, items, nil, 1, out, nil, sink, &tm); err != nil {
		t.Fatal(err)
	}
	wall := time.Since(t0)
	cpu := tm.Prepare + tm.Decode + tm.Features + tm.Sink
	t.Logf("wall %v; timings %+v", wall, tm)
	if tm.Decode <= 0 || tm.Features <= 0 || tm.Sink < int64(24*100*time.Microsecond) {
		t.Fatalf("stages missing: %+v", tm)
	}
	// One goroutine: its stages are the call, within 10%.
	if d := float64(cpu) / float64(tm.Wall); d < 0.9 || d > 1.1 {
		t.Fatalf("stages sum to %v of a %v computation", time.Duration(cpu), time.Duration(tm.Wall))
	}
}

// The timings' cost: BenchmarkStages/timed against /untimed.
func BenchmarkStages(b *testing.B) {
	user, items := sampleRequest(b, 3000)
	out := make([]float32, items.Len()*NumFeatures)
	for _, timed := range []bool{false, true} {
		name := map[bool]string{false: "untimed", true: "timed"}[timed]
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				var tm *Timings
				if timed {
					tm = new(Timings)
				}
				p := Begin(user, false)
				if err := ComputeBlocksTimed(p, items, nil, 1, out, nil, nil, tm); err != nil {
					b.Fatal(err)
				}
				p.Close()
			}
		})
	}
}
