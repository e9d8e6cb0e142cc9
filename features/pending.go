package features

import (
	"github.com/pyfeat/pyfeat/internal/faults"
	"github.com/pyfeat/pyfeat/internal/pferr"
)

// Pending is a user context handed over before the items. A caller that
// still has work to do before it can hand over the items (the Python
// binding joins the records and takes their lengths, a quarter of a
// millisecond for 3000 items) starts it with Begin, and an idle core can
// prepare it meanwhile; the Pending then goes to ComputeBlocksFrom. Close
// it exactly once, whether or not it was used. A Pending is used by one
// goroutine at a time.
type Pending struct {
	r     *Request
	blob  []byte // the user context
	err   error  // set before done is closed
	done  chan struct{}
	async bool // being prepared on its own goroutine
	ran   bool // the preparation ran or is running
}

// Begin copies userBlob (the caller's buffer may go away after the call
// returns). With async, the preparation starts now on a goroutine of its
// own; otherwise the call that uses the Pending prepares it.
func Begin(userBlob []byte, async bool) *Pending {
	r := requests.get()
	r.blob = append(r.blob[:0], userBlob...)
	return start(r, r.blob, async)
}

// start is Begin without the copy: blob must stay valid until p is closed.
func start(r *Request, blob []byte, async bool) *Pending {
	p := &Pending{r: r, blob: blob, done: make(chan struct{}), async: async}
	if async {
		p.ran = true
		go p.run()
	}
	return p
}

func (p *Pending) run() {
	defer close(p.done)
	defer func() {
		if x := recover(); x != nil {
			p.r = nil // its state is unknown: not reused
			p.err = pferr.Recovered(x)
		}
	}()
	faults.Point("user-prepare")
	if err := p.r.init(p.blob); err != nil {
		p.err = err
	}
}

// prepare returns the prepared request, or the user context's error,
// preparing it on the calling goroutine unless it was started with async.
func (p *Pending) prepare() (*Request, error) {
	if !p.ran {
		p.ran = true
		p.run()
	}
	<-p.done
	if p.err != nil {
		return nil, p.err
	}
	return p.r, nil
}

// Close waits for a preparation that is running and gives the memory back
// for reuse.
func (p *Pending) Close() {
	if p.ran {
		<-p.done
	}
	if p.r != nil {
		p.r.release()
		p.r = nil
	}
}

// ComputeBlocksFrom is ComputeBlocks for a user context started with Begin.
// ids, if not nil, receives each item's id (len(ids) == items.Len()): the
// caller need not decode the records again to know them. The caller still
// closes p.
func ComputeBlocksFrom(p *Pending, items Items, c *Candidates, threads int, out []float32, ids []int64, sink BlockSink) error {
	return ComputeBlocksTimed(p, items, c, threads, out, ids, sink, nil)
}

// ComputeBlocksTimed is ComputeBlocksFrom that fills tm (when not nil)
// with where the time went.
func ComputeBlocksTimed(p *Pending, items Items, c *Candidates, threads int, out []float32, ids []int64,
	sink BlockSink, tm *Timings) error {
	if err := checkOutput(items, out, sink != nil); err != nil {
		return err
	}
	if ids != nil && len(ids) != items.Len() {
		return pferr.Argumentf("ids has %d entries for %d items", len(ids), items.Len())
	}
	var s CatBlockSink
	if sink != nil {
		s = func(start, end int, rows []float32, _ []int64) error { return sink(start, end, rows) }
	}
	return compute(p.prepare, items, c, threads, out, ids, nil, false, s, tm)
}

// ComputeAllFrom is ComputeBlocksFrom that computes the categorical rows
// too (ids as there): into catOut (n x NumCatFeatures) if it is not nil, and to the sink.
// With neither out nor catOut, a sink is needed.
func ComputeAllFrom(p *Pending, items Items, c *Candidates, threads int, out []float32, ids []int64, catOut []int64,
	sink CatBlockSink) error {
	return ComputeAllTimed(p, items, c, threads, out, ids, catOut, sink, nil)
}

// ComputeAllTimed is ComputeAllFrom that fills tm (when not nil) with
// where the time went.
func ComputeAllTimed(p *Pending, items Items, c *Candidates, threads int, out []float32, ids []int64, catOut []int64,
	sink CatBlockSink, tm *Timings) error {
	if err := checkOutput(items, out, sink != nil || catOut != nil); err != nil {
		return err
	}
	if ids != nil && len(ids) != items.Len() {
		return pferr.Argumentf("ids has %d entries for %d items", len(ids), items.Len())
	}
	if catOut != nil && len(catOut) != items.Len()*NumCatFeatures {
		return pferr.Argumentf("categorical output has %d values, want %d x %d", len(catOut), items.Len(), NumCatFeatures)
	}
	return compute(p.prepare, items, c, threads, out, ids, catOut, true, sink, tm)
}

func checkOutput(items Items, out []float32, other bool) error {
	if out != nil && len(out) != items.Len()*NumFeatures {
		return pferr.Argumentf("output has %d floats, want %d x %d", len(out), items.Len(), NumFeatures)
	}
	if out == nil && !other && items.Len() > 0 {
		return pferr.Argumentf("an output or a sink is needed")
	}
	return nil
}
