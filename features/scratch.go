package features

import (
	"runtime/debug"
	"sync/atomic"
	"time"
	"unsafe"
)

// What the free lists keep is bounded: a request whose scratch grew past
// maxKeptScratch (a user context with a million impressions builds tables of
// ~100 MB) is dropped after the call rather than kept for the next one, and
// each list keeps at most maxListScratch in all. A user with 100k
// impressions and views (~6 MB of scratch) is still kept.
const (
	maxKeptScratch = 16 << 20
	maxListScratch = 64 << 20
)

// Dropping big scratch only makes it garbage: the collector runs again
// when the heap doubles, which normal calls (they allocate little) take
// long to do, and the heap's pages go back to the OS only slowly after
// that. Once releaseAfter bytes were dropped, a goroutine returns them:
// a collection and a scavenge (debug.FreeOSMemory), at most one per
// releaseEvery, after the calls that dropped them had time to finish. A
// service that never sees huge requests never pays for it.
const (
	releaseAfter = 32 << 20
	releaseEvery = 200 * time.Millisecond
)

var (
	droppedBytes atomic.Int64
	releasing    atomic.Bool
	releases     atomic.Int64 // FreeOSMemory calls made, for tests
)

// dropped records that an object holding n bytes of scratch was not kept.
func dropped(n int) {
	if droppedBytes.Add(int64(n)) < releaseAfter || !releasing.CompareAndSwap(false, true) {
		return
	}
	go release()
}

func release() {
	for {
		time.Sleep(releaseEvery)
		droppedBytes.Store(0)
		debug.FreeOSMemory()
		releases.Add(1)
		releasing.Store(false)
		// Drops that came in meanwhile and crossed the threshold found
		// releasing set and started nothing: go round again for them.
		if droppedBytes.Load() < releaseAfter || !releasing.CompareAndSwap(false, true) {
			return
		}
	}
}

// scratchSize is what x holds for reuse, if its type knows.
func scratchSize(x any) int {
	if s, ok := x.(interface{ scratchBytes() int }); ok {
		return s.scratchBytes()
	}
	return 0
}

func sliceBytes[E any](s []E) int {
	var e E
	return cap(s) * int(unsafe.Sizeof(e))
}

// mapEntryBytes approximates a map's memory per entry: key, value, control
// byte and the free slots of a table kept 7/8 full at most.
func mapEntryBytes(key, value uintptr) int { return int(key+value+1) * 8 / 7 }

// bytes of a lookup. A map keeps the capacity of its largest contents; the
// entries counted here are those of the request just served (reset runs at
// the next prepare), so a table grown by a request that was too big was
// dropped with it.
func (l *lookup[T]) bytes() int {
	var v T
	return len(l.index)*mapEntryBytes(8, 4) + cap(l.vals)*int(unsafe.Sizeof(v))
}

func (t *tokenizer) bytes() int { return cap(t.buf) + sliceBytes(t.ends) }

func (r *Request) scratchBytes() int {
	u := &r.user
	n := int(unsafe.Sizeof(*r)) + cap(r.blob) + sliceBytes(r.viewCat) + sliceBytes(r.prices) +
		sliceBytes(r.sorted) + sliceBytes(r.catStart) + r.tok.bytes() +
		sliceBytes(u.Interests) + sliceBytes(u.SubInterests) + sliceBytes(u.Views) + sliceBytes(u.Contacts) +
		sliceBytes(u.Favorites) + sliceBytes(u.Impressions) + sliceBytes(u.Queries) +
		r.byCat.bytes() + r.bySubcat.bytes() + r.byItem.bytes() + r.bySeller.bytes()
	for k := range r.queryTokens {
		n += len(k) + int(mapEntryBytes(16, 1))
	}
	return n
}

func (w *worker) scratchBytes() int {
	n := int(unsafe.Sizeof(*w)) + w.tok.bytes() + sliceBytes(w.staged) + sliceBytes(w.rows)
	for k := range w.seen {
		n += len(k) + int(mapEntryBytes(16, 0))
	}
	return n
}
