package config

import (
	"strings"
	"testing"
	"time"
)

const testPubKey = "test+8e1f42dc+AXa743JiEBvKvHTIhv2MH1vunATPZxIDN9EJMEEaN4op"

func TestOTA(t *testing.T) {
	c, err := Parse([]byte("node:\n  name: ams1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.OTA.Soak != DefaultOTASoak || len(c.OTA.Keys) != 0 || c.OTA.AllowDowngrade {
		t.Errorf("defaults: %+v", c.OTA)
	}
	c, err = Parse([]byte("ota:\n  keys: [\"" + testPubKey + "\", /perm/keys/next.pub]\n  soak: 2m\n  allow_downgrade: true\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.OTA.Keys) != 2 || time.Duration(c.OTA.Soak) != 2*time.Minute || !c.OTA.AllowDowngrade || !KeyIsFile(c.OTA.Keys[1]) {
		t.Errorf("parsed: %+v", c.OTA)
	}
	b, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Parse(b); err != nil {
		t.Fatalf("marshalled config does not parse: %v\n%s", err, b)
	}
	for doc, want := range map[string]string{
		"ota:\n  keys: [notakey]\n":                     "line 2: ota: keys: \"notakey\" is neither a public key",
		"ota:\n  keys: [\"PRIVATE+KEY+a+b+c\"]\n":       "a private key",
		"ota:\n  keys: [/perm/../keys]\n":               "write the path clean",
		"ota:\n  soak: 0s\n":                            "line 2: ota.soak: 0 is not allowed",
		"ota:\n  soak: 2s\n":                            "soak 2s: must be 5s..1h",
		"ota:\n  soak: 60s\n  allow_downgrade: maybe\n": "line 3: cannot unmarshal",
		"ota:\n  key: [x]\n":                            "field key not found",
	} {
		_, err := Parse([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want %q", doc, err, want)
		}
	}
}
