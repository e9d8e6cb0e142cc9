package gofeatures

import (
	"fmt"
	"math"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
)

// Candidates holds the candidate metadata, parallel to the items. A nil
// slice means the caller did not pass that array: its features are NaN.
type Candidates struct {
	Source []int64   // generator id, 0..7
	Score  []float64 // generator score
	Rank   []int64   // rank within the generator, >= 0
}

// catStats summarises the user's views of one category.
type catStats struct {
	views   float64
	lastTS  int64
	median  float64 // of view prices, currency units
	meanLog float64 // of log1p(view price)
	stdLog  float64 // population std of log1p(view price)
	prices  []float64
}

// Request is the per-request state, built once from the user context and
// shared read-only by the workers that compute item rows.
type Request struct {
	User *User
	now  float64

	userRow [NumFeatures]float32 // the user-group columns; other entries unused

	interests      map[int64]float64
	interestSum    float64
	subInterests   map[int64]float64
	itemViews      map[int64]float64
	cats           map[int64]*catStats
	subcatViews    map[int64]float64
	sellerViews    map[int64]float64
	contactItems   map[int64]struct{}
	contactSellers map[int64]struct{}
	favorites      map[int64]struct{}
	queryTokens    map[string]uint8 // token -> inAnyQuery | inNewestQuery
	medianPrice    float64
	nViews         float64
}

// NewRequest decodes the user context and builds the request's lookups.
func NewRequest(userBlob []byte) (*Request, error) {
	u, err := DecodeUser(userBlob)
	if err != nil {
		return nil, err
	}
	return prepare(u), nil
}

