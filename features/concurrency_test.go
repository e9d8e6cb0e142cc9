package features

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pyfeat/pyfeat/internal/pferr"
)

func sampleRequest(t testing.TB, n int) ([]byte, Items) {
	user := pack(t, kv{
		{"user_id", int64(1)}, {"now", int64(1_767_225_600)}, {"tz_offset_min", 180}, {"lat", 55.75}, {"lon", 37.61},
		{"region", 5}, {"interests", map[int64]float64{3: 0.7, 4: 0.2}},
		{"views", []any{[]any{42, 1_767_220_000, 3, 31, 1000.0, 7}, []any{43, 1_767_100_000, 4, 41, 10, 8}}},
		{"queries", []any{"диван угловой", "iphone"}},
	})
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = pack(t, with(with(with(baseItem(), "id", int64(i)), "price", float64(i)*3.5),
			"title", fmt.Sprintf("Диван %d iPhone", i%17)))
	}
	return user, Concat(recs)
}

// Many goroutines computing at once must get the serial result (run with
// -race: the request's lookups are shared read-only by the workers).
func TestConcurrentCompute(t *testing.T) {
	user, items := sampleRequest(t, 700)
	want := make([]float32, items.Len()*NumFeatures)
	if err := Compute(user, items, nil, 1, want); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			got := make([]float32, len(want))
			for k := 0; k < 5; k++ {
				if err := Compute(user, items, nil, 1+g%4, got); err != nil {
					errs <- err
					return
				}
				for i := range got {
					if !sameFloat32(got[i], want[i]) {
						errs <- fmt.Errorf("goroutine %d: value %d differs: %v vs %v", g, i, got[i], want[i])
						return
					}
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func BenchmarkCompute3000(b *testing.B) {
	user, items := sampleRequest(b, 3000)
	out := make([]float32, items.Len()*NumFeatures)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := Compute(user, items, nil, 0, out); err != nil {
			b.Fatal(err)
		}
	}
}

// Items decoded while the user context is still being prepared are staged
// and computed afterwards: a slow preparation makes the other workers stage
// every item, and the rows must still be the serial ones.
func TestComputeStagesItemsDuringPreparation(t *testing.T) {
	// 700 items on 4 goroutines stage a few each; 3000 on 2 make the other
	// worker reach maxKeptStaged and wait for the preparation.
	for _, tc := range []struct{ n, threads int }{{700, 4}, {3000, 2}} {
		user, items := sampleRequest(t, tc.n)
		want := make([]float32, items.Len()*NumFeatures)
		r, err := NewRequest(user)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Compute(items, nil, 1, want); err != nil {
			t.Fatal(err)
		}
		slow := func() (*Request, error) {
			time.Sleep(50 * time.Millisecond)
			return NewRequest(user)
		}
		got := make([]float32, len(want))
		if err := compute(slow, items, nil, tc.threads, got, nil, nil, false, nil, nil); err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if !sameFloat32(got[i], want[i]) {
				t.Fatalf("n=%d: value %d (item %d) differs: %v vs %v", tc.n, i, i/NumFeatures, got[i], want[i])
			}
		}
	}
}

// A user context error wins over item errors found meanwhile, and the
// lowest item error wins when the user context is fine.
func TestComputeErrorPrecedenceWithStaging(t *testing.T) {
	user, items := sampleRequest(t, 700)
	recs := make([][]byte, items.Len())
	for i := range recs {
		recs[i] = items.At(i)
	}
	recs[650] = []byte{0x92, 0x01, 0x02} // an array, not a map
	recs[400] = recs[400][:len(recs[400])-1]
	bad := Concat(recs)
	out := make([]float32, bad.Len()*NumFeatures)
	userErr := &InputError{Position: UserPosition, Key: "now", Msg: "boom"}
	slowFail := func() (*Request, error) {
		time.Sleep(30 * time.Millisecond)
		return nil, userErr
	}
	if err := compute(slowFail, bad, nil, 4, out, nil, nil, false, nil, nil); err != userErr {
		t.Fatalf("got %v, want the user context error", err)
	}
	slowOK := func() (*Request, error) {
		time.Sleep(30 * time.Millisecond)
		return NewRequest(user)
	}
	err := compute(slowOK, bad, nil, 4, out, nil, nil, false, nil, nil)
	var ie *InputError
	if !errors.As(err, &ie) || ie.Position != 400 {
		t.Fatalf("got %v, want the error of item 400", err)
	}
}

// ComputeBlocks without an output hands every block to the sink exactly
// once, with the rows Compute writes, staged items included.
func TestComputeBlocksSink(t *testing.T) {
	user, items := sampleRequest(t, 1000) // 7 full blocks and a short one
	want := make([]float32, items.Len()*NumFeatures)
	if err := Compute(user, items, nil, 1, want); err != nil {
		t.Fatal(err)
	}
	slow := func() (*Request, error) {
		time.Sleep(30 * time.Millisecond)
		return NewRequest(user)
	}
	fast := func() (*Request, error) { return NewRequest(user) }
	for _, prep := range []func() (*Request, error){fast, slow} {
		for _, threads := range []int{1, 3} {
			got := make([]float32, len(want))
			var mu sync.Mutex
			seen := map[int]int{}
			sink := func(start, end int, rows []float32, cats []int64) error {
				if start%Block != 0 || end != min(start+Block, items.Len()) || len(rows) != (end-start)*NumFeatures ||
					len(cats) != (end-start)*NumCatFeatures {
					return fmt.Errorf("bad block [%d, %d) with %d floats, %d ids", start, end, len(rows), len(cats))
				}
				mu.Lock()
				defer mu.Unlock()
				seen[start]++
				copy(got[start*NumFeatures:], rows)
				return nil
			}
			if err := compute(prep, items, nil, threads, nil, nil, nil, true, sink, nil); err != nil {
				t.Fatal(err)
			}
			if len(seen) != 8 {
				t.Fatalf("threads=%d: %d blocks seen, want 8: %v", threads, len(seen), seen)
			}
			for b, k := range seen {
				if k != 1 {
					t.Fatalf("block %d seen %d times", b, k)
				}
			}
			for i := range got {
				if !sameFloat32(got[i], want[i]) {
					t.Fatalf("threads=%d: value %d (item %d) differs: %v vs %v", threads, i, i/NumFeatures, got[i], want[i])
				}
			}
		}
	}
	boom := errors.New("boom")
	err := ComputeBlocks(user, items, nil, 2, nil, func(int, int, []float32) error { return boom })
	if err != boom {
		t.Fatalf("got %v, want the sink's error", err)
	}
}

// A panic on any goroutine of a call comes back as a *pferr.Panic: only the
// calling goroutine's panics reach the C boundary's recover, and one on a
// worker would otherwise end the process.
func TestComputePanicsBecomeErrors(t *testing.T) {
	user, items := sampleRequest(t, 1000)
	var pe *pferr.Panic
	for _, threads := range []int{1, 4} {
		err := ComputeBlocks(user, items, nil, threads, nil, func(start, end int, rows []float32) error {
			if start == 3*Block {
				panic("boom in a sink")
			}
			return nil
		})
		if !errors.As(err, &pe) || pe.Value != "boom in a sink" {
			t.Fatalf("threads=%d: got %v, want the sink's panic", threads, err)
		}
	}
	out := make([]float32, items.Len()*NumFeatures)
	err := compute(func() (*Request, error) { panic("boom in prepare") }, items, nil, 4, out, nil, nil, false, nil, nil)
	if !errors.As(err, &pe) || pe.Value != "boom in prepare" {
		t.Fatalf("got %v, want the preparation's panic", err)
	}
	// and the engine still works afterwards
	if err := Compute(user, items, nil, 4, out); err != nil {
		t.Fatal(err)
	}
}
