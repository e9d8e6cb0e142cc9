package main

/*
#include "pyfeat.h"
*/
import "C"

import (
	"time"

	"github.com/pyfeat/pyfeat/features"
	"github.com/pyfeat/pyfeat/internal/faults"
	"github.com/pyfeat/pyfeat/internal/pferr"
)

// The item cache's exports (serving/cache.go holds the handles).

//export pf_cache_new
func pf_cache_new(maxBytes C.int64_t, ttlNs C.int64_t, handle *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_cache_new")
	if handle == nil {
		return setStatus(st, pferr.Argumentf("pf_cache_new: NULL handle"))
	}
	h, err := svc.NewCache(int64(maxBytes), time.Duration(ttlNs))
	if err == nil {
		*handle = C.int64_t(h)
	}
	return setStatus(st, err)
}

//export pf_cache_close
func pf_cache_close(handle C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_cache_close")
	return setStatus(st, svc.CloseCache(int64(handle)))
}

//export pf_cache_stats
func pf_cache_stats(handle C.int64_t, out *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_cache_stats")
	c, err := svc.Cache(int64(handle))
	if err == nil && out == nil {
		err = pferr.Argumentf("pf_cache_stats: NULL output")
	}
	if err != nil {
		return setStatus(st, err)
	}
	s := c.Stats()
	copy(view[int64](out, C.PF_CACHE_STATS), []int64{int64(s.Len), s.Bytes, s.MaxBytes, s.Hits, s.Misses, s.Expired,
		s.Inserts, s.Evictions, s.Invalidations, s.Refused})
	return setStatus(st, nil)
}

//export pf_cache_invalidate
func pf_cache_invalidate(handle C.int64_t, ids *C.int64_t, n C.int64_t, dropped *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_cache_invalidate")
	c, err := svc.Cache(int64(handle))
	if err == nil && (n < 0 || (n > 0 && ids == nil)) {
		err = pferr.Argumentf("pf_cache_invalidate: %d ids at NULL", n)
	}
	if err != nil {
		return setStatus(st, err)
	}
	k := c.Invalidate(view[int64](ids, n))
	if dropped != nil {
		*dropped = C.int64_t(k)
	}
	return setStatus(st, nil)
}

//export pf_cache_clear
func pf_cache_clear(handle C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_cache_clear")
	c, err := svc.Cache(int64(handle))
	if err == nil {
		c.Clear()
	}
	return setStatus(st, err)
}

//export pf_cache_lookup
func pf_cache_lookup(handle C.int64_t, ids *C.int64_t, n C.int64_t, lookup *C.int64_t,
	missing *C.int64_t, nMissing *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_cache_lookup")
	if n < 0 || (n > 0 && (ids == nil || missing == nil)) || lookup == nil || nMissing == nil {
		return setStatus(st, pferr.Argumentf("pf_cache_lookup: %d ids, or a NULL buffer", n))
	}
	h, miss, err := svc.Lookup(int64(handle), view[int64](ids, n))
	if err != nil {
		return setStatus(st, err)
	}
	pos := view[int64](missing, n)
	for k, p := range miss {
		pos[k] = int64(p)
	}
	*nMissing = C.int64_t(len(miss))
	*lookup = C.int64_t(h)
	return setStatus(st, nil)
}

//export pf_lookup_fill
func pf_lookup_fill(lookup C.int64_t, blob *C.uint8_t, offsets *C.int64_t, n C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_lookup_fill")
	its, err := items(blob, offsets, n)
	if err != nil {
		return setStatus(st, err)
	}
	return setStatus(st, svc.Fill(int64(lookup), its))
}

//export pf_lookup_raw
func pf_lookup_raw(lookup C.int64_t, blob *C.uint8_t, blobLen C.int64_t, offsets *C.int64_t, nOffsets C.int64_t,
	needed *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_lookup_raw")
	copyOut := offsets != nil
	if copyOut && (blobLen < 0 || nOffsets < 1 || (blobLen > 0 && blob == nil)) {
		return setStatus(st, pferr.Argumentf("pf_lookup_raw: a blob of %d bytes, %d offsets", blobLen, nOffsets))
	}
	n, err := svc.LookupRaw(int64(lookup), goBytes(blob, blobLen)[:max(0, int(blobLen))], view[int64](offsets, nOffsets), false)
	if needed != nil {
		*needed = C.int64_t(n)
	}
	if err == nil && copyOut {
		if int(blobLen) != n {
			err = pferr.Argumentf("pf_lookup_raw: a buffer of %d bytes, need %d", blobLen, n)
		} else {
			_, err = svc.LookupRaw(int64(lookup), goBytes(blob, blobLen), view[int64](offsets, nOffsets), true)
		}
	}
	return setStatus(st, err)
}

//export pf_lookup_close
func pf_lookup_close(lookup C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	faults.Point("pf_lookup_close")
	return setStatus(st, svc.CloseLookup(int64(lookup)))
}

// requestItems is the items of a pf_compute or pf_rank call: the records
// back to back, or (lookup != 0) an item cache lookup's records. The caller
// calls done once the computation is over.
func requestItems(blob *C.uint8_t, offsets *C.int64_t, n C.int64_t, lookup C.int64_t) (features.Items, func(), error) {
	if lookup == 0 {
		its, err := items(blob, offsets, n)
		return its, func() {}, err
	}
	if blob != nil || offsets != nil {
		return features.Items{}, nil, pferr.Argumentf("items and a lookup given together: pass one")
	}
	if n < 0 {
		return features.Items{}, nil, pferr.Argumentf("invalid item count %d", n)
	}
	return svc.LookupItems(int64(lookup), int(n))
}

// stagesOut is the caller's timings array, or nil.
func stagesOut(p *C.int64_t) *[C.PF_STAGES]int64 {
	if p == nil {
		return nil
	}
	return (*[C.PF_STAGES]int64)(view[int64](p, C.PF_STAGES))
}
