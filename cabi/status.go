package main

/*
#include "pyfeat.h"
*/
import "C"

import (
	"errors"
	"fmt"

	"github.com/pyfeat/pyfeat/features"
	"github.com/pyfeat/pyfeat/internal/pferr"
)

// classify is the one place where a Go error becomes a status code of
// pyfeat.h. The pure-Go packages return nil, a *features.InputError or a
// kind of package pferr; an error of no kind is a bug that escaped its
// package's typing, and is reported as one.
func classify(err error) (code C.int32_t, position int64, key, msg string) {
	var (
		panicked *pferr.Panic
		input    *features.InputError
		argument *pferr.Argument
		model    *pferr.Model
	)
	// A panic first: a model or input error wrapping one is still a bug.
	switch {
	case errors.As(err, &panicked):
		return C.PF_INTERNAL_ERROR, C.PF_POSITION_NONE, "", "internal error in pyfeat (please report it): " + err.Error()
	case errors.As(err, &input):
		code = C.PF_INPUT_ERROR
		if input.WrongType {
			code = C.PF_TYPE_ERROR
		}
		position = C.PF_POSITION_USER
		if input.Position >= 0 {
			position = int64(input.Position)
		}
		return code, position, input.Key, err.Error()
	case errors.As(err, &argument):
		return C.PF_ARGUMENT_ERROR, C.PF_POSITION_NONE, "", err.Error()
	case errors.As(err, &model):
		return C.PF_MODEL_ERROR, C.PF_POSITION_NONE, "", err.Error()
	}
	return C.PF_INTERNAL_ERROR, C.PF_POSITION_NONE, "",
		fmt.Sprintf("internal error in pyfeat (please report it): unclassified error %T: %v", err, err)
}

// setStatus fills st from err and returns the status code. A nil st is
// tolerated so that a misuse of the ABI cannot crash the process.
func setStatus(st *C.pf_status, err error) C.int32_t {
	if err == nil {
		if st != nil {
			st.code = C.PF_OK
		}
		return C.PF_OK
	}
	code, pos, key, msg := classify(err)
	if st != nil {
		st.code = code
		st.position = C.int64_t(pos)
		putString(st.key[:], key)
		putString(st.message[:], msg)
	}
	return code
}

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

// guard turns a panic on the export's own goroutine into its status (the
// pure packages recover those of the goroutines they start). Every export
// defers it: a panic crossing into C would kill the Python process.
func guard(st *C.pf_status, code *C.int32_t) {
	if p := recover(); p != nil {
		*code = setStatus(st, pferr.Recovered(p))
	}
}

// guardValue makes an export without a status argument return -1 instead
// of letting a panic cross into C.
func guardValue(v *C.int32_t) {
	if recover() != nil {
		*v = -1
	}
}
