package features

// The block scheduler: Compute and ComputeBlocks split a request's items
// into blocks of Block items that the workers of one call claim in order,
// decode (item.go), turn into rows (formulas.go) and hand to a sink.

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pyfeat/pyfeat/internal/faults"
	"github.com/pyfeat/pyfeat/internal/pferr"
)

// worker holds one goroutine's scratch space, reused across items.
type worker struct {
	item   Item
	tok    tokenizer
	seen   map[string]struct{}
	staged []stagedItem
	rows   []float32 // Block rows, when the caller gave no output
	cats   []int64   // Block categorical rows, likewise
	times  workerTimes
	// The item whose row is computed next and its title's tokens: item and
	// tok, or a cached record's own (read only: it is shared).
	it *Item
	tk *tokenizer
}

// Threads resolves a thread count: <= 0 means all cores Go may use.
func Threads(threads int) int {
	if threads <= 0 {
		return runtime.GOMAXPROCS(0)
	}
	return threads
}

// Compute writes the feature matrix of one request into out, row-major,
// len(out) == items.Len() * NumFeatures (the caller allocates it). Items are
// processed in parallel on up to threads goroutines (<= 0: all cores). On
// an input error the returned *InputError is the one of the lowest item
// position, whatever the scheduling, and out is partially written.
func (r *Request) Compute(items Items, c *Candidates, threads int, out []float32) error {
	if err := checkOutput(items, out, false); err != nil {
		return err
	}
	return compute(func() (*Request, error) { return r, nil }, items, c, threads, out, nil, nil, false, nil, nil)
}

// Compute is NewRequest followed by Request.Compute, except that the user
// context is prepared while the other workers already decode items: on a
// machine with few cores the preparation (a few hundred microseconds for a
// long view history) would otherwise be serial time. A user context error
// takes precedence over item errors.
func Compute(userBlob []byte, items Items, c *Candidates, threads int, out []float32) error {
	return ComputeBlocks(userBlob, items, c, threads, out, nil)
}

// BlockSink receives the feature rows of items [start, end) of a request as
// soon as they are all computed: rows is row-major, (end-start) x
// NumFeatures. It is called from several goroutines at once, each block
// exactly once; rows is valid only during the call. An error stops the
// computation and is returned by ComputeBlocks (after any input error).
type BlockSink func(start, end int, rows []float32) error

// CatBlockSink is BlockSink with the block's categorical rows too: cats is
// row-major, (end-start) x NumCatFeatures.
type CatBlockSink func(start, end int, rows []float32, cats []int64) error

// Timings says where a call's time went. CPU figures are summed over the
// call's goroutines; Decode and Features are split by timing one item in
// timedEvery of each block (timing every item would cost more than a
// percent of the call).
type Timings struct {
	Prepare  int64 // ns the lead goroutine spent preparing the user context, or waiting for it
	Decode   int64 // ns of CPU decoding item records (estimated)
	Features int64 // ns of CPU computing feature rows (estimated)
	Sink     int64 // ns of CPU in the block sink (Rank: scoring)
	Wall     int64 // ns from the start of the computation to its end
}

const timedEvery = 16

// workerTimes accumulates one goroutine's Timings during a call.
type workerTimes struct {
	blocks, sink, flush, sampledDecode, sampledRow int64
}

func (t *Timings) add(w *workerTimes) {
	items := w.blocks
	dec := int64(0)
	if s := w.sampledDecode + w.sampledRow; s > 0 {
		dec = int64(float64(items) * float64(w.sampledDecode) / float64(s))
	}
	atomic.AddInt64(&t.Decode, dec)
	atomic.AddInt64(&t.Features, items-dec+w.flush)
	atomic.AddInt64(&t.Sink, w.sink)
}

// Block is the number of items per sink call (the last block may be
// shorter); it is also the unit of work a goroutine claims.
const Block = 128

// ComputeBlocks is Compute that hands each block of Block items to sink as
// soon as its rows are ready, so a caller can score them while they are
// hot in cache. out may be nil: the rows then live in per-goroutine scratch
// space and the request's feature matrix is never held in memory at once.
func ComputeBlocks(userBlob []byte, items Items, c *Candidates, threads int, out []float32, sink BlockSink) error {
	p := start(requests.get(), userBlob, false) // prepared by the calling goroutine, in compute
	defer p.Close()
	return ComputeBlocksFrom(p, items, c, threads, out, nil, sink)
}

