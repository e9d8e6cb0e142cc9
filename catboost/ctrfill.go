package catboost

import (
	"math/bits"
	"unsafe"
)

// superBlocks is the most blocks whose categorical slots fillCat fills in
// one pass: a CTR table is then walked once per superBlocks*blockSize rows,
// so its cache lines are fetched once for all of them rather than once per
// block.
const superBlocks = 8

// A row's index into a level's distinct hashes is a uint16 (see walkLevel).
const _ = uint16(superBlocks*blockSize - 1)

// fillCat writes the categorical slots of ns rows (at most superBlocks
// blocks): x are the rows' float features, cats their hashed categorical
// values, super the blocks' bins one after another, stride words each.
//
// Most combinations take few distinct values over a super-block's rows:
// a user's platform and region are the same on every candidate, a
// category has a few dozen values, and each binarized float in a
// combination at most doubles its prefix's count. So the walk keeps, per
// trie level, each row's index into the level's distinct hashes, and
// looks each distinct hash up once; a row then costs a byte copied from a
// small array instead of a lookup into a table of up to megabytes. A level
// with more distinct hashes than ns/dedupShare (a seller id, a city) is
// walked row by row, as are the levels under it.
func (m *NativeModel) fillCat(x []float32, cats []uint32, ns int, super []uint64, superBytes []byte, s *scratch) {
	cm := m.cat
	nf, nc := m.numFeatures, cm.numCat
	stride := m.numSlots * blockWords
	nblk := (ns + blockSize - 1) / blockSize
	for b := range nblk {
		clear(super[b*stride+cm.firstSlot*blockWords : (b+1)*stride])
	}
	for _, oh := range cm.oneHot {
		for d := range ns {
			if cats[d*nc+oh.cat] == oh.value {
				orBin(super, superBytes, stride, oh.off, d, 1)
			}
		}
	}
	limit := -1
	if dedupShare > 0 {
		limit = ns / dedupShare
	}
	lv := s.levels
	// The root: every row has the empty combination, hash 0.
	lv[0].n, lv[0].reps[0] = 1, 0
	clear(lv[0].ids[:ns])
	for i := range cm.trie {
		n := &cm.trie[i]
		p, c := &lv[n.depth-1], &lv[n.depth]
		switch {
		case p.n < 0:
			hashRows(n, p.hashes[:ns], c.hashes[:ns], x, cats, nf, nc)
			c.n = -1
		case n.kind == 'c':
			hashCatDistinct(n, p, c, ns, cats, nc, limit, s.distinct)
		default:
			bitDistinct(n, p, c, ns, x, cats, nf, nc, limit)
		}
		for _, t := range n.tables {
			switch {
			case c.n >= 0 && (t.narrow != nil || t.packed != nil):
				fillDistinct(t, c, ns, s.vals64, super, superBytes, stride)
			case c.n >= 0:
				// A table without a packed form (more than seven CTRs, or
				// more than 127 borders): rare, walked row by row.
				for d, id := range c.ids[:ns] {
					c.hashes[d] = c.reps[id]
				}
				fillRows(t, c.hashes[:ns], s.vals64[:2*ns], super, superBytes, stride)
			default:
				fillRows(t, c.hashes[:ns], s.vals64[:2*ns], super, superBytes, stride)
			}
		}
	}
}

// dedupShare sets the most distinct hashes a trie level may have to be
// walked by distinct hash: ns/dedupShare of ns rows. Past that, the
// bookkeeping costs more than the lookups it saves. A variable so that
// tests walk every level both ways (0: always row by row; 1: by distinct
// hash whenever the ids fit).
var dedupShare = 4

// walkLevel is one level of the trie walk over a super-block's rows:
// either n >= 0 distinct hashes reps[:n] with ids[d] the index of row d's,
// or n < 0 and hashes[d] row d's hash.
type walkLevel struct {
	n      int
	ids    []uint16
	reps   []uint64
	hashes []uint64
}

