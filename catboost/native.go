package catboost

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/pyfeat/pyfeat/internal/faults"
	"github.com/pyfeat/pyfeat/internal/pferr"
)

var _ Model = (*NativeModel)(nil)

// NativeModel is a CatBoost model of oblivious trees over float features,
// evaluated from its JSON export (see LoadJSON) in Go, with AVX2 assembly
// kernels where the CPU has them (see native_vec.go). It reproduces
// CatBoost's RawFormulaVal bit for bit. It is immutable once loaded and safe
// for concurrent PredictRaw calls from many goroutines.
type NativeModel struct {
	numFeatures int
	dims        int
	names       []string
	meta        map[string]string
	scale       float64
	bias        []float64 // len dims

	// quant are the features some split uses, in column order.
	quant    []quantizer
	numSlots int
	trees    []tree
	leaves   []float64 // every tree's leaves, tree after tree
	// vec is the trees' layout for the AVX2 kernel, nil when the model
	// does not fit it; the pure-Go evaluator then runs the trees.
	vec *vecModel
	// cat is the categorical part, nil for a model of float features only.
	cat *catModel

	scratch sync.Pool // *scratch, so that repeated calls do not allocate
	closed  atomic.Bool
}

// quantizer maps a feature value to its bin: the number of the feature's
// used borders that the value is greater than. Split "value > borders[k]" is
// then "bin > k", because the borders are sorted and distinct.
//
// Bins are kept to 7 bits so that eight rows' bins, one per byte of a
// uint64, are compared with a split's threshold in a few word operations. A
// feature with more than 127 used borders spreads its bin over several
// slots: slot j holds min(max(bin-127j, 0), 127), and a split on border k
// tests slot k/127 against k%127.
type quantizer struct {
	column int
	// nanValue replaces NaN: -Inf for AsFalse, and for AsIs too, since
	// both NaN and -Inf make every "value > border" false; +Inf for AsTrue.
	nanValue float32
	borders  []float32
	slot     int // first slot
	slots    int // number of slots
	// table is the borders' search table for quantizeColumn, of shape
	// tableShapes[shape] (see fillTable); nil, with shape -1, when the
	// borders fit no shape. nanMax is the count for NaN.
	table  []float32
	shape  int
	nanMax int
}

// split is one split of an oblivious tree, ready for leafIndexes.
type split struct {
	off int32  // slot * blockWords: where the slot's bins are in a block
	d   uint64 // 127-threshold in every byte
}

// tree is one oblivious tree. Split k sets bit k of the leaf index; lo holds
// splits 0-7, whose bits form the low byte of each row's index, hi the rest.
// leaves are laid out [leaf][dimension].
type tree struct {
	lo, hi []split
	leaves []float64
}

const (
	// blockSize is the number of rows evaluated together: their bins and
	// sums stay in L1 cache while all trees run over them.
	blockSize  = 128
	blockWords = blockSize / 8
	binMax     = 127
	highBits   = 0x8080808080808080
	lowBytes   = 0x0101010101010101
)

type scratch struct {
	bins   []uint64 // [slot][blockWords], byte i of a word is row 8w+i
	vals   []float32
	counts []int32
	lo, hi []uint64 // leaf index bytes, [blockWords]
	sums   []float64

	// For the AVX2 path: bins as bytes (row i of a slot is byte i, as in
	// bins on a little-endian machine), the leaf indexes of a chunk of
	// trees, and the byte counts of a feature spread over several slots.
	binBytes []byte
	idx      []byte // [chunkTrees][blockSize]
	counts8  []byte

	// Categorical models: the bins of a super-block of blocks, the trie
	// walk's levels and the sets that find their distinct hashes (see
	// fillCat), and the packed CTR bins found for a level's hashes.
	super      []uint64
	superBytes []byte
	levels     []walkLevel
	distinct   *distinctSet
	xT         []float32
	catT       []uint32
	luts       []byte
	lutOffs    []int
	vals64     []uint64
}

// NumFeatures is the number of float features (columns) a row must have.
func (m *NativeModel) NumFeatures() int { return m.numFeatures }

