// Command capi is the C ABI of pyfeat, built with -buildmode=c-shared into
// libpyfeat.so. It is deliberately thin: it converts C buffers to Go
// slices, calls the pure-Go packages, and turns errors and panics into a
// pf_status. All feature logic lives in package features.
package main

/*
#include "pyfeat.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/pyfeat/pyfeat/features"
	"github.com/pyfeat/pyfeat/serving"
)

// abiVersion must change with any signature in pyfeat.h; the binding
// refuses a library of another version (a stale build).
const abiVersion = 4

const notAnItem = -2

func main() {}

// inflight counts the engine calls running now. A call uses as many
// goroutines as its share of the cores: all of them when it runs alone,
// one when other calls already keep every core busy. Spawning workers then
// would only add scheduling; worse, with more Python threads calling than
// there are cores (cffi releases the GIL), the hand-offs between cgo
// callbacks and their workers let the Go scheduler starve some callers:
// eight threads on two cores saw single calls wait for seconds.
var inflight atomic.Int32

// enter registers a call and returns the goroutines it may use (threads as
// the caller asked, <= 0 for all cores); the caller defers leave.
func enter(threads int) int {
	n := int(inflight.Add(1))
	share := max(1, runtime.GOMAXPROCS(0)/n)
	return min(features.Threads(threads), share)
}

func leave() { inflight.Add(-1) }

// setStatus fills st from err and returns the status code. A nil st is
// tolerated so that a misuse of the ABI cannot crash the process.
func setStatus(st *C.pf_status, err error) C.int32_t {
	if err == nil {
		if st != nil {
			st.code = C.PF_OK
		}
		return C.PF_OK
	}
	code := C.int32_t(C.PF_ARGUMENT_ERROR)
	pos := int64(notAnItem)
	key := ""
	var ie *features.InputError
	var se statusError
	var pe *features.PanicError
	switch {
	case errors.As(err, &pe):
		code = C.PF_INTERNAL_ERROR
		err = fmt.Errorf("internal error in pyfeat (please report it): %w", err)
	case errors.As(err, &ie):
		code, pos, key = C.PF_INPUT_ERROR, int64(ie.Position), ie.Key
		if ie.WrongType {
			code = C.PF_TYPE_ERROR
		}
	case errors.As(err, &se):
		code = se.code
	}
	if st != nil {
		st.code = code
		st.position = C.int64_t(pos)
		putString(st.key[:], key)
		putString(st.message[:], err.Error())
	}
	return code
}

func asInputError(err error, ie **features.InputError) bool { return errors.As(err, ie) }

// statusError carries an explicit status code (model errors, internal
// errors) through the error path.
type statusError struct {
	code C.int32_t
	msg  string
}

func (e statusError) Error() string { return e.msg }

// putString copies s into a fixed C char array, truncating on a UTF-8
// boundary and always NUL-terminating.
func putString(dst []C.char, s string) {
	n := min(len(s), len(dst)-1)
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	for i := 0; i < n; i++ {
		dst[i] = C.char(s[i])
	}
	dst[n] = 0
}

// guard converts a panic into PF_INTERNAL_ERROR. Every export defers it: a
// panic crossing into C would kill the Python process.
func guard(st *C.pf_status, code *C.int32_t) {
	if p := recover(); p != nil {
		*code = setStatus(st, statusError{C.PF_INTERNAL_ERROR,
			fmt.Sprintf("internal error in pyfeat (please report it): %v\n%s", p, debug.Stack())})
	}
}

// goBytes views C memory as a Go slice without copying. The slice must not
// outlive the call (the caller owns the memory).
func goBytes(p *C.uint8_t, n C.int64_t) []byte {
	if p == nil || n <= 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), int(n))
}

// guardValue makes an export without a status argument return -1 instead
// of letting a panic cross into C.
func guardValue(v *C.int32_t) {
	if recover() != nil {
		*v = -1
	}
}

//export pf_abi_version
func pf_abi_version() (v C.int32_t) {
	defer guardValue(&v)
	return abiVersion
}

//export pf_selftest_panic
func pf_selftest_panic(st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	var m map[string]int
	m["boom"] = 1 // a real runtime panic (assignment to a nil map), not a panic() call
	return C.PF_OK
}

//export pf_num_features
func pf_num_features() (v C.int32_t) {
	defer guardValue(&v)
	return features.NumFeatures
}

//export pf_catalogue
func pf_catalogue(buf *C.char, capacity C.int64_t, needed *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	s := ""
	for _, f := range features.Catalogue {
		s += f.Name + "\t" + f.Group + "\t" + f.Def + "\n"
	}
	return writeText(s, buf, capacity, needed, st)
}

//export pf_spec_hash
func pf_spec_hash(buf *C.char, capacity C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	return writeText(features.SpecHash(), buf, capacity, nil, st)
}

func writeText(s string, buf *C.char, capacity C.int64_t, needed *C.int64_t, st *C.pf_status) C.int32_t {
	if needed != nil {
		*needed = C.int64_t(len(s) + 1)
	}
	if buf == nil || int(capacity) < len(s)+1 {
		return setStatus(st, fmt.Errorf("buffer of %d bytes is too small, need %d", capacity, len(s)+1))
	}
	dst := unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(capacity))
	copy(dst, s)
	dst[len(s)] = 0
	return setStatus(st, nil)
}

// items views the caller's concatenated records and offsets.
func items(blob *C.uint8_t, offsets *C.int64_t, n C.int64_t) (features.Items, error) {
	if n < 0 || (n > 0 && offsets == nil) {
		return features.Items{}, fmt.Errorf("invalid item count %d or NULL offsets", n)
	}
	if offsets == nil {
		return features.Items{Offsets: []int64{0}}, nil
	}
	offs := unsafe.Slice((*int64)(unsafe.Pointer(offsets)), int(n)+1)
	return features.Items{Blob: goBytes(blob, C.int64_t(offs[n])), Offsets: offs}, nil
}

func candidates(n C.int64_t, source *C.int64_t, score *C.double, rank *C.int64_t) *features.Candidates {
	if source == nil && score == nil && rank == nil {
		return nil
	}
	c := &features.Candidates{}
	if source != nil {
		c.Source = unsafe.Slice((*int64)(unsafe.Pointer(source)), int(n))
	}
	if score != nil {
		c.Score = unsafe.Slice((*float64)(unsafe.Pointer(score)), int(n))
	}
	if rank != nil {
		c.Rank = unsafe.Slice((*int64)(unsafe.Pointer(rank)), int(n))
	}
	return c
}

// users holds the user contexts started by pf_user_begin until a call
// consumes them.
var users = pendingUsers{m: map[int64]*features.Pending{}}

type pendingUsers struct {
	mu   sync.Mutex
	next int64
	m    map[int64]*features.Pending
}

func (u *pendingUsers) add(p *features.Pending) int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.next++
	u.m[u.next] = p
	return u.next
}

// count is the number of contexts waiting for their call.
func (u *pendingUsers) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.m)
}

// take removes and returns the context of handle h.
func (u *pendingUsers) take(h int64) (*features.Pending, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	p, ok := u.m[h]
	if !ok {
		return nil, fmt.Errorf("unknown or already used user handle %d", h)
	}
	delete(u.m, h)
	return p, nil
}

//export pf_user_begin
func pf_user_begin(user *C.uint8_t, userLen C.int64_t, handle *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	if handle == nil || userLen < 0 || (userLen > 0 && user == nil) {
		return setStatus(st, fmt.Errorf("pf_user_begin: NULL argument or negative length"))
	}
	// The preparation starts at once only when the engine is idle: then a
	// core is free to do it while Python gets the items ready. When calls
	// are running, a goroutine more would compete with them for the cores
	// (and the Go scheduler is not fair to cgo callers then, see inflight):
	// the call that consumes the handle prepares it.
	async := inflight.Load() == 0 && users.count() == 0
	*handle = C.int64_t(users.add(features.Begin(goBytes(user, userLen), async)))
	return setStatus(st, nil)
}

//export pf_user_discard
func pf_user_discard(handle C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	p, err := users.take(int64(handle))
	if err != nil {
		return setStatus(st, err)
	}
	p.Close()
	return setStatus(st, nil)
}

// requestItems is the items of a pf_compute or pf_rank call: the records
// back to back, or (lookup != 0) an item cache lookup's records. The caller
// defers done.
func requestItems(blob *C.uint8_t, offsets *C.int64_t, n C.int64_t, lookup C.int64_t) (its features.Items, done func(), err error) {
	if lookup == 0 {
		its, err = items(blob, offsets, n)
		return its, func() {}, err
	}
	if blob != nil || offsets != nil {
		return its, nil, fmt.Errorf("items and a lookup given together: pass one")
	}
	recs, unlock, err := lookupRecords(int64(lookup))
	if err != nil {
		return its, nil, err
	}
	if len(recs) != int(n) {
		unlock()
		return its, nil, fmt.Errorf("n_items is %d, the lookup has %d candidates", n, len(recs))
	}
	return features.Items{Decoded: recs}, unlock, nil
}

// putStages writes a call's stage timings (serving.NumStages int64s) to
// dst, when the caller asked for them.
func putStages(dst *C.int64_t, entered time.Time, wait time.Duration, tm *serving.Timings) {
	if dst == nil {
		return
	}
	s := serving.Stages(int64(time.Since(entered)), int64(wait), tm)
	copy(unsafe.Slice((*int64)(unsafe.Pointer(dst)), serving.NumStages), s[:])
}

//export pf_compute
func pf_compute(userHandle C.int64_t,
	blob *C.uint8_t, offsets *C.int64_t, n C.int64_t, lookup C.int64_t,
	source *C.int64_t, score *C.double, rank *C.int64_t,
	threads C.int32_t, out *C.float, outLen C.int64_t, timings *C.int64_t, st *C.pf_status) (code C.int32_t) {
	defer guard(st, &code)
	entered := time.Now()
	user, err := users.take(int64(userHandle))
	if err != nil {
		return setStatus(st, err)
	}
	defer user.Close()
	its, done, err := requestItems(blob, offsets, n, lookup)
	if err != nil {
		return setStatus(st, err)
	}
	defer done()
	if outLen != n*features.NumFeatures || (outLen > 0 && out == nil) {
		return setStatus(st, fmt.Errorf("output buffer has %d floats, want %d x %d", outLen, n, features.NumFeatures))
	}
	var dst []float32
	if outLen > 0 {
		dst = unsafe.Slice((*float32)(unsafe.Pointer(out)), int(outLen))
	}
	th := enter(int(threads))
	defer leave()
	wait := time.Since(entered)
	var tm serving.Timings
	err = features.ComputeBlocksTimed(user, its, candidates(n, source, score, rank), th, dst, nil, &tm.Timings)
	putStages(timings, entered, wait, &tm)
	return setStatus(st, err)
}
