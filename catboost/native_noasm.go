//go:build !amd64 || purego

package catboost

// haveAsm is false: this build has no assembly kernels, and the pure-Go
// evaluator always runs.
const haveAsm = false

func haveAVX2() bool { return false }

// The kernels' stand-ins let the package build; with canAVX2 false they
// are never called.

func quantizeColumn(x *float32, stride, n int, table *float32, kind, max int, dst *byte) {
	panic("catboost: quantizeColumn without assembly")
}

func evalTreesAVX2(bins *byte, trees *vecTree, ntrees int, splits *vecSplit, leaves *float64, idx *byte, sums *float64, groups int) {
	panic("catboost: evalTreesAVX2 without assembly")
}

func pairIDsAVX2(x *float32, pids *uint16, ids *uint16, n int, border float32, nanBit uint16) {
	panic("catboost: pairIDsAVX2 without assembly")
}
