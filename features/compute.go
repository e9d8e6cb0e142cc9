package features

import (
	"fmt"
	"math"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// Candidates holds the candidate metadata, parallel to the items. A nil
// slice means the caller did not pass that array: its features are NaN.
type Candidates struct {
	Source []int64   // generator id, 0..7
	Score  []float64 // generator score
	Rank   []int64   // rank within the generator, >= 0
}

// meanStdLog returns the mean and population standard deviation of
// log1p(xs), two-pass and in input order so the Python reference, summing
// in the same order, gets the same rounding.
func meanStdLog(xs []float64) (float64, float64) {
	n := float64(len(xs))
	s := 0.0
	for _, x := range xs {
		s += log1p(x)
	}
	mean := s / n
	ss := 0.0
	for _, x := range xs {
		d := log1p(x) - mean
		ss += d * d
	}
	return mean, math.Sqrt(ss / n)
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

// haversineKm is the great-circle distance in km between two points given
// in degrees; cosLat1 is math.Cos(lat1 in radians), which a request
// computes once for its user.
func haversineKm(lat1, lon1, cosLat1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	dlat := (lat2 - lat1) * rad
	dlon := (lon2 - lon1) * rad
	s1, s2 := math.Sin(dlat/2), math.Sin(dlon/2)
	a := s1*s1 + cosLat1*math.Cos(lat2*rad)*s2*s2
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(a)))
}

// log1p is math.Log1p, faster: for x >= 1e-4, log(1+x) is within ~1e-12
// relative of log1p(x) (1+x rounds by at most half an ulp, which the log
// divides by x), far below float32 resolution, and math.Log is
// assembly-backed while math.Log1p is not. Most arguments here are counts.
func log1p(x float64) float64 {
	if x >= 1e-4 {
		return math.Log(1 + x)
	}
	return math.Log1p(x)
}

// log1pTable holds log1p(i) for small counts, computed by log1p itself, so
// a lookup gives the same bits as the call: most logarithms taken per item
// are of counters.
var log1pTable = func() (t [4096]float64) {
	for i := range t {
		t[i] = log1p(float64(i))
	}
	return
}()

// log1pCount is log1p for a count (NaN when absent).
func log1pCount(x float64) float64 {
	if x >= 0 && x < float64(len(log1pTable)) {
		if i := int(x); float64(i) == x {
			return log1pTable[i]
		}
	}
	return log1p(x)
}

func smoothed(events, exposures, prior, strength float64) float64 {
	return (events + prior*strength) / (exposures + strength)
}

func flag(b bool) float32 {
	if b {
		return 1
	}
	return 0
}

// flagIf is 1/0 for v, or NaN when the key it comes from is absent.
func flagIf(present, v bool) float32 {
	if !present {
		return float32(math.NaN())
	}
	return flag(v)
}

// Shared read-only zero entries for keys the user context does not mention.
var (
	noCat    catEntry
	noSubcat subEntry
	noItem   itemEntry
	noSeller sellerEntry
)

const (
	inAnyQuery    = 1
	inNewestQuery = 2
)

// tokenFilter is a cheap pre-check before a map lookup of a title token:
// most title tokens are in no query, and a bit per (length, middle byte,
// last byte) rules most of them out without hashing the token. Cyrillic
// tokens share their lead bytes, hence the middle and last bytes.
type tokenFilter [16]uint64

func filterBit(tok []byte) uint {
	n := len(tok)
	return (uint(n)*0x9e + uint(tok[n-1])*0x3b + uint(tok[n/2])) & 1023
}

// add records tok (a non-empty token).
func (f *tokenFilter) add(tok []byte) {
	b := filterBit(tok)
	f[b>>6] |= 1 << (b & 63)
}

// mayHave is false only if tok (non-empty) was never added.
func (f *tokenFilter) mayHave(tok []byte) bool {
	b := filterBit(tok)
	return f[b>>6]&(1<<(b&63)) != 0
}

// worker holds one goroutine's scratch space, reused across items.
type worker struct {
	item   Item
	tok    tokenizer
	seen   map[string]struct{}
	staged []stagedItem
	rows   []float32 // Block rows, when the caller gave no output
	times  workerTimes
}

