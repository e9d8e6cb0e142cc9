// Package pferr holds the kinds of error that cross pyfeat's C ABI besides
// the input errors of package features. Every error a pure-Go package
// returns to cabi is one of them or a *features.InputError; cabi maps each
// kind to one status code of pyfeat.h (cabi/status.go), in one place, and
// treats an error of no kind as a bug.
package pferr

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// Panic is a recovered panic: a bug in pyfeat, reported as an error so that
// the process survives it.
type Panic struct {
	Value any
	Stack []byte
}

func (e *Panic) Error() string { return fmt.Sprintf("panic: %v\n%s", e.Value, e.Stack) }

// Recovered wraps the value of recover() with the stack of the goroutine
// that panicked (call it in the deferred function itself).
func Recovered(v any) *Panic { return &Panic{Value: v, Stack: debug.Stack()} }

// Argument is a call that breaks the API's contract: a buffer of the wrong
// size, a NULL pointer, a user handle that was never issued. The Python
// binding checks its arguments before calling, so one of these is a bug in
// the binding or a misuse of the C ABI, not bad data.
type Argument struct{ Msg string }

func (e *Argument) Error() string { return e.Msg }

// Argumentf builds an *Argument.
func Argumentf(format string, args ...any) error {
	return &Argument{Msg: fmt.Sprintf(format, args...)}
}

// Model is a model that cannot be loaded, is closed, or does not fit the
// call (its shape, its outputs).
type Model struct{ Err error }

func (e *Model) Error() string { return e.Err.Error() }
func (e *Model) Unwrap() error { return e.Err }

// Modelf builds a *Model.
func Modelf(format string, args ...any) error { return &Model{Err: fmt.Errorf(format, args...)} }

// AsModel marks err, an error of a model's own code (loading, evaluating),
// as a model error. A panic stays a panic, and nil stays nil.
func AsModel(err error) error {
	var p *Panic
	if err == nil || errors.As(err, &p) {
		return err
	}
	return &Model{Err: err}
}