// Dimensions is the number of raw outputs per row.
func (m *NativeModel) Dimensions() int { return m.dims }

// NumTrees is the number of trees in the model.
func (m *NativeModel) NumTrees() int { return len(m.trees) }

// FeatureNames returns a new slice with the float features' names (their
// feature_id in the export) in column order, "" for an unnamed feature, or
// nil when no feature has a name.
func (m *NativeModel) FeatureNames() []string { return slices.Clone(m.names) }

// Metadata returns a new map with the model_info entries of the export:
// user metadata (set in Python with model.get_metadata()[key] = value) and
// CatBoost's own entries (e.g. "params", "model_guid"). Entries the export
// expanded into JSON objects are given back as compact JSON text. Never nil.
func (m *NativeModel) Metadata() map[string]string { return maps.Clone(m.meta) }

// Close marks the model closed; PredictRaw fails afterwards. It holds no
// resources beyond memory, so closing twice is harmless.
func (m *NativeModel) Close() error {
	m.closed.Store(true)
	return nil
}

// PredictRaw writes RawFormulaVal predictions for n rows: x is row-major
// float32 with len(x) == n*NumFeatures(); out is allocated by the caller,
// row-major, with len(out) == n*Dimensions(). threads <= 0 means
// runtime.GOMAXPROCS(0). Results do not depend on threads.
func (m *NativeModel) PredictRaw(x []float32, n int, out []float64, threads int) error {
	if m.closed.Load() {
		return errors.New("catboost: PredictRaw: model is closed")
	}
	if m.cat != nil {
		return fmt.Errorf("catboost: PredictRaw: the model has %d categorical features: use PredictRawCat", m.cat.numCat)
	}
	if n < 0 {
		return fmt.Errorf("catboost: PredictRaw: negative row count %d", n)
	}
	if m.numFeatures > 0 && n > math.MaxInt/m.numFeatures || n > math.MaxInt/m.dims {
		return fmt.Errorf("catboost: PredictRaw: row count %d too large", n)
	}
	if len(x) != n*m.numFeatures {
		return fmt.Errorf("catboost: PredictRaw: len(x) = %d, want %d rows x %d features = %d", len(x), n, m.numFeatures, n*m.numFeatures)
	}
	if len(out) != n*m.dims {
		return fmt.Errorf("catboost: PredictRaw: len(out) = %d, want %d rows x %d dimensions = %d", len(out), n, m.dims, n*m.dims)
	}
	if n == 0 {
		return nil
	}
	vec := useAVX2
	return m.run(n, threads, func(b int, s *scratch) { m.predictBlock(x, n, b, out, s, vec) })
}

// run calls block for every block of n rows on up to threads goroutines
// (<= 0: GOMAXPROCS). Blocks are handed out dynamically so that a slow
// worker does not hold up the others; each block writes only its own rows
// of the output.
func (m *NativeModel) run(n, threads int, block func(b int, s *scratch)) error {
	return m.runUnits((n+blockSize-1)/blockSize, threads, block)
}

// runUnits is run for units of work 0 to blocks-1 of any kind.
func (m *NativeModel) runUnits(blocks, threads int, block func(b int, s *scratch)) error {
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	workers := min(threads, blocks)
	if workers <= 1 {
		s := m.getScratch()
		for b := range blocks {
			block(b, s)
		}
		m.scratch.Put(s)
		return nil
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	var panicked atomic.Pointer[pferr.Panic] // a panic on a worker is the call's error, not the process's end
	wg.Add(workers)
	for range workers {
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					panicked.CompareAndSwap(nil, pferr.Recovered(p))
				}
			}()
			faults.Point("predict-worker")
			s := m.getScratch()
			for {
				b := int(next.Add(1) - 1)
				if b >= blocks {
					break
				}
				block(b, s)
			}
			m.scratch.Put(s)
		}()
	}
	wg.Wait()
	if p := panicked.Load(); p != nil {
		return p
	}
	return nil
}

// littleEndian tells that the bins of row i of a slot, byte i%8 of word
// i/8, are byte i of the slot's memory.
var littleEndian = func() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}()

