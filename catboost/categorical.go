package catboost

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"slices"
	"strings"
)

// Categorical features. CatBoost turns them into binary features two ways,
// and both end up here as extra bin slots of a block, after the float
// features' slots, so that the tree kernels run unchanged:
//
//   - a one-hot split "value == v" gets a slot of its own whose bin is 1
//     when the row's hash is v, and the split tests bin > 0;
//   - a CTR (a statistic of the target learned per value of a feature
//     combination) is a float computed per row from a table, and its
//     splits "ctr > border" are quantized like a float feature's. The
//     table entry fixes the CTR's value, so each entry's bin is computed
//     when the model loads, and the tables of a combination are merged
//     into one: a value of the combination costs one table lookup for
//     all the CTRs over it, and the rows sharing it share the lookup (see
//     fillCat in ctrfill.go).
//
// The CTR value itself is CatBoost's, in float32:
// (good + prior_numerator) / (total + prior_denomerator), then
// (ctr + shift) * scale, with good/total taken from the table by type.

// catModel is what a model with categorical features adds to NativeModel.
type catModel struct {
	numCat    int
	catNames  []string
	catFlat   []int
	floatFlat []int
	firstSlot int // cat slots are [firstSlot, numSlots)
	oneHot    []oneHotSlot
	projs     []ctrProjection
	// trie is the projections' elements as a prefix tree in depth-first
	// order: combinations sharing a prefix share its hashes, computed once.
	trie     []trieNode
	maxDepth int
	// cost[i] is an estimate of the work of walking nodes [0, i) of the
	// trie, to split it into ranges of equal work (see chunks).
	cost []int
}

// trieNode is one element of a combination, hashed onto its parent's
// hashes (level depth-1) into level depth; tables are the CTR tables of the
// combination that ends here.
type trieNode struct {
	parent   int // index in the trie; -1 under the root
	depth    int
	kind     byte // 'c', 'f' or 'o' as in projElem
	index    int  // cat feature, or float column
	border   float32
	nanValue float32
	value    uint32
	tables   []*ctrLookup
}

type oneHotSlot struct {
	cat   int
	value uint32
	off   int // slot * blockWords
}

// ctrProjection is a feature combination and the CTR tables over it.
type ctrProjection struct {
	cats    []int
	floats  []projFloat
	oneHots []projOneHot
	tables  []*ctrLookup
}

type projFloat struct {
	column   int
	border   float32
	nanValue float32 // what NaN is binarized as
}

type projOneHot struct {
	cat   int
	value uint32
}

// ctrLookup maps a combination's hash to the bins of the model's CTRs over
// one table, by open addressing on the hash's high bits (the hash's last
// step is a multiplication, whose low bits mix poorly).
type ctrLookup struct {
	keys  []uint64
	entry []int32 // -1: empty
	shift uint
	outs  []ctrOut
	bins  []uint16 // [entry][len(outs)]; the last entry is for hashes not in the table

	// packed replaces keys, entry and bins when every CTR of the table
	// fits one slot (at most 127 borders) and there are at most seven.
	packed []ctrSlot
	empty  uint64 // packed bins for a hash not in the table

	// narrow replaces packed for a big table of one CTR: a slot is one
	// word (see narrowSlot), half a packed slot, so that twice as many of
	// a table's slots share the cache. nil otherwise.
	narrow []uint64
}

// A narrow slot holds a hash whose home slot (its top bits, 64-shift of
// them) is known from where the slot is: the word keeps the hash's other
// bits, the distance from the home slot (at most narrowMaxProbe: the build
// makes the table bigger until every hash lies that close to home) and the
// CTR's bin with the used bit:
//
//	low bits of the hash << narrowKeyShift | distance << 8 | used | bin
//
// A table of at least 2^narrowKeyShift slots leaves all of the hash's low
// bits room; 0 is a free slot.
// narrowMinSlots is the smallest table made narrow: a smaller one is in
// the cache anyway. A variable so that tests make every table of one CTR
// narrow.
var narrowMinSlots = 1 << narrowKeyShift

const (
	narrowKeyShift = 11
	narrowMaxProbe = 7
	narrowUsed     = 0x80
)

