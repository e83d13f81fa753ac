package store

import (
	"encoding/binary"
	"errors"
	"time"
)

// A zone's info value is small and read for every zone at boot and by
// List, so it is fixed binary rather than JSON:
//
//	serial(4) records(4) updated(8, Unix ns) source-length(1) source

var errCorruptInfo = errors.New("store: corrupt zone info")

func encodeInfo(in Info) []byte {
	src := in.Source
	if len(src) > 255 {
		src = src[:255]
	}
	b := make([]byte, 0, 17+len(src))
	b = binary.BigEndian.AppendUint32(b, in.Serial)
	b = binary.BigEndian.AppendUint32(b, uint32(in.Records))
	b = binary.BigEndian.AppendUint64(b, uint64(in.Updated.UnixNano()))
	b = append(b, byte(len(src)))
	return append(b, src...)
}

func decodeInfo(origin string, b []byte) (Info, error) {
	if len(b) < 17 || len(b) != 17+int(b[16]) {
		return Info{}, errCorruptInfo
	}
	return Info{
		Origin:  origin,
		Serial:  binary.BigEndian.Uint32(b),
		Records: int(binary.BigEndian.Uint32(b[4:])),
		Updated: time.Unix(0, int64(binary.BigEndian.Uint64(b[8:]))),
		Source:  string(b[17:]),
	}, nil
}
