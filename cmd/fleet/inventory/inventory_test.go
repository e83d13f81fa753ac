package inventory

import (
	"strings"
	"testing"
)

// TestParse: a file is read strictly; errors name the node and field.
func TestParse(t *testing.T) {
	ns, err := Parse([]byte("nodes:\n  - {name: a, api: \"a:80\", region: eu, prefixes: [192.0.2.0/24]}\n"))
	if err != nil || len(ns) != 1 || ns[0].Region != "eu" {
		t.Fatalf("%+v %v", ns, err)
	}
	for in, want := range map[string]string{
		"nodes:\n  - {name: a, api: \"a:80\", colour: red}\n":                  "colour",
		"nodes:\n  - {name: a}\n":                                              "api",
		"nodes:\n  - {name: a, api: \"a:80\", prefixes: [bad]}\n":              "prefixes[0]",
		"nodes:\n  - {name: a, api: \"a:80\"}\n  - {name: a, api: \"b:80\"}\n": "twice",
	} {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want an error naming %q", in, err, want)
		}
	}
}