// pack builds the packed table, when the table's CTRs allow it.
func (t *ctrLookup) pack() {
	k := len(t.outs)
	if k > 7 {
		return
	}
	for _, o := range t.outs {
		if o.slots != 1 {
			return
		}
	}
	val := func(e int) uint64 {
		var v uint64
		for j, c := range t.bins[e*k : (e+1)*k] {
			v |= uint64(c) << (8 * j)
		}
		return v
	}
	// An entry whose bins are those of a hash not in the table changes no
	// split's outcome: it is left out, which keeps the table small (most
	// entries of a rare value's combinations sit below the CTR's first
	// border, like the prior) and so lookups in cache.
	// The used bit marks a found value; the prior's value carries it too,
	// so that 0 means only "not resolved yet" in fillPacked.
	t.empty = val(len(t.bins)/k-1) | slotUsed
	var keys []uint64
	var vals []uint64
	for i, e := range t.entry {
		if e < 0 {
			continue
		}
		if v := val(int(e)) | slotUsed; v != t.empty {
			keys = append(keys, t.keys[i])
			vals = append(vals, v)
		}
	}
	// At most a quarter full (half for big tables, to keep them in
	// cache): most lookups are of hashes not in the table, and a free home
	// slot answers those at once.
	load := 4
	if len(keys) > 4096 {
		load = 2
	}
	size := 2
	for size < load*len(keys) {
		size <<= 1
	}
	if k == 1 && size >= narrowMinSlots && t.packNarrow(keys, vals, max(size, 1<<narrowKeyShift)) {
		t.keys, t.entry, t.bins = nil, nil, nil
		return
	}
	t.shift = uint(64 - bits.TrailingZeros(uint(size)))
	t.packed = make([]ctrSlot, size)
	mask := uint64(size - 1)
	for j, h := range keys {
		i := h >> t.shift
		for t.packed[i&mask].val != 0 {
			i++
		}
		t.packed[i&mask] = ctrSlot{key: h, val: vals[j]}
	}
	t.keys, t.entry, t.bins = nil, nil, nil
}

// packNarrow builds the narrow table of size slots or more (see
// narrowSlot); false when a hash would lie too far from home even in a
// table four times as big.
func (t *ctrLookup) packNarrow(keys, vals []uint64, size int) bool {
next:
	for ; size <= 16<<narrowKeyShift || size <= 16*len(keys); size <<= 1 {
		b := uint(bits.TrailingZeros(uint(size)))
		// narrowMaxProbe slots past the end instead of a wrap-around.
		slots := make([]uint64, size+narrowMaxProbe)
		for j, h := range keys {
			home := h >> (64 - b)
			for d := uint64(0); ; d++ {
				if d > narrowMaxProbe {
					continue next
				}
				if slots[home+d] == 0 {
					slots[home+d] = h<<b>>b<<narrowKeyShift | d<<8 | narrowUsed | vals[j]&0x7f
					break
				}
			}
		}
		t.shift = 64 - b
		t.narrow = slots
		t.empty &= 0x7f
		return true
	}
	return false
}

// ctrSlot is a slot of the packed table: a hash and the bins of up to
// seven CTRs, one byte each, with the top bit of val marking the slot used.
// Key and bins share a cache line, so a lookup costs one memory access.
type ctrSlot struct {
	key uint64
	val uint64
}

const slotUsed = 1 << 63

type ctrOut struct {
	off   int // first slot * blockWords
	slots int
}

const ctrMagic = 0x4906ba494954cb65

func combineHash(h, v uint64) uint64 { return ctrMagic * (h + ctrMagic*v) }

func (t *ctrLookup) find(h uint64) int {
	mask := len(t.keys) - 1
	i := int(h >> t.shift)
	for {
		e := t.entry[i]
		if e < 0 {
			return len(t.bins)/len(t.outs) - 1
		}
		if t.keys[i] == h {
			return int(e)
		}
		i = (i + 1) & mask
	}
}

func newCtrLookup(hashes []uint64) *ctrLookup {
	size := 2
	for size < 2*len(hashes) {
		size <<= 1
	}
	t := &ctrLookup{
		keys:  make([]uint64, size),
		entry: make([]int32, size),
		shift: uint(64 - bits.TrailingZeros(uint(size))),
	}
	for i := range t.entry {
		t.entry[i] = -1
	}
	mask := size - 1
	for e, h := range hashes {
		i := int(h >> t.shift)
		for t.entry[i] >= 0 {
			i = (i + 1) & mask
		}
		t.keys[i], t.entry[i] = h, int32(e)
	}
	return t
}

