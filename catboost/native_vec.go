package catboost

import (
	"math"
	"unsafe"
)

// The AVX2 evaluator. It computes what the pure-Go one in native.go does,
// in the same order, so the results are the same bits; what changes is the
// layout of the work:
//
//   - quantizeVec writes each feature's bins one byte per row (the same
//     memory as scratch.bins, which packs eight rows' bytes in a word on a
//     little-endian machine), finding each bin by a two-level 16-way search
//     with vector compares (quantizeColumn) instead of a binary search;
//   - evalTreesAVX2 computes the leaf indexes of 16 trees for the whole
//     block with byte compares, 32 rows per instruction, then adds their
//     leaves to the sums of 16 rows held in registers, tree after tree, so
//     that a sum is loaded and stored once per 16 trees rather than once
//     per tree.
//
// Models with several dimensions or trees deeper than 8 keep the Go tree
// evaluation (after the vector quantization), and features with too many
// used borders for a search table keep the Go binary search.

// canAVX2 tells that this build has the AVX2 kernels and the CPU can run
// them; models then carry the data the kernels read.
var canAVX2 = haveAsm && haveAVX2()

// useAVX2 selects the AVX2 kernels over the pure-Go evaluator; it may be
// set only when canAVX2 is. Tests clear it to run both on the same inputs,
// which must give the same bits.
var useAVX2 = canAVX2

// chunkTrees is the number of trees whose leaf indexes evalTreesAVX2 keeps
// at a time (in scratch.idx); it must match the kernel. 16 trees of depth
// 6 have 8 KB of leaves, which stay in L1 while the 16-row groups go over
// them; fewer trees load and store the sums more often, more measured
// slower.
const chunkTrees = 16

// tableShapes are the shapes of search table quantizeColumn knows, by
// increasing capacity: pivots in node 0 and borders per node. Features with
// more used borders than the largest holds are quantized in Go. A smaller
// shape takes fewer compares per value.
var tableShapes = [...]struct{ pivots, size int }{{8, 8}, {8, 16}, {16, 16}}

// vecTree is a tree as evalTreesAVX2 reads it; the layout is the kernel's.
type vecTree struct {
	leafOff int64 // byte offset of the tree's leaves in NativeModel.leaves
	split   int32 // index of the tree's first split in vecModel.splits
	depth   uint8
	mask    uint8 // 2^depth - 1
	// fetches is the number of 256-byte runs the tree's leaves span,
	// which the kernel prefetches; the last may reach past them, harmless
	// for a prefetch.
	fetches uint8
	_       byte
}

// vecSplit is a split as evalTreesAVX2 reads it.
type vecSplit struct {
	off int32 // slot * blockSize: where the slot's bins are in a block
	thr int32 // threshold + 1, in 1..127; the kernel reads the low byte
}

// vecModel is the layout of the trees for evalTreesAVX2: one dimension and
// depth at most 8, so that a leaf index is one byte.
type vecModel struct {
	trees  []vecTree
	splits []vecSplit // per tree, from the last split to the first
}

// buildVec returns the trees in evalTreesAVX2's layout, or nil when the
// model does not fit it (several dimensions, a tree deeper than 8, or
// offsets beyond the kernel's 32 bits); leaves are the model's leaf
// values, tree after tree, and numSlots the number of bin slots.
func buildVec(trees []tree, leaves []float64, dims, numSlots int) *vecModel {
	if dims != 1 || numSlots > math.MaxInt32/blockSize {
		return nil
	}
	v := &vecModel{trees: make([]vecTree, len(trees))}
	off := 0
	for i := range trees {
		t := &trees[i]
		if len(t.hi) > 0 || len(v.splits) > math.MaxInt32-8 {
			return nil
		}
		depth := len(t.lo)
		leafBytes := 8 << depth // an int: in uint8(8<<depth) the shift would be 8-bit
		v.trees[i] = vecTree{
			leafOff: int64(off * 8),
			split:   int32(len(v.splits)),
			depth:   uint8(depth),
			mask:    uint8(leafBytes/8 - 1),
			fetches: uint8((leafBytes + 255) / 256),
		}
		for k := depth - 1; k >= 0; k-- {
			sp := t.lo[k]
			// sp.off counts words of 8 bytes; sp.d holds 127-threshold
			// in every byte.
			threshold := binMax - int32(sp.d&0xff)
			v.splits = append(v.splits, vecSplit{off: sp.off * 8, thr: threshold + 1})
		}
		off += len(t.leaves)
	}
	if off != len(leaves) {
		panic("catboost: leaves are not laid out tree after tree")
	}
	return v
}

