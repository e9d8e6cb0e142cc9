package features

import (
	"errors"
	"testing"
)

// A context begun before the items gives the same rows as Compute, started
// at once or prepared by the call; its errors come from the call; and a
// Pending closed without a call is fine.
func TestPending(t *testing.T) {
	user, items := sampleRequest(t, 700)
	want := make([]float32, items.Len()*NumFeatures)
	if err := Compute(user, items, nil, 2, want); err != nil {
		t.Fatal(err)
	}
	for _, async := range []bool{true, false} {
		buf := append([]byte(nil), user...)
		p := Begin(buf, async)
		clear(buf) // Begin copied it: the caller's buffer may change
		got := make([]float32, len(want))
		ids := make([]int64, items.Len())
		err := ComputeBlocksFrom(p, items, nil, 2, got, ids, nil)
		p.Close()
		if err != nil {
			t.Fatal(err)
		}
		for i := range got {
			if !sameFloat32(got[i], want[i]) {
				t.Fatalf("async=%v: value %d differs: %v vs %v", async, i, got[i], want[i])
			}
		}
		var it Item
		var tok tokenizer
		for i, id := range ids {
			if err := decodeItem(items.At(i), &it, &tok); err != nil || it.ID != id {
				t.Fatalf("item %d: id %d, decoded %d (%v)", i, id, it.ID, err)
			}
		}
		bad := Begin([]byte{0x93, 1, 2, 3}, async) // an array, not a map
		err = ComputeBlocksFrom(bad, items, nil, 2, got, nil, nil)
		bad.Close()
		var ie *InputError
		if !errors.As(err, &ie) || ie.Position != UserPosition {
			t.Fatalf("async=%v: got %v, want the user context's error", async, err)
		}
		Begin(user, async).Close() // never used
	}
}