// ctrValue is CatBoost's TModelCtr::Calc, in float32 as CatBoost computes
// it; the conversions keep the compiler from fusing operations.
func (c *ctrInfo) value(good, total float32) float32 {
	v := float32(float32(good+c.priorNum) / float32(total+c.priorDenom))
	return float32(float32(v+c.shift) * c.scale)
}

// ctrValues returns the CTR's value for every entry of table t, and last
// the value for a hash not in it.
func (c *ctrInfo) values(t *ctrTableInfo) ([]float32, error) {
	n := len(t.hashes)
	out := make([]float32, n+1)
	switch c.typ {
	case ctrMean:
		for e := range n {
			out[e] = c.value(t.sums[e], float32(t.counts[e]))
		}
		out[n] = c.value(0, 0)
	case ctrCounter, ctrFeatureFreq:
		d := float32(t.denominator)
		for e := range n {
			out[e] = c.value(float32(t.ints[e]), d)
		}
		out[n] = c.value(0, d)
	case ctrBuckets:
		k := t.stride
		if c.targetBorder >= k {
			return nil, fmt.Errorf("target_border_idx %d, but the table has %d classes", c.targetBorder, k)
		}
		for e := range n {
			row := t.ints[e*k : (e+1)*k]
			var total int32
			for _, v := range row {
				total += int32(v)
			}
			out[e] = c.value(float32(int32(row[c.targetBorder])), float32(total))
		}
		out[n] = c.value(0, 0)
	case ctrBorders:
		k := t.stride
		if k < 2 {
			return nil, fmt.Errorf("a Borders table with %d classes", k)
		}
		if k > 2 && c.targetBorder+1 >= k {
			return nil, fmt.Errorf("target_border_idx %d, but the table has %d classes", c.targetBorder, k)
		}
		for e := range n {
			row := t.ints[e*k : (e+1)*k]
			if k == 2 {
				out[e] = c.value(float32(int32(row[1])), float32(int32(row[0])+int32(row[1])))
				continue
			}
			var good, total int32
			for j, v := range row {
				if j > c.targetBorder {
					good += int32(v)
				} else {
					total += int32(v)
				}
			}
			out[e] = c.value(float32(good), float32(total+good))
		}
		out[n] = c.value(0, 0)
	}
	return out, nil
}

// splitRef is a parsed split: the binary feature it tests.
type splitRef struct {
	kind   byte // 'f' float, 'o' one-hot, 'c' CTR
	index  int  // float feature, one-hot (cat, value) pair, or CTR
	border float32
}

// catParse is the categorical part of a parsed export.
type catParse struct {
	cats   []catFeatureInfo
	ctrs   []ctrInfo
	tables map[string]*ctrTableInfo
	// oneHotPairs lists (cat feature, value index) in split_index order.
	oneHotPairs [][2]int
}

// resolveCatSplit finds the one-hot value or CTR border a split names,
// by its split_index (CatBoost numbers every float border, then every
// one-hot value, then every CTR border), and checks that the split's own
// fields agree.
func (cp *catParse) resolveCatSplit(s *rawSplit, floatBorders int) (splitRef, error) {
	if s.SplitIndex == nil {
		return splitRef{}, errors.New("missing split_index")
	}
	j := *s.SplitIndex - floatBorders
	switch *s.SplitType {
	case "OneHotFeature":
		if s.CatFeatureIndex == nil || s.Value == nil {
			return splitRef{}, errors.New("missing cat_feature_index or value")
		}
		if j < 0 || j >= len(cp.oneHotPairs) {
			return splitRef{}, fmt.Errorf("split_index %d names no one-hot value", *s.SplitIndex)
		}
		p := cp.oneHotPairs[j]
		if p[0] != *s.CatFeatureIndex || int64(cp.cats[p[0]].oneHot[p[1]]) != int64(int32(*s.Value)) {
			return splitRef{}, fmt.Errorf("split_index %d does not name cat feature %d value %d", *s.SplitIndex, *s.CatFeatureIndex, *s.Value)
		}
		return splitRef{kind: 'o', index: j}, nil
	case "OnlineCtr":
		if s.CtrTargetBorder == nil || s.Border == nil {
			return splitRef{}, errors.New("missing ctr_target_border_idx or border")
		}
		if math.IsNaN(*s.Border) {
			return splitRef{}, errors.New("border is NaN")
		}
		j -= len(cp.oneHotPairs)
		b := float32(*s.Border)
		for i := range cp.ctrs {
			c := &cp.ctrs[i]
			if j < c.splitBase || j >= c.splitBase+len(c.borders) {
				continue
			}
			if c.borders[j-c.splitBase] != b || c.targetBorder != *s.CtrTargetBorder {
				break
			}
			return splitRef{kind: 'c', index: i, border: b}, nil
		}
		return splitRef{}, fmt.Errorf("split_index %d does not name a CTR border %v with target border %d", *s.SplitIndex, *s.Border, *s.CtrTargetBorder)
	}
	return splitRef{}, unsupported("split_type %q", *s.SplitType)
}