// buildTables gives each quantizer whose borders fit a table shape its
// table for quantizeColumn, the smallest that fits, all in one block of
// memory with each table aligned to a cache line.
func buildTables(quant []quantizer) {
	total := 0
	for i := range quant {
		q := &quant[i]
		q.shape = -1
		for k, sh := range tableShapes {
			// The last node must end with padding; see fillTable.
			if len(q.borders) < sh.pivots*sh.size {
				q.shape = k
				total += tableLen(k)
				break
			}
		}
	}
	if total == 0 {
		return
	}
	buf := make([]float32, total+15)
	// Start at a 64-byte boundary: every table is a whole number of lines
	// long, so each stays aligned, and a node of 16 floats is one line.
	start := int(-uintptr(unsafe.Pointer(&buf[0])) % 64 / 4)
	buf = buf[start : start+total]
	for i := range quant {
		q := &quant[i]
		if q.shape < 0 {
			continue
		}
		n := tableLen(q.shape)
		q.table = buf[:n:n]
		buf = buf[n:]
		fillTable(q.table, q.borders, tableShapes[q.shape].pivots, tableShapes[q.shape].size)
		q.nanMax = q.nanCount()
	}
}

// tableLen is the length of a table of shape k: node 0, then one node per
// pivot, then the node NaN reads when it counts as +Inf (see
// quantizeColumn).
func tableLen(k int) int {
	sh := tableShapes[k]
	return sh.size * (sh.pivots + 2)
}

// fillTable writes the two-level search table of quantizeColumn for sorted
// borders into t, with p pivots and nodes of s floats (len(borders) < p*s).
// The borders, padded with +Inf to p*s, are nodes 1..p; node 0 holds the
// last border of each of them. A number is greater than the last border of
// the first c0 nodes and of no other (they are sorted), so the count of
// borders below it is s*c0 plus the count in node 1+c0. No number is
// greater than the padding, so c0 stays below p. Node p+1 is read only for
// NaN counting as +Inf, under a predicate true for NaN whatever the node
// holds.
func fillTable(t, borders []float32, p, s int) {
	inf := float32(math.Inf(1))
	for i := range t {
		t[i] = inf
	}
	nodes := t[s:]
	copy(nodes, borders)
	for j := range p {
		t[j] = nodes[s*j+s-1]
	}
}

// nanCount is the count of borders below the value NaN is replaced with.
func (q *quantizer) nanCount() int {
	n := 0
	for _, b := range q.borders {
		if q.nanValue > b {
			n++
		}
	}
	return n
}

// quantizeVec is quantize for the AVX2 path: it fills s.binBytes, one byte
// per row, for the nb rows of rows.
func (m *NativeModel) quantizeVec(rows []float32, nb int, s *scratch) {
	nf := m.numFeatures
	for qi := range m.quant {
		q := &m.quant[qi]
		var col []byte
		if q.slots == 1 {
			col = s.binBytes[q.slot*blockSize:][:nb]
		} else {
			col = s.counts8[:nb]
		}
		if q.table == nil {
			// Too many borders for a table: the counts may not fit a
			// byte, so the slots are filled from them directly.
			for d := range nb {
				v := rows[d*nf+q.column]
				if v != v {
					v = q.nanValue
				}
				s.vals[d] = v
			}
			counts := s.counts[:nb]
			countBelow(q.borders, s.vals[:nb], counts)
			for j := range q.slots {
				dst := s.binBytes[(q.slot+j)*blockSize:][:nb]
				for d, c := range counts {
					dst[d] = byte(min(max(int(c)-binMax*j, 0), binMax))
				}
			}
			continue
		}
		// The kernel reads rows[d*nf+q.column] for d < nb.
		_ = rows[(nb-1)*nf+q.column]
		kind := 2 * q.shape
		if q.nanValue > 0 { // NaN as +Inf
			kind++
		}
		quantizeColumn(&rows[q.column], nf*4, nb, &q.table[0], kind, q.nanMax, &col[0])
		if q.slots > 1 {
			for j := range q.slots {
				dst := s.binBytes[(q.slot+j)*blockSize:][:nb]
				for d, c := range col {
					dst[d] = byte(min(max(int(c)-binMax*j, 0), binMax))
				}
			}
		}
	}
}

// evalVec adds every tree's leaf value to sums[:16*groups], the rows of a
// block whose bins quantizeVec wrote.
func (m *NativeModel) evalVec(s *scratch, sums []float64, groups int) {
	v := m.vec
	if len(v.trees) == 0 {
		return
	}
	_ = sums[16*groups-1]
	evalTreesAVX2(unsafe.SliceData(s.binBytes), &v.trees[0], len(v.trees), unsafe.SliceData(v.splits),
		&m.leaves[0], &s.idx[0], &sums[0], groups)
}
