package itemcache

import (
	"fmt"

	"github.com/pyfeat/pyfeat/features"
	"github.com/pyfeat/pyfeat/internal/pferr"
)

// Lookup is one request's view of the cache: the record of every candidate
// as it was when the lookup was made, plus the records filled in for the
// ones that were missing. A request reads only its lookup, so a record
// replaced or invalidated meanwhile changes later requests, never this one
// halfway. A Lookup is used by one goroutine at a time.
type Lookup struct {
	ids     []int64
	recs    []*features.Decoded // per position; nil while missing
	missing []int               // positions of the distinct ids that were missing
	filled  bool
}

// Lookup snapshots the records of ids (one per candidate, in request order).
func (c *Cache) Lookup(ids []int64) *Lookup {
	l := &Lookup{ids: append([]int64(nil), ids...), recs: make([]*features.Decoded, len(ids))}
	var seen map[int64]struct{} // missing ids already listed: each is fetched once
	misses, stale := 0, 0
	c.mu.RLock()
	now := c.clock()
	for i, id := range ids {
		r, old := c.fresh(id, now)
		if r != nil {
			l.recs[i] = r
			continue
		}
		misses++
		stale += b2i(old)
		if seen == nil {
			seen = make(map[int64]struct{})
		}
		if _, dup := seen[id]; !dup {
			seen[id] = struct{}{}
			l.missing = append(l.missing, i)
		}
	}
	c.mu.RUnlock()
	c.count(len(ids)-misses, misses, stale)
	return l
}

// Len is the number of candidates.
func (l *Lookup) Len() int { return len(l.ids) }

// Missing returns the positions (into the lookup's ids) of the distinct ids
// whose records must be fetched, in request order.
func (l *Lookup) Missing() []int { return l.missing }

// Fill decodes the fetched records, one per Missing() position in that
// order (record i is blob[offsets[i]:offsets[i+1]]), checks that each is
// the record of the id it was fetched for, stores them in c (nil: none)
// and completes the lookup. A bad record is an *features.InputError whose
// Position is the candidate's position in the request; then nothing is
// stored and the lookup stays incomplete.
func (l *Lookup) Fill(c *Cache, items features.Items) error {
	if l.filled {
		return pferr.Argumentf("the lookup was already filled")
	}
	if err := items.Validate(nil); err != nil {
		return err
	}
	if items.Len() != len(l.missing) {
		return pferr.Argumentf("%d records for %d missing ids", items.Len(), len(l.missing))
	}
	recs := make([]*features.Decoded, len(l.missing))
	for k, pos := range l.missing {
		d, err := features.DecodeOwned(items.At(k))
		if err != nil {
			err.Position = pos
			return err
		}
		if d.Item.ID != l.ids[pos] {
			return &features.InputError{Position: pos, Key: "id",
				Msg: fmt.Sprintf("the record fetched for id %d has id %d", l.ids[pos], d.Item.ID)}
		}
		recs[k] = d
	}
	byID := make(map[int64]*features.Decoded, len(recs))
	for k, pos := range l.missing {
		byID[l.ids[pos]] = recs[k]
	}
	for i, r := range l.recs {
		if r == nil {
			l.recs[i] = byID[l.ids[i]]
		}
	}
	l.filled = true
	if c != nil {
		c.mu.Lock()
		for k, pos := range l.missing {
			c.putLocked(l.ids[pos], recs[k], int64(recs[k].Size())+entryOverhead)
		}
		c.mu.Unlock()
	}
	return nil
}

// Records returns every candidate's record, in request order; an error if
// some are still missing (Fill was not called, or failed).
func (l *Lookup) Records() ([]*features.Decoded, error) {
	if len(l.missing) > 0 && !l.filled {
		return nil, pferr.Argumentf("%d of the request's %d ids are missing from the cache: fill them first",
			len(l.missing), len(l.ids))
	}
	return l.recs, nil
}

// RawLen is the total size of the records' exact bytes.
func (l *Lookup) RawLen() (int, error) {
	recs, err := l.Records()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, r := range recs {
		n += len(r.Raw)
	}
	return n, nil
}

// CopyRaw writes the records' exact bytes back to back into blob (RawLen
// bytes) and their offsets into offsets (Len()+1 entries): the request's
// items as a logged request records them.
func (l *Lookup) CopyRaw(blob []byte, offsets []int64) error {
	n, err := l.RawLen()
	if err != nil {
		return err
	}
	if len(blob) != n || len(offsets) != len(l.recs)+1 {
		return pferr.Argumentf("raw buffers of %d bytes and %d offsets, want %d and %d", len(blob), len(offsets), n, len(l.recs)+1)
	}
	at := 0
	offsets[0] = 0
	for i, r := range l.recs {
		at += copy(blob[at:], r.Raw)
		offsets[i+1] = int64(at)
	}
	return nil
}