// buildCat lays out the slots of the categorical splits, after the float
// features' slots, and the CTR lookups. used lists, per kind, which
// one-hot pairs and CTR borders the trees split on.
func (m *NativeModel) buildCat(cp *catParse, features []floatFeature, usedOneHot map[int]bool, usedCtr [][]float32) (map[int]int, []*quantizer, error) {
	cm := &catModel{numCat: len(cp.cats), firstSlot: m.numSlots, floatFlat: []int{}, catFlat: []int{}}
	for _, c := range cp.cats {
		cm.catNames = append(cm.catNames, c.name)
		cm.catFlat = append(cm.catFlat, c.flat)
	}
	for i := range features {
		cm.floatFlat = append(cm.floatFlat, features[i].flat)
	}
	// One-hot slots, in split_index order.
	oneHotSlotOf := map[int]int{}
	for j, p := range cp.oneHotPairs {
		if !usedOneHot[j] {
			continue
		}
		oneHotSlotOf[j] = m.numSlots
		cm.oneHot = append(cm.oneHot, oneHotSlot{cat: p[0], value: uint32(cp.cats[p[0]].oneHot[p[1]]), off: m.numSlots * blockWords})
		m.numSlots++
	}
	// CTR slots: one quantizer-like set of borders per used CTR.
	ctrQuant := make([]*quantizer, len(cp.ctrs))
	projOf := map[string]int{}
	tableOf := map[string]*ctrLookup{}
	for i := range cp.ctrs {
		if len(usedCtr[i]) == 0 {
			continue
		}
		c := &cp.ctrs[i]
		borders := slices.Clone(usedCtr[i])
		slices.Sort(borders)
		borders = slices.Compact(borders)
		q := &quantizer{borders: borders, slot: m.numSlots, slots: (len(borders) + binMax - 1) / binMax}
		m.numSlots += q.slots
		if m.numSlots > math.MaxInt32/blockWords {
			return nil, nil, errors.New("too many distinct borders used by splits")
		}
		ctrQuant[i] = q

		projKey := c.key[strings.IndexByte(c.key, '|'):]
		pi, ok := projOf[projKey]
		if !ok {
			p, err := makeProjection(c.proj, features, len(cp.cats))
			if err != nil {
				return nil, nil, fmt.Errorf("ctrs[%d]: %w", i, err)
			}
			pi = len(cm.projs)
			projOf[projKey] = pi
			cm.projs = append(cm.projs, p)
		}
		t := cp.tables[c.key]
		if t == nil {
			return nil, nil, fmt.Errorf("ctrs[%d]: ctr_data has no table for it", i)
		}
		vals, err := c.values(t)
		if err != nil {
			return nil, nil, fmt.Errorf("ctrs[%d]: %w", i, err)
		}
		lk := tableOf[c.key]
		if lk == nil {
			lk = newCtrLookup(t.hashes)
			tableOf[c.key] = lk
			cm.projs[pi].tables = append(cm.projs[pi].tables, lk)
		}
		// Append this CTR's bins as a new column of lk.bins.
		k := len(lk.outs)
		lk.outs = append(lk.outs, ctrOut{off: q.slot * blockWords, slots: q.slots})
		nb := make([]uint16, len(vals)*(k+1))
		for e, v := range vals {
			copy(nb[e*(k+1):], lk.bins[e*k:(e+1)*k])
			cnt := 0
			for _, b := range borders {
				if v > b {
					cnt++
				}
			}
			nb[e*(k+1)+k] = uint16(cnt)
		}
		lk.bins = nb
	}
	for pi := range cm.projs {
		p := &cm.projs[pi]
		p.tables = []*ctrLookup{mergeLookups(p.tables)}
		p.tables[0].pack()
	}
	cm.buildTrie()
	m.cat = cm
	return oneHotSlotOf, ctrQuant, nil
}

