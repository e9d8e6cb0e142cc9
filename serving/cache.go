package serving

import (
	"sync"
	"time"

	"github.com/pyfeat/pyfeat/features"
	"github.com/pyfeat/pyfeat/internal/pferr"
	"github.com/pyfeat/pyfeat/itemcache"
)

// Item caches and their per-request lookups cross the C ABI as handles. A
// cache has one owner, the Python ItemCache that made it, which closes it;
// a lookup belongs to one request, which closes it. A lookup holds its
// records, not its cache, so closing a cache never breaks a request in
// flight (its fill then stores nothing).

type lookupEntry struct {
	mu    sync.Mutex // a request's calls on its lookup run one at a time
	cache int64
	l     *itemcache.Lookup
}

// registry hands out int64 handles (never 0) for values of one kind.
type registry[T any] struct {
	mu   sync.Mutex
	next int64
	m    map[int64]T
	what string
}

func (r *registry[T]) add(v T) int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = make(map[int64]T)
	}
	r.next++
	r.m[r.next] = v
	return r.next
}

func (r *registry[T]) get(h int64) (T, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, ok := r.m[h]
	if !ok {
		var zero T
		return zero, pferr.Argumentf("unknown or closed %s handle %d", r.what, h)
	}
	return v, nil
}

func (r *registry[T]) take(h int64) (T, error) {
	v, err := r.get(h)
	if err == nil {
		r.mu.Lock()
		delete(r.m, h)
		r.mu.Unlock()
	}
	return v, err
}

// NewCache makes an item cache (see itemcache.New) under a new handle.
func (s *Service) NewCache(maxBytes int64, ttl time.Duration) (int64, error) {
	c, err := itemcache.New(maxBytes, ttl)
	if err != nil {
		return 0, err
	}
	return s.caches.add(c), nil
}

// CloseCache drops a cache's records and retires its handle.
func (s *Service) CloseCache(h int64) error {
	c, err := s.caches.take(h)
	if err == nil {
		c.Clear() // the memory goes now, not when the last lookup lets go
	}
	return err
}

// Cache returns the cache of handle h.
func (s *Service) Cache(h int64) (*itemcache.Cache, error) { return s.caches.get(h) }

// Lookup snapshots the records of ids in cache h and returns the lookup's
// handle and the positions of the ids to fetch.
func (s *Service) Lookup(h int64, ids []int64) (int64, []int, error) {
	c, err := s.caches.get(h)
	if err != nil {
		return 0, nil, err
	}
	l := c.Lookup(ids)
	return s.lookups.add(&lookupEntry{cache: h, l: l}), l.Missing(), nil
}

// Fill hands a lookup the records of its missing ids (itemcache.Lookup.Fill).
func (s *Service) Fill(lookup int64, items features.Items) error {
	e, err := s.lookups.get(lookup)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	c, _ := s.caches.get(e.cache) // closed meanwhile: the request is filled, nothing is stored
	return e.l.Fill(c, items)
}

// LookupRaw is the size of a lookup's records' exact bytes; with buffers
// (blob of that size, offsets of n+1), it copies them there.
func (s *Service) LookupRaw(lookup int64, blob []byte, offsets []int64, copyOut bool) (int, error) {
	e, err := s.lookups.get(lookup)
	if err != nil {
		return 0, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	n, err := e.l.RawLen()
	if err != nil || !copyOut {
		return n, err
	}
	if len(offsets) != e.l.Len()+1 {
		return n, pferr.Argumentf("offsets has %d entries, want %d", len(offsets), e.l.Len()+1)
	}
	return n, e.l.CopyRaw(blob, offsets)
}

// CloseLookup retires a lookup's handle.
func (s *Service) CloseLookup(lookup int64) error {
	_, err := s.lookups.take(lookup)
	return err
}

// LookupItems returns the records of a lookup as a request's items; the
// caller calls done when the computation is over. n is the item count the
// caller announced.
func (s *Service) LookupItems(lookup int64, n int) (features.Items, func(), error) {
	e, err := s.lookups.get(lookup)
	if err != nil {
		return features.Items{}, nil, err
	}
	e.mu.Lock()
	recs, err := e.l.Records()
	if err == nil && len(recs) != n {
		err = pferr.Argumentf("n_items is %d, the lookup has %d candidates", n, len(recs))
	}
	if err != nil {
		e.mu.Unlock()
		return features.Items{}, nil, err
	}
	return features.Items{Decoded: recs}, e.mu.Unlock, nil
}