func prepare(u *User) *Request {
	nan := math.NaN()
	r := &Request{User: u, now: float64(u.Now), medianPrice: nan}
	row := &r.userRow

	row[fUserPlatform] = float32(u.Platform)
	if u.HasTZ {
		local := u.Now + 60*u.TZOffsetMin
		row[fUserLocalHour] = float32(floorMod(local, 86400) / 3600)
		row[fUserLocalWeekday] = float32(floorMod(floorDiv(local, 86400)+3, 7))
	} else {
		row[fUserLocalHour] = float32(nan)
		row[fUserLocalWeekday] = float32(nan)
	}

	if u.HasInterests {
		r.interests = make(map[int64]float64, len(u.Interests))
		n := 0
		for _, w := range u.Interests {
			r.interests[w.ID] = w.Weight
			r.interestSum += w.Weight
			if w.Weight > 0 {
				n++
			}
		}
		row[fUserInterests] = float32(n)
		h := 0.0
		if r.interestSum > 0 {
			for _, w := range u.Interests {
				// p can underflow to 0 for a subnormal weight: p ln p -> 0.
				if p := w.Weight / r.interestSum; p > 0 {
					h -= p * math.Log(p)
				}
			}
		}
		row[fUserInterestEntropy] = float32(h)
	} else {
		row[fUserInterests] = float32(nan)
		row[fUserInterestEntropy] = float32(nan)
	}
	if u.HasSubInterests {
		r.subInterests = make(map[int64]float64, len(u.SubInterests))
		for _, w := range u.SubInterests {
			r.subInterests[w.ID] = w.Weight
		}
	}

	if u.HasViews {
		r.nViews = float64(len(u.Views))
		r.itemViews = make(map[int64]float64, len(u.Views))
		r.cats = make(map[int64]*catStats)
		r.subcatViews = make(map[int64]float64)
		r.sellerViews = make(map[int64]float64)
		views24h := 0
		prices := make([]float64, len(u.Views))
		var lastTS int64 = math.MinInt64
		for i, v := range u.Views {
			r.itemViews[v.ItemID]++
			r.subcatViews[v.Subcategory]++
			r.sellerViews[v.SellerID]++
			cs := r.cats[v.Category]
			if cs == nil {
				cs = &catStats{lastTS: math.MinInt64}
				r.cats[v.Category] = cs
			}
			cs.views++
			cs.lastTS = max(cs.lastTS, v.TS)
			cs.prices = append(cs.prices, v.Price)
			age := r.now - float64(v.TS)
			if age >= 0 && age <= 86400 {
				views24h++
			}
			prices[i] = v.Price
			lastTS = max(lastTS, v.TS)
		}
		for _, cs := range r.cats {
			cs.median = median(cs.prices)
			cs.meanLog, cs.stdLog = meanStdLog(cs.prices)
			cs.prices = nil
		}
		row[fUserLogViews] = float32(log1p(r.nViews))
		row[fUserViews24h] = float32(views24h)
		row[fUserCategoriesViewed] = float32(len(r.cats))
		if len(u.Views) > 0 {
			r.medianPrice = median(prices)
			row[fUserHoursSinceLastView] = float32(math.Max(r.now-float64(lastTS), 0) / 3600)
		} else {
			row[fUserHoursSinceLastView] = float32(nan)
		}
	} else {
		for _, f := range []int{fUserLogViews, fUserViews24h, fUserCategoriesViewed, fUserHoursSinceLastView} {
			row[f] = float32(nan)
		}
	}
	row[fUserMedianViewPrice] = float32(r.medianPrice)
	row[fUserLogMedianViewPrice] = float32(log1p(r.medianPrice))

	if u.HasContacts {
		r.contactItems = make(map[int64]struct{}, len(u.Contacts))
		r.contactSellers = make(map[int64]struct{}, len(u.Contacts))
		for _, c := range u.Contacts {
			r.contactItems[c.ItemID] = struct{}{}
			r.contactSellers[c.SellerID] = struct{}{}
		}
		row[fUserLogContacts] = float32(log1p(float64(len(u.Contacts))))
	} else {
		row[fUserLogContacts] = float32(nan)
	}
	if u.HasFavorites {
		r.favorites = make(map[int64]struct{}, len(u.Favorites))
		for _, id := range u.Favorites {
			r.favorites[id] = struct{}{}
		}
		row[fUserFavorites] = float32(len(u.Favorites))
	} else {
		row[fUserFavorites] = float32(nan)
	}
	if u.HasQueries {
		r.queryTokens = make(map[string]uint8)
		var t tokenizer
		for qi, q := range u.Queries {
			t.split(q)
			for i := 0; i < t.n(); i++ {
				tok := string(t.token(i))
				r.queryTokens[tok] |= inAnyQuery
				if qi == 0 {
					r.queryTokens[tok] |= inNewestQuery
				}
			}
		}
		row[fUserQueries] = float32(len(u.Queries))
	} else {
		row[fUserQueries] = float32(nan)
	}
	return r
}

