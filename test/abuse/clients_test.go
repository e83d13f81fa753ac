package abuse

import (
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/shoestring-dns/shoestring/firmware/dnsserver"
	"github.com/shoestring-dns/shoestring/test/testenv"
)

var cookieLine = regexp.MustCompile(`COOKIE: ([0-9A-Fa-f]+)`)

func run(t *testing.T, tool string, args ...string) string {
	t.Helper()
	out, err := exec.Command(testenv.RequireTool(t, tool), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", tool, strings.Join(args, " "), err, out)
	}
	return string(out)
}

var statusLine = regexp.MustCompile(`status: ([A-Z]+)`)

// last returns the last match of re's group in out.
func last(re *regexp.Regexp, out string) string {
	m := re.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return ""
	}
	return strings.ToLower(m[len(m)-1][1])
}

// TestCookieClients: dig and kdig learn a server cookie from us, and a
// second query sending it back is answered, the cookie echoed; with
// require_cookie_udp, a client cookie alone gets BADCOOKIE and the retry
// with the cookie it carried is answered.
func TestCookieClients(t *testing.T) {
	secret, _ := dnsserver.ParseCookieSecret("e5e973e5a6b2a43f48e7dc849e37bfcf")
	_, addr := startServer(t, dnsserver.Config{CookieSecrets: []dnsserver.CookieSecret{secret}})
	_, strict := startServer(t, dnsserver.Config{CookieSecrets: []dnsserver.CookieSecret{secret}, RequireCookieUDP: true})
	for _, c := range []struct {
		tool  string
		args  []string
		retry string // the option that retries after BADCOOKIE
	}{
		{"kdig", []string{"+norec"}, ""}, // kdig retries by itself
		{"dig", []string{"+norec", "+nobadcookie"}, "+badcookie"},
	} {
		t.Run(c.tool, func(t *testing.T) {
			ask := func(addr string, extra ...string) string {
				host, port, _ := strings.Cut(addr, ":")
				args := append([]string{"@" + host, "-p", port}, c.args...)
				return run(t, c.tool, append(append(args, extra...), "example.com", "SOA")...)
			}
			first := ask(addr, "+cookie")
			cookie := last(cookieLine, first)
			if st := last(statusLine, first); st != "noerror" || len(cookie) != 48 {
				t.Fatalf("first query: status %s, cookie %q\n%s", st, cookie, first)
			}
			second := ask(addr, "+cookie="+cookie)
			if st, got := last(statusLine, second), last(cookieLine, second); st != "noerror" || got != cookie {
				t.Fatalf("sending the cookie back: status %s, cookie %s (sent %s)\n%s", st, got, cookie, second)
			}
			// require_cookie_udp: a client cookie alone is BADCOOKIE, with
			// a fresh cookie; the client retries with it and is answered.
			args := []string{"+cookie=" + cookie[:16]}
			if c.retry != "" {
				args = append(args, c.retry)
			}
			out := ask(strict, args...)
			// kdig prints both replies; dig says ";; BADCOOKIE, retrying."
			sts := statusLine.FindAllStringSubmatch(out, -1)
			bad := strings.Contains(out, "BADCOOKIE, retrying") || (len(sts) > 1 && sts[0][1] == "BADCOOKIE")
			if !bad || len(sts) == 0 || sts[len(sts)-1][1] != "NOERROR" {
				t.Fatalf("require_cookie_udp: want BADCOOKIE, then NOERROR on the retry\n%s", out)
			}
			if got := last(cookieLine, out); len(got) != 48 || got[:16] != cookie[:16] {
				t.Fatalf("require_cookie_udp: cookie %q", got)
			}
			t.Logf("%s: learned %s, echoed; BADCOOKIE then NOERROR with require_cookie_udp", c.tool, cookie)
		})
	}
}

// TestCookieDnsperf: dnsperf sending a client cookie (-E) gets every
// query answered.
func TestCookieDnsperf(t *testing.T) {
	_, addr := startServer(t, dnsserver.Config{})
	host, port, _ := strings.Cut(addr, ":")
	dir := t.TempDir()
	data := dir + "/queries"
	if err := os.WriteFile(data, []byte("example.com A\nnope.example.com A\nx.wild.example.com A\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := run(t, "dnsperf", "-s", host, "-p", port, "-d", data, "-n", "200", "-E", "10:0123456789abcdef", "-q", "10")
	t.Logf("%s", out)
	m := regexp.MustCompile(`Queries completed:\s+(\d+)`).FindStringSubmatch(out)
	if m == nil || m[1] != "600" || strings.Contains(out, "BADCOOKIE") || strings.Contains(out, "FORMERR") {
		t.Fatalf("dnsperf -E: want 600 queries completed without BADCOOKIE or FORMERR\n%s", out)
	}
}