// distinctSet is an open-addressing set of hashes, numbered in the order
// first seen; a slot is free unless its stamp is the set's generation, so
// that emptying it costs nothing.
type distinctSet struct {
	keys  []uint64
	ids   []uint16
	stamp []uint32
	gen   uint32
	shift uint
}

func newDistinctSet(capacity int) *distinctSet {
	size := 2
	for size < 2*capacity {
		size <<= 1
	}
	return &distinctSet{
		keys:  make([]uint64, size),
		ids:   make([]uint16, size),
		stamp: make([]uint32, size),
		shift: uint(64 - bits.TrailingZeros(uint(size))),
	}
}

// hashRows hashes element n of every row onto the rows' prefix hashes.
func hashRows(n *trieNode, parent, hashes []uint64, x []float32, cats []uint32, nf, nc int) {
	parent = parent[:len(hashes)]
	col := n.index
	switch n.kind {
	case 'c':
		for d := range hashes {
			// CatBoost widens the 32-bit hash as a signed int.
			hashes[d] = combineHash(parent[d], uint64(int64(int32(cats[d*nc+col]))))
		}
	case 'f':
		for d := range hashes {
			hashes[d] = combineHash(parent[d], floatBit(n, x[d*nf+col]))
		}
	default:
		for d := range hashes {
			var bit uint64
			if cats[d*nc+col] == n.value {
				bit = 1
			}
			hashes[d] = combineHash(parent[d], bit)
		}
	}
}

func floatBit(n *trieNode, v float32) uint64 {
	if v != v {
		v = n.nanValue
	}
	var bit uint64
	if v > n.border {
		bit = 1
	}
	return bit
}

// hashCatDistinct is hashRows for a categorical element under a level of
// distinct hashes: every row's hash, then their distinct values, unless
// there are more than limit of them.
func hashCatDistinct(n *trieNode, p, c *walkLevel, ns int, cats []uint32, nc, limit int, set *distinctSet) {
	hashes, pids := c.hashes[:ns], p.ids[:ns]
	col := n.index
	for d := range hashes {
		hashes[d] = combineHash(p.reps[pids[d]], uint64(int64(int32(cats[d*nc+col]))))
	}
	c.n = -1
	if limit < 0 {
		return
	}
	set.gen++
	if set.gen == 0 {
		clear(set.stamp)
		set.gen = 1
	}
	gen, mask := set.gen, len(set.keys)-1
	count := 0
	for d, h := range hashes {
		i := int(h >> set.shift)
		for set.stamp[i] == gen && set.keys[i] != h {
			i = (i + 1) & mask
		}
		if set.stamp[i] != gen {
			if count == limit {
				return
			}
			set.stamp[i], set.keys[i], set.ids[i] = gen, h, uint16(count)
			c.reps[count] = h
			count++
		}
		c.ids[d] = set.ids[i]
	}
	c.n = count
}

// bitDistinct walks a binarized float or one-hot element under a level of
// distinct hashes: a row's hash is one of two per distinct prefix, so the
// level's distinct values are the (prefix, bit) pairs, 2*prefix+bit,
// found without hashing any row. Some pairs may not occur, and cost a
// wasted lookup; finding which do would cost more, per row, than that.
// Past limit pairs, every row is hashed instead.
func bitDistinct(n *trieNode, p, c *walkLevel, ns int, x []float32, cats []uint32, nf, nc, limit int) {
	pids := p.ids[:ns]
	col := n.index
	if 2*p.n > limit {
		hashes := c.hashes[:ns]
		if n.kind == 'f' {
			for d := range hashes {
				hashes[d] = combineHash(p.reps[pids[d]], floatBit(n, x[d*nf+col]))
			}
		} else {
			for d := range hashes {
				var bit uint64
				if cats[d*nc+col] == n.value {
					bit = 1
				}
				hashes[d] = combineHash(p.reps[pids[d]], bit)
			}
		}
		c.n = -1
		return
	}
	ids := c.ids[:ns]
	if n.kind == 'f' {
		border, nanValue := n.border, n.nanValue
		for d := range ids {
			v := x[d*nf+col]
			if v != v {
				v = nanValue
			}
			var bit uint16
			if v > border {
				bit = 1
			}
			ids[d] = 2*pids[d] + bit
		}
	} else {
		for d := range ids {
			var bit uint16
			if cats[d*nc+col] == n.value {
				bit = 1
			}
			ids[d] = 2*pids[d] + bit
		}
	}
	for k := range 2 * p.n {
		c.reps[k] = combineHash(p.reps[k>>1], uint64(k&1))
	}
	c.n = 2 * p.n
}