// mergeLookups joins the tables of one combination into one: the
// combination's hash is then looked up once for all its CTRs, whatever
// their type (CatBoost keeps, e.g., a Borders and a Counter table per
// combination, and looks each up). A hash missing from one table takes
// that table's bins for a missing hash.
func mergeLookups(ts []*ctrLookup) *ctrLookup {
	if len(ts) == 1 {
		return ts[0]
	}
	seen := map[uint64]bool{}
	var hashes []uint64
	for _, t := range ts {
		for i, e := range t.entry {
			if h := t.keys[i]; e >= 0 && !seen[h] {
				seen[h] = true
				hashes = append(hashes, h)
			}
		}
	}
	m := newCtrLookup(hashes)
	for _, t := range ts {
		m.outs = append(m.outs, t.outs...)
	}
	k := len(m.outs)
	m.bins = make([]uint16, (len(hashes)+1)*k)
	row := func(e int, entryOf func(t *ctrLookup) int) {
		col := 0
		for _, t := range ts {
			tk := len(t.outs)
			te := entryOf(t)
			copy(m.bins[e*k+col:], t.bins[te*tk:(te+1)*tk])
			col += tk
		}
	}
	for e, h := range hashes {
		row(e, func(t *ctrLookup) int { return t.find(h) })
	}
	row(len(hashes), func(t *ctrLookup) int { return len(t.bins)/len(t.outs) - 1 })
	return m
}

func makeProjection(elems []projElem, features []floatFeature, numCat int) (ctrProjection, error) {
	var p ctrProjection
	for _, e := range elems {
		switch e.kind {
		case 'c', 'o':
			if e.index >= numCat {
				return p, fmt.Errorf("cat_feature_index %d out of range: the model has %d categorical features", e.index, numCat)
			}
			if e.kind == 'c' {
				p.cats = append(p.cats, e.index)
			} else {
				p.oneHots = append(p.oneHots, projOneHot{cat: e.index, value: uint32(e.value)})
			}
		case 'f':
			if e.index >= len(features) {
				return p, fmt.Errorf("float_feature_index %d out of range: the model has %d float features", e.index, len(features))
			}
			f := &features[e.index]
			// CatBoost binarizes with NaN replaced only when the feature
			// had NaNs in training and its treatment is not AsIs.
			nan := float32(math.Inf(-1))
			if f.nan == nanAsTrue && f.hasNans {
				nan = float32(math.Inf(1))
			}
			p.floats = append(p.floats, projFloat{column: e.index, border: e.border, nanValue: nan})
		}
	}
	return p, nil
}

// CategoricalModel is a Model some of whose features are categorical.
// Rows are given as two row-major matrices: the float features (in
// feature_index order, NumFeatures columns) and the categorical values
// hashed with HashCategorical / HashCategoricalInt (NumCatFeatures
// columns, in their feature_index order).
type CategoricalModel interface {
	Model
	NumCatFeatures() int
	// FlatIndexes gives each float feature's and each categorical
	// feature's column in the model's training table.
	FlatIndexes() (floats, cats []int)
	PredictRawCat(x []float32, cats []uint32, n int, out []float64, threads int) error
}

var _ CategoricalModel = (*NativeModel)(nil)

// NumCatFeatures is the number of categorical features a row must have; 0
// for a model without any.
func (m *NativeModel) NumCatFeatures() int {
	if m.cat == nil {
		return 0
	}
	return m.cat.numCat
}

// FlatIndexes gives the training-table column of each float feature and
// each categorical feature.
func (m *NativeModel) FlatIndexes() (floats, cats []int) {
	if m.cat == nil {
		floats = make([]int, m.numFeatures)
		for i := range floats {
			floats[i] = i
		}
		return floats, []int{}
	}
	return slices.Clone(m.cat.floatFlat), slices.Clone(m.cat.catFlat)
}

