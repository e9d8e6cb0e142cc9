package catboostcapi

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/pyfeat/pyfeat/catboost"
)

// CatBoost's loader would block on a FIFO: it is refused before.
func TestLoadModelRefusesFIFO(t *testing.T) {
	lib := openFake(t)
	fifo := filepath.Join(t.TempDir(), "m.cbm")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		m, err := lib.LoadModel(fifo)
		if err == nil {
			m.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, catboost.ErrNotRegular) {
			t.Fatalf("got %v, want ErrNotRegular", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("LoadModel blocked on a FIFO")
	}
}