// compute runs a computation: ids, if not nil, receives the item ids; the
// categorical rows are computed too when withCat, into catOut if it is not
// nil; tm, if not nil, receives the timings.
func compute(prepare func() (*Request, error), items Items, c *Candidates, threads int, out []float32, ids []int64,
	catOut []int64, withCat bool, sink CatBlockSink, tm *Timings) error {
	if tm != nil {
		t0 := time.Now()
		defer func() { tm.Wall = int64(time.Since(t0)) }()
	}
	n := items.Len()
	if err := items.Validate(c); err != nil {
		return err
	}
	if n == 0 {
		_, err := prepare()
		return err
	}
	workers := min(Threads(threads), (n+Block-1)/Block)
	s := &computeState{items: items, c: c, out: out, ids: ids, catOut: catOut, withCat: withCat, sink: sink, n: n,
		done: make(chan struct{}), tm: tm,
		errs: make([]*InputError, workers), sinkErrs: make([]error, workers)}
	var wg sync.WaitGroup
	for g := 1; g < workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			defer s.recoverPanic() // a panic here would kill the process
			faults.Point("compute-worker")
			s.work(g)
		}(g)
	}
	err := s.lead(prepare)
	wg.Wait()
	if p := s.panicked.Load(); p != nil {
		return p
	}
	if err != nil {
		return err
	}
	var first *InputError
	for _, e := range s.errs {
		if e != nil && (first == nil || e.Position < first.Position) {
			first = e
		}
	}
	if first != nil {
		return first
	}
	for _, e := range s.sinkErrs {
		if e != nil {
			return e
		}
	}
	return nil
}

// lead is the calling goroutine's part: prepare the request, then work as
// worker 0. The other workers wait on done, so it is closed whatever
// happens, a panic included.
func (s *computeState) lead(prepare func() (*Request, error)) (err error) {
	defer s.recoverPanic()
	closed := false
	defer func() {
		if !closed {
			s.failed.Store(true)
			close(s.done)
		}
	}()
	var t0 time.Time
	if s.tm != nil {
		t0 = time.Now()
	}
	r, err := prepare()
	if s.tm != nil {
		s.tm.Prepare = int64(time.Since(t0))
	}
	if err != nil {
		s.failed.Store(true)
	} else {
		s.req.Store(r)
	}
	closed = true
	close(s.done)
	if err == nil {
		s.work(0)
	}
	return err
}

// recoverPanic turns a panic of a worker into the call's error: the
// boundary's recover sees only the calling goroutine.
func (s *computeState) recoverPanic() {
	if p := recover(); p != nil {
		s.failed.Store(true)
		s.panicked.CompareAndSwap(nil, pferr.Recovered(p))
	}
}

// computeState is what the workers of one Compute call share.
type computeState struct {
	items   Items
	c       *Candidates
	out     []float32    // nil: rows go to each worker's scratch
	ids     []int64      // nil: the caller does not want the item ids
	catOut  []int64      // nil: categorical rows go to each worker's scratch
	withCat bool         // compute the categorical rows
	sink    CatBlockSink // nil: none
	n       int
	tm      *Timings // nil: not timed

	req      atomic.Pointer[Request] // set once the user context is prepared
	done     chan struct{}           // closed when preparation ended, either way
	next     atomic.Int64            // first item of the next unclaimed block
	failed   atomic.Bool             // an error was found: stop claiming
	errs     []*InputError           // per worker, its lowest-position error
	sinkErrs []error                 // per worker, its sink's error
	panicked atomic.Pointer[pferr.Panic]
}

// maxKeptStaged bounds a worker's staging area (items, ~250 bytes each): a
// typical preparation lets a worker stage a few hundred items; for a user
// with thousands of views, the worker waits for the preparation once it has
// staged this many, rather than holding thousands.
const maxKeptStaged = 1024

// stagedItem is an item decoded before the request was prepared; its row is
// computed once it is (the title is split again then, which costs less than
// keeping every title's tokens).
type stagedItem struct {
	pos  int
	item Item
}

// rowOf is where the row of item pos goes.
func (s *computeState) rowOf(w *worker, pos int) []float32 {
	if s.out != nil {
		return s.out[pos*NumFeatures : (pos+1)*NumFeatures]
	}
	if w.rows == nil {
		w.rows = make([]float32, Block*NumFeatures)
	}
	k := pos % Block
	return w.rows[k*NumFeatures : (k+1)*NumFeatures]
}

// catRowOf is where the categorical row of item pos goes.
func (s *computeState) catRowOf(w *worker, pos int) []int64 {
	if s.catOut != nil {
		return s.catOut[pos*NumCatFeatures : (pos+1)*NumCatFeatures]
	}
	if w.cats == nil {
		w.cats = make([]int64, Block*NumCatFeatures)
	}
	k := pos % Block
	return w.cats[k*NumCatFeatures : (k+1)*NumCatFeatures]
}

// rows computes both rows of the item decoded into w.
func (s *computeState) rows(w *worker, r *Request, pos int) {
	r.row(w, pos, s.c, s.rowOf(w, pos))
	if s.withCat {
		r.catRow(w, pos, s.c, s.catRowOf(w, pos))
	}
}

