package catboost

import (
	"math/bits"
	"unsafe"
)

// superBlocks is the most blocks whose categorical slots fillCat fills in
// one pass: a CTR table is then walked once per superBlocks*blockSize rows,
// so its cache lines are fetched once for all of them rather than once per
// block, and a combination value shared by rows is looked up once for all
// of them. 24 blocks hold a 3000-candidate request; the super-block's bins
// take 128 bytes per slot and block, 2.8 MB for a model of 927 slots, held
// by each goroutine scoring its own super-block (threads sharing one call's
// do not hold their own). BenchmarkCatModel (3000 rows, 1 thread), min CPU
// time of 4 interleaved runs: 9.3 ms with 8 blocks, 8.3 with 16, 6.7 with
// 24.
const superBlocks = 24

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
// with too many distinct hashes (a seller id, a city; see distinctPct) is
// walked row by row, as are the levels under it.
func (m *NativeModel) fillCat(x []float32, cats []uint32, ns int, super []uint64, superBytes []byte, s *scratch) {
	w := m.walker(ns, super, superBytes, s, s)
	w.prepare(x, cats, 0, ns)
	w.walk(0, len(m.cat.trie))
}

// walker sets up a walk over a super-block of ns rows: shared holds the
// super-block's columns (see prepare), own the walk's levels.
func (m *NativeModel) walker(ns int, super []uint64, superBytes []byte, shared, own *scratch) ctrWalk {
	return ctrWalk{cm: m.cat, ns: ns, stride: m.numSlots * blockWords, super: super, superBytes: superBytes, s: own,
		xT: shared.xT[:m.numFeatures*ns], catT: shared.catT[:m.cat.numCat*ns],
		limit: min(ns*distinctPct/100, ns), pairLimit: min(ns*pairPct/100, 2*ns)}
}

// prepare readies rows [lo, hi) of the super-block (lo a block's first
// row; x and cats are the super-block's rows): clears their categorical
// slots, copies their values into columns, so that an element's pass over
// the rows reads one run, and sets their one-hot bins.
func (w *ctrWalk) prepare(x []float32, cats []uint32, lo, hi int) {
	cm, ns := w.cm, w.ns
	nf, nc := len(w.xT)/ns, cm.numCat
	for b := lo / blockSize; b*blockSize < hi; b++ {
		clear(w.super[b*w.stride+cm.firstSlot*blockWords : (b+1)*w.stride])
	}
	for d := lo; d < hi; d++ {
		for j, v := range x[d*nf : (d+1)*nf] {
			w.xT[j*ns+d] = v
		}
		for j, v := range cats[d*nc : (d+1)*nc] {
			w.catT[j*ns+d] = v
		}
	}
	for _, oh := range cm.oneHot {
		for d, v := range w.catCol(oh.cat)[lo:hi] {
			if v == oh.value {
				orBin(w.super, w.superBytes, w.stride, oh.off, lo+d, 1)
			}
		}
	}
}

// walk visits trie nodes [lo, hi) and fills their tables' bins, after
// computing the levels of lo's ancestors (without their tables): a range
// of the trie can be walked on its own, by its own goroutine.
func (w *ctrWalk) walk(lo, hi int) {
	lv := w.s.levels
	// The root: every row has the empty combination, hash 0.
	lv[0].n, lv[0].reps[0], lv[0].hashed = 1, 0, false
	clear(lv[0].ids[:w.ns])
	if lo >= hi {
		return
	}
	w.ancestors(w.cm.trie[lo].parent)
	for i := lo; i < hi; i++ {
		w.visit(&w.cm.trie[i], true)
	}
}

func (w *ctrWalk) ancestors(i int) {
	if i < 0 {
		return
	}
	w.ancestors(w.cm.trie[i].parent)
	w.visit(&w.cm.trie[i], false)
}