// CatFeatureNames returns the categorical features' names, "" for unnamed.
func (m *NativeModel) CatFeatureNames() []string {
	if m.cat == nil {
		return nil
	}
	return slices.Clone(m.cat.catNames)
}

// PredictRawCat is PredictRaw for a model with categorical features: x holds
// n rows of NumFeatures float features, cats n rows of NumCatFeatures hashed
// categorical values. A model without categorical features takes an empty
// cats.
func (m *NativeModel) PredictRawCat(x []float32, cats []uint32, n int, out []float64, threads int) error {
	nc := m.NumCatFeatures()
	if nc == 0 {
		if len(cats) != 0 {
			return fmt.Errorf("catboost: PredictRawCat: the model has no categorical features, got %d values", len(cats))
		}
		return m.PredictRaw(x, n, out, threads)
	}
	if m.closed.Load() {
		return errors.New("catboost: PredictRawCat: model is closed")
	}
	if n < 0 {
		return fmt.Errorf("catboost: PredictRawCat: negative row count %d", n)
	}
	if m.numFeatures > 0 && n > math.MaxInt/m.numFeatures || n > math.MaxInt/nc || n > math.MaxInt/m.dims {
		return fmt.Errorf("catboost: PredictRawCat: row count %d too large", n)
	}
	if len(x) != n*m.numFeatures {
		return fmt.Errorf("catboost: PredictRawCat: len(x) = %d, want %d rows x %d float features = %d", len(x), n, m.numFeatures, n*m.numFeatures)
	}
	if len(cats) != n*nc {
		return fmt.Errorf("catboost: PredictRawCat: len(cats) = %d, want %d rows x %d categorical features = %d", len(cats), n, nc, n*nc)
	}
	if len(out) != n*m.dims {
		return fmt.Errorf("catboost: PredictRawCat: len(out) = %d, want %d rows x %d dimensions = %d", len(out), n, m.dims, n*m.dims)
	}
	if n == 0 {
		return nil
	}
	// Super-blocks as big as they go, up to superBlocks blocks, but one
	// per thread: the bigger a super-block, the fewer passes over the CTR
	// tables and the fewer distinct values per row (see fillCat).
	blocks := (n + blockSize - 1) / blockSize
	if threads <= 0 {
		threads = runtime.GOMAXPROCS(0)
	}
	if threads > 1 && blocks > 1 && blocks <= superBlocks {
		return m.predictShared(x, cats, n, out, threads)
	}
	per := min((blocks+threads-1)/threads, superBlocks)
	units := (blocks + per - 1) / per
	return m.runUnits(units, threads, func(u int, s *scratch) {
		m.predictSuperBlock(x, cats, n, u*per, min(per, blocks-u*per), out, s, useAVX2)
	})
}

// predictShared is predictSuperBlock for n rows that fit one super-block,
// on several goroutines sharing it: first the float features and the
// columns block by block, then the CTR walk split by ranges of the trie,
// then the trees block by block. Split by rows instead, every goroutine
// would walk every CTR table, and find the same distinct values: the walk
// would take about as long on two as on one.
func (m *NativeModel) predictShared(x []float32, cats []uint32, n int, out []float64, threads int) error {
	shared := m.getScratch()
	defer m.scratch.Put(shared)
	blocks := (n + blockSize - 1) / blockSize
	super, superBytes := m.superBlock(shared)
	super = super[:blocks*m.numSlots*blockWords]
	vec := useAVX2
	err := m.runUnits(blocks, threads, func(b int, s *scratch) {
		r0 := b * blockSize
		nb := min(blockSize, n-r0)
		restore := m.viewBlock(s, super, superBytes, b)
		m.quantizeBlock(x, r0, nb, s, vec)
		restore()
		w := m.walker(n, super, superBytes, shared, s)
		w.prepare(x, cats, r0, r0+nb)
	})
	if err != nil {
		return err
	}
	// More ranges than goroutines, handed out as they finish, so that a
	// slow one does not hold up the rest; each range recomputes its
	// ancestors' levels, a few passes over the rows.
	bounds := m.cat.chunks(4 * threads)
	err = m.runUnits(len(bounds)-1, threads, func(k int, s *scratch) {
		w := m.walker(n, super, superBytes, shared, s)
		w.walk(bounds[k], bounds[k+1])
	})
	if err != nil {
		return err
	}
	return m.runUnits(blocks, threads, func(b int, s *scratch) {
		r0 := b * blockSize
		defer m.viewBlock(s, super, superBytes, b)()
		m.evalBlock(r0, min(blockSize, n-r0), out, s, vec)
	})
}