// emit hands the complete block starting at start to the sink.
func (s *computeState) emit(w *worker, g, start int) {
	if s.sink == nil || s.failed.Load() {
		return
	}
	end := min(start+Block, s.n)
	var rows []float32
	if s.out != nil {
		rows = s.out[start*NumFeatures : end*NumFeatures]
	} else {
		rows = w.rows[:(end-start)*NumFeatures]
	}
	var cats []int64
	if s.withCat {
		if s.catOut != nil {
			cats = s.catOut[start*NumCatFeatures : end*NumCatFeatures]
		} else {
			cats = w.cats[:(end-start)*NumCatFeatures]
		}
	}
	var t0 time.Time
	if s.tm != nil {
		t0 = time.Now()
		defer func() { w.times.sink += int64(time.Since(t0)) }()
	}
	if err := s.sink(start, end, rows, cats); err != nil {
		if s.sinkErrs[g] == nil {
			s.sinkErrs[g] = err
		}
		s.failed.Store(true)
	}
}

func (s *computeState) work(g int) {
	w := workers.get()
	w.times = workerTimes{}
	timed := s.tm != nil
	defer func() {
		if timed {
			s.tm.add(&w.times)
		}
		// The worker outlives the call: drop the slices of the caller's buffer.
		w.item.Title = nil
		w.it, w.tk = nil, nil
		clear(w.staged)
		w.staged = w.staged[:0]
		workers.put(w)
	}()
	r := s.req.Load()
	if r == nil && s.items.Decoded != nil {
		// Records decoded already leave nothing to do before the user
		// context is ready: staging them would only split their titles again.
		<-s.done
		if r = s.req.Load(); r == nil {
			return // the preparation failed
		}
	}
	// Blocks are claimed in increasing order and a worker finishes the block
	// it holds, so once an input error is seen every lower position has been
	// checked: the lowest error found is the first overall.
	for !s.failed.Load() {
		start := int(s.next.Add(Block)) - Block
		if start >= s.n {
			break
		}
		var tb, ti time.Time
		if timed {
			tb = time.Now()
		}
		sinkBefore, flushBefore := w.times.sink, w.times.flush
		for i := start; i < min(start+Block, s.n); i++ {
			if r == nil {
				if len(w.staged) >= maxKeptStaged {
					<-s.done // bound the staging area: wait for the preparation
				}
				if r = s.req.Load(); r != nil {
					s.flush(w, g, r, start)
				} else if len(w.staged) >= maxKeptStaged {
					return // the preparation failed
				}
			}
			sample := timed && i%timedEvery == 0
			if sample {
				ti = time.Now()
			}
			if d := s.items.Decoded; d != nil {
				// Decoded already (a cache's record, shared): read in place.
				w.it, w.tk = &d[i].Item, &d[i].tok
			} else if err := decodeItem(s.items.At(i), &w.item, &w.tok); err != nil {
				err.Position = i
				if s.errs[g] == nil {
					s.errs[g] = err
				}
				s.failed.Store(true)
				return
			} else {
				w.it, w.tk = &w.item, &w.tok
			}
			if sample {
				now := time.Now()
				w.times.sampledDecode += int64(now.Sub(ti))
				ti = now
			}
			if s.ids != nil {
				s.ids[i] = w.it.ID
			}
			if r == nil {
				w.staged = append(w.staged, stagedItem{pos: i, item: *w.it})
				continue
			}
			s.rows(w, r, i)
			if sample {
				w.times.sampledRow += int64(time.Since(ti))
			}
		}
		if timed {
			// A flush inside the loop (with its sink calls) is counted apart.
			w.times.blocks += int64(time.Since(tb)) - (w.times.sink - sinkBefore) - (w.times.flush - flushBefore)
		}
		if r != nil {
			s.emit(w, g, start)
		}
	}
	if len(w.staged) > 0 {
		<-s.done
		if r = s.req.Load(); r != nil {
			s.flush(w, g, r, -1)
		}
	}
}

// flush computes the rows of the items w decoded before r was ready, block
// by block; every block but current (the one w is decoding, if any) is
// complete then and goes to the sink.
func (s *computeState) flush(w *worker, g int, r *Request, current int) {
	if s.tm != nil {
		t0, sink0 := time.Now(), w.times.sink
		defer func() { w.times.flush += int64(time.Since(t0)) - (w.times.sink - sink0) }()
	}
	for k := 0; k < len(w.staged); {
		start := w.staged[k].pos / Block * Block
		for ; k < len(w.staged) && w.staged[k].pos < start+Block; k++ {
			st := &w.staged[k]
			w.item = st.item
			w.tok.split(w.item.Title)
			w.it, w.tk = &w.item, &w.tok
			s.rows(w, r, st.pos)
		}
		if start != current {
			s.emit(w, g, start)
		}
	}
	clear(w.staged)
	w.staged = w.staged[:0]
}

// workers keeps idle workers' scratch space between calls: a few calls at
// once, each with a goroutine per core.
var workers = freeList[worker]{max: 4 * runtime.GOMAXPROCS(0)}