// superBlock gives s's super-block bins (words, and the same memory as
// bytes on a little-endian machine, where fillCat writes a byte per row),
// allocated on first use: 128 bytes per slot and block.
func (m *NativeModel) superBlock(s *scratch) ([]uint64, []byte) {
	if s.super == nil {
		s.super = make([]uint64, superBlocks*m.numSlots*blockWords)
		if littleEndian {
			s.superBytes = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s.super))), len(s.super)*8)
		}
	}
	return s.super, s.superBytes
}

func (m *NativeModel) getScratch() *scratch {
	if s, ok := m.scratch.Get().(*scratch); ok {
		return s
	}
	s := &scratch{
		bins:   make([]uint64, m.numSlots*blockWords),
		vals:   make([]float32, blockSize),
		counts: make([]int32, blockSize),
		lo:     make([]uint64, blockWords),
		hi:     make([]uint64, blockWords),
		sums:   make([]float64, blockSize*m.dims),
	}
	if m.cat != nil {
		span := superBlocks * blockSize
		s.levels = make([]walkLevel, m.cat.maxDepth+1)
		for i := range s.levels {
			// A binarized element's level has up to two distinct hashes per row.
			s.levels[i] = walkLevel{ids: make([]uint16, span), reps: make([]uint64, 2*span), hashes: make([]uint64, span)}
		}
		s.distinct = newDistinctSet(span)
		s.xT = make([]float32, m.numFeatures*span)
		s.catT = make([]uint32, m.cat.numCat*span)
		s.vals64 = make([]uint64, 4*span)
		// s.super is allocated by superBlock, when first needed: the
		// goroutines sharing a call's super-block (predictShared) never
		// need their own.
	}
	if canAVX2 {
		s.binBytes = unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s.bins))), len(s.bins)*8)
		s.idx = make([]byte, chunkTrees*blockSize)
		s.counts8 = make([]byte, blockSize)
	}
	return s
}

// predictBlock evaluates rows [b*blockSize, min((b+1)*blockSize, n)),
// with the AVX2 kernels when vec is set.
func (m *NativeModel) predictBlock(x []float32, n, b int, out []float64, s *scratch, vec bool) {
	start := b * blockSize
	nb := min(blockSize, n-start)
	m.quantizeBlock(x, start, nb, s, vec)
	m.evalBlock(start, nb, out, s, vec)
}

// quantizeBlock quantizes the float features of rows [r0, r0+nb) of x into
// s's bins, with the AVX2 kernel when vec is set.
func (m *NativeModel) quantizeBlock(x []float32, r0, nb int, s *scratch, vec bool) {
	rows := x[r0*m.numFeatures : (r0+nb)*m.numFeatures]
	if vec {
		m.quantizeVec(rows, nb, s)
	} else {
		m.quantize(rows, nb, s.bins, s.vals, s.counts)
	}
}

// evalBlock runs the trees over the nb rows from row start whose bins are
// in s, and writes their outputs.
func (m *NativeModel) evalBlock(start, nb int, out []float64, s *scratch, vec bool) {
	var sums []float64
	if vec && m.vec != nil {
		// The kernel runs groups of 16 rows; rows past nb in the last
		// group are evaluated for nothing on stale bins.
		groups := (nb + 15) / 16
		sums = s.sums[:groups*16]
		clear(sums)
		m.evalVec(s, sums, groups)
	} else {
		// Trees run over whole words of 8 rows; rows past nb in the last
		// word are evaluated for nothing, which is cheaper than
		// special-casing them.
		nw := (nb + 7) / 8
		sums = s.sums[:nw*8*m.dims]
		clear(sums)
		m.evalTrees(s.bins, s.lo[:nw], s.hi[:nw], sums)
	}
	dst := out[start*m.dims : (start+nb)*m.dims]
	for i := 0; i < len(dst); i += m.dims {
		for j, bias := range m.bias {
			// The explicit float64 conversion forbids fusing into an FMA,
			// which would round differently from CatBoost.
			dst[i+j] = float64(m.scale*sums[i+j]) + bias
		}
	}
}