// viewBlock points s's bins at block b of a super-block, and returns the
// function that points them back at s's own.
func (m *NativeModel) viewBlock(s *scratch, super []uint64, superBytes []byte, b int) (restore func()) {
	own, ownBytes := s.bins, s.binBytes
	stride := m.numSlots * blockWords
	s.bins = super[b*stride : (b+1)*stride]
	if superBytes != nil {
		s.binBytes = superBytes[b*stride*8 : (b+1)*stride*8]
	}
	return func() { s.bins, s.binBytes = own, ownBytes }
}

// predictSuperBlock evaluates blocks [b0, b0+nblk) of n rows: the float
// features block by block, the categorical slots of all of them in one
// pass, then the trees block by block.
func (m *NativeModel) predictSuperBlock(x []float32, cats []uint32, n, b0, nblk int, out []float64, s *scratch, vec bool) {
	stride := m.numSlots * blockWords
	super, superBytes := m.superBlock(s)
	start := b0 * blockSize
	ns := min(nblk*blockSize, n-start)
	for b := range nblk {
		r0 := start + b*blockSize
		restore := m.viewBlock(s, super, superBytes, b)
		m.quantizeBlock(x, r0, min(blockSize, n-r0), s, vec)
		restore()
	}
	m.fillCat(x[start*m.numFeatures:(start+ns)*m.numFeatures], cats[start*m.cat.numCat:(start+ns)*m.cat.numCat], ns,
		super[:nblk*stride], superBytes, s)
	for b := range nblk {
		r0 := start + b*blockSize
		restore := m.viewBlock(s, super, superBytes, b)
		m.evalBlock(r0, min(blockSize, n-r0), out, s, vec)
		restore()
	}
}

// buildTrie lays the projections out as a prefix tree, in the order
// CatBoost hashes their elements: cat features, binarized floats, one-hot
// values.
func (cm *catModel) buildTrie() {
	type node struct {
		n        trieNode
		children map[string]*node
		order    []string
	}
	root := &node{children: map[string]*node{}}
	for pi := range cm.projs {
		p := &cm.projs[pi]
		var elems []trieNode
		for _, c := range p.cats {
			elems = append(elems, trieNode{kind: 'c', index: c})
		}
		for _, f := range p.floats {
			elems = append(elems, trieNode{kind: 'f', index: f.column, border: f.border, nanValue: f.nanValue})
		}
		for _, o := range p.oneHots {
			elems = append(elems, trieNode{kind: 'o', index: o.cat, value: o.value})
		}
		at := root
		for depth, e := range elems {
			key := fmt.Sprintf("%c%d:%x:%x:%d", e.kind, e.index, math.Float32bits(e.border), math.Float32bits(e.nanValue), e.value)
			child := at.children[key]
			if child == nil {
				e.depth = depth + 1
				child = &node{n: e, children: map[string]*node{}}
				at.children[key] = child
				at.order = append(at.order, key)
			}
			at = child
		}
		at.n.tables = append(at.n.tables, p.tables...)
		cm.maxDepth = max(cm.maxDepth, len(elems))
	}
	var walk func(at *node, parent int)
	walk = func(at *node, parent int) {
		for _, k := range at.order {
			c := at.children[k]
			c.n.parent = parent
			cm.trie = append(cm.trie, c.n)
			walk(c, len(cm.trie)-1)
		}
	}
	walk(root, -1)
	// A node costs a pass over the rows, and each table a lookup per
	// distinct value and a copy per row.
	cm.cost = make([]int, len(cm.trie)+1)
	for i, n := range cm.trie {
		cm.cost[i+1] = cm.cost[i] + 1 + 2*len(n.tables)
	}
}

// chunks splits the trie into k ranges of about equal cost: range j is
// nodes [b[j], b[j+1]).
func (cm *catModel) chunks(k int) []int {
	k = max(min(k, len(cm.trie)), 1)
	b := make([]int, k+1)
	total := cm.cost[len(cm.trie)]
	for j := 1; j < k; j++ {
		b[j], _ = slices.BinarySearch(cm.cost, j*total/k)
	}
	b[k] = len(cm.trie)
	return b
}
