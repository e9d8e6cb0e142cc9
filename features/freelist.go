package features

import "sync"

// freeList keeps up to max idle *T for reuse. Unlike sync.Pool it is not
// emptied by the garbage collector: the per-request scratch kept here (map
// tables, staging areas sized by earlier requests) would otherwise be
// rebuilt after every collection, and that garbage triggers the next one.
// max bounds what an idle process holds, in objects and (for a T with a
// scratchBytes method) in bytes: one huge request must not leave its
// scratch behind for good (see scratch.go).
type freeList[T any] struct {
	mu    sync.Mutex
	free  []*T
	sizes []int // scratch bytes of each free entry, when put
	bytes int   // sum of sizes
	max   int
}

// get returns an idle *T, or a new zero one.
func (l *freeList[T]) get() *T {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.free); n > 0 {
		x := l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		if len(l.sizes) == n {
			l.bytes -= l.sizes[n-1]
			l.sizes = l.sizes[:n-1]
		}
		return x
	}
	return new(T)
}

// put makes x available again, or drops it if max are idle already, if it
// holds more than maxKeptScratch bytes, or if keeping it would take the
// list past maxListScratch.
func (l *freeList[T]) put(x *T) {
	size := scratchSize(x)
	l.mu.Lock()
	keep := len(l.free) < l.max && size <= maxKeptScratch && l.bytes+size <= maxListScratch
	if keep {
		l.free = append(l.free, x)
		l.sizes = append(l.sizes, size)
		l.bytes += size
	}
	l.mu.Unlock()
	if !keep {
		dropped(size)
	}
}
