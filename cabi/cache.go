package main

/*
#include "pyfeat.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

	"github.com/pyfeat/pyfeat/features"
	"github.com/pyfeat/pyfeat/itemcache"
)

// Item caches and their per-request lookups cross the ABI as int64
// handles. A cache has one owner, the Python ItemCache that made it, which
// closes it; a lookup belongs to one request, which closes it. A lookup
// holds its records, not its cache, so closing a cache never breaks a
// request in flight (its fill then stores nothing).
var (
	caches  = handles[*itemcache.Cache]{m: map[int64]*itemcache.Cache{}}
	lookups = handles[*lookupEntry]{m: map[int64]*lookupEntry{}}
)

type lookupEntry struct {
	mu    sync.Mutex // a request's calls on its lookup run one at a time
	cache int64
	l     *itemcache.Lookup
}

type handles[T any] struct {
	mu   sync.Mutex
	next int64
	m    map[int64]T
}

func (h *handles[T]) add(v T) int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next++
	h.m[h.next] = v
	return h.next
}

func (h *handles[T]) get(id int64, what string) (T, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.m[id]
	if !ok {
		var zero T
		return zero, fmt.Errorf("unknown or closed %s handle %d", what, id)
	}
	return v, nil
}

func (h *handles[T]) remove(id int64, what string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.m[id]; !ok {
		return fmt.Errorf("unknown or closed %s handle %d", what, id)
	}
	delete(h.m, id)
	return nil
}

func int64s(p *C.int64_t, n C.int64_t) []int64 {
	if p == nil || n <= 0 {
		return nil
	}
	return unsafe.Slice((*int64)(unsafe.Pointer(p)), int(n))
}

//export pf_cache_new
func pf_cache_new(maxBytes C.int64_t, ttlNs C.int64_t, handle *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	if handle == nil {
		return setStatus(st, errors.New("pf_cache_new: NULL handle"))
	}
	c, err := itemcache.New(int64(maxBytes), time.Duration(ttlNs))
	if err != nil {
		return setStatus(st, err)
	}
	*handle = C.int64_t(caches.add(c))
	return setStatus(st, nil)
}

//export pf_cache_close
func pf_cache_close(handle C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	c, err := caches.get(int64(handle), "cache")
	if err != nil {
		return setStatus(st, err)
	}
	c.Clear() // the memory goes now, not when the last lookup lets go
	return setStatus(st, caches.remove(int64(handle), "cache"))
}

// pfCacheStats is the order of pf_cache_stats' counters (pyfeat.h).
const pfCacheStats = 10

//export pf_cache_stats
func pf_cache_stats(handle C.int64_t, out *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	c, err := caches.get(int64(handle), "cache")
	if err != nil || out == nil {
		return setStatus(st, errors.Join(err, nilErr(out == nil, "pf_cache_stats: NULL output")))
	}
	s := c.Stats()
	copy(int64s(out, pfCacheStats), []int64{int64(s.Len), s.Bytes, s.MaxBytes, s.Hits, s.Misses, s.Expired,
		s.Inserts, s.Evictions, s.Invalidations, s.Refused})
	return setStatus(st, nil)
}

func nilErr(cond bool, msg string) error {
	if cond {
		return errors.New(msg)
	}
	return nil
}

//export pf_cache_invalidate
func pf_cache_invalidate(handle C.int64_t, ids *C.int64_t, n C.int64_t, dropped *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	c, err := caches.get(int64(handle), "cache")
	if err != nil {
		return setStatus(st, err)
	}
	if n < 0 || (n > 0 && ids == nil) {
		return setStatus(st, fmt.Errorf("pf_cache_invalidate: %d ids at NULL", n))
	}
	k := c.Invalidate(int64s(ids, n))
	if dropped != nil {
		*dropped = C.int64_t(k)
	}
	return setStatus(st, nil)
}

//export pf_cache_clear
func pf_cache_clear(handle C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	c, err := caches.get(int64(handle), "cache")
	if err != nil {
		return setStatus(st, err)
	}
	c.Clear()
	return setStatus(st, nil)
}

//export pf_cache_lookup
func pf_cache_lookup(handle C.int64_t, ids *C.int64_t, n C.int64_t, lookup *C.int64_t,
	missing *C.int64_t, nMissing *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	c, err := caches.get(int64(handle), "cache")
	if err != nil {
		return setStatus(st, err)
	}
	if n < 0 || (n > 0 && (ids == nil || missing == nil)) || lookup == nil || nMissing == nil {
		return setStatus(st, fmt.Errorf("pf_cache_lookup: %d ids, or a NULL buffer", n))
	}
	l := c.Lookup(int64s(ids, n))
	pos := int64s(missing, n)
	for k, p := range l.Missing() {
		pos[k] = int64(p)
	}
	*nMissing = C.int64_t(len(l.Missing()))
	*lookup = C.int64_t(lookups.add(&lookupEntry{cache: int64(handle), l: l}))
	return setStatus(st, nil)
}

//export pf_lookup_fill
func pf_lookup_fill(lookup C.int64_t, blob *C.uint8_t, offsets *C.int64_t, n C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	e, err := lookups.get(int64(lookup), "lookup")
	if err != nil {
		return setStatus(st, err)
	}
	its, err := items(blob, offsets, n)
	if err != nil {
		return setStatus(st, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c, _ := caches.get(e.cache, "cache") // closed meanwhile: the request is filled, nothing is stored
	return setStatus(st, e.l.Fill(c, its))
}

//export pf_lookup_raw
func pf_lookup_raw(lookup C.int64_t, blob *C.uint8_t, blobLen C.int64_t, offsets *C.int64_t, needed *C.int64_t,
	st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	e, err := lookups.get(int64(lookup), "lookup")
	if err != nil {
		return setStatus(st, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	n, err := e.l.RawLen()
	if err != nil {
		return setStatus(st, err)
	}
	if needed != nil {
		*needed = C.int64_t(n)
	}
	if offsets == nil {
		return setStatus(st, nil) // the size only
	}
	if int(blobLen) != n || (n > 0 && blob == nil) {
		return setStatus(st, fmt.Errorf("pf_lookup_raw: a buffer of %d bytes, need %d", blobLen, n))
	}
	return setStatus(st, e.l.CopyRaw(goBytes(blob, blobLen), int64s(offsets, C.int64_t(e.l.Len()+1))))
}

//export pf_lookup_close
func pf_lookup_close(lookup C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	return setStatus(st, lookups.remove(int64(lookup), "lookup"))
}

// lookupRecords returns the records of a lookup for a compute or rank
// call, and the unlock the caller defers.
func lookupRecords(lookup int64) ([]*features.Decoded, func(), error) {
	e, err := lookups.get(lookup, "lookup")
	if err != nil {
		return nil, nil, err
	}
	e.mu.Lock()
	recs, err := e.l.Records()
	if err != nil {
		e.mu.Unlock()
		return nil, nil, err
	}
	return recs, e.mu.Unlock, nil
}