// visit computes node n's level from its parent's and, with fill, the
// bins of its tables' CTRs.
func (w *ctrWalk) visit(n *trieNode, fill bool) {
	ns, lv := w.ns, w.s.levels
	p, c := &lv[n.depth-1], &lv[n.depth]
	switch {
	case p.n < 0:
		w.hashRows(n, p.hashes[:ns], c.hashes[:ns])
		c.n, c.hashed = -1, true
	case n.kind == 'c':
		w.catDistinct(n, p, c)
	case 2*p.n > w.pairLimit:
		// Too many (prefix, bit) pairs: hash every row.
		w.hashRows(n, w.rowHashes(p), c.hashes[:ns])
		c.n, c.hashed = -1, true
	default:
		w.bitDistinct(n, p, c, fill)
		return
	}
	if fill {
		for _, t := range n.tables {
			w.fillLevel(t, c)
		}
	}
}

// distinctPct and pairPct set, in percent of a super-block's rows, the
// most distinct hashes a categorical element's level, and the most
// (prefix, bit) pairs a binarized element's level, may have to be walked
// by distinct hash. Past that, finding them costs more than the lookups it
// saves. Variables so that tests walk every level both ways.
var distinctPct, pairPct = 50, 50

// ctrWalk is fillCat's state over one super-block of ns rows.
type ctrWalk struct {
	cm               *catModel
	ns, stride       int
	limit, pairLimit int       // see distinctPct and pairPct
	xT               []float32 // [float column][row]
	catT             []uint32  // [categorical column][row]
	super            []uint64
	superBytes       []byte
	s                *scratch
}

func (w *ctrWalk) floatCol(j int) []float32 { return w.xT[j*w.ns:][:w.ns] }
func (w *ctrWalk) catCol(j int) []uint32    { return w.catT[j*w.ns:][:w.ns] }

// walkLevel is one level of the trie walk over a super-block's rows:
// either n >= 0 distinct hashes reps[:n] with ids[d] the index of row d's,
// or n < 0 and hashes[d] row d's hash.
type walkLevel struct {
	n      int
	ids    []uint16
	reps   []uint64
	hashes []uint64
	hashed bool // hashes holds every row's hash (always when n < 0)
}