// row computes the feature row of one decoded item at position pos.
func (r *Request) row(w *worker, pos int, c *Candidates, out []float32) {
	out = out[:NumFeatures] // one bounds check here instead of one per store
	it := &w.item
	u := r.User
	nan := math.NaN()
	copy(out[fUserPlatform:fUserCategoriesViewed+1], r.userRow[fUserPlatform:fUserCategoriesViewed+1])

	// item
	out[fItemPrice] = float32(it.Price)
	logPrice := log1p(it.Price)
	out[fItemLogPrice] = float32(logPrice)
	out[fItemIsFree] = flag(it.Price == 0)
	out[fItemLogOldPrice] = float32(log1p(it.OldPrice))
	if it.OldPrice > 0 {
		out[fItemPriceDrop] = float32((it.OldPrice - it.Price) / it.OldPrice)
	} else {
		out[fItemPriceDrop] = float32(nan)
	}
	age := math.Max(r.now-float64(it.CreatedAt), 0) / 3600
	out[fItemAgeHours] = float32(age)
	out[fItemLogAgeHours] = float32(log1p(age))
	out[fItemFreshness] = float32(math.Exp(-age / freshnessHours))
	if it.HasUpdatedAt {
		out[fItemHoursSinceUpdate] = float32(math.Max(r.now-float64(it.UpdatedAt), 0) / 3600)
	} else {
		out[fItemHoursSinceUpdate] = float32(nan)
	}
	out[fItemPhotos] = float32(it.Photos)
	out[fItemHasVideo] = float32(it.HasVideo)
	out[fItemLogDescriptionLen] = float32(log1pCount(it.DescriptionLen))
	// The title was split into w.tok while decoding (which validated it).
	out[fItemTitleChars] = float32(w.tok.runes)
	out[fItemTitleTokens] = float32(w.tok.n())
	out[fItemCategory] = float32(it.Category)
	out[fItemSubcategory] = float32(it.Subcategory)
	out[fItemConditionNew] = float32(it.Condition)
	out[fItemVASLevel] = float32(it.VAS)
	if math.IsNaN(it.VAS) {
		out[fItemIsPromoted] = float32(nan)
	} else {
		out[fItemIsPromoted] = flag(it.VAS > 0)
	}
	out[fItemDelivery] = float32(it.Delivery)
	out[fItemSellerRating] = float32(it.SellerRating)
	out[fItemSellerLogReviews] = float32(log1pCount(it.SellerReviews))
	out[fItemSellerBayesRating] = float32((it.SellerRating*it.SellerReviews + sellerRatingPrior*sellerStrength) / (it.SellerReviews + sellerStrength))
	out[fItemSellerLogActiveItems] = float32(log1pCount(it.SellerActiveItems))
	out[fItemSellerIsCompany] = float32(it.SellerIsCompany)
	out[fItemLogImpressions7d] = float32(log1pCount(it.Impressions7d))
	out[fItemLogViews7d] = float32(log1pCount(it.Views7d))
	out[fItemLogContacts7d] = float32(log1pCount(it.Contacts7d))
	out[fItemLogFavorites7d] = float32(log1pCount(it.Favorites7d))
	out[fItemLogViewsTotal] = float32(log1pCount(it.ViewsTotal))
	out[fItemCTR7d] = float32(smoothed(it.Views7d, it.Impressions7d, ctrPrior, ctrStrength))
	out[fItemContactRate7d] = float32(smoothed(it.Contacts7d, it.Views7d, contactPrior, contactStrength))
	out[fItemFavoriteRate7d] = float32(smoothed(it.Favorites7d, it.Views7d, favoritePrior, favoriteStrength))
	out[fItemViewsPerDay] = float32(it.ViewsTotal / math.Max(age/24, 1))

	// source
	if c != nil && c.Source != nil {
		out[fSrcID] = float32(c.Source[pos])
	} else {
		out[fSrcID] = float32(nan)
	}
	if c != nil && c.Score != nil {
		out[fSrcScore] = float32(c.Score[pos])
	} else {
		out[fSrcScore] = float32(nan)
	}
	if c != nil && c.Rank != nil {
		rank := float64(c.Rank[pos])
		out[fSrcRank] = float32(rank)
		out[fSrcLogRank] = float32(log1pCount(rank))
		out[fSrcReciprocalRank] = float32(1 / (rank + 1))
	} else {
		out[fSrcRank] = float32(nan)
		out[fSrcLogRank] = float32(nan)
		out[fSrcReciprocalRank] = float32(nan)
	}

	// user x item: one lookup per key; a key the user context says nothing
	// about gets the zero entry (zero counts, no interest).
	ce := r.byCat.get(it.Category, &noCat)
	se := r.bySubcat.get(it.Subcategory, &noSubcat)
	ie := r.byItem.get(it.ID, &noItem)
	sl := r.bySeller.get(it.SellerID, &noSeller)
	if u.HasInterests {
		out[fUXInterestCat] = float32(ce.interest)
		if r.interestSum > 0 {
			out[fUXInterestCatShare] = float32(ce.interest / r.interestSum)
		} else {
			out[fUXInterestCatShare] = 0
		}
	} else {
		out[fUXInterestCat] = float32(nan)
		out[fUXInterestCatShare] = float32(nan)
	}
	if u.HasSubInterests {
		out[fUXInterestSubcat] = float32(se.interest)
	} else {
		out[fUXInterestSubcat] = float32(nan)
	}
	// NaN if any coordinate is absent; the trigonometry is skipped then, as
	// it is for every item of a user without a location.
	if math.IsNaN(u.Lat + u.Lon + it.Lat + it.Lon) {
		out[fUXDistanceKm] = float32(nan)
		out[fUXLogDistanceKm] = float32(nan)
	} else {
		dist := haversineKm(u.Lat, u.Lon, r.cosLat, it.Lat, it.Lon)
		out[fUXDistanceKm] = float32(dist)
		out[fUXLogDistanceKm] = float32(log1p(dist))
	}
	if u.HasRegion {
		out[fUXSameRegion] = flag(u.Region == it.Region)
	} else {
		out[fUXSameRegion] = float32(nan)
	}
	if u.HasCity && it.HasCity {
		out[fUXSameCity] = flag(u.City == it.City)
	} else {
		out[fUXSameCity] = float32(nan)
	}
	if u.HasViews {
		if ce.views > 0 {
			out[fUXCatViews] = float32(ce.views)
			out[fUXCatViewShare] = float32(ce.views / r.nViews)
			out[fUXHoursSinceCatView] = float32(math.Max(r.now-float64(ce.lastTS), 0) / 3600)
			if ce.median > 0 {
				out[fUXPriceRatioCatMedian] = float32(it.Price / ce.median)
			} else {
				out[fUXPriceRatioCatMedian] = float32(nan)
			}
			out[fUXLogPriceZCat] = float32((logPrice - ce.meanLog) / (ce.stdLog + zScoreEpsilon))
		} else {
			out[fUXCatViews] = 0
			out[fUXCatViewShare] = 0
			out[fUXHoursSinceCatView] = float32(nan)
			out[fUXPriceRatioCatMedian] = float32(nan)
			out[fUXLogPriceZCat] = float32(nan)
		}
		out[fUXSubcatViews] = float32(se.views)
		out[fUXViewedItem] = flag(ie.views > 0)
		out[fUXItemViews] = float32(ie.views)
		out[fUXSellerViews] = float32(sl.views)
	} else {
		for _, f := range [...]int{fUXCatViews, fUXCatViewShare, fUXHoursSinceCatView, fUXPriceRatioCatMedian,
			fUXLogPriceZCat, fUXSubcatViews, fUXViewedItem, fUXItemViews, fUXSellerViews} {
			out[f] = float32(nan)
		}
	}
	if r.medianPrice > 0 {
		out[fUXPriceRatioUserMedian] = float32(it.Price / r.medianPrice)
	} else {
		out[fUXPriceRatioUserMedian] = float32(nan)
	}
	out[fUXContactedItem] = flagIf(u.HasContacts, ie.contacted)
	out[fUXContactedSeller] = flagIf(u.HasContacts, sl.contacted)
	out[fUXFavorited] = flagIf(u.HasFavorites, ie.favorited)
	if u.HasImpressions {
		out[fUXShownCount] = float32(ie.shown)
	} else {
		out[fUXShownCount] = float32(nan)
	}
	if r.queryTokens != nil {
		hits, overlap, last := w.queryMatches(r)
		out[fUXQueryTokenHits] = float32(hits)
		out[fUXQueryOverlap] = float32(overlap)
		out[fUXLastQueryMatch] = flag(last)
	} else {
		out[fUXQueryTokenHits] = float32(nan)
		out[fUXQueryOverlap] = float32(nan)
		out[fUXLastQueryMatch] = float32(nan)
	}
}