// quantize fills bins for the nb rows of rows; vals and counts are
// scratch of blockSize entries.
func (m *NativeModel) quantize(rows []float32, nb int, bins []uint64, vals []float32, counts []int32) {
	nf := m.numFeatures
	nw := (nb + 7) / 8
	// Rows past nb in the last word are quantized as 0s and evaluated for
	// nothing: cheaper than special-casing them.
	vals, counts = vals[:nw*8], counts[:nw*8]
	clear(vals[nb:])
	for qi := range m.quant {
		q := &m.quant[qi]
		for d := range nb {
			v := rows[d*nf+q.column]
			if v != v {
				v = q.nanValue
			}
			vals[d] = v
		}
		countBelow(q.borders, vals, counts)
		col := bins[q.slot*blockWords : (q.slot+q.slots)*blockWords]
		if q.slots == 1 {
			for w := range nw {
				c := counts[w*8 : w*8+8]
				col[w] = uint64(c[0]) | uint64(c[1])<<8 | uint64(c[2])<<16 | uint64(c[3])<<24 |
					uint64(c[4])<<32 | uint64(c[5])<<40 | uint64(c[6])<<48 | uint64(c[7])<<56
			}
			continue
		}
		clear(col)
		for d, c := range counts {
			w, shift := d/8, uint(d%8)*8
			for j := 0; c > 0; j++ {
				col[j*blockWords+w] |= uint64(min(c, binMax)) << shift
				c -= binMax
			}
		}
	}
}

// countBelow sets counts[i] to how many of the sorted borders are < vals[i],
// i.e. how many splits "vals[i] > border" hold; 0 for NaN. It runs four
// branch-free binary searches side by side: one search is a chain of
// dependent loads, four give the CPU independent work to overlap.
func countBelow(borders []float32, vals []float32, counts []int32) {
	n0 := len(borders)
	if n0 == 0 {
		clear(counts)
		return
	}
	counts = counts[:len(vals)]
	i := 0
	for ; i+4 <= len(vals); i += 4 {
		v := vals[i : i+4]
		v0, v1, v2, v3 := v[0], v[1], v[2], v[3]
		var b0, b1, b2, b3 int
		for n := n0; n > 1; {
			half := n >> 1
			// A float comparison in an if becomes a SETcc when it only
			// yields 0 or 1; the step is then a mask, not a branch.
			var g0, g1, g2, g3 int
			if v0 > borders[b0+half-1] {
				g0 = 1
			}
			if v1 > borders[b1+half-1] {
				g1 = 1
			}
			if v2 > borders[b2+half-1] {
				g2 = 1
			}
			if v3 > borders[b3+half-1] {
				g3 = 1
			}
			b0 += half & -g0
			b1 += half & -g1
			b2 += half & -g2
			b3 += half & -g3
			n -= half
		}
		var g0, g1, g2, g3 int
		if v0 > borders[b0] {
			g0 = 1
		}
		if v1 > borders[b1] {
			g1 = 1
		}
		if v2 > borders[b2] {
			g2 = 1
		}
		if v3 > borders[b3] {
			g3 = 1
		}
		c := counts[i : i+4]
		c[0], c[1], c[2], c[3] = int32(b0+g0), int32(b1+g1), int32(b2+g2), int32(b3+g3)
	}
	for ; i < len(vals); i++ {
		b := 0
		for n := n0; n > 1; {
			half := n >> 1
			var g int
			if vals[i] > borders[b+half-1] {
				g = 1
			}
			b += half & -g
			n -= half
		}
		var g int
		if vals[i] > borders[b] {
			g = 1
		}
		counts[i] = int32(b + g)
	}
}

