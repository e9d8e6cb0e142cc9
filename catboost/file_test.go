package catboost

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A model path that is not a plain file must fail at once, not block (a
// FIFO) or read without end (/dev/zero).
func TestLoadJSONFileRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "m.json")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	zero := filepath.Join(dir, "zero.json")
	if err := os.Symlink("/dev/zero", zero); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "d.json")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{fifo, zero, sub} {
		done := make(chan error, 1)
		go func() { _, err := LoadJSONFile(p); done <- err }()
		select {
		case err := <-done:
			if !errors.Is(err, ErrNotRegular) {
				t.Errorf("%s: got %v, want ErrNotRegular", p, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: LoadJSONFile blocked", p)
		}
	}
}

func TestLoadJSONFileRefusesOversized(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.json")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: no disk space is used.
	if err := f.Truncate(MaxModelBytes + 1); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := LoadJSONFile(p); err == nil || !strings.Contains(err.Error(), "a model file may have") {
		t.Fatalf("got %v, want the size limit", err)
	}
	if err := CheckModelFile(p); err == nil {
		t.Fatal("CheckModelFile accepted an oversized file")
	}
}
