package features

import (
	"math"
	"runtime"
	"slices"
)

// Request is the per-request state, built once from the user context and
// shared read-only by the workers that compute item rows.
type Request struct {
	User *User
	now  float64

	userRow [NumFeatures]float32 // the user-group columns; other entries unused

	// One table per key an item is looked up by (category, subcategory, item
	// id, seller), holding everything the user context says about that key:
	// four lookups per item instead of ten.
	byCat       lookup[catEntry]
	bySubcat    lookup[subEntry]
	byItem      lookup[itemEntry]
	bySeller    lookup[sellerEntry]
	interestSum float64
	queryTokens map[string]uint8 // token -> inAnyQuery | inNewestQuery
	queryFilter tokenFilter      // passes every key of queryTokens
	medianPrice float64
	nViews      float64
	cosLat      float64 // cosine of the user's latitude

	// Scratch space, kept with the request so that a reused request prepares
	// the next one without allocating (a long view history would otherwise
	// give the garbage collector a quarter megabyte per call).
	user     User
	blob     []byte    // a copy of the user context, when Begin made one
	viewCat  []int32   // per view, the index of its category in byCat
	prices   []float64 // view prices grouped by category, in view order
	sorted   []float64 // a copy being sorted for a median
	catStart []int32   // per category, its first index in prices
	tok      tokenizer
}

type catEntry struct {
	interest float64 // interests[category], 0 when absent from the map
	// The user's views in the category; views == 0 means none, and the
	// other fields are then unset.
	views   float64
	lastTS  int64
	median  float64 // of view prices, currency units
	meanLog float64 // of log1p(view price)
	stdLog  float64 // population std of log1p(view price)
}

type subEntry struct {
	interest float64 // sub_interests[subcategory], 0 when absent
	views    float64
}

type itemEntry struct {
	views     float64
	contacted bool
	favorited bool
	shown     int64 // impressions[item id]
}

type sellerEntry struct {
	views     float64
	contacted bool
}

// lookup maps an id to a T stored by value in one slice: entries cost no
// allocation each, and reset keeps both the map's and the slice's memory.
type lookup[T any] struct {
	index map[int64]int32
	vals  []T
}

// entry returns the entry of id, creating a zero one on first use. The
// pointer is valid until the next entry call.
func (l *lookup[T]) entry(id int64) *T {
	return &l.vals[l.slot(id)]
}

// slot is the index in vals of the entry of id, created on first use.
func (l *lookup[T]) slot(id int64) int32 {
	if i, ok := l.index[id]; ok {
		return i
	}
	if l.index == nil {
		l.index = make(map[int64]int32)
	}
	var zero T
	l.vals = append(l.vals, zero)
	i := int32(len(l.vals) - 1)
	l.index[id] = i
	return i
}

// get returns the entry of id, or def if there is none.
func (l *lookup[T]) get(id int64, def *T) *T {
	if i, ok := l.index[id]; ok {
		return &l.vals[i]
	}
	return def
}

func (l *lookup[T]) reset() {
	clear(l.index)
	clear(l.vals)
	l.vals = l.vals[:0]
}

// NewRequest decodes the user context and builds the request's lookups.
func NewRequest(userBlob []byte) (*Request, error) {
	r := new(Request)
	if err := r.init(userBlob); err != nil {
		return nil, err
	}
	return r, nil
}

// requests keeps idle requests, their lookups and scratch space sized by
// earlier users, for the next calls.
var requests = freeList[Request]{max: 2 * runtime.GOMAXPROCS(0)}

// release returns r to the free list. The decoded queries point into the
// caller's buffer, which must not outlive the call: they are dropped.
func (r *Request) release() {
	clear(r.user.Queries)
	r.user.Queries = r.user.Queries[:0]
	requests.put(r)
}

func (r *Request) init(userBlob []byte) error {
	if err := decodeUserInto(userBlob, &r.user); err != nil {
		err.Position = UserPosition
		return err
	}
	r.prepare()
	return nil
}

