package serving

import (
	"errors"
	"sync"
	"sync/atomic"

	"github.com/pyfeat/pyfeat/catboost"
	"github.com/pyfeat/pyfeat/catboostcapi"
	"github.com/pyfeat/pyfeat/internal/pferr"
)

// ErrUnknownHandle is returned (as a model error) for a handle that was
// never issued or was already closed.
var ErrUnknownHandle = errors.New("unknown or closed model handle")

// Load reads a model file with one of the two backends: "native" (a JSON
// export, evaluated in Go) or "capi" (a .cbm, evaluated by CatBoost's
// libcatboostmodel.so at libPath, or at $PYFEAT_CATBOOST_LIB when empty).
func Load(path, backend, libPath string) (catboost.Model, error) {
	switch backend {
	case "native":
		m, err := catboost.LoadJSONFile(path)
		if err != nil {
			return nil, pferr.AsModel(err)
		}
		return m, nil
	case "capi":
		l, err := catboostcapi.Open(libPath)
		if err != nil {
			return nil, pferr.AsModel(err)
		}
		m, err := l.LoadModel(path)
		if err != nil {
			return nil, pferr.AsModel(err)
		}
		return m, nil
	}
	return nil, pferr.Argumentf("unknown backend %q: use \"native\" or \"capi\"", backend)
}

// Ref is a model with its reference count. The model is closed when the
// count drops to zero: the count is one per handle that holds the model
// plus one per call in flight with it, so Go alone decides when a model
// may go, and a call that acquired it is never left with a closed model.
type Ref struct {
	model catboost.Model
	refs  atomic.Int64
}

// Model is the model; valid until Release.
func (r *Ref) Model() catboost.Model { return r.model }

// tryAcquire takes a reference unless the count already dropped to zero
// (the model is closed or closing).
func (r *Ref) tryAcquire() bool {
	for {
		n := r.refs.Load()
		if n == 0 {
			return false
		}
		if r.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release gives back a reference taken by Acquire.
func (r *Ref) Release() {
	if r.refs.Add(-1) == 0 {
		_ = r.model.Close()
	}
}

// slot is what a handle names: the model it serves now, swapped
// atomically by Swap.
type slot struct{ cur atomic.Pointer[Ref] }

// acquire takes a reference on the slot's current model, or returns nil
// once the slot is closed. A count seen at zero means the slot already
// dropped that model (a slot keeps a reference while it holds one), so the
// next load sees its successor.
func (s *slot) acquire() *Ref {
	for {
		r := s.cur.Load()
		if r == nil || r.tryAcquire() {
			return r
		}
	}
}

// Models hands out int64 handles for models. Each handle names a slot
// holding one model; two slots may share a model (Share), and Swap puts
// another model into a slot atomically. Calls acquire the slot's model for
// their duration, so a handle may be closed or swapped while other
// goroutines still score with the model it held.
type Models struct {
	mu    sync.RWMutex
	next  int64
	slots map[int64]*slot
}

// NewModels returns an empty registry.
func NewModels() *Models {
	return &Models{next: 1, slots: map[int64]*slot{}}
}

// Add registers m under a new handle (never 0); closing the handle closes m.
func (r *Models) Add(m catboost.Model) int64 {
	ref := &Ref{model: m}
	ref.refs.Store(1)
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addLocked(ref)
}

func (r *Models) addLocked(ref *Ref) int64 {
	h := r.next
	r.next++
	s := &slot{}
	s.cur.Store(ref)
	r.slots[h] = s
	return h
}

func (r *Models) slot(h int64) *slot {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.slots[h]
}

// Acquire returns the model that handle h serves now, for one call; the
// caller releases it exactly once.
func (r *Models) Acquire(h int64) (*Ref, error) {
	if s := r.slot(h); s != nil {
		if ref := s.acquire(); ref != nil {
			return ref, nil
		}
	}
	return nil, unknownHandle(h)
}

// Share returns a new handle serving the model that h serves now.
func (r *Models) Share(h int64) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.slots[h]
	if s == nil {
		return 0, unknownHandle(h)
	}
	ref := s.acquire() // the new slot's reference
	if ref == nil {
		return 0, unknownHandle(h)
	}
	return r.addLocked(ref), nil
}

// Swap makes dst serve the model that src serves, from the next Acquire
// on; src keeps it too. The model dst served before is released: calls
// that acquired it finish with it, and it is closed after the last.
func (r *Models) Swap(dst, src int64) error {
	r.mu.Lock()
	defer r.mu.Unlock() // Close takes it too: a closed slot never gets a model back
	d, s := r.slots[dst], r.slots[src]
	if d == nil {
		return unknownHandle(dst)
	}
	if s == nil {
		return unknownHandle(src)
	}
	ref := s.acquire()
	if ref == nil {
		return unknownHandle(src)
	}
	if old := d.cur.Swap(ref); old != nil {
		old.Release()
	}
	return nil
}

// Close retires handle h. New calls with h fail at once; its model is
// closed when no other handle holds it and the calls in flight finished.
func (r *Models) Close(h int64) error {
	r.mu.Lock()
	s := r.slots[h]
	delete(r.slots, h)
	r.mu.Unlock()
	if s == nil {
		return unknownHandle(h)
	}
	if old := s.cur.Swap(nil); old != nil {
		old.Release()
	}
	return nil
}

// open is the number of open handles.
func (r *Models) open() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.slots)
}

func unknownHandle(h int64) error {
	return pferr.Modelf("%w: %d", ErrUnknownHandle, h)
}
