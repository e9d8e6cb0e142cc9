//go:build amd64 && !purego

package catboost

// haveAsm tells that this build has the assembly kernels of
// native_amd64.s; whether the CPU can run them is haveAVX2.
const haveAsm = true

// haveAVX2 reports whether the CPU and the operating system support AVX2
// (with the YMM state saved on context switches) and POPCNT, which the
// kernels need.
func haveAVX2() bool {
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, ecx1, _ := cpuid(1, 0)
	const (
		popcnt  = 1 << 23
		osxsave = 1 << 27
		avx     = 1 << 28
	)
	if ecx1&(popcnt|osxsave|avx) != popcnt|osxsave|avx {
		return false
	}
	// XCR0 bits 1 and 2: the OS saves SSE and AVX (YMM) state.
	if xgetbv0()&6 != 6 {
		return false
	}
	_, ebx7, _, _ := cpuid(7, 0)
	return ebx7&(1<<5) != 0
}

// cpuid returns the registers CPUID leaves for leaf and sub-leaf sub.
func cpuid(leaf, sub uint32) (eax, ebx, ecx, edx uint32)

// xgetbv0 returns the low half of XCR0, the state components the operating
// system saves; only call it when CPUID reports OSXSAVE.
func xgetbv0() (eax uint32)

// quantizeColumn writes to dst[i], for i < n, the number of borders below
// the float32 at x + i*stride bytes, searched in table (see fillTable) of
// shape kind/2. NaN counts as -Inf, or when kind is odd as +Inf, whose count
// is max.
//
//go:noescape
func quantizeColumn(x *float32, stride, n int, table *float32, kind, max int, dst *byte)

// evalTreesAVX2 adds the leaf values of ntrees trees to the sums of
// 16*groups rows of a block; see native_amd64.s.
//
//go:noescape
func evalTreesAVX2(bins *byte, trees *vecTree, ntrees int, splits *vecSplit, leaves *float64, idx *byte, sums *float64, groups int)

// pairIDsAVX2 is bitIDs' loop for a binarized float over n rows, a
// multiple of 16; see native_amd64.s.
//
//go:noescape
func pairIDsAVX2(x *float32, pids *uint16, ids *uint16, n int, border float32, nanBit uint16)