// queryMatches compares the title's distinct tokens (already split into
// w.tok) with the user's queries: how many are in any query, their share of
// the distinct tokens (0 for a title without tokens), and whether any is in
// the newest query.
func (w *worker) queryMatches(r *Request) (hits int, overlap float64, last bool) {
	n := w.tok.n()
	// Most titles share no token with any query: then hits is 0 and the
	// distinct count, which only divides hits, need not be taken.
	anyMaybe := false
	for i := 0; i < n && !anyMaybe; i++ {
		anyMaybe = r.queryFilter.mayHave(w.tok.token(i))
	}
	if !anyMaybe {
		return 0, 0, false
	}
	distinct := 0
	useMap := n > 32 // short titles: a quadratic scan beats hashing
	if useMap {
		if w.seen == nil {
			w.seen = make(map[string]struct{})
		}
		clear(w.seen)
	}
	for i := 0; i < n; i++ {
		tok := w.tok.token(i)
		dup := false
		if useMap {
			if _, dup = w.seen[string(tok)]; !dup {
				w.seen[string(tok)] = struct{}{}
			}
		} else {
			for j := 0; j < i && !dup; j++ {
				dup = string(w.tok.token(j)) == string(tok)
			}
		}
		if dup {
			continue
		}
		distinct++
		if !r.queryFilter.mayHave(tok) {
			continue
		}
		f := r.queryTokens[string(tok)]
		if f&inAnyQuery != 0 {
			hits++
		}
		if f&inNewestQuery != 0 {
			last = true
		}
	}
	if distinct > 0 {
		overlap = float64(hits) / float64(distinct)
	}
	return
}

