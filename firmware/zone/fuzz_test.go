package zone

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary master files to Parse: it must never panic,
// must report failures as an ErrorList, and a zone it accepts must come
// back with the same number of records when read again from its own text
// form (which is how zones are shown to operators and exported).
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		goodZone,
		soaNS,
		soaNS + "x TYPE65534 \\# 3 abcdef\n",
		soaNS + "a\\.b A 192.0.2.1\n\\065bc TXT \"x\\\"y\" \\255z\n",
		soaNS + "sub NS ns.sub\nns.sub AAAA 2001:db8::1\nd DNAME example.net.\n",
		soaNS + "www CNAME x\nwww A 192.0.2.1\n",
		soaNS + "$ORIGIN sub\nx 1d IN MX 10 mx\n$TTL 5m\ny CAA 0 issue \"ca.example\"\n",
		soaNS + "$INCLUDE /etc/passwd\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// $GENERATE turns one short line into 65535 records; a fuzzer
		// stacking those measures memory, not the parser.
		if len(data) > 64<<10 || bytes.Contains(bytes.ToLower(data), []byte("$generate")) {
			return
		}
		z, err := Parse(bytes.NewReader(data), "example.com.", "fuzz.zone", "")
		if err != nil {
			var l ErrorList
			if !errors.As(err, &l) || len(l) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %T %v", err, err)
			}
			return
		}
		var b strings.Builder
		for _, rr := range z.Records {
			b.WriteString(rr.String())
			b.WriteByte('\n')
		}
		z2, err := Parse(strings.NewReader(b.String()), z.Origin, "again.zone", "")
		if err != nil {
			t.Fatalf("own text form does not parse: %v\n%s", err, b.String())
		}
		if len(z2.Records) != len(z.Records) {
			t.Fatalf("%d records, %d after re-parsing:\n%s", len(z.Records), len(z2.Records), b.String())
		}
	})
}
