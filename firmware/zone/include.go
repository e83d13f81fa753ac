package zone

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// $INCLUDE confinement. Zone files reach the box from operators through
// the API, so $INCLUDE must not become a way to read other files on it
// (miekg/dns even quotes the offending line of a non-zone file in its
// error). Includes may open only files inside one directory.
//
// ZoneParser resolves an include name against the including file's name
// and, when given an fs.FS, strips any leading "/" before calling Open. We
// give the top-level file a name inside a marker directory: a relative
// include then arrives as "<marker>/name", while an absolute include or
// one that climbs out with ".." arrives without the marker and is
// refused. Nested includes resolve against their own (marker) names, so
// they are confined the same way. Opening goes through os.Root, which
// also refuses symlinks and ".." that lead out of the directory.
const includeMarker = "@includedir"

// errOutside is why an $INCLUDE was refused.
var errOutside = errors.New("outside the include directory")

type includeFS struct {
	root    *os.Root
	dir     string // as given, for the names shown in errors
	refused error  // set when Open refused, so the error can say why
	onRead  func(*lineReader)
}

func (f *includeFS) Open(name string) (fs.File, error) {
	rel, ok := strings.CutPrefix(name, includeMarker+"/")
	if !ok {
		f.refused = errOutside
		return nil, f.refused
	}
	file, err := f.root.Open(rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			f.refused = fmt.Errorf("no such file in %s", f.dir)
		} else {
			// os.Root reports escapes through symlinks or ".." with an
			// unexported error; anything else here is as good as one.
			f.refused = fmt.Errorf("%w (%v)", errOutside, err)
		}
		return nil, f.refused
	}
	// A FIFO or device inside the directory would block or never end.
	if st, err := file.Stat(); err != nil || !st.Mode().IsRegular() {
		file.Close()
		f.refused = errors.New("not a regular file")
		return nil, f.refused
	}
	return &includeFile{File: file, lineReader: newLineReader(file, filepath.Join(f.dir, rel), f.onRead)}, nil
}

// includeFile is an included file read through a lineReader, so the lexer
// uses ReadByte and records get their lines.
type includeFile struct {
	*os.File
	*lineReader
}

func (f *includeFile) Read(p []byte) (int, error) { return f.lineReader.Read(p) }
func (f *includeFile) Stat() (fs.FileInfo, error) { return f.File.Stat() }
func (f *includeFile) Close() error               { return f.File.Close() }
