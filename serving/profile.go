package serving

import (
	"os"
	"path/filepath"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/pyfeat/pyfeat/internal/pferr"
)

// ErrProfiling is returned when a CPU profile is already being taken.
var ErrProfiling error = &pferr.Argument{Msg: "a Go CPU profile is already being taken in this process"}

var profiling sync.Mutex

// CPUProfile records a CPU profile of the Go code in this process for d and
// writes it to path in pprof format, whole or not at all (a temporary file
// in the same directory, renamed at the end).
//
// What it does to signals: runtime/pprof arms ITIMER_PROF and installs the
// Go runtime's SIGPROF handler for the duration, then restores the handler
// that was there before (SIG_IGN when there was none: a SIGPROF still in
// flight must not kill the process). Other signals are not touched, so
// SIGINT still reaches Python; SIGPROF ticks that land on threads Go does
// not own (Python's) are recorded by the library their PC is in
// ("[libpython3.11.so]", "[libc.so.6]"). Tools that read the
// process from outside (py-spy) are unaffected; an in-process profiler
// that also uses ITIMER_PROF/SIGPROF cannot run at the same time.
func CPUProfile(path string, d time.Duration) error {
	if d <= 0 {
		return pferr.Argumentf("the profile's duration must be > 0, got %v", d)
	}
	if !profiling.TryLock() {
		return ErrProfiling
	}
	defer profiling.Unlock()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return pferr.Argumentf("cannot write the profile: %v", err)
	}
	done := false
	defer func() {
		if !done {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := pprof.StartCPUProfile(tmp); err != nil {
		return pferr.Argumentf("%v (%v)", ErrProfiling, err)
	}
	time.Sleep(d)
	pprof.StopCPUProfile()
	if err := tmp.Close(); err != nil {
		return pferr.Argumentf("cannot write the profile: %v", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return pferr.Argumentf("cannot write the profile: %v", err)
	}
	done = true
	return nil
}