// Items is a request's item records: record i is Blob[Offsets[i]:Offsets[i+1]].
// Offsets has one entry more than there are items. When Decoded is not nil
// the records were decoded before (an item cache's) and Blob and Offsets
// are unused.
type Items struct {
	Blob    []byte
	Offsets []int64
	Decoded []*Decoded
}

// Len is the number of items.
func (it Items) Len() int {
	if it.Decoded != nil {
		return len(it.Decoded)
	}
	return max(len(it.Offsets)-1, 0)
}

// At returns record i.
func (it Items) At(i int) []byte { return it.Blob[it.Offsets[i]:it.Offsets[i+1]] }

// Concat packs separate records into an Items (it copies them).
func Concat(records [][]byte) Items {
	n := 0
	for _, r := range records {
		n += len(r)
	}
	out := Items{Blob: make([]byte, 0, n), Offsets: make([]int64, 1, len(records)+1)}
	for _, r := range records {
		out.Blob = append(out.Blob, r...)
		out.Offsets = append(out.Offsets, int64(len(out.Blob)))
	}
	return out
}

// Validate checks the shape of items and candidates against each other.
func (it Items) Validate(c *Candidates) error {
	if it.Decoded != nil {
		for i, d := range it.Decoded {
			if d == nil {
				return fmt.Errorf("decoded record %d is missing", i)
			}
		}
		return c.validate(it.Len())
	}
	if len(it.Offsets) == 0 {
		return fmt.Errorf("offsets must have n_items + 1 entries, got 0")
	}
	prev := int64(0)
	if it.Offsets[0] != 0 {
		return fmt.Errorf("offsets[0] must be 0, got %d", it.Offsets[0])
	}
	for i, o := range it.Offsets {
		if o < prev || o > int64(len(it.Blob)) {
			return fmt.Errorf("offsets[%d] = %d is out of order or beyond the %d-byte buffer", i, o, len(it.Blob))
		}
		prev = o
	}
	return c.validate(it.Len())
}

