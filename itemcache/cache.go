// Package itemcache keeps decoded item records in process, keyed by item
// id, bounded in bytes, with a time to live and explicit invalidation. It
// never talks to a store: a request looks its candidates up, the service
// fetches the missing ones from wherever it keeps them and fills them in,
// and the request then reads every record from the snapshot its lookup
// took. Pure Go, so that `go test -race` covers it.
//
// Eviction is S3-FIFO (Yang et al., "FIFO queues are all you need for cache
// eviction", SOSP 2023): a small FIFO that new records enter, a main FIFO
// for records read again while in the small one, and a ghost FIFO of
// recently evicted ids whose return goes straight to the main one. Why not
// LRU: a hit only bumps a 2-bit counter, with no list to reorder, so
// lookups, which are most of the traffic (3000 ids a request), share a read
// lock instead of serializing on an LRU list; and the small queue keeps a
// burst of one-off candidates (a generator's long tail) from flushing the
// popular records, where LRU lets every new record push an old one out.
// TestS3FIFOBeatsLRUOnZipf measures both on a skewed stream.
package itemcache

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/pyfeat/pyfeat/features"
	"github.com/pyfeat/pyfeat/internal/pferr"
)

// entryOverhead approximates what an entry costs besides its record: the
// entry struct and its share of the id map.
const entryOverhead = 128

type queueID uint8

const (
	inSmall queueID = iota
	inMain
)

type entry struct {
	id      int64
	rec     *features.Decoded
	size    int64
	expires int64 // clock reading (ns) after which the record is stale
	freq    atomic.Int32
	queue   queueID
	prev    *entry
	next    *entry
}

// fifo is an intrusive doubly linked FIFO: push at the head, pop at the
// tail, remove from anywhere (invalidation) in O(1).
type fifo struct {
	head, tail *entry
	bytes      int64
	n          int
}

func (q *fifo) push(e *entry) {
	e.prev, e.next = nil, q.head
	if q.head != nil {
		q.head.prev = e
	}
	q.head = e
	if q.tail == nil {
		q.tail = e
	}
	q.bytes += e.size
	q.n++
}

func (q *fifo) remove(e *entry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		q.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		q.tail = e.prev
	}
	e.prev, e.next = nil, nil
	q.bytes -= e.size
	q.n--
}

// ghost remembers recently evicted ids (no records), oldest first out.
type ghost struct {
	ids  []int64 // ring buffer
	at   int
	set  map[int64]int32 // id -> times it is in the ring
	size int
}

func (g *ghost) add(id int64) {
	if g.size == 0 {
		return
	}
	if len(g.ids) < g.size {
		g.ids = append(g.ids, id)
	} else {
		old := g.ids[g.at]
		if c := g.set[old] - 1; c > 0 {
			g.set[old] = c
		} else {
			delete(g.set, old)
		}
		g.ids[g.at] = id
		g.at = (g.at + 1) % g.size
	}
	g.set[id]++
}

func (g *ghost) has(id int64) bool { return g.set[id] > 0 }

// Stats are a cache's counters since it was made.
type Stats struct {
	Len           int   // records held
	Bytes         int64 // their accounted size
	MaxBytes      int64
	Hits          int64 // ids found fresh by a lookup
	Misses        int64 // ids absent or stale (Expired counts the stale ones too)
	Expired       int64
	Inserts       int64 // records stored (new or replacing one)
	Evictions     int64 // records dropped to stay under MaxBytes
	Invalidations int64 // records dropped by Invalidate or Clear
	Refused       int64 // records larger than the whole cache, not stored
}

// Cache is safe for concurrent use.
type Cache struct {
	maxBytes   int64
	smallBytes int64 // the small queue's target share
	ttl        int64 // ns; <= 0: records never expire
	clock      func() int64

	mu    sync.RWMutex
	m     map[int64]*entry
	small fifo
	main  fifo
	ghost ghost

	hits, misses, expired, inserts, evictions, invalidations, refused atomic.Int64
}

// New makes a cache holding at most maxBytes of records, each fresh for ttl
// (0: until evicted or invalidated).
func New(maxBytes int64, ttl time.Duration) (*Cache, error) {
	if maxBytes <= 0 {
		return nil, pferr.Argumentf("max_bytes must be > 0, got %d", maxBytes)
	}
	if ttl < 0 {
		return nil, pferr.Argumentf("ttl must be >= 0, got %v", ttl)
	}
	start := time.Now()
	c := &Cache{
		maxBytes: maxBytes, smallBytes: maxBytes / 10, ttl: int64(ttl),
		clock: func() int64 { return int64(time.Since(start)) },
		m:     make(map[int64]*entry),
	}
	c.ghost.set = make(map[int64]int32)
	return c, nil
}

// SetClock replaces the clock (ns, monotonic), for tests of the TTL.
func (c *Cache) SetClock(f func() int64) {
	c.mu.Lock()
	c.clock = f
	c.mu.Unlock()
}

// fresh returns id's record if it is held and not stale, and whether it
// was held but stale. The caller holds at least the read lock and counts
// the hits and misses (once per lookup: shared counters bumped per id
// would make concurrent lookups fight over one cache line).
func (c *Cache) fresh(id int64, now int64) (*features.Decoded, bool) {
	e, ok := c.m[id]
	if !ok {
		return nil, false
	}
	if c.ttl > 0 && now >= e.expires {
		return nil, true
	}
	if e.freq.Load() < 3 {
		e.freq.Add(1) // racing increments may overshoot 3 by a little: harmless
	}
	return e.rec, false
}