// median of xs (sorts a copy); NaN for an empty slice.
func median(xs []float64) float64 {
	n := len(xs)
	if n == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
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

func haversineKm(lat1, lon1, lat2, lon2 float64) float64 {
	const rad = math.Pi / 180
	p1, p2 := lat1*rad, lat2*rad
	dlat := (lat2 - lat1) * rad
	dlon := (lon2 - lon1) * rad
	s1, s2 := math.Sin(dlat/2), math.Sin(dlon/2)
	a := s1*s1 + math.Cos(p1)*math.Cos(p2)*s2*s2
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

func smoothed(events, exposures, prior, strength float64) float64 {
	return (events + prior*strength) / (exposures + strength)
}

func flag(b bool) float32 {
	if b {
		return 1
	}
	return 0
}

func lookupFlag[V any](m map[int64]V, k int64) float32 {
	if m == nil {
		return float32(math.NaN())
	}
	_, ok := m[k]
	return flag(ok)
}

const (
	inAnyQuery    = 1
	inNewestQuery = 2
)

// worker holds one goroutine's scratch space, reused across items.
type worker struct {
	item Item
	tok  tokenizer
	seen map[string]struct{}
}

// row computes the feature row of one decoded item at position pos.
func (r *Request) row(w *worker, pos int, c *Candidates, out []float32) {
	it := &w.item
	u := r.User
	nan := math.NaN()
	copy(out[fUserPlatform:fUserCategoriesViewed+1], r.userRow[fUserPlatform:fUserCategoriesViewed+1])

	// item
	out[fItemPrice] = float32(it.Price)
	out[fItemLogPrice] = float32(log1p(it.Price))
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
	out[fItemLogDescriptionLen] = float32(log1p(it.DescriptionLen))
	w.tok.split(it.Title)
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
	out[fItemSellerLogReviews] = float32(log1p(it.SellerReviews))
	out[fItemSellerBayesRating] = float32((it.SellerRating*it.SellerReviews + sellerRatingPrior*sellerStrength) / (it.SellerReviews + sellerStrength))
	out[fItemSellerLogActiveItems] = float32(log1p(it.SellerActiveItems))
	out[fItemSellerIsCompany] = float32(it.SellerIsCompany)
	out[fItemLogImpressions7d] = float32(log1p(it.Impressions7d))
	out[fItemLogViews7d] = float32(log1p(it.Views7d))
	out[fItemLogContacts7d] = float32(log1p(it.Contacts7d))
	out[fItemLogFavorites7d] = float32(log1p(it.Favorites7d))
	out[fItemLogViewsTotal] = float32(log1p(it.ViewsTotal))
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
		out[fSrcLogRank] = float32(log1p(rank))
		out[fSrcReciprocalRank] = float32(1 / (rank + 1))
	} else {
		out[fSrcRank] = float32(nan)
		out[fSrcLogRank] = float32(nan)
		out[fSrcReciprocalRank] = float32(nan)
	}

	// user x item
	if r.interests != nil {
		wc := r.interests[it.Category]
		out[fUXInterestCat] = float32(wc)
		if r.interestSum > 0 {
			out[fUXInterestCatShare] = float32(wc / r.interestSum)
		} else {
			out[fUXInterestCatShare] = 0
		}
	} else {
		out[fUXInterestCat] = float32(nan)
		out[fUXInterestCatShare] = float32(nan)
	}
	if r.subInterests != nil {
		out[fUXInterestSubcat] = float32(r.subInterests[it.Subcategory])
	} else {
		out[fUXInterestSubcat] = float32(nan)
	}
	dist := haversineKm(u.Lat, u.Lon, it.Lat, it.Lon) // NaN if any is absent
	out[fUXDistanceKm] = float32(dist)
	out[fUXLogDistanceKm] = float32(log1p(dist))
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
	if r.cats != nil {
		cs := r.cats[it.Category]
		if cs != nil {
			out[fUXCatViews] = float32(cs.views)
			out[fUXCatViewShare] = float32(cs.views / r.nViews)
			out[fUXHoursSinceCatView] = float32(math.Max(r.now-float64(cs.lastTS), 0) / 3600)
			if cs.median > 0 {
				out[fUXPriceRatioCatMedian] = float32(it.Price / cs.median)
			} else {
				out[fUXPriceRatioCatMedian] = float32(nan)
			}
			out[fUXLogPriceZCat] = float32((log1p(it.Price) - cs.meanLog) / (cs.stdLog + zScoreEpsilon))
		} else {
			out[fUXCatViews] = 0
			out[fUXCatViewShare] = 0
			out[fUXHoursSinceCatView] = float32(nan)
			out[fUXPriceRatioCatMedian] = float32(nan)
			out[fUXLogPriceZCat] = float32(nan)
		}
		out[fUXSubcatViews] = float32(r.subcatViews[it.Subcategory])
		nv := r.itemViews[it.ID]
		out[fUXViewedItem] = flag(nv > 0)
		out[fUXItemViews] = float32(nv)
		out[fUXSellerViews] = float32(r.sellerViews[it.SellerID])
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
	out[fUXContactedItem] = lookupFlag(r.contactItems, it.ID)
	out[fUXContactedSeller] = lookupFlag(r.contactSellers, it.SellerID)
	out[fUXFavorited] = lookupFlag(r.favorites, it.ID)
	if u.HasImpressions {
		out[fUXShownCount] = float32(u.Impressions[it.ID])
	} else {
		out[fUXShownCount] = float32(nan)
	}
	if r.queryTokens != nil {
		distinct, hits, last := w.queryMatches(r)
		out[fUXQueryTokenHits] = float32(hits)
		if distinct > 0 {
			out[fUXQueryOverlap] = float32(float64(hits) / float64(distinct))
		} else {
			out[fUXQueryOverlap] = 0
		}
		out[fUXLastQueryMatch] = flag(last)
	} else {
		out[fUXQueryTokenHits] = float32(nan)
		out[fUXQueryOverlap] = float32(nan)
		out[fUXLastQueryMatch] = float32(nan)
	}
}

// queryMatches counts the distinct title tokens (already split into w.tok),
// those found in any query, and whether any is in the newest query.
func (w *worker) queryMatches(r *Request) (distinct, hits int, last bool) {
	n := w.tok.n()
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
		f := r.queryTokens[string(tok)]
		if f&inAnyQuery != 0 {
			hits++
		}
		if f&inNewestQuery != 0 {
			last = true
		}
	}
	return
}

// Items is a request's item records: record i is Blob[Offsets[i]:Offsets[i+1]].
// Offsets has one entry more than there are items.
type Items struct {
	Blob    []byte
	Offsets []int64
}

// Len is the number of items.
func (it Items) Len() int { return max(len(it.Offsets)-1, 0) }

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
	if c != nil {
		n := it.Len()
		for name, l := range map[string]int{"source": len(c.Source), "source_score": len(c.Score), "source_rank": len(c.Rank)} {
			if l != 0 && l != n {
				return &InputError{Position: UserPosition, Key: "candidates." + name, Msg: fmt.Sprintf("has %d entries for %d items", l, n)}
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

// chunk is how many items a worker claims at a time: large enough to make
// the atomic counter cheap, small enough to balance 3000 items on few cores.
const chunk = 64

// Compute writes the feature matrix of one request into out, row-major,
// len(out) == items.Len() * NumFeatures (the caller allocates it). Items are
// processed in parallel on up to threads goroutines (<= 0: all cores). On
// an input error the returned *InputError is the one of the lowest item
// position, whatever the scheduling, and out is partially written.
func (r *Request) Compute(items Items, c *Candidates, threads int, out []float32) error {
	n := items.Len()
	if err := items.Validate(c); err != nil {
		return err
	}
	if len(out) != n*NumFeatures {
		return fmt.Errorf("output has %d floats, want %d x %d", len(out), n, NumFeatures)
	}
	if n == 0 {
		return nil
	}
	workers := min(Threads(threads), (n+chunk-1)/chunk)
	var next atomic.Int64
	var failed atomic.Bool
	errs := make([]*InputError, workers)
	var wg sync.WaitGroup
	for g := 0; g < workers; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			w := workerPool.Get().(*worker)
			defer workerPool.Put(w)
			// Chunks are claimed in increasing order and a worker finishes the
			// chunk it holds, so once any error is seen every lower position
			// has been checked: the lowest error found is the first overall.
			for !failed.Load() {
				start := int(next.Add(chunk)) - chunk
				if start >= n {
					return
				}
				for i := start; i < min(start+chunk, n); i++ {
					if err := DecodeItem(items.At(i), &w.item); err != nil {
						err.Position = i
						if errs[g] == nil {
							errs[g] = err
						}
						failed.Store(true)
						break
					}
					r.row(w, i, c, out[i*NumFeatures:(i+1)*NumFeatures])
				}
			}
		}(g)
	}
	wg.Wait()
	var first *InputError
	for _, e := range errs {
		if e != nil && (first == nil || e.Position < first.Position) {
			first = e
		}
	}
	if first != nil {
		return first
	}
	return nil
}

var workerPool = sync.Pool{New: func() any { return new(worker) }}

// Compute is NewRequest followed by Request.Compute.
func Compute(userBlob []byte, items Items, c *Candidates, threads int, out []float32) error {
	r, err := NewRequest(userBlob)
	if err != nil {
		return err
	}
	return r.Compute(items, c, threads, out)
}
