package features

// The shapes of a request's inputs as the C ABI hands them over: the item
// records back to back with their offsets, and the candidate arrays.

import (
	"fmt"
	"math"

	"github.com/pyfeat/pyfeat/internal/pferr"
)

// Candidates holds the candidate metadata, parallel to the items. A nil
// slice means the caller did not pass that array: its features are NaN.
type Candidates struct {
	Source []int64   // generator id, 0..7
	Score  []float64 // generator score
	Rank   []int64   // rank within the generator, >= 0
}

// Items is a request's item records: record i is Blob[Offsets[i]:Offsets[i+1]].
// Offsets has one entry more than there are items. When Decoded is not nil
// the records were decoded before (an item cache's) and Blob and Offsets
// are unused.
type Items struct {
	Blob    []byte
	Offsets []int64
	Decoded []*Decoded
}

// Len is the number of items.
func (it Items) Len() int {
	if it.Decoded != nil {
		return len(it.Decoded)
	}
	return max(len(it.Offsets)-1, 0)
}

// At returns record i.
func (it Items) At(i int) []byte { return it.Blob[it.Offsets[i]:it.Offsets[i+1]] }

// Concat packs separate records into an Items (it copies them).
func Concat(records [][]byte) Items {
	n := 0
	for _, r := range records {
		n += len(r)
	}
	out := Items{Blob: make([]byte, 0, n), Offsets: make([]int64, 1, len(records)+1)}
	for _, r := range records {
		out.Blob = append(out.Blob, r...)
		out.Offsets = append(out.Offsets, int64(len(out.Blob)))
	}
	return out
}

// Validate checks the shape of items and candidates against each other.
func (it Items) Validate(c *Candidates) error {
	if it.Decoded != nil {
		for i, d := range it.Decoded {
			if d == nil {
				return pferr.Argumentf("decoded record %d is missing", i)
			}
		}
		return c.validate(it.Len())
	}
	if len(it.Offsets) == 0 {
		return pferr.Argumentf("offsets must have n_items + 1 entries, got 0")
	}
	prev := int64(0)
	if it.Offsets[0] != 0 {
		return pferr.Argumentf("offsets[0] must be 0, got %d", it.Offsets[0])
	}
	for i, o := range it.Offsets {
		if o < prev || o > int64(len(it.Blob)) {
			return pferr.Argumentf("offsets[%d] = %d is out of order or beyond the %d-byte buffer", i, o, len(it.Blob))
		}
		prev = o
	}
	return c.validate(it.Len())
}

// validate checks the candidate arrays of n items.
func (c *Candidates) validate(n int) error {
	if c != nil {
		// A fixed order: with several wrong arrays the error names the same
		// one every time, and nothing is allocated per call.
		for _, a := range [...]struct {
			name string
			len  int
		}{{"source", len(c.Source)}, {"source_score", len(c.Score)}, {"source_rank", len(c.Rank)}} {
			if a.len != 0 && a.len != n {
				return &InputError{Position: UserPosition, Key: "candidates." + a.name, Msg: fmt.Sprintf("has %d entries for %d items", a.len, n)}
			}
		}
		for i, s := range c.Source {
			if s < 0 || s > 7 {
				return &InputError{Position: i, Key: "candidates.source", Msg: fmt.Sprintf("must be in 0..7, got %d", s)}
			}
		}
		for i, s := range c.Rank {
			if s < 0 {
				return &InputError{Position: i, Key: "candidates.source_rank", Msg: fmt.Sprintf("must be >= 0, got %d", s)}
			}
		}
		for i, s := range c.Score {
			if math.IsNaN(s) || math.IsInf(s, 0) {
				return &InputError{Position: i, Key: "candidates.source_score", Msg: fmt.Sprintf("must be finite, got %v", s)}
			}
		}
	}
	return nil
}