// Get returns the fresh record of id, or nil.
func (c *Cache) Get(id int64) *features.Decoded {
	c.mu.RLock()
	r, stale := c.fresh(id, c.clock())
	c.mu.RUnlock()
	c.count(b2i(r != nil), b2i(r == nil), b2i(stale))
	return r
}

func (c *Cache) count(hits, misses, stale int) {
	c.hits.Add(int64(hits))
	c.misses.Add(int64(misses))
	if stale > 0 {
		c.expired.Add(int64(stale))
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Put stores rec under id, replacing what was there; a record larger than
// the whole cache is not stored.
func (c *Cache) Put(id int64, rec *features.Decoded) {
	size := int64(rec.Size()) + entryOverhead
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(id, rec, size)
}

func (c *Cache) putLocked(id int64, rec *features.Decoded, size int64) {
	if size > c.maxBytes {
		c.refused.Add(1)
		if e, ok := c.m[id]; ok { // the old version must not outlive the new one
			c.drop(e)
			c.invalidations.Add(1)
		}
		return
	}
	c.inserts.Add(1)
	exp := c.clock() + c.ttl
	if e, ok := c.m[id]; ok {
		q := c.queueOf(e)
		q.bytes += size - e.size
		e.rec, e.size, e.expires = rec, size, exp
	} else {
		e := &entry{id: id, rec: rec, size: size, expires: exp}
		if c.ghost.has(id) {
			e.queue = inMain
			c.main.push(e)
		} else {
			e.queue = inSmall
			c.small.push(e)
		}
		c.m[id] = e
	}
	c.evict()
}

func (c *Cache) queueOf(e *entry) *fifo {
	if e.queue == inMain {
		return &c.main
	}
	return &c.small
}

func (c *Cache) drop(e *entry) {
	c.queueOf(e).remove(e)
	delete(c.m, e.id)
}

// evict drops records until the cache is within its bound (S3-FIFO).
func (c *Cache) evict() {
	for c.small.bytes+c.main.bytes > c.maxBytes {
		if c.small.n > 0 && (c.small.bytes > c.smallBytes || c.main.n == 0) {
			e := c.small.tail
			c.small.remove(e)
			if e.freq.Load() > 1 { // read again while new: promote
				e.freq.Store(0)
				e.queue = inMain
				c.main.push(e)
				continue
			}
			delete(c.m, e.id)
			c.ghostAdd(e.id)
			c.evictions.Add(1)
			continue
		}
		e := c.main.tail
		c.main.remove(e)
		if f := e.freq.Load(); f > 0 { // a second chance per recent read
			e.freq.Store(min(f, 3) - 1)
			c.main.push(e)
			continue
		}
		delete(c.m, e.id)
		c.evictions.Add(1)
	}
}

func (c *Cache) ghostAdd(id int64) {
	// The ghost remembers about as many ids as the main queue holds
	// records; resized only when that is off by half (a resize rebuilds the
	// set, and the main queue's length changes with every eviction).
	if want := max(c.main.n, 1024); want > c.ghost.size*3/2 || want < c.ghost.size/2 {
		c.resizeGhost(want)
	}
	c.ghost.add(id)
}

func (c *Cache) resizeGhost(n int) {
	if n < len(c.ghost.ids) {
		// Shrink: keep the newest n.
		kept := make([]int64, 0, n)
		for i := len(c.ghost.ids) - n; i < len(c.ghost.ids); i++ {
			kept = append(kept, c.ghost.ids[(c.ghost.at+i)%len(c.ghost.ids)])
		}
		clear(c.ghost.set)
		for _, id := range kept {
			c.ghost.set[id]++
		}
		c.ghost.ids, c.ghost.at = kept, 0
	} else if c.ghost.at != 0 {
		// Grow: unroll the ring so that appends go at its end.
		ids := make([]int64, 0, n)
		ids = append(ids, c.ghost.ids[c.ghost.at:]...)
		ids = append(ids, c.ghost.ids[:c.ghost.at]...)
		c.ghost.ids, c.ghost.at = ids, 0
	}
	c.ghost.size = n
}

// Invalidate drops the records of ids (absent ids are ignored) and returns
// how many were held.
func (c *Cache) Invalidate(ids []int64) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, id := range ids {
		if e, ok := c.m[id]; ok {
			c.drop(e)
			n++
		}
	}
	c.invalidations.Add(int64(n))
	return n
}

// Clear drops every record.
func (c *Cache) Clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.invalidations.Add(int64(len(c.m)))
	clear(c.m)
	c.small, c.main = fifo{}, fifo{}
}

// Stats returns the counters and the current size.
func (c *Cache) Stats() Stats {
	c.mu.RLock()
	n, b := len(c.m), c.small.bytes+c.main.bytes
	c.mu.RUnlock()
	return Stats{
		Len: n, Bytes: b, MaxBytes: c.maxBytes,
		Hits: c.hits.Load(), Misses: c.misses.Load(), Expired: c.expired.Load(),
		Inserts: c.inserts.Load(), Evictions: c.evictions.Load(),
		Invalidations: c.invalidations.Load(), Refused: c.refused.Load(),
	}
}
