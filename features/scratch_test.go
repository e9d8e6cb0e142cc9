package features

import (
	"testing"
	"time"
)

func TestFreeListDropsOversizedScratch(t *testing.T) {
	l := freeList[Request]{max: 8}
	big := new(Request)
	big.blob = make([]byte, 0, maxKeptScratch+1)
	l.put(big)
	if got := l.get(); got == big {
		t.Fatal("a request holding more than maxKeptScratch was kept")
	}
	small := new(Request)
	l.put(small)
	if got := l.get(); got != small {
		t.Fatal("a small request was not kept")
	}
}

func TestFreeListBoundsBytes(t *testing.T) {
	l := freeList[Request]{max: 100}
	const each = 12 << 20
	for i := 0; i < 20; i++ {
		r := new(Request)
		r.user.Impressions = make([]Impression, 0, each/16)
		l.put(r)
	}
	if l.bytes > maxListScratch {
		t.Fatalf("list keeps %d bytes, more than %d", l.bytes, maxListScratch)
	}
	if n := len(l.free); n == 0 || n > maxListScratch/each {
		t.Fatalf("list keeps %d requests of %d bytes", n, each)
	}
	for len(l.free) > 0 {
		l.get()
	}
	if l.bytes != 0 || len(l.sizes) != 0 {
		t.Fatalf("empty list accounts %d bytes, %d sizes", l.bytes, len(l.sizes))
	}
}

// A huge request's tables are big: its scratch must count them.
func TestScratchBytesCountsTables(t *testing.T) {
	var r Request
	for i := int64(0); i < 100_000; i++ {
		r.byItem.entry(i).shown = 1
	}
	if n := r.scratchBytes(); n < 100_000*(8+4+24) {
		t.Fatalf("scratchBytes = %d for 100k table entries", n)
	}
}

func TestDroppedScratchIsReturned(t *testing.T) {
	before := releases.Load()
	l := freeList[Request]{max: 8}
	for i := 0; i < 3; i++ {
		r := new(Request)
		r.blob = make([]byte, 0, maxKeptScratch+1)
		l.put(r)
	}
	deadline := time.Now().Add(10 * time.Second)
	for releases.Load() == before {
		if time.Now().After(deadline) {
			t.Fatal("dropping 48 MB of scratch did not release memory")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
