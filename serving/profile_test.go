package serving

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestCPUProfileWritesWholeFileAndRefusesASecond(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "cpu.prof")
	var wg sync.WaitGroup
	var first error
	wg.Add(1)
	go func() {
		defer wg.Done()
		first = CPUProfile(path, 300*time.Millisecond)
	}()
	time.Sleep(50 * time.Millisecond)
	if err := CPUProfile(filepath.Join(dir, "other.prof"), time.Millisecond); !errors.Is(err, ErrProfiling) {
		t.Errorf("a second profile at once: got %v, want ErrProfiling", err)
	}
	x := 0
	for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); {
		x++ // something to sample
	}
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
	b, err := os.ReadFile(path)
	if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b { // pprof files are gzipped
		t.Fatalf("no gzipped profile at %s: %v (%d bytes)", path, err, len(b))
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	if err := CPUProfile(filepath.Join(dir, "no", "such", "dir.prof"), time.Millisecond); err == nil {
		t.Fatal("an unwritable path must fail")
	}
}
