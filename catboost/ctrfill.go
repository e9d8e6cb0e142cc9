package catboost

import "unsafe"

// superBlocks is the most blocks whose categorical slots fillCat fills in
// one pass: a CTR table is then walked once per superBlocks*blockSize rows,
// so its cache lines are fetched once for all of them rather than once per
// block.
const superBlocks = 8

// fillCat writes the categorical slots of ns rows (at most superBlocks
// blocks): x are the rows' float features, cats their hashed categorical
// values, super the blocks' bins one after another, stride words each.
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
	levels := s.hashes
	span := superBlocks * blockSize
	clear(levels[:ns])
	for i := range cm.trie {
		n := &cm.trie[i]
		hashes := levels[n.depth*span:][:ns]
		parent := levels[(n.depth-1)*span:][:len(hashes)]
		switch n.kind {
		case 'c':
			col := n.index
			for d := range hashes {
				// CatBoost widens the 32-bit hash as a signed int.
				hashes[d] = combineHash(parent[d], uint64(int64(int32(cats[d*nc+col]))))
			}
		case 'f':
			col := n.index
			for d := range hashes {
				v := x[d*nf+col]
				if v != v {
					v = n.nanValue
				}
				var bit uint64
				if v > n.border {
					bit = 1
				}
				hashes[d] = combineHash(parent[d], bit)
			}
		default:
			col := n.index
			for d := range hashes {
				var bit uint64
				if cats[d*nc+col] == n.value {
					bit = 1
				}
				hashes[d] = combineHash(parent[d], bit)
			}
		}
		for _, t := range n.tables {
			if t.narrow != nil {
				fillNarrow(t, hashes, s.vals64[:2*ns], super, superBytes, stride)
				continue
			}
			if t.packed != nil {
				fillPacked(t, hashes, s.vals64[:2*ns], super, superBytes, stride)
				continue
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
	slots, shift, empty := t.packed, t.shift, t.empty
	// h>>shift < len(slots) for every h: shift is 64 - log2(len(slots)).
	base := unsafe.Pointer(unsafe.SliceData(slots))
	if superBytes != nil {
		if len(t.outs) == 1 {
			fillPackedBytes(t, hashes, vals, superBytes, stride)
		} else {
			fillPackedBytesK(t, hashes, vals, superBytes, stride)
		}
		return
	}
	vals = vals[:len(hashes)]
	// First the home slot of every row, in a loop whose loads do not
	// depend on each other, so that the CPU overlaps their cache misses.
	// An empty home slot means the hash is not in the table; a used one
	// with another hash (0 here) sends the row to the probing pass.
	// Branch-free: whether a row's value is in the table is as good as
	// random, and a mispredicted branch per lookup would cost more than
	// the lookup.
	var unresolved uint64
	for d, h := range hashes {
		v, miss := homeSlot(base, h, shift, empty)
		vals[d] = v
		unresolved |= miss
	}
	if unresolved != 0 {
		for d, h := range hashes {
			if vals[d] != 0 {
				continue
			}
			vals[d] = probeOn(slots, h, shift, empty)
		}
	}
	for j, o := range t.outs {
		sh := uint(8 * j)
		if superBytes == nil {
			for d, v := range vals {
				orBin(super, nil, stride, o.off, d, v>>sh&0x7f)
			}
			continue
		}
		// One block's rows at a time: a run of bytes in one slot.
		for b := 0; b*blockSize < len(vals); b++ {
			dst := superBytes[(b*stride+o.off)*8:][:min(blockSize, len(vals)-b*blockSize)]
			for r, v := range vals[b*blockSize:][:len(dst)] {
				dst[r] = byte(v>>sh) & 0x7f
			}
		}
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
	slots, shift, empty := t.packed, t.shift, t.empty
	base := unsafe.Pointer(unsafe.SliceData(slots))
	n := len(hashes)
	vals, probe := vals[:n], vals[n:2*n]
	unresolved := 0
	for d, h := range hashes {
		v, miss := homeSlot(base, h, shift, empty)
		vals[d] = v
		probe[unresolved] = uint64(d)
		unresolved += int(miss)
	}
	for _, u := range probe[:unresolved] {
		h := hashes[u]
		v := probeOn(slots, h, shift, empty)
		vals[u] = v
	}
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
	slots, shift, empty := t.narrow, t.shift, t.empty
	b := 64 - shift
	// home+narrowMaxProbe < len(slots) for every hash: no bounds checks.
	base := unsafe.Pointer(unsafe.SliceData(slots))
	if superBytes != nil {
		fillNarrowBytes(t, hashes, vals, superBytes, stride)
		return
	}
	vals = vals[:len(hashes)]
	// As in fillPacked: the home slots first, branch-free, then the rows
	// whose home slot holds another hash.
	var unresolved uint64
	for d, h := range hashes {
		w := *(*uint64)(unsafe.Add(base, uintptr(h>>shift)*8))
		want := h<<b>>b<<narrowKeyShift | narrowUsed
		var hit, free uint64
		if w&^0x7f == want {
			hit = 1
		}
		if w == 0 {
			free = 1
		}
		vals[d] = (w&0x7f|narrowUsed)&-hit | (empty|narrowUsed)&-free
		unresolved |= (hit | free) ^ 1
	}
	if unresolved != 0 {
		for d, h := range hashes {
			if vals[d] != 0 {
				continue
			}
			home := h >> shift
			low := h << b >> b << narrowKeyShift
			vals[d] = empty
			for dist := uint64(1); dist <= narrowMaxProbe; dist++ {
				w := slots[home+dist]
				if w == 0 {
					break
				}
				if w&^0x7f == low|dist<<8|narrowUsed {
					vals[d] = w & 0x7f
					break
				}
			}
		}
	}
	for d, v := range vals {
		orBin(super, nil, stride, t.outs[0].off, d, v&0x7f)
	}
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
		h := hashes[d]
		home := h >> shift
		low := h << b >> b << narrowKeyShift
		v := empty
		for dist := uint64(1); dist <= narrowMaxProbe; dist++ {
			w := slots[home+dist]
			if w == 0 {
				break
			}
			if w&^0x7f == low|dist<<8|narrowUsed {
				v = w & 0x7f
				break
			}
		}
		superBytes[((d/blockSize)*stride+off)*8+d%blockSize] = byte(v)
	}
}
