package serving

import (
	"encoding/json"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pyfeat/pyfeat/catboost"
	"github.com/pyfeat/pyfeat/features"
	"github.com/pyfeat/pyfeat/internal/pferr"
	"github.com/pyfeat/pyfeat/itemcache"
)

// Service is the state behind the C ABI of one process: the models, the
// user contexts handed over before their items, and the policy that shares
// the cores between the calls running at once. Its methods are what the
// exports do once their C arguments are Go values; they return nil, a
// *features.InputError or one of the kinds of package pferr.
type Service struct {
	Models   *Models
	users    pendingUsers
	inflight atomic.Int32
	caches   registry[*itemcache.Cache]
	lookups  registry[*lookupEntry]
}

// New returns an empty Service.
func New() *Service {
	return &Service{Models: NewModels(), users: pendingUsers{m: map[int64]*features.Pending{}},
		caches: registry[*itemcache.Cache]{what: "item cache"}, lookups: registry[*lookupEntry]{what: "lookup"}}
}

// enter registers a call and returns the goroutines it may use (threads as
// the caller asked, <= 0 for all cores); the caller defers leave. A call
// uses as many goroutines as its share of the cores: all of them when it
// runs alone, one when other calls already keep every core busy. Spawning
// workers then would only add scheduling; worse, with more Python threads
// calling than there are cores (cffi releases the GIL), the hand-offs
// between cgo callbacks and their workers let the Go scheduler starve some
// callers: eight threads on two cores saw single calls wait for seconds.
func (s *Service) enter(threads int) int {
	n := int(s.inflight.Add(1))
	share := max(1, runtime.GOMAXPROCS(0)/n)
	return min(features.Threads(threads), share)
}

func (s *Service) leave() { s.inflight.Add(-1) }

// BeginUser copies a user context and returns the handle that the next
// Compute or Rank consumes. The preparation starts at once only when the
// engine is idle: then a core is free to do it while the caller gets the
// items ready. When calls are running, a goroutine more would compete with
// them for the cores (see enter): the call that consumes the handle
// prepares it.
func (s *Service) BeginUser(user []byte) int64 {
	async := s.inflight.Load() == 0 && s.users.count() == 0
	return s.users.add(features.Begin(user, async))
}

// DiscardUser releases a user handle that no call consumed.
func (s *Service) DiscardUser(h int64) error {
	p, err := s.users.take(h)
	if err != nil {
		return err
	}
	p.Close()
	return nil
}

// Compute writes the feature matrix of one request into out, each item's
// id into ids unless it is nil and the categorical matrix into catOut
// unless that is nil; the user handle is consumed whatever the outcome.
// stages, when not nil, receives where the call's time went (see Stages).
func (s *Service) Compute(user int64, items features.Items, c *features.Candidates, threads int, out []float32,
	ids []int64, catOut []int64, stages *[NumStages]int64) error {
	entered := time.Now()
	p, err := s.users.take(user)
	if err != nil {
		return err
	}
	defer p.Close()
	if len(out) != items.Len()*features.NumFeatures {
		return pferr.Argumentf("output buffer has %d floats, want %d x %d", len(out), items.Len(), features.NumFeatures)
	}
	th := s.enter(threads)
	defer s.leave()
	wait := time.Since(entered)
	var tm Timings
	if catOut != nil {
		err = features.ComputeAllTimed(p, items, c, th, out, ids, catOut, nil, &tm.Timings)
	} else {
		err = features.ComputeBlocksTimed(p, items, c, th, out, ids, nil, &tm.Timings)
	}
	if stages != nil {
		*stages = Stages(int64(time.Since(entered)), int64(wait), &tm)
	}
	return err
}

// LoadModel loads a model file (see Load) under a new handle.
func (s *Service) LoadModel(path, backend, libPath string) (int64, error) {
	m, err := Load(path, backend, libPath)
	if err != nil {
		return 0, err
	}
	return s.Models.Add(m), nil
}

// ModelShape is the model's float features per row and outputs per row.
func (s *Service) ModelShape(h int64) (nFeatures, dims int, err error) {
	ref, err := s.Models.Acquire(h)
	if err != nil {
		return 0, 0, err
	}
	defer ref.Release()
	return ref.Model().NumFeatures(), ref.Model().Dimensions(), nil
}

// DescribeModel is the JSON object {"feature_names": [...] or null,
// "metadata": {...}, "trees": n or null}.
func (s *Service) DescribeModel(h int64) ([]byte, error) {
	ref, err := s.Models.Acquire(h)
	if err != nil {
		return nil, err
	}
	defer ref.Release()
	m := ref.Model()
	desc := map[string]any{"feature_names": m.FeatureNames(), "metadata": m.Metadata(), "trees": nil}
	if t, ok := m.(interface{ NumTrees() int }); ok {
		desc["trees"] = t.NumTrees()
	}
	text, err := json.Marshal(desc)
	return text, pferr.AsModel(err)
}

// withModel runs f with the model that handle h serves now, held until f
// returns whatever Swap or Close do meanwhile, and the goroutines the call
// may use.
func (s *Service) withModel(h int64, threads int, f func(m catboost.Model, threads int) error) error {
	ref, err := s.Models.Acquire(h)
	if err != nil {
		return err
	}
	defer ref.Release()
	th := s.enter(threads)
	defer s.leave()
	return f(ref.Model(), th)
}

// Predict scores a row-major float32 matrix with the model of handle h.
func (s *Service) Predict(h int64, x []float32, rows, cols, threads int, out []float64) error {
	return s.withModel(h, threads, func(m catboost.Model, th int) error {
		return Predict(m, x, rows, cols, th, out)
	})
}

// Rank is the package's Rank with the model that handle h serves when the
// call starts, held until it ends. The user handle is consumed whatever the
// outcome.
func (s *Service) Rank(h, user int64, items features.Items, c *features.Candidates, threads int,
	featuresOut []float32, catOut []int64, scores []float64, order []int64, stages *[NumStages]int64) error {
	entered := time.Now()
	p, err := s.users.take(user)
	if err != nil {
		return err
	}
	defer p.Close()
	return s.withModel(h, threads, func(m catboost.Model, th int) error {
		wait := time.Since(entered)
		var tm Timings
		err := Rank(m, p, items, c, th, featuresOut, catOut, scores, order, &tm)
		if stages != nil {
			*stages = Stages(int64(time.Since(entered)), int64(wait), &tm)
		}
		return err
	})
}

// pendingUsers holds the user contexts started by BeginUser until a call
// consumes them.
type pendingUsers struct {
	mu   sync.Mutex
	next int64
	m    map[int64]*features.Pending
}

func (u *pendingUsers) add(p *features.Pending) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.next++
	u.m[u.next] = p
	return u.next
}

// count is the number of contexts waiting for their call.
func (u *pendingUsers) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.m)
}

// take removes and returns the context of handle h.
func (u *pendingUsers) take(h int64) (*features.Pending, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	p, ok := u.m[h]
	if !ok {
		return nil, pferr.Argumentf("unknown or already used user handle %d", h)
	}
	delete(u.m, h)
	return p, nil
}
