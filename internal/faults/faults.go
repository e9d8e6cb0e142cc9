//go:build !pffaults

// Package faults marks the places where pyfeat's fault-injection build
// (go build -tags pffaults, `make faults-lib`) can panic on purpose, so
// that tests see a panic on each kind of goroutine become an internal
// error. In every other build Point is empty and compiles away: the
// library that ships cannot be made to fail this way.
package faults

// Point does nothing outside the fault-injection build.
func Point(site string) {}
