package itemcache

import (
	"container/list"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tinylib/msgp/msgp"

	"github.com/pyfeat/pyfeat/features"
)

// record is a valid item record with the given id and price; title pads it.
func record(id int64, price float64, title string) []byte {
	b := msgp.AppendMapHeader(nil, 8)
	b = msgp.AppendString(b, "id")
	b = msgp.AppendInt64(b, id)
	b = msgp.AppendString(b, "title")
	b = msgp.AppendString(b, title)
	for _, k := range []string{"category", "subcategory", "region", "created_at", "seller_id"} {
		b = msgp.AppendString(b, k)
		b = msgp.AppendInt64(b, 1)
	}
	b = msgp.AppendString(b, "price")
	b = msgp.AppendFloat64(b, price)
	return b
}

func decoded(t testing.TB, id int64, price float64) *features.Decoded {
	d, err := features.DecodeOwned(record(id, price, fmt.Sprintf("item %d", id)))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func concat(recs ...[]byte) features.Items { return features.Concat(recs) }

func TestLookupFillAndHit(t *testing.T) {
	c, _ := New(1<<20, 0)
	l := c.Lookup([]int64{1, 2, 1, 3})
	if got := l.Missing(); fmt.Sprint(got) != "[0 1 3]" {
		t.Fatalf("missing %v, want the first position of each distinct id", got)
	}
	if _, err := l.Records(); err == nil {
		t.Fatal("Records before Fill must fail")
	}
	if err := l.Fill(c, concat(record(1, 10, "a"), record(2, 20, "b"), record(3, 30, "c"))); err != nil {
		t.Fatal(err)
	}
	recs, err := l.Records()
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []float64{10, 20, 10, 30} {
		if recs[i].Item.Price != want {
			t.Fatalf("position %d: price %v, want %v", i, recs[i].Item.Price, want)
		}
	}
	l2 := c.Lookup([]int64{3, 2, 1})
	if len(l2.Missing()) != 0 {
		t.Fatalf("all three were filled, missing %v", l2.Missing())
	}
	if st := c.Stats(); st.Len != 3 || st.Hits != 3 || st.Misses != 4 || st.Inserts != 3 {
		t.Fatalf("stats %+v", st)
	}
	n, _ := l.RawLen()
	blob, offs := make([]byte, n), make([]int64, 5)
	if err := l.CopyRaw(blob, offs); err != nil {
		t.Fatal(err)
	}
	if string(blob[offs[2]:offs[3]]) != string(record(1, 10, "a")) {
		t.Fatal("CopyRaw does not give the exact bytes")
	}
}

func TestFillRefusesBadRecords(t *testing.T) {
	c, _ := New(1<<20, 0)
	l := c.Lookup([]int64{7, 8, 9})
	bad := record(8, -1, "x") // negative price
	err := l.Fill(c, concat(record(7, 1, "a"), bad, record(9, 1, "c")))
	var ie *features.InputError
	if !errors.As(err, &ie) || ie.Position != 1 || ie.Key != "price" {
		t.Fatalf("got %v, want an input error at position 1, key price", err)
	}
	if c.Stats().Len != 0 {
		t.Fatal("a fill with a bad record stores nothing")
	}
	l = c.Lookup([]int64{7})
	err = l.Fill(c, concat(record(70, 1, "a")))
	if !errors.As(err, &ie) || ie.Position != 0 || ie.Key != "id" {
		t.Fatalf("a record of another id: got %v", err)
	}
	l = c.Lookup([]int64{7, 8})
	if err := l.Fill(c, concat(record(7, 1, "a"))); err == nil {
		t.Fatal("one record for two missing ids must fail")
	}
}

func TestTTLAndInvalidation(t *testing.T) {
	c, _ := New(1<<20, time.Minute)
	var now atomic.Int64
	c.SetClock(now.Load)
	l := c.Lookup([]int64{1})
	if err := l.Fill(c, concat(record(1, 10, "v1"))); err != nil {
		t.Fatal(err)
	}
	now.Store(int64(59 * time.Second))
	if len(c.Lookup([]int64{1}).Missing()) != 0 {
		t.Fatal("fresh for a minute")
	}
	now.Store(int64(time.Minute))
	if len(c.Lookup([]int64{1}).Missing()) != 1 || c.Stats().Expired != 1 {
		t.Fatal("stale after a minute")
	}
	// A request's snapshot keeps the version it saw, whatever happens next.
	old := c.Lookup([]int64{1})
	_ = old.Fill(c, concat(record(1, 20, "v2")))
	mid := c.Lookup([]int64{1})
	if c.Invalidate([]int64{1, 5}) != 1 {
		t.Fatal("one of the two ids was held")
	}
	if len(c.Lookup([]int64{1}).Missing()) != 1 {
		t.Fatal("invalidated")
	}
	r, _ := mid.Records()
	if r[0].Item.Price != 20 {
		t.Fatal("a lookup made before the invalidation keeps its record")
	}
}

func TestEvictionKeepsTheBoundUnderEightGoroutines(t *testing.T) {
	const bound = 64 << 10
	c, _ := New(bound, 0)
	var wg sync.WaitGroup
	var over atomic.Int64
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for i := 0; i < 2000; i++ {
				ids := make([]int64, 20)
				for k := range ids {
					ids[k] = int64(rng.IntN(5000))
				}
				l := c.Lookup(ids)
				var recs [][]byte
				for _, pos := range l.Missing() {
					recs = append(recs, record(ids[pos], float64(g), fmt.Sprintf("item %d %s", ids[pos], "padding padding")))
				}
				if err := l.Fill(c, concat(recs...)); err != nil {
					t.Error(err)
					return
				}
				got, _ := l.Records()
				for k, r := range got {
					if r.Item.ID != ids[k] {
						t.Errorf("position %d: record of %d, want %d", k, r.Item.ID, ids[k])
						return
					}
				}
				if st := c.Stats(); st.Bytes > bound {
					over.Add(1)
				}
				if i%100 == 0 {
					c.Invalidate(ids[:3])
				}
			}
		}(g)
	}
	wg.Wait()
	st := c.Stats()
	if over.Load() > 0 || st.Bytes > bound {
		t.Fatalf("above the bound %d times; final %+v", over.Load(), st)
	}
	if st.Evictions == 0 || st.Len == 0 {
		t.Fatalf("expected evictions and a non-empty cache: %+v", st)
	}
	// The accounting matches the records held.
	var sum int64
	c.mu.RLock()
	for _, e := range c.m {
		sum += e.size
	}
	c.mu.RUnlock()
	if sum != st.Bytes {
		t.Fatalf("accounted %d bytes, entries hold %d", st.Bytes, sum)
	}
}

