package features

import (
	"errors"
	"math"
	"regexp"
	"slices"
	"testing"
)

func TestCatCatalogue(t *testing.T) {
	name := regexp.MustCompile(`^cat_(item|src|user|ux)_[a-z0-9_]+$`)
	seen := map[string]bool{}
	for _, f := range Catalogue {
		seen[f.Name] = true
	}
	for i, f := range CatCatalogue {
		if !name.MatchString(f.Name) || f.Def == "" || seen[f.Name] {
			t.Fatalf("categorical column %d: bad, empty or duplicate entry %q", i, f.Name)
		}
		seen[f.Name] = true
	}
	if NumCatFeatures < 10 {
		t.Fatalf("only %d categorical columns", NumCatFeatures)
	}
}

// computeAll is ComputeAllFrom for a user context blob.
func computeAll(t testing.TB, user []byte, items Items, c *Candidates, threads int) ([]float32, []int64, error) {
	t.Helper()
	p := Begin(user, false)
	defer p.Close()
	out := make([]float32, items.Len()*NumFeatures)
	cats := make([]int64, items.Len()*NumCatFeatures)
	err := ComputeAllFrom(p, items, c, threads, out, nil, cats, nil)
	return out, cats, err
}

func TestCatRow(t *testing.T) {
	user := pack(t, kv{{"user_id", int64(1)}, {"now", int64(1_767_225_600)}, {"platform", "ios"}, {"region", 9}})
	full := with(with(with(with(baseItem(), "city", 77), "condition", "new"), "vas", "x5"), "seller_id", int64(-5))
	items := Concat([][]byte{pack(t, full), pack(t, baseItem())})
	c := &Candidates{Source: []int64{6, 0}}
	_, cats, err := computeAll(t, user, items, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []int64{
		3, 31, 5, 77, -5, 1, 3, 1, 6, Cross(9, 3), Cross(1, 3),
		3, 31, 5, CatMissing, 7, CatMissing, CatMissing, 1, 0, Cross(9, 3), Cross(1, 3),
	}
	if !slices.Equal(cats, want) {
		t.Fatalf("got %v\nwant %v", cats, want)
	}
	// Without platform, region and candidates: the user columns are missing.
	_, cats, err = computeAll(t, pack(t, baseUser()), items, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range []int{cUserPlatform, cSrcID, cUXRegionCategory, cUXPlatformCategory} {
		if cats[j] != CatMissing || cats[NumCatFeatures+j] != CatMissing {
			t.Fatalf("column %s: %d, want missing", CatCatalogue[j].Name, cats[j])
		}
	}
}

// The reference implementation (pyfeat/reference.py) reproduces these.
func TestCross(t *testing.T) {
	cases := []struct{ a, b, want int64 }{
		{0, 0, 0},
		{9, 3, Cross(9, 3)},
	}
	if Cross(9, 3) == Cross(3, 9) || Cross(9, 3) == Cross(9, 4) {
		t.Fatal("cross does not tell pairs apart")
	}
	for _, c := range cases {
		if got := Cross(c.a, c.b); got != c.want {
			t.Fatalf("Cross(%d, %d) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
	if Cross(1, 2) != -7541218347953203506 {
		t.Fatalf("Cross(1, 2) = %d: the formula changed", Cross(1, 2))
	}
	if Cross(math.MinInt64, math.MaxInt64) == CatMissing {
		t.Fatal("a cross is never the missing value")
	}
}

// An id that would be read as the missing value is an input error.
func TestCatMissingIDRefused(t *testing.T) {
	for _, key := range []string{"category", "subcategory", "region", "city", "seller_id"} {
		items := Concat([][]byte{pack(t, baseItem()), pack(t, with(baseItem(), key, int64(math.MinInt64)))})
		_, _, err := computeAll(t, pack(t, baseUser()), items, nil, 1)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Position != 1 || ie.Key != key {
			t.Fatalf("%s: got %v, want an input error at item 1", key, err)
		}
		// The numeric matrix alone is refused too: one decoder.
		if err := Compute(pack(t, baseUser()), items, nil, 1, make([]float32, 2*NumFeatures)); !errors.As(err, &ie) {
			t.Fatalf("%s: Compute: got %v", key, err)
		}
	}
	// One more than the reserved value is an id like any other.
	items := Concat([][]byte{pack(t, with(baseItem(), "seller_id", int64(math.MinInt64+1)))})
	_, cats, err := computeAll(t, pack(t, baseUser()), items, nil, 1)
	if err != nil || cats[cItemSeller] != math.MinInt64+1 {
		t.Fatalf("got %v, %v", cats[cItemSeller], err)
	}
}

// The categorical rows do not depend on the threads, on whether items were
// staged before the user context was ready, or on the sink; the numeric
// rows are those of Compute.
func TestComputeAllMatchesCompute(t *testing.T) {
	user, items := sampleRequest(t, 700)
	c := &Candidates{Source: make([]int64, items.Len())}
	for i := range c.Source {
		c.Source[i] = int64(i % 8)
	}
	want := make([]float32, items.Len()*NumFeatures)
	if err := Compute(user, items, c, 1, want); err != nil {
		t.Fatal(err)
	}
	_, wantCats, err := computeAll(t, user, items, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	for _, async := range []bool{true, false} {
		p := Begin(user, async)
		got := make([]float32, len(want))
		gotCats := make([]int64, len(wantCats))
		err := ComputeAllFrom(p, items, c, 3, nil, nil, nil, func(start, end int, rows []float32, cats []int64) error {
			copy(got[start*NumFeatures:], rows)
			copy(gotCats[start*NumCatFeatures:], cats)
			return nil
		})
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if !sameFloat32(got[i], want[i]) {
				t.Fatalf("async=%v: value %d differs", async, i)
			}
		}
		if !slices.Equal(gotCats, wantCats) {
			t.Fatalf("async=%v: categorical rows differ", async)
		}
	}
}

// Categorical rows from records decoded before (an item cache's) equal the
// rows from the raw records, staged or not.
func TestDecodedRecordsGiveTheSameCategoricalRows(t *testing.T) {
	user, items := sampleRequest(t, 700)
	c := &Candidates{Source: make([]int64, items.Len())}
	for i := range c.Source {
		c.Source[i] = int64(i % 8)
	}
	_, want, err := computeAll(t, user, items, c, 1)
	if err != nil {
		t.Fatal(err)
	}
	dec := decodedItems(t, items)
	for _, async := range []bool{false, true} {
		got := make([]int64, len(want))
		p := Begin(user, async)
		err := ComputeAllFrom(p, dec, c, 3, nil, nil, got, nil)
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("async=%v: categorical rows from decoded records differ", async)
		}
	}
}
