// Package gofeatures decodes pyfeat's MessagePack inputs and computes the
// feature matrix. It is pure Go (no cgo) so that `go test ./...` exercises
// every feature directly; the C ABI lives in gofeatures/capi.
package gofeatures

import _ "github.com/tinylib/msgp/msgp"