// fillRows looks every row's hash up in table t and writes the bins of its
// CTRs into the super-block.
func fillRows(t *ctrLookup, hashes, vals []uint64, super []uint64, superBytes []byte, stride int) {
	if t.narrow != nil {
		fillNarrow(t, hashes, vals, super, superBytes, stride)
		return
	}
	if t.packed != nil {
		fillPacked(t, hashes, vals, super, superBytes, stride)
		return
	}
	k := len(t.outs)
	for d, h := range hashes {
		e := t.find(h)
		row := t.bins[e*k : (e+1)*k]
		for j, o := range t.outs {
			c := int(row[j])
			for q := range o.slots {
				orBin(super, superBytes, stride, o.off+q*blockWords, d, uint64(min(max(c-binMax*q, 0), binMax)))
			}
		}
	}
}

// fillDistinct looks the level's distinct hashes up in a packed or narrow
// table and writes each row the bins of its own.
func fillDistinct(t *ctrLookup, c *walkLevel, ns int, vals []uint64, super []uint64, superBytes []byte, stride int) {
	reps := c.reps[:c.n]
	found := vals[:len(reps)]
	if t.narrow != nil {
		narrowVals(t, reps, found)
	} else {
		packedVals(t, reps, found, vals[len(reps):2*len(reps)])
	}
	ids := c.ids[:ns]
	for j, o := range t.outs {
		sh := uint(8 * j)
		if superBytes == nil {
			for d, id := range ids {
				orBin(super, nil, stride, o.off, d, found[id]>>sh&0x7f)
			}
			continue
		}
		for blk := 0; blk*blockSize < ns; blk++ {
			dst := superBytes[(blk*stride+o.off)*8:][:min(blockSize, ns-blk*blockSize)]
			for r, id := range ids[blk*blockSize:][:len(dst)] {
				dst[r] = byte(found[id]>>sh) & 0x7f
			}
		}
	}
}

// orBin sets bits v in the bin of row d of a super-block, in the slot at
// word offset off of the row's block.
func orBin(super []uint64, superBytes []byte, stride, off, d int, v uint64) {
	w := (d>>7)*stride + off
	r := d & (blockSize - 1)
	if superBytes != nil {
		superBytes[w*8+r] |= byte(v)
		return
	}
	super[w+r>>3] |= v << (uint(r&7) * 8)
}

// fillPacked looks up every row's hash in a packed table and writes the
// bins of its CTRs into the super-block; vals is scratch of 2*len(hashes)
// entries.
func fillPacked(t *ctrLookup, hashes, vals []uint64, super []uint64, superBytes []byte, stride int) {
	if superBytes != nil {
		if len(t.outs) == 1 {
			fillPackedBytes(t, hashes, vals, superBytes, stride)
		} else {
			fillPackedBytesK(t, hashes, vals, superBytes, stride)
		}
		return
	}
	n := len(hashes)
	packedVals(t, hashes, vals[:n], vals[n:2*n])
	for j, o := range t.outs {
		sh := uint(8 * j)
		for d, v := range vals[:n] {
			orBin(super, nil, stride, o.off, d, v>>sh&0x7f)
		}
	}
}

