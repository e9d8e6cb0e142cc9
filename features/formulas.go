package features

// The feature formulas: one row per (user, item) pair, from a decoded item
// and the prepared request (request.go). The catalogue (catalogue.go) names
// and documents each column; DESIGN.md, "Features", is the contract.

import "math"

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

// row computes the feature row of one decoded item at position pos.
func (r *Request) row(w *worker, pos int, c *Candidates, out []float32) {
	out = out[:NumFeatures] // one bounds check here instead of one per store
	it := w.it
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
	// The title was split while decoding (which validated it).
	out[fItemTitleChars] = float32(w.tk.runes)
	out[fItemTitleTokens] = float32(w.tk.n())
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
// w.tk) with the user's queries: how many are in any query, their share of
// the distinct tokens (0 for a title without tokens), and whether any is in
// the newest query.
func (w *worker) queryMatches(r *Request) (hits int, overlap float64, last bool) {
	n := w.tk.n()
	// Most titles share no token with any query: then hits is 0 and the
	// distinct count, which only divides hits, need not be taken.
	anyMaybe := false
	for i := 0; i < n && !anyMaybe; i++ {
		anyMaybe = r.queryFilter.mayHave(w.tk.token(i))
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
		tok := w.tk.token(i)
		dup := false
		if useMap {
			if _, dup = w.seen[string(tok)]; !dup {
				w.seen[string(tok)] = struct{}{}
			}
		} else {
			for j := 0; j < i && !dup; j++ {
				dup = string(w.tk.token(j)) == string(tok)
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

// catCode is a small code held as a float64 (NaN when absent) as an id.
func catCode(v float64) int64 {
	if math.IsNaN(v) {
		return CatMissing
	}
	return int64(v)
}

// catRow computes the categorical row of the item decoded into w, at
// position pos.
func (r *Request) catRow(w *worker, pos int, c *Candidates, out []int64) {
	out = out[:NumCatFeatures]
	it := w.it
	u := r.User
	out[cItemCategory] = it.Category
	out[cItemSubcategory] = it.Subcategory
	out[cItemRegion] = it.Region
	if it.HasCity {
		out[cItemCity] = it.City
	} else {
		out[cItemCity] = CatMissing
	}
	out[cItemSeller] = it.SellerID
	out[cItemCondition] = catCode(it.Condition)
	out[cItemVAS] = catCode(it.VAS)
	platform := catCode(u.Platform)
	out[cUserPlatform] = platform
	if c != nil && c.Source != nil {
		out[cSrcID] = c.Source[pos]
	} else {
		out[cSrcID] = CatMissing
	}
	if u.HasRegion {
		out[cUXRegionCategory] = Cross(u.Region, it.Category)
	} else {
		out[cUXRegionCategory] = CatMissing
	}
	if platform != CatMissing {
		out[cUXPlatformCategory] = Cross(platform, it.Category)
	} else {
		out[cUXPlatformCategory] = CatMissing
	}
}
