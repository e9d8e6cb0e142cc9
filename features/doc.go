// Package features decodes pyfeat's MessagePack inputs and computes the
// feature matrix. It is pure Go (no cgo) so that `go test ./...` exercises
// every feature directly; the C ABI lives in cabi.
package features

import _ "github.com/tinylib/msgp/msgp"