// evalTrees adds every tree's leaf values to sums ([row][dimension]) for the
// 8*len(lo) rows whose bins are given. Trees run in file order so that each
// row's float64 sum is rounded exactly as CatBoost rounds it.
func (m *NativeModel) evalTrees(bins, lo, hi []uint64, sums []float64) {
	for ti := range m.trees {
		t := &m.trees[ti]
		leafIndexes(lo, bins, t.lo, highBits)
		loShift := uint(8 - len(t.lo)) // 8 for depth 0: mask 0, leaf 0
		if len(t.hi) == 0 {
			if m.dims == 1 {
				gather1(lo, loShift, t.leaves, sums)
			} else {
				gatherMulti(lo, loShift, nil, 0, t.leaves, sums, m.dims)
			}
			continue
		}
		leafIndexes(hi, bins, t.hi, highBits)
		gatherMulti(lo, loShift, hi, uint(8-len(t.hi)), t.leaves, sums, m.dims)
	}
}

// leafIndexes computes, in each byte of dst, the leaf index bits that
// splits give the row of that byte; split k lands at bit 8-len(splits)+k,
// so the caller shifts the byte down by 8-len(splits).
//
// A split is "bin > threshold". Bins have 7 bits, so adding 127-threshold
// (at most 127) to a byte never carries into the next one, and sets the
// byte's high bit exactly when bin > threshold. Each further split shifts
// the bits gathered so far down by one; at most 8 splits keep them inside
// their byte.
//
// high is always highBits. Passing it, and keeping the function out of
// line, keeps it in a register: as a constant in the loop the compiler
// rematerializes it and spills another register to make room.
//
//go:noinline
func leafIndexes(dst, bins []uint64, splits []split, high uint64) {
	if len(splits) == 0 {
		clear(dst)
		return
	}
	sp := splits[0]
	col := bins[sp.off:][:len(dst)]
	d := sp.d
	for w, x := range col {
		dst[w] = (x + d) & high
	}
	rest := splits[1:]
	// Two splits per pass where possible: half the loads and stores of dst.
	for ; len(rest) >= 2; rest = rest[2:] {
		colA := bins[rest[0].off:][:len(dst)]
		colB := bins[rest[1].off:][:len(dst)]
		da, db := rest[0].d, rest[1].d
		for w := range dst {
			dst[w] = dst[w]>>2 | (colA[w]+da)&high>>1 | (colB[w]+db)&high
		}
	}
	for _, sp := range rest {
		col := bins[sp.off:][:len(dst)]
		d := sp.d
		for w, x := range col {
			dst[w] = dst[w]>>1 | (x+d)&high
		}
	}
}

// gather1 adds the leaf value of each of 8*len(idx) rows, for trees of depth
// at most 8 and one dimension; shift is leafIndexes' 8-depth.
func gather1(idx []uint64, shift uint, leaves, sums []float64) {
	mask := uint64(0xff) >> shift
	// With len(leaves) == mask+1 visible, the compiler drops the bounds
	// checks of leaves[x&mask].
	leaves = leaves[:mask+1]
	for w, word := range idx {
		word >>= shift
		s := sums[w*8 : w*8+8]
		s[0] += leaves[word&mask]
		s[1] += leaves[word>>8&mask]
		s[2] += leaves[word>>16&mask]
		s[3] += leaves[word>>24&mask]
		s[4] += leaves[word>>32&mask]
		s[5] += leaves[word>>40&mask]
		s[6] += leaves[word>>48&mask]
		s[7] += leaves[word>>56&mask]
	}
}

// gatherMulti is gather1 for several dimensions and, when hi is not nil,
// trees deeper than 8, whose splits 8 and up are in hi.
func gatherMulti(lo []uint64, loShift uint, hi []uint64, hiShift uint, leaves, sums []float64, dims int) {
	loMask, hiMask := uint64(0xff)>>loShift, uint64(0xff)>>hiShift
	for w, word := range lo {
		word >>= loShift
		var high uint64
		if hi != nil {
			high = hi[w] >> hiShift
		}
		for i := range 8 {
			leaf := int(word>>(8*i)&loMask) | int(high>>(8*i)&hiMask)<<8
			row := sums[(w*8+i)*dims : (w*8+i+1)*dims]
			lv := leaves[leaf*dims : (leaf+1)*dims]
			for j := range row {
				row[j] += lv[j]
			}
		}
	}
}

