package features

import "sync"

// freeList keeps up to max idle *T for reuse. Unlike sync.Pool it is not
// emptied by the garbage collector: the per-request scratch kept here (map
// tables, staging areas sized by earlier requests) would otherwise be
// rebuilt after every collection, and that garbage triggers the next one.
// max bounds what an idle process holds.
type freeList[T any] struct {
	mu   sync.Mutex
	free []*T
	max  int
}

// get returns an idle *T, or a new zero one.
func (l *freeList[T]) get() *T {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := len(l.free); n > 0 {
		x := l.free[n-1]
		l.free[n-1] = nil
		l.free = l.free[:n-1]
		return x
	}
	return new(T)
}

// put makes x available again, or drops it if max are idle already.
func (l *freeList[T]) put(x *T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.free) < l.max {
		l.free = append(l.free, x)
	}
}