// packedVals looks hashes up in a packed table: vals[d] is the slot value
// of hashes[d] (its CTRs' bins, a byte each). First the home slot of
// every hash, in a loop whose loads do not depend on each other, so that
// the CPU overlaps their cache misses; the hashes whose home slot holds
// another hash are listed in probe (scratch, len(hashes) entries) and
// looked for past it.
func packedVals(t *ctrLookup, hashes, vals, probe []uint64) {
	slots, shift, empty := t.packed, t.shift, t.empty
	// h>>shift < len(slots) for every h: shift is 64 - log2(len(slots)).
	base := unsafe.Pointer(unsafe.SliceData(slots))
	vals = vals[:len(hashes)]
	unresolved := 0
	for d, h := range hashes {
		v, miss := homeSlot(base, h, shift, empty)
		vals[d] = v
		probe[unresolved] = uint64(d)
		unresolved += int(miss)
	}
	for _, u := range probe[:unresolved] {
		vals[u] = probeOn(slots, hashes[u], shift, empty)
	}
}

// fillPackedBytes is fillPacked for a table of one CTR, writing each
// row's bin as it looks the row up (see fillNarrowBytes).
func fillPackedBytes(t *ctrLookup, hashes, vals []uint64, superBytes []byte, stride int) {
	slots, shift, empty := t.packed, t.shift, t.empty
	base := unsafe.Pointer(unsafe.SliceData(slots))
	off := t.outs[0].off
	// vals lists the rows whose home slot holds another hash, appended
	// branch-free: the probing pass visits only them.
	unresolved := 0
	for blk := 0; blk*blockSize < len(hashes); blk++ {
		hs := hashes[blk*blockSize:][:min(blockSize, len(hashes)-blk*blockSize)]
		dst := superBytes[(blk*stride+off)*8:][:len(hs)]
		for r, h := range hs {
			v, miss := homeSlot(base, h, shift, empty)
			dst[r] = byte(v) & 0x7f
			vals[unresolved] = uint64(blk*blockSize + r)
			unresolved += int(miss)
		}
	}
	for _, u := range vals[:unresolved] {
		d := int(u)
		h := hashes[d]
		v := probeOn(slots, h, shift, empty)
		superBytes[((d/blockSize)*stride+off)*8+d%blockSize] = byte(v) & 0x7f
	}
}

// homeSlot looks hash h up in its home slot of a packed table (base is
// the first slot; h>>shift < the slot count). It returns the slot's value
// when the slot holds h, empty (the prior's bins) when the slot is free
// (even for a hash of 0, the key a free slot holds), and miss = 1 with v =
// 0 when the slot holds another hash: then the row needs probeOn.
// Branch-free: whether a row's value is in the table is as good as random,
// and a mispredicted branch per lookup would cost more than the lookup.
func homeSlot(base unsafe.Pointer, h uint64, shift uint, empty uint64) (v, miss uint64) {
	sl := *(*ctrSlot)(unsafe.Add(base, uintptr(h>>shift)*unsafe.Sizeof(ctrSlot{})))
	var hit, free uint64
	if sl.key == h {
		hit = 1
	}
	if sl.val == 0 {
		free = 1
	}
	return sl.val&-(hit&^free) | empty&-free, (hit | free) ^ 1
}

// probeOn continues the search for hash h past its home slot (linear
// probing): the value stored for h, or empty when a free slot comes first.
// Only rows whose home slot holds another hash get here.
func probeOn(slots []ctrSlot, h uint64, shift uint, empty uint64) uint64 {
	mask := uint64(len(slots) - 1)
	for i := h>>shift + 1; ; i++ {
		sl := &slots[i&mask]
		if sl.val == 0 {
			return empty
		}
		if sl.key == h {
			return sl.val
		}
	}
}

// fillPackedBytesK is fillPackedBytes for a table of several CTRs: each
// row's bins are kept in vals[:n] (vals has 2n entries; the rows to probe
// are listed in the others), then written out a CTR at a time.
func fillPackedBytesK(t *ctrLookup, hashes, vals []uint64, superBytes []byte, stride int) {
	n := len(hashes)
	vals = vals[:n]
	packedVals(t, hashes, vals, vals[n:2*n])
	for j, o := range t.outs {
		sh := uint(8 * j)
		for blk := 0; blk*blockSize < n; blk++ {
			dst := superBytes[(blk*stride+o.off)*8:][:min(blockSize, n-blk*blockSize)]
			for r, v := range vals[blk*blockSize:][:len(dst)] {
				dst[r] = byte(v>>sh) & 0x7f
			}
		}
	}
}