// build turns the validated features and trees into the evaluation layout.
// Only features some split uses are quantized, and only against the borders
// the splits use. cp is the categorical part, nil for a float-only model.
func (m *NativeModel) build(features []floatFeature, trees []rawTree, cp *catParse) error {
	used := make([][]float32, len(features))
	floatBorders := 0
	for i := range features {
		floatBorders += len(features[i].borders)
	}
	usedOneHot := map[int]bool{}
	var usedCtr [][]float32
	if cp != nil {
		usedCtr = make([][]float32, len(cp.ctrs))
	}
	splits := make([][]splitRef, len(trees))
	for t := range trees {
		splits[t] = make([]splitRef, len(trees[t].Splits))
		for k, s := range trees[t].Splits {
			ref, err := resolveSplit(&s, features, cp, floatBorders)
			if err != nil {
				return fmt.Errorf("oblivious_trees[%d].splits[%d]: %w", t, k, err)
			}
			splits[t][k] = ref
			switch ref.kind {
			case 'f':
				used[ref.index] = append(used[ref.index], ref.border)
			case 'o':
				usedOneHot[ref.index] = true
			case 'c':
				usedCtr[ref.index] = append(usedCtr[ref.index], ref.border)
			}
		}
	}

	quantOf := make([]int, len(features))
	for f := range features {
		if len(used[f]) == 0 {
			continue
		}
		slices.Sort(used[f])
		used[f] = slices.Compact(used[f])
		q := quantizer{
			column:  f,
			borders: used[f],
			slot:    m.numSlots,
			slots:   (len(used[f]) + binMax - 1) / binMax,
		}
		q.nanValue = float32(math.Inf(-1))
		if features[f].nan == nanAsTrue && features[f].hasNans {
			q.nanValue = float32(math.Inf(1))
		}
		m.numSlots += q.slots
		if m.numSlots > math.MaxInt32/blockWords {
			return fmt.Errorf("features_info: %d distinct borders used by splits, too many", m.numSlots*binMax)
		}
		quantOf[f] = len(m.quant)
		m.quant = append(m.quant, q)
	}

	var oneHotSlotOf map[int]int
	var ctrQuant []*quantizer
	if cp != nil {
		var err error
		if oneHotSlotOf, ctrQuant, err = m.buildCat(cp, features, usedOneHot, usedCtr); err != nil {
			return err
		}
	}

	nSplits, nLeaves := 0, 0
	for t := range trees {
		nSplits += len(trees[t].Splits)
		nLeaves += len(trees[t].LeafValues)
	}
	allSplits := make([]split, 0, nSplits)
	allLeaves := make([]float64, 0, nLeaves)
	m.trees = make([]tree, len(trees))
	for t := range trees {
		s0, l0 := len(allSplits), len(allLeaves)
		for _, s := range splits[t] {
			var q *quantizer
			switch s.kind {
			case 'o':
				// Its own slot, whose bin is 1 on a match: bin > 0.
				allSplits = append(allSplits, split{off: int32(oneHotSlotOf[s.index] * blockWords), d: binMax * lowBytes})
				continue
			case 'c':
				q = ctrQuant[s.index]
			default:
				q = &m.quant[quantOf[s.index]]
			}
			threshold, _ := slices.BinarySearch(q.borders, s.border)
			slot := q.slot + threshold/binMax
			allSplits = append(allSplits, split{
				off: int32(slot * blockWords),
				d:   uint64(binMax-threshold%binMax) * lowBytes,
			})
		}
		allLeaves = append(allLeaves, trees[t].LeafValues...)
		ts := allSplits[s0:len(allSplits):len(allSplits)]
		m.trees[t] = tree{
			lo:     ts[:min(len(ts), 8)],
			leaves: allLeaves[l0:len(allLeaves):len(allLeaves)],
		}
		if len(ts) > 8 {
			m.trees[t].hi = ts[8:]
		}
	}
	m.leaves = allLeaves
	if canAVX2 {
		m.vec = buildVec(m.trees, m.leaves, m.dims, m.numSlots)
		buildTables(m.quant)
	}
	return nil
}