func TestRecordLargerThanTheCacheIsNotStored(t *testing.T) {
	c, _ := New(100, 0)
	l := c.Lookup([]int64{1})
	if err := l.Fill(c, concat(record(1, 1, "big"))); err != nil {
		t.Fatal(err)
	}
	if r, err := l.Records(); err != nil || r[0] == nil {
		t.Fatal("the request still gets its record")
	}
	if st := c.Stats(); st.Len != 0 || st.Refused != 1 {
		t.Fatalf("%+v", st)
	}
}

// lru is the reference policy for the hit-ratio comparison.
type lru struct {
	max, bytes int64
	l          *list.List
	m          map[int64]*list.Element
}

type lruEntry struct {
	id   int64
	size int64
}

func (c *lru) get(id int64) bool {
	if e, ok := c.m[id]; ok {
		c.l.MoveToFront(e)
		return true
	}
	return false
}

func (c *lru) put(id, size int64) {
	c.m[id] = c.l.PushFront(lruEntry{id, size})
	c.bytes += size
	for c.bytes > c.max {
		e := c.l.Back()
		c.l.Remove(e)
		le := e.Value.(lruEntry)
		delete(c.m, le.id)
		c.bytes -= le.size
	}
}

// zipfStream returns requests of candidates drawn from n items with
// popularity ~ 1/rank^s (ranks shuffled over the ids), without repeats
// within a request, as candidate generators return them.
func zipfStream(n, requests, perRequest int, s float64, seed uint64) [][]int64 {
	rng := rand.New(rand.NewPCG(seed, 2))
	z := rand.NewZipf(rand.New(rand.NewPCG(seed, 3)), s, 1, uint64(n-1))
	perm := rng.Perm(n)
	out := make([][]int64, requests)
	for r := range out {
		seen := make(map[int64]bool, perRequest)
		for len(seen) < perRequest {
			id := int64(perm[z.Uint64()])
			if !seen[id] {
				seen[id] = true
				out[r] = append(out[r], id)
			}
		}
	}
	return out
}

// TestS3FIFOBeatsLRUOnZipf runs the same skewed candidate stream through
// this cache and through a byte-bounded LRU of the same size, and reports
// both hit ratios (go test -v -run Zipf ./itemcache).
func TestS3FIFOBeatsLRUOnZipf(t *testing.T) {
	const items = 50_000
	recs := make([]*features.Decoded, items)
	for i := range recs {
		recs[i] = decoded(t, int64(i), 1)
	}
	size := int64(recs[0].Size()) + entryOverhead
	for _, frac := range []float64{0.1, 0.25} {
		for _, s := range []float64{1.05, 1.2} {
			stream := zipfStream(items, 400, 500, s, 7)
			capBytes := int64(frac * items * float64(size))
			c, _ := New(capBytes, 0)
			ref := &lru{max: capBytes, l: list.New(), m: map[int64]*list.Element{}}
			var hitsC, hitsL, total int
			for r, req := range stream {
				l := c.Lookup(req)
				missing := map[int]bool{}
				for _, p := range l.Missing() {
					missing[p] = true
				}
				for k, id := range req {
					warm := r >= len(stream)/4 // count after the first quarter
					if warm {
						total++
						if !missing[k] {
							hitsC++
						}
					}
					if ref.get(id) {
						if warm {
							hitsL++
						}
					} else {
						ref.put(id, size)
					}
				}
				for _, p := range l.Missing() {
					c.Put(req[p], recs[req[p]])
				}
			}
			hc, hl := float64(hitsC)/float64(total), float64(hitsL)/float64(total)
			t.Logf("zipf s=%.2f, cache holds %.0f%% of %d items: S3-FIFO hit ratio %.3f, LRU %.3f", s, frac*100, items, hc, hl)
			if hc < hl-0.01 {
				t.Errorf("S3-FIFO %.3f is below LRU %.3f", hc, hl)
			}
		}
	}
}

func BenchmarkLookup3000(b *testing.B) {
	c, _ := New(1<<30, time.Hour)
	ids := make([]int64, 3000)
	for i := range ids {
		ids[i] = int64(i)
		c.Put(int64(i), decoded(b, int64(i), 1))
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c.Lookup(ids)
	}
}
