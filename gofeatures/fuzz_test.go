package gofeatures

import (
	"errors"
	"testing"
)

// The decoders must turn any byte string into either a value or an
// *InputError: never a panic, a hang or an allocation sized by a header.

func seedCorpus(f *testing.F) {
	f.Add(pack(f, baseItem()))
	f.Add(pack(f, with(with(baseItem(), "lat", 55.7), "vas", "xl")))
	f.Add(pack(f, with(baseUser(), "views", []any{[]any{1, 2, 3, 4, 5.5, 6}})))
	f.Add(pack(f, with(baseUser(), "interests", map[int64]float64{1: 0.5})))
	f.Add(pack(f, with(baseUser(), "queries", []any{"Диван", "二手"})))
	f.Add([]byte{0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
}

func FuzzDecodeItem(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		var it Item
		_ = DecodeItem(b, &it)
	})
}

func FuzzDecodeUser(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := DecodeUser(b)
		var ie *InputError
		if err != nil && !errors.As(err, &ie) {
			t.Fatalf("non-input error %T: %v", err, err)
		}
	})
}

// FuzzCompute feeds the same bytes as the user context and as an item.
func FuzzCompute(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		user := pack(t, with(baseUser(), "queries", []any{"диван"}))
		items := Concat([][]byte{b, pack(t, baseItem())})
		out := make([]float32, 2*NumFeatures)
		_ = Compute(user, items, nil, 2, out)
		_ = Compute(b, items, nil, 1, out)
	})
}