// validate checks the candidate arrays of n items.
func (c *Candidates) validate(n int) error {
	if c != nil {
		// A fixed order: with several wrong arrays the error names the same
		// one every time, and nothing is allocated per call.
		for _, a := range [...]struct {
			name string
			len  int
		}{{"source", len(c.Source)}, {"source_score", len(c.Score)}, {"source_rank", len(c.Rank)}} {
			if a.len != 0 && a.len != n {
				return &InputError{Position: UserPosition, Key: "candidates." + a.name, Msg: fmt.Sprintf("has %d entries for %d items", a.len, n)}
			}
		}
		for i, s := range c.Source {
			if s < 0 || s > 7 {
				return &InputError{Position: i, Key: "candidates.source", Msg: fmt.Sprintf("must be in 0..7, got %d", s)}
			}
		}
		for i, s := range c.Rank {
			if s < 0 {
				return &InputError{Position: i, Key: "candidates.source_rank", Msg: fmt.Sprintf("must be >= 0, got %d", s)}
			}
		}
	}
	return nil
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
	if err := checkOutput(items, out, nil); err != nil {
		return err
	}
	return compute(func() (*Request, error) { return r, nil }, items, c, threads, out, nil, nil)
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
	return ComputeBlocksFrom(p, items, c, threads, out, sink)
}

func compute(prepare func() (*Request, error), items Items, c *Candidates, threads int, out []float32, sink BlockSink,
	tm *Timings) error {
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
	s := &computeState{items: items, c: c, out: out, sink: sink, n: n, done: make(chan struct{}), tm: tm,
		errs: make([]*InputError, workers), sinkErrs: make([]error, workers)}
	var wg sync.WaitGroup
	for g := 1; g < workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			defer s.recoverPanic() // a panic here would kill the process
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
		s.panicked.CompareAndSwap(nil, &PanicError{Value: p, Stack: debug.Stack()})
	}
}

// PanicError is a panic inside the engine, returned as an error so that
// the caller can report it instead of the process dying. It is a bug.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v\n%s", e.Value, e.Stack) }

// computeState is what the workers of one Compute call share.
type computeState struct {
	items Items
	c     *Candidates
	out   []float32 // nil: rows go to each worker's scratch
	sink  BlockSink // nil: none
	n     int
	tm    *Timings // nil: not timed

	req      atomic.Pointer[Request] // set once the user context is prepared
	done     chan struct{}           // closed when preparation ended, either way
	next     atomic.Int64            // first item of the next unclaimed block
	failed   atomic.Bool             // an error was found: stop claiming
	errs     []*InputError           // per worker, its lowest-position error
	sinkErrs []error                 // per worker, its sink's error
	panicked atomic.Pointer[PanicError]
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
	var t0 time.Time
	if s.tm != nil {
		t0 = time.Now()
		defer func() { w.times.sink += int64(time.Since(t0)) }()
	}
	if err := s.sink(start, end, rows); err != nil {
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
		clear(w.staged)
		w.staged = w.staged[:0]
		workers.put(w)
	}()
	r := s.req.Load()
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
				// Decoded already: the fields and the title's tokens are
				// copied into the worker's own scratch (the record is shared).
				w.item = d[i].Item
				w.tok.copyFrom(&d[i].tok)
			} else if err := decodeItem(s.items.At(i), &w.item, &w.tok); err != nil {
				err.Position = i
				if s.errs[g] == nil {
					s.errs[g] = err
				}
				s.failed.Store(true)
				return
			}
			if sample {
				now := time.Now()
				w.times.sampledDecode += int64(now.Sub(ti))
				ti = now
			}
			if r == nil {
				w.staged = append(w.staged, stagedItem{pos: i, item: w.item})
				continue
			}
			r.row(w, i, s.c, s.rowOf(w, i))
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
			r.row(w, st.pos, s.c, s.rowOf(w, st.pos))
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
