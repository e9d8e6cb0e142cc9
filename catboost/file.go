package catboost

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// MaxModelBytes is the largest model file pyfeat reads (1 GiB). CatBoost
// models of a few thousand trees take tens of megabytes as JSON; the bound
// is there so that a wrong path (a device, a file still being written, a
// symlink to /dev/zero) fails with a clear error instead of reading until
// memory runs out. pyfeat/_convert.py holds the same number.
const MaxModelBytes = 1 << 30

// ErrNotRegular is matched (errors.Is) by the error for a path that is not
// a regular file: a FIFO would block the reader forever, a device could
// stream without end, a directory has no model.
var ErrNotRegular = errors.New("not a regular file")

// CheckModelFile refuses, without opening it, a path that is not a regular
// file or is larger than MaxModelBytes. Loaders that open the file
// themselves (CatBoost's C API) call it first.
func CheckModelFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return checkInfo(path, fi)
}

func checkInfo(path string, fi os.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: %w (%s)", path, ErrNotRegular, fi.Mode().Type())
	}
	if fi.Size() > MaxModelBytes {
		return fmt.Errorf("%s: %d bytes, more than the %d a model file may have", path, fi.Size(), MaxModelBytes)
	}
	return nil
}

// ReadModelFile reads a whole model file, refusing what CheckModelFile
// refuses. The open does not block (O_NONBLOCK: a FIFO swapped in after
// the check opens at once and is refused by the fstat), and the read stops
// after MaxModelBytes whatever the size said, so a file that grows
// meanwhile is refused too.
func ReadModelFile(path string) ([]byte, error) {
	if err := CheckModelFile(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := checkInfo(path, fi); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxModelBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxModelBytes {
		return nil, fmt.Errorf("%s: more than the %d bytes a model file may have", path, MaxModelBytes)
	}
	return data, nil
}