// rowHashes gives every row's hash at level l, written out from its
// distinct hashes the first time they are asked for: a categorical level
// has them already, and a binarized one's children may each need them.
func (w *ctrWalk) rowHashes(l *walkLevel) []uint64 {
	hashes := l.hashes[:w.ns]
	if !l.hashed {
		for d, id := range l.ids[:w.ns] {
			hashes[d] = l.reps[id]
		}
		l.hashed = true
	}
	return hashes
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
func (w *ctrWalk) hashRows(n *trieNode, parent, hashes []uint64) {
	parent = parent[:len(hashes)]
	switch n.kind {
	case 'c':
		for d, v := range w.catCol(n.index)[:len(hashes)] {
			// CatBoost widens the 32-bit hash as a signed int.
			hashes[d] = combineHash(parent[d], uint64(int64(int32(v))))
		}
	case 'f':
		for d, v := range w.floatCol(n.index)[:len(hashes)] {
			hashes[d] = combineHash(parent[d], uint64(floatBit(n, v)))
		}
	default:
		for d, v := range w.catCol(n.index)[:len(hashes)] {
			var bit uint64
			if v == n.value {
				bit = 1
			}
			hashes[d] = combineHash(parent[d], bit)
		}
	}
}

// floatBit binarizes v at the element's border, NaN as nanValue.
func floatBit(n *trieNode, v float32) uint16 {
	if v != v {
		v = n.nanValue
	}
	var bit uint16
	if v > n.border {
		bit = 1
	}
	return bit
}

// catDistinct walks a categorical element under a level of distinct
// hashes: every row's hash, then their distinct values, unless there are
// more than limit of them.
func (w *ctrWalk) catDistinct(n *trieNode, p, c *walkLevel) {
	hashes, pids := c.hashes[:w.ns], p.ids[:w.ns]
	for d, v := range w.catCol(n.index)[:len(hashes)] {
		hashes[d] = combineHash(p.reps[pids[d]], uint64(int64(int32(v))))
	}
	c.n, c.hashed = -1, true
	if w.limit == 0 {
		return
	}
	set := w.s.distinct
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
			if count == w.limit {
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
// distinct hashes, and fills its tables. A row's hash is one of two per
// distinct prefix, so the level's distinct values are the (prefix, bit)
// pairs, numbered 2*prefix+bit: they are hashed and looked up before any
// row is read, and one pass over the rows then finds each row's pair and
// copies its bins. Some pairs may not occur and cost a wasted lookup;
// finding which do would cost more, per row, than that.
func (w *ctrWalk) bitDistinct(n *trieNode, p, c *walkLevel, fill bool) {
	ns := w.ns
	c.n, c.hashed = 2*p.n, false
	for k := range c.n {
		c.reps[k] = combineHash(p.reps[k>>1], uint64(k&1))
	}
	if !fill {
		w.bitIDs(n, p.ids[:ns], c.ids[:ns], 0, ns)
		return
	}
	// The bins of every packed CTR over the pairs, a table of c.n bytes
	// each; the first is copied in the pass over the rows.
	luts, offs := w.s.luts[:0], w.s.lutOffs[:0]
	plain := false
	for _, t := range n.tables {
		if t.packed == nil && t.narrow == nil {
			plain = true
			continue
		}
		luts = appendLuts(t, c.reps[:c.n], w.s.vals64, luts)
		for _, o := range t.outs {
			offs = append(offs, o.off)
		}
	}
	w.s.luts, w.s.lutOffs = luts, offs
	ids, pids := c.ids[:ns], p.ids[:ns]
	if len(offs) == 0 || w.superBytes == nil {
		w.bitIDs(n, pids, ids, 0, ns)
	} else {
		lut := luts[:c.n]
		for blk := 0; blk*blockSize < ns; blk++ {
			lo, hi := blk*blockSize, min((blk+1)*blockSize, ns)
			w.bitIDs(n, pids, ids, lo, hi)
			dst := w.superBytes[(blk*w.stride+offs[0])*8:][:hi-lo]
			for r, k := range ids[lo:hi] {
				dst[r] = lut[k]
			}
		}
		luts, offs = luts[c.n:], offs[1:]
	}
	for j, off := range offs {
		w.gather(ids, luts[j*c.n:][:c.n], off)
	}
	if plain {
		for _, t := range n.tables {
			if t.packed == nil && t.narrow == nil {
				w.fillLevel(t, c)
			}
		}
	}
}

// bitIDs numbers rows [lo, hi) by their (prefix, bit) pair.
func (w *ctrWalk) bitIDs(n *trieNode, pids, ids []uint16, lo, hi int) {
	pids, ids = pids[lo:hi], ids[lo:hi]
	if n.kind == 'f' {
		col := w.floatCol(n.index)[lo:hi]
		border := n.border
		// NaN compares false with the border: it takes nanValue's bit
		// instead.
		nanBit := floatBit(n, n.nanValue)
		if useAVX2 {
			if k := len(ids) &^ 15; k > 0 {
				pairIDsAVX2(&col[0], &pids[0], &ids[0], k, border, nanBit)
				col, pids, ids = col[k:], pids[k:], ids[k:]
			}
		}
		for d, v := range col[:len(ids)] {
			var gt, nan uint16
			if v > border {
				gt = 1
			}
			if v != v {
				nan = nanBit
			}
			ids[d] = 2*pids[d] + (gt | nan)
		}
		return
	}
	for d, v := range w.catCol(n.index)[lo:hi][:len(ids)] {
		var bit uint16
		if v == n.value {
			bit = 1
		}
		ids[d] = 2*pids[d] + bit
	}
}

// appendLuts looks hashes up in a packed or narrow table and appends, per
// CTR of the table, the bin of each hash, a byte each.
func appendLuts(t *ctrLookup, hashes, vals []uint64, luts []byte) []byte {
	n := len(hashes)
	found := vals[:n]
	if t.narrow != nil {
		narrowVals(t, hashes, found, vals[n:2*n])
	} else {
		packedVals(t, hashes, found, vals[n:2*n])
	}
	for j := range t.outs {
		sh := uint(8 * j)
		for _, v := range found {
			luts = append(luts, byte(v>>sh)&0x7f)
		}
	}
	return luts
}

// gather writes each row the byte of its id in lut, into the slot at word
// offset off.
func (w *ctrWalk) gather(ids []uint16, lut []byte, off int) {
	if w.superBytes == nil {
		for d, id := range ids {
			orBin(w.super, nil, w.stride, off, d, uint64(lut[id]))
		}
		return
	}
	for blk := 0; blk*blockSize < len(ids); blk++ {
		dst := w.superBytes[(blk*w.stride+off)*8:][:min(blockSize, len(ids)-blk*blockSize)]
		for r, id := range ids[blk*blockSize:][:len(dst)] {
			dst[r] = lut[id]
		}
	}
}

// fillLevel fills the bins of table t's CTRs for the rows of level c.
func (w *ctrWalk) fillLevel(t *ctrLookup, c *walkLevel) {
	ns, s := w.ns, w.s
	switch {
	case c.n >= 0 && (t.narrow != nil || t.packed != nil):
		luts := appendLuts(t, c.reps[:c.n], s.vals64, s.luts[:0])
		s.luts = luts
		for j, o := range t.outs {
			w.gather(c.ids[:ns], luts[j*c.n:][:c.n], o.off)
		}
	case c.n >= 0:
		// A table without a packed form (more than seven CTRs, or more
		// than 127 borders): rare, walked row by row.
		fillRows(t, w.rowHashes(c), s.vals64[:2*ns], w.super, w.superBytes, w.stride)
	default:
		fillRows(t, c.hashes[:ns], s.vals64[:2*ns], w.super, w.superBytes, w.stride)
	}
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
	n := len(hashes)
	vals = vals[:n]
	narrowVals(t, hashes, vals, vals[n:2*n])
	for d, v := range vals {
		orBin(super, nil, stride, t.outs[0].off, d, v&0x7f)
	}
}

// narrowVals looks hashes up in a narrow table: vals[d] is the bin of
// hashes[d]. As in packedVals: the home slots first, branch-free, then the
// hashes listed in probe (scratch, len(hashes) entries).
func narrowVals(t *ctrLookup, hashes, vals, probe []uint64) {
	slots, shift, empty := t.narrow, t.shift, t.empty
	// home+narrowMaxProbe < len(slots) for every hash: no bounds checks.
	base := unsafe.Pointer(unsafe.SliceData(slots))
	vals = vals[:len(hashes)]
	unresolved := 0
	for d, h := range hashes {
		v, miss := narrowHome(base, h, shift, empty)
		vals[d] = v
		probe[unresolved] = uint64(d)
		unresolved += int(miss)
	}
	for _, u := range probe[:unresolved] {
		vals[u] = narrowProbeOn(slots, hashes[u], shift, empty)
	}
}

// narrowHome is homeSlot for a narrow table: the bin stored for h when its
// home slot holds it, empty when the slot is free, and miss = 1 when the
// slot holds another hash.
func narrowHome(base unsafe.Pointer, h uint64, shift uint, empty uint64) (v, miss uint64) {
	w := *(*uint64)(unsafe.Add(base, uintptr(h>>shift)*8))
	var hit, free uint64
	if w&^0x7f == h<<(64-shift)>>(64-shift)<<narrowKeyShift|narrowUsed {
		hit = 1
	}
	if w == 0 {
		free = 1
	}
	return (w&-hit | empty&-free) & 0x7f, (hit | free) ^ 1
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
	base := unsafe.Pointer(unsafe.SliceData(slots))
	off := t.outs[0].off
	unresolved := 0 // as in fillPackedBytes
	for blk := 0; blk*blockSize < len(hashes); blk++ {
		hs := hashes[blk*blockSize:][:min(blockSize, len(hashes)-blk*blockSize)]
		dst := superBytes[(blk*stride+off)*8:][:len(hs)]
		for r, h := range hs {
			v, miss := narrowHome(base, h, shift, empty)
			dst[r] = byte(v)
			vals[unresolved] = uint64(blk*blockSize + r)
			unresolved += int(miss)
		}
	}
	for _, u := range vals[:unresolved] {
		d := int(u)
		superBytes[((d/blockSize)*stride+off)*8+d%blockSize] = byte(narrowProbeOn(slots, hashes[d], shift, empty))
	}
}
