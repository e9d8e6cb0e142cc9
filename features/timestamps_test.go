package features

import (
	"errors"
	"testing"
)

// Timestamps in milliseconds are refused like a `now` in milliseconds, with
// the item's position and the key.
func TestMillisecondTimestampsAreRefused(t *testing.T) {
	const ms = int64(1_767_000_000_000)
	user := pack(t, baseUser())
	for _, tc := range []struct {
		user, item kv
		pos        int
		key        string
	}{
		{baseUser(), with(baseItem(), "created_at", ms), 1, "created_at"},
		{baseUser(), with(baseItem(), "updated_at", ms), 1, "updated_at"},
		{baseUser(), with(baseItem(), "created_at", int64(-1)), 1, "created_at"},
		{with(baseUser(), "views", []any{[]any{1, 1_767_000_000, 3, 4, 5.5, 6}, []any{1, ms, 3, 4, 5.5, 6}}), baseItem(), UserPosition, "views[1][1]"},
		{with(baseUser(), "contacts", []any{[]any{1, ms, 6}}), baseItem(), UserPosition, "contacts[0][1]"},
	} {
		items := Concat([][]byte{pack(t, baseItem()), pack(t, tc.item)})
		out := make([]float32, 2*NumFeatures)
		err := Compute(pack(t, tc.user), items, nil, 1, out)
		var ie *InputError
		if !errors.As(err, &ie) || ie.Position != tc.pos || ie.Key != tc.key {
			t.Errorf("%s: got %v, want an input error at %d, key %s", tc.key, err, tc.pos, tc.key)
		}
	}
	// The largest accepted value is the one `now` accepts.
	items := Concat([][]byte{pack(t, with(baseItem(), "created_at", int64(MaxNow)))})
	if err := Compute(user, items, nil, 1, make([]float32, NumFeatures)); err != nil {
		t.Fatalf("created_at = 2^40 refused: %v", err)
	}
}