func (r *Request) prepare() {
	u := &r.user
	nan := math.NaN()
	r.User = u
	r.now = float64(u.Now)
	r.cosLat = math.Cos(u.Lat * (math.Pi / 180))
	r.medianPrice = nan
	r.interestSum = 0
	r.nViews = 0
	r.byCat.reset()
	r.bySubcat.reset()
	r.byItem.reset()
	r.bySeller.reset()
	r.queryFilter = tokenFilter{}
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
		n := 0
		for _, w := range u.Interests {
			r.byCat.entry(w.ID).interest = w.Weight
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
		for _, w := range u.SubInterests {
			r.bySubcat.entry(w.ID).interest = w.Weight
		}
	}

	if u.HasViews {
		r.prepareViews()
	} else {
		for _, f := range []int{fUserLogViews, fUserViews24h, fUserCategoriesViewed, fUserHoursSinceLastView} {
			row[f] = float32(nan)
		}
	}
	row[fUserMedianViewPrice] = float32(r.medianPrice)
	row[fUserLogMedianViewPrice] = float32(log1p(r.medianPrice))

	if u.HasContacts {
		for _, c := range u.Contacts {
			r.byItem.entry(c.ItemID).contacted = true
			r.bySeller.entry(c.SellerID).contacted = true
		}
		row[fUserLogContacts] = float32(log1p(float64(len(u.Contacts))))
	} else {
		row[fUserLogContacts] = float32(nan)
	}
	if u.HasFavorites {
		for _, id := range u.Favorites {
			r.byItem.entry(id).favorited = true
		}
		row[fUserFavorites] = float32(len(u.Favorites))
	} else {
		row[fUserFavorites] = float32(nan)
	}
	// In record order, so a repeated id keeps its last count, as in a dict.
	for _, im := range u.Impressions {
		r.byItem.entry(im.ItemID).shown = im.Count
	}
	if u.HasQueries {
		if r.queryTokens == nil {
			r.queryTokens = make(map[string]uint8)
		}
		clear(r.queryTokens)
		for qi, q := range u.Queries {
			r.tok.split(q)
			for i := 0; i < r.tok.n(); i++ {
				t := r.tok.token(i)
				r.queryFilter.add(t)
				f := r.queryTokens[string(t)] | inAnyQuery
				if qi == 0 {
					f |= inNewestQuery
				}
				r.queryTokens[string(t)] = f
			}
		}
		row[fUserQueries] = float32(len(u.Queries))
	} else {
		r.queryTokens = nil
		row[fUserQueries] = float32(nan)
	}
}

// prepareViews builds the per-key view counts and the per-category price
// statistics of the view history.
func (r *Request) prepareViews() {
	u := &r.user
	row := &r.userRow
	r.nViews = float64(len(u.Views))
	views24h, categories := 0, 0
	r.viewCat = slices.Grow(r.viewCat[:0], len(u.Views))
	var lastTS int64 = math.MinInt64
	for _, v := range u.Views {
		r.byItem.entry(v.ItemID).views++
		r.bySubcat.entry(v.Subcategory).views++
		r.bySeller.entry(v.SellerID).views++
		k := r.byCat.slot(v.Category)
		ce := &r.byCat.vals[k]
		if ce.views == 0 {
			ce.lastTS = math.MinInt64
			categories++
		}
		ce.views++
		ce.lastTS = max(ce.lastTS, v.TS)
		r.viewCat = append(r.viewCat, k)
		age := r.now - float64(v.TS)
		if age >= 0 && age <= 86400 {
			views24h++
		}
		lastTS = max(lastTS, v.TS)
	}
	// Group the prices by category, keeping view order within a category
	// (the reference sums them in that order, and so gets the same rounding).
	cats := r.byCat.vals
	r.catStart = slices.Grow(r.catStart[:0], len(cats)+1)[:len(cats)+1]
	start := int32(0)
	for k := range cats {
		r.catStart[k] = start
		start += int32(cats[k].views)
	}
	r.catStart[len(cats)] = start
	r.prices = slices.Grow(r.prices[:0], len(u.Views))[:len(u.Views)]
	for i, v := range u.Views {
		k := r.viewCat[i]
		r.prices[r.catStart[k]] = v.Price
		r.catStart[k]++
	}
	// catStart[k] is now the end of category k, i.e. the start of k+1.
	for k := len(cats) - 1; k > 0; k-- {
		r.catStart[k] = r.catStart[k-1]
	}
	r.catStart[0] = 0
	for k := range cats {
		if ce := &cats[k]; ce.views > 0 {
			ps := r.prices[r.catStart[k] : r.catStart[k]+int32(ce.views)]
			ce.median = r.median(ps)
			ce.meanLog, ce.stdLog = meanStdLog(ps)
		}
	}
	row[fUserLogViews] = float32(log1p(r.nViews))
	row[fUserViews24h] = float32(views24h)
	row[fUserCategoriesViewed] = float32(categories)
	if len(u.Views) > 0 {
		r.medianPrice = r.median(r.prices) // all the prices, grouped: the order does not matter
		row[fUserHoursSinceLastView] = float32(math.Max(r.now-float64(lastTS), 0) / 3600)
	} else {
		row[fUserHoursSinceLastView] = float32(math.NaN())
	}
}

// median of xs (it sorts a copy, in r's scratch space); NaN for none.
func (r *Request) median(xs []float64) float64 {
	n := len(xs)
	if n == 0 {
		return math.NaN()
	}
	r.sorted = append(r.sorted[:0], xs...)
	slices.Sort(r.sorted)
	if n%2 == 1 {
		return r.sorted[n/2]
	}
	return (r.sorted[n/2-1] + r.sorted[n/2]) / 2
}