// fillNarrow is fillPacked for a narrow table.
func fillNarrow(t *ctrLookup, hashes, vals []uint64, super []uint64, superBytes []byte, stride int) {
	if superBytes != nil {
		fillNarrowBytes(t, hashes, vals, superBytes, stride)
		return
	}
	vals = vals[:len(hashes)]
	narrowVals(t, hashes, vals)
	for d, v := range vals {
		orBin(super, nil, stride, t.outs[0].off, d, v&0x7f)
	}
}

// narrowVals looks hashes up in a narrow table: the low 7 bits of vals[d]
// are the bin of hashes[d]. As in packedVals: the home slots first,
// branch-free, then the hashes whose home slot holds another hash.
func narrowVals(t *ctrLookup, hashes, vals []uint64) {
	slots, shift, empty := t.narrow, t.shift, t.empty
	b := 64 - shift
	// home+narrowMaxProbe < len(slots) for every hash: no bounds checks.
	base := unsafe.Pointer(unsafe.SliceData(slots))
	vals = vals[:len(hashes)]
	var unresolved uint64
	for d, h := range hashes {
		w := *(*uint64)(unsafe.Add(base, uintptr(h>>shift)*8))
		var hit, free uint64
		if w&^0x7f == h<<b>>b<<narrowKeyShift|narrowUsed {
			hit = 1
		}
		if w == 0 {
			free = 1
		}
		// The used bit keeps a found value from reading as unresolved (0).
		vals[d] = (w&0x7f|narrowUsed)&-hit | (empty|narrowUsed)&-free
		unresolved |= (hit | free) ^ 1
	}
	if unresolved != 0 {
		for d, h := range hashes {
			if vals[d] == 0 {
				vals[d] = narrowProbeOn(slots, h, shift, empty)
			}
		}
	}
}

// narrowProbeOn continues the search for hash h past its home slot of a
// narrow table: the bin stored for h, or empty when it is not there.
func narrowProbeOn(slots []uint64, h uint64, shift uint, empty uint64) uint64 {
	home := h >> shift
	low := h << (64 - shift) >> (64 - shift) << narrowKeyShift
	for dist := uint64(1); dist <= narrowMaxProbe; dist++ {
		w := slots[home+dist]
		if w == 0 {
			break
		}
		if w&^0x7f == low|dist<<8|narrowUsed {
			return w & 0x7f
		}
	}
	return empty
}

// fillNarrowBytes is fillNarrow writing each row's bin as it looks the
// row up, a byte per row: one pass over the rows instead of two.
func fillNarrowBytes(t *ctrLookup, hashes, vals []uint64, superBytes []byte, stride int) {
	slots, shift, empty := t.narrow, t.shift, t.empty
	b := 64 - shift
	base := unsafe.Pointer(unsafe.SliceData(slots))
	off := t.outs[0].off
	unresolved := 0 // as in fillPackedBytes
	for blk := 0; blk*blockSize < len(hashes); blk++ {
		hs := hashes[blk*blockSize:][:min(blockSize, len(hashes)-blk*blockSize)]
		dst := superBytes[(blk*stride+off)*8:][:len(hs)]
		for r, h := range hs {
			w := *(*uint64)(unsafe.Add(base, uintptr(h>>shift)*8))
			var hit, free uint64
			if w&^0x7f == h<<b>>b<<narrowKeyShift|narrowUsed {
				hit = 1
			}
			if w == 0 {
				free = 1
			}
			dst[r] = byte(w&-hit|empty&-free) & 0x7f
			vals[unresolved] = uint64(blk*blockSize + r)
			unresolved += int((hit | free) ^ 1)
		}
	}
	for _, u := range vals[:unresolved] {
		d := int(u)
		superBytes[((d/blockSize)*stride+off)*8+d%blockSize] = byte(narrowProbeOn(slots, hashes[d], shift, empty))
	}
}
