package diff

import (
	"encoding/binary"
	"strings"

	"github.com/miekg/dns"
)

// Case is one query of the corpus. Name is category/label and becomes the
// subtest name.
type Case struct {
	Name     string
	Category string
	Note     string // what the case is about, for whoever reads a failure
	Q        Query
}

// mod changes a query away from the default (UDP, EDNS with a 1232-octet
// buffer, RD clear) and names the change in the case label.
type mod struct {
	label string
	apply func(*Query)
}

var (
	noEDNS = mod{"noedns", func(q *Query) { q.EDNS = false }}
	tcp    = mod{"tcp", func(q *Query) { q.TCP = true }}
	do     = mod{"do", func(q *Query) { q.DO = true }}
	nsid   = mod{"nsid", func(q *Query) { q.NSID = true }}
	rd     = mod{"rd", func(q *Query) { q.RD = true }}
	ch     = mod{"ch", func(q *Query) { q.Class = dns.ClassCHAOS }}
)

func bufsize(n uint16) mod {
	return mod{"bufsize" + itoa(int(n)), func(q *Query) { q.BufSize = n }}
}

func ednsVersion(v uint8) mod {
	return mod{"ednsver" + itoa(int(v)), func(q *Query) { q.Version = v }}
}

func class(c uint16) mod {
	return mod{"class" + itoa(int(c)), func(q *Query) { q.Class = c }}
}

func opcode(o int) mod {
	return mod{"opcode" + itoa(o), func(q *Query) { q.Opcode = o }}
}

func ednsOpt(o dns.EDNS0) mod {
	return mod{"opt" + itoa(int(o.Option())), func(q *Query) { q.Options = append(q.Options, o) }}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

type corpus struct {
	cases []Case
	seen  map[string]bool
}

func (c *corpus) add(category, note, name string, qtype uint16, mods ...mod) {
	q := Query{Name: name, Type: qtype, EDNS: true, BufSize: 1232}
	label := name + "_" + dns.Type(qtype).String()
	for _, m := range mods {
		m.apply(&q)
		label += "+" + m.label
	}
	c.push(Case{Name: category + "/" + label, Category: category, Note: note, Q: q})
}

func (c *corpus) raw(category, label, note string, wire []byte) {
	c.push(Case{Name: category + "/" + label, Category: category, Note: note, Q: Query{Raw: wire}})
}

func (c *corpus) push(k Case) {
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	if c.seen[k.Name] {
		panic("duplicate case " + k.Name)
	}
	c.seen[k.Name] = true
	c.cases = append(c.cases, k)
}

// buildCorpus returns every case, grouped by category in a fixed order.
func buildCorpus() []Case {
	c := &corpus{}
	const (
		A, AAAA, NS, SOA, MX, TXT, CNAME, DNAME, DS, SRV = dns.TypeA, dns.TypeAAAA, dns.TypeNS, dns.TypeSOA,
			dns.TypeMX, dns.TypeTXT, dns.TypeCNAME, dns.TypeDNAME, dns.TypeDS, dns.TypeSRV
		ANY = dns.TypeANY
	)

	// Exact matches, in every zone.
	for _, q := range []struct {
		name string
		t    uint16
	}{
		{"example.com.", SOA}, {"example.com.", NS}, {"example.com.", A}, {"example.com.", AAAA},
		{"example.com.", MX}, {"example.com.", TXT}, {"example.com.", dns.TypeCAA},
		{"www.example.com.", A}, {"www.example.com.", AAAA}, {"www.example.com.", TXT},
		{"ns1.example.com.", A}, {"ns1.example.com.", AAAA}, {"mail.example.com.", A},
		{"short.example.com.", A}, {"mixedcase.example.com.", A},
		{"_sip._udp.example.com.", SRV}, {"_http._tcp.example.com.", SRV},
		{"hinfo.example.com.", dns.TypeHINFO}, {"sshfp.example.com.", dns.TypeSSHFP},
		{"naptr.example.com.", dns.TypeNAPTR}, {"1.2.0.192.example.com.", dns.TypePTR},
		{"unknown.example.com.", 65534}, {"host.a.b.c.ent.example.com.", A}, {"x.y.deep.example.com.", TXT},
		{"example.", SOA}, {"example.", NS}, {"host1.example.", A},
		{"child.unserved.test.", SOA}, {"child.unserved.test.", NS}, {"www.child.unserved.test.", A},
		{"ns1.child.unserved.test.", A},
	} {
		c.add("exact", "the name and type exist", q.name, q.t)
	}

	// NODATA: the name exists, the type does not; SOA in authority with
	// the negative TTL (min of SOA TTL and MINIMUM, RFC 2308).
	for _, q := range []struct {
		name string
		t    uint16
	}{
		{"www.example.com.", MX}, {"www.example.com.", dns.TypeCAA}, {"ns1.example.com.", TXT},
		{"mail.example.com.", MX}, {"_sip._udp.example.com.", A}, {"unknown.example.com.", A},
		{"www.example.com.", 65534}, {"example.com.", DS}, {"example.com.", dns.TypeDNSKEY},
		{"example.com.", dns.TypeNSEC3PARAM}, {"example.com.", dns.TypeRRSIG}, {"www.example.com.", dns.TypeNSEC},
		{"example.com.", dns.TypeSPF}, {"child.unserved.test.", MX}, {"host1.example.", AAAA},
	} {
		c.add("nodata", "the name exists without the type", q.name, q.t)
	}

	// NXDOMAIN.
	for _, q := range []struct {
		name string
		t    uint16
	}{
		{"nothere.example.com.", A}, {"nothere.example.com.", AAAA}, {"a.b.nothere.example.com.", A},
		{"www2.example.com.", MX}, {"x.www.example.com.", A}, {"x.mail.example.com.", MX},
		{"z.x.y.deep.example.com.", A}, {"nothere.sub.example.com.", A}, {"nothere.child.unserved.test.", A},
		{"nx.host1.example.", A}, {"www.example.com.example.com.", A},
	} {
		c.add("nxdomain", "no such name; SOA with the negative TTL", q.name, q.t)
	}
	c.add("nxdomain", "no such name, over TCP", "nothere.example.com.", A, tcp)
	c.add("nxdomain", "no such name, without EDNS", "nothere.example.com.", A, noEDNS)

	// Empty non-terminals: exist without data, so NODATA, not NXDOMAIN.
	for _, q := range []struct {
		name string
		t    uint16
	}{
		{"c.ent.example.com.", A}, {"b.c.ent.example.com.", A}, {"a.b.c.ent.example.com.", TXT},
		{"ent.example.com.", A}, {"ent.example.com.", NS}, {"y.deep.example.com.", TXT}, {"deep.example.com.", A},
		{"_udp.example.com.", SRV}, {"_tcp.example.com.", TXT}, {"nothere.c.ent.example.com.", A},
		{"nothere.y.deep.example.com.", A},
	} {
		c.add("ent", "empty non-terminal (or below one)", q.name, q.t)
	}

	// CNAME.
	for _, q := range []struct {
		name, note string
		t          uint16
	}{
		{"alias.example.com.", "CNAME to an A in zone", A},
		{"alias.example.com.", "CNAME followed for AAAA", AAAA},
		{"alias.example.com.", "CNAME followed for TXT", TXT},
		{"alias.example.com.", "CNAME to a name without MX: NOERROR, CNAME and SOA", MX},
		{"alias.example.com.", "qtype CNAME: the CNAME only", CNAME},
		{"alias.example.com.", "qtype ANY at a CNAME", ANY},
		{"chain1.example.com.", "in-zone chain of four", A},
		{"chain2.example.com.", "in-zone chain of three", AAAA},
		{"chain1.example.com.", "qtype CNAME at the head of a chain", CNAME},
		{"ext.example.com.", "CNAME out of zone to a name not served: stop", A},
		{"extserved.example.com.", "CNAME to a name in another served zone", A},
		{"extserved.example.com.", "CNAME to another served zone's wildcard owner", MX},
		{"todeleg.example.com.", "CNAME into a delegation", A},
		{"tosub.example.com.", "CNAME into a nested zone served here", A},
		{"towild.example.com.", "CNAME to a wildcard-synthesized name", A},
		{"towild.example.com.", "CNAME to a wildcard-synthesized name, TXT", TXT},
		{"toent.example.com.", "CNAME to an empty non-terminal", A},
		{"dangling.example.com.", "CNAME to a name that does not exist: NXDOMAIN", A},
		{"loop1.example.com.", "CNAME loop of two", A},
		{"loop2.example.com.", "CNAME loop of two, other end", TXT},
		{"selfloop.example.com.", "CNAME to itself", A},
		{"todname.example.com.", "CNAME to a name under a DNAME", A},
		{"foo.cnwild.example.com.", "wildcard CNAME", A},
		{"foo.cnwild.example.com.", "wildcard CNAME, qtype CNAME", CNAME},
		{"a.b.cnwild.example.com.", "wildcard CNAME, two labels", AAAA},
	} {
		c.add("cname", q.note, q.name, q.t)
	}
	c.add("cname", "chain over TCP", "chain1.example.com.", A, tcp)

	// Delegations: referrals have AA clear, NS in authority, glue in
	// additional; DS is answered by the parent.
	for _, q := range []struct {
		name, note string
		t          uint16
	}{
		{"host.deleg.example.com.", "referral with in- and out-of-bailiwick NS", A},
		{"deleg.example.com.", "NS at the cut: a referral, not an answer", NS},
		{"deleg.example.com.", "A at the cut", A},
		{"deleg.example.com.", "DS at the cut: the parent's NODATA", DS},
		{"ns1.deleg.example.com.", "glue is not authoritative: referral", A},
		{"ns1.deleg.example.com.", "glue AAAA: referral", AAAA},
		{"a.b.deleg.example.com.", "deep below the cut", MX},
		{"host.extdeleg.example.com.", "referral without glue", A},
		{"extdeleg.example.com.", "NS at a cut with out-of-bailiwick NS", NS},
		{"host.indeleg.example.com.", "NS names that are authoritative data here", A},
		{"host.sibdeleg.example.com.", "sibling glue", A},
		{"host.bigdeleg.example.com.", "thirteen NS with A and AAAA glue", A},
		{"host.subdel.example.", "RFC 4592 zone's delegation", A},
		{"subdel.example.", "NS at the RFC 4592 zone's cut", NS},
		{"subdel.example.", "DS at the RFC 4592 zone's cut", DS},
		{"host.deeper.sub.example.com.", "referral from the child zone", A},
		{"deeper.sub.example.com.", "DS in the child zone at its own cut", DS},
	} {
		c.add("delegation", q.note, q.name, q.t)
	}
	c.add("delegation", "referral over TCP", "host.deleg.example.com.", A, tcp)
	c.add("delegation", "many glue records in 512 octets", "host.bigdeleg.example.com.", A, noEDNS)
	c.add("delegation", "many glue records over TCP", "host.bigdeleg.example.com.", A, tcp)
	c.add("delegation", "referral with RD set", "host.deleg.example.com.", A, rd)

	// Nested zones: example.com. and sub.example.com. are both served;
	// the closest enclosing zone answers, except DS, which is the parent's.
	for _, q := range []struct {
		name, note string
		t          uint16
	}{
		{"sub.example.com.", "child apex SOA", SOA},
		{"sub.example.com.", "child apex NS: the child answers", NS},
		{"sub.example.com.", "child apex A", A},
		{"sub.example.com.", "DS: the parent answers (NODATA)", DS},
		{"sub.example.com.", "child apex NODATA", TXT},
		{"www.sub.example.com.", "name in the child", A},
		{"ns1.sub.example.com.", "name that is glue in the parent and data in the child", A},
		{"foo.wild.sub.example.com.", "wildcard in the child", TXT},
		{"nothere.sub.example.com.", "NXDOMAIN from the child", TXT},
	} {
		c.add("nested", q.note, q.name, q.t)
	}

	// Names in no zone served here.
	for _, q := range []struct {
		name string
		t    uint16
	}{
		{"www.example.org.", A}, {"example.org.", SOA}, {"com.", SOA}, {".", SOA}, {".", NS},
		{"unserved.test.", SOA}, {"www.unserved.test.", A}, {"test.", NS}, {"example.net.", A},
		{"localhost.", A}, {"example.test.", A}, {"xample.com.", A},
	} {
		c.add("refused", "no zone served here contains the name", q.name, q.t)
	}
	c.add("refused", "no zone, RD set", "www.example.org.", A, rd)
	c.add("refused", "no zone, over TCP", "www.example.org.", A, tcp)
	c.add("refused", "no zone, without EDNS", "www.example.org.", A, noEDNS)

	// RFC 4592 section 2.2.1: every query the RFC lists, then more.
	for _, q := range []struct {
		name, note string
		t          uint16
	}{
		{"host3.example.", "RFC 4592: synthesized from *.example MX", MX},
		{"host3.example.", "RFC 4592: NODATA at the wildcard", A},
		{"foo.bar.example.", "RFC 4592: synthesized TXT, two labels", TXT},
		{"host1.example.", "RFC 4592: host1 exists, no synthesis", MX},
		{"sub.*.example.", "RFC 4592: sub.*.example exists, no synthesis", MX},
		{"_telnet._tcp.host1.example.", "RFC 4592: _tcp.host1 exists (ENT): NXDOMAIN", SRV},
		{"host.subdel.example.", "RFC 4592: zone cut, referral", MX},
		{"ghost.*.example.", "RFC 4592: *.example exists, *.*.example does not: NXDOMAIN", MX},
		{"sub.*.example.", "the non-wildcard under a wildcard", TXT},
		{"*.example.", "the wildcard owner itself", TXT},
		{"*.example.", "the wildcard owner, NODATA", A},
		{"_ssh._tcp.host1.example.", "exact SRV", SRV},
		{"_tcp.host1.example.", "ENT under a wildcard zone", SRV},
		{"host2.example.", "ENT blocks the wildcard", A},
		{"x.host2.example.", "closest encloser is an ENT without wildcard", TXT},
		{"foo.sub.*.example.", "below sub.*.example", TXT},
		{"host3.example.", "synthesized, qtype ANY", ANY},
		{"foo.wild.example.com.", "wildcard match", A},
		{"foo.wild.example.com.", "wildcard match, TXT", TXT},
		{"foo.wild.example.com.", "wildcard NODATA", MX},
		{"a.b.wild.example.com.", "wildcard match, two labels", A},
		{"exists.wild.example.com.", "exact match beside a wildcard", A},
		{"exists.wild.example.com.", "exists without TXT: NODATA, no synthesis", TXT},
		{"x.exists.wild.example.com.", "closer encloser exists: NXDOMAIN", A},
		{"ent.wild.example.com.", "ENT beside a wildcard: NODATA", A},
		{"x.ent.wild.example.com.", "ENT blocks the wildcard: NXDOMAIN", A},
		{"wild.example.com.", "the wildcard's parent is an ENT", A},
		{"*.wild.example.com.", "the wildcard owner itself", TXT},
		{"foo.mxwild.example.com.", "wildcard MX with additional data", MX},
		{"foo.mxwild.example.com.", "wildcard MX, NODATA for A", A},
	} {
		c.add("wildcard", q.note, q.name, q.t)
	}
	c.add("wildcard", "synthesized over TCP", "host3.example.", MX, tcp)

	// DNAME, RFC 6672.
	long := strings.Repeat("x", 63)
	for _, q := range []struct {
		name, note string
		t          uint16
	}{
		{"dn.example.com.", "the DNAME owner's own A: no substitution", A},
		{"dn.example.com.", "the DNAME itself", DNAME},
		{"dn.example.com.", "the DNAME owner's TXT", TXT},
		{"dn.example.com.", "the DNAME owner has no CNAME: NODATA", CNAME},
		{"dn.example.com.", "qtype ANY at a DNAME owner", ANY},
		{"www.dn.example.com.", "synthesis to an unserved target", A},
		{"a.b.dn.example.com.", "synthesis, two labels", MX},
		{"www.dn.example.com.", "qtype DNAME below the owner", DNAME},
		{"www.dn.example.com.", "qtype CNAME below the owner", CNAME},
		{"www.dn2.example.com.", "synthesis to an in-zone target, followed", A},
		{"www.dn2.example.com.", "in-zone target without the type", AAAA},
		{"nothere.dn2.example.com.", "in-zone target that does not exist", A},
		{"ok.dnlong.example.com.", "synthesis to a long in-zone name", A},
		{long + ".dnlong.example.com.", "synthesized name over 255 octets: YXDOMAIN", A},
	} {
		c.add("dname", q.note, q.name, q.t)
	}
	c.add("dname", "synthesis over TCP", "www.dn.example.com.", A, tcp)

	// Query types that are not data types.
	for _, q := range []struct {
		name, note string
		t          uint16
	}{
		{"example.com.", "ANY at the apex (RFC 8482 allows a subset)", ANY},
		{"www.example.com.", "ANY at a name with three types", ANY},
		{"nothere.example.com.", "ANY at a name that does not exist", ANY},
		{"c.ent.example.com.", "ANY at an ENT", ANY},
		{"host.deleg.example.com.", "ANY below a cut", ANY},
		{"example.com.", "AXFR over UDP", dns.TypeAXFR},
		{"example.com.", "IXFR over UDP without an SOA", dns.TypeIXFR},
		{"www.example.com.", "MAILA", dns.TypeMAILA},
		{"www.example.com.", "MAILB", dns.TypeMAILB},
		{"www.example.com.", "qtype 0", dns.TypeNone},
		{"www.example.com.", "qtype OPT", dns.TypeOPT},
		{"www.example.com.", "qtype TKEY", dns.TypeTKEY},
		{"www.example.com.", "qtype TSIG", dns.TypeTSIG},
		{"www.example.com.", "unassigned qtype", 65000},
	} {
		c.add("qtype", q.note, q.name, q.t)
	}
	c.add("qtype", "ANY over TCP", "www.example.com.", ANY, tcp)
	c.add("qtype", "ANY without EDNS", "example.com.", ANY, noEDNS)
	c.add("qtype", "class CH for an IN zone", "www.example.com.", A, ch)
	c.add("qtype", "class ANY", "www.example.com.", A, class(dns.ClassANY))
	c.add("qtype", "class NONE", "www.example.com.", A, class(dns.ClassNONE))
	c.add("qtype", "class HS", "www.example.com.", A, class(dns.ClassHESIOD))
	c.add("qtype", "unassigned class", "www.example.com.", A, class(42))

	// EDNS(0), RFC 6891.
	for _, m := range [][]mod{
		{noEDNS}, {bufsize(512)}, {bufsize(4096)}, {bufsize(0)}, {bufsize(65535)}, {do}, {nsid},
		{nsid, do}, {ednsVersion(1)}, {ednsVersion(1), do}, {ednsVersion(1), nsid}, {ednsVersion(255)},
		{ednsOpt(&dns.EDNS0_LOCAL{Code: 65001, Data: []byte{1, 2, 3}})},
		{ednsOpt(&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"})},
		{ednsOpt(&dns.EDNS0_PADDING{Padding: make([]byte, 16)})},
		{tcp, nsid}, {rd, do},
	} {
		c.add("edns", "EDNS variants of a plain answer", "www.example.com.", A, m...)
	}
	c.add("edns", "BADVERS for a name that does not exist", "nothere.example.com.", A, ednsVersion(1))
	c.add("edns", "BADVERS for a name in no zone", "www.example.org.", A, ednsVersion(1))
	c.add("edns", "NSID on NXDOMAIN", "nothere.example.com.", A, nsid)
	c.add("edns", "NSID on REFUSED", "www.example.org.", A, nsid)
	c.add("edns", "DO on an unsigned zone's NXDOMAIN", "nothere.example.com.", A, do)

	// Truncation: big needs more than 512 octets, huge more than 1232.
	for _, m := range [][]mod{{noEDNS}, {bufsize(512)}, {}, {bufsize(4096)}, {tcp}, {tcp, noEDNS}} {
		c.add("truncation", "TXT set of ~900 octets", "big.example.com.", TXT, m...)
	}
	for _, m := range [][]mod{{noEDNS}, {}, {bufsize(4096)}, {bufsize(65535)}, {tcp}, {tcp, noEDNS}} {
		c.add("truncation", "TXT set of ~2300 octets", "huge.example.com.", TXT, m...)
	}
	for _, m := range [][]mod{{noEDNS}, {}, {tcp, noEDNS}} {
		c.add("truncation", "40 A records", "manya.example.com.", A, m...)
	}
	for _, m := range [][]mod{{noEDNS}, {}, {tcp}} {
		c.add("truncation", "50 AAAA records", "manyaaaa.example.com.", AAAA, m...)
	}
	for _, m := range [][]mod{{noEDNS}, {}, {tcp}} {
		c.add("truncation", "MX answer fits, its additional data does not", "mx.example.com.", MX, m...)
	}
	c.add("truncation", "ANY at a big name without EDNS", "big.example.com.", ANY, noEDNS)
	c.add("truncation", "CNAME to a big RRset", "alias.example.com.", A, bufsize(512))

	// 0x20: the question comes back in the query's case.
	for _, q := range []struct {
		name string
		t    uint16
	}{
		{"WwW.ExAmPlE.CoM.", A}, {"EXAMPLE.COM.", SOA}, {"HOST3.EXAMPLE.", MX}, {"Foo.Bar.Example.", TXT},
		{"NoThErE.example.com.", A}, {"Host.DELEG.example.com.", A}, {"WWW.DN.EXAMPLE.COM.", A},
		{"ALIAS.example.com.", A}, {"www.SUB.example.COM.", A}, {"MIXEDCASE.EXAMPLE.COM.", A},
		{"mIxEdCaSe.example.com.", A}, {"Www.Example.Org.", A}, {"C.Ent.Example.Com.", A},
		{"Www.Dn2.Example.Com.", A}, {"Chain1.Example.Com.", A}, {"*.Example.", TXT},
	} {
		c.add("case", "mixed-case query name", q.name, q.t)
	}
	c.add("case", "mixed case over TCP", "wWw.eXaMpLe.cOm.", AAAA, tcp)
	c.add("case", "mixed case, DNSSEC", "WwW.NsEc.TeSt.", A, do)
	c.add("case", "mixed case, NSEC3 NXDOMAIN", "NoThErE.NSEC3.test.", A, do)

	// CHAOS class, RFC 4892: id.server and hostname.bind are the
	// identity "diff-test"; version.bind is refused (hidden).
	for _, q := range []struct {
		name string
		t    uint16
		mods []mod
	}{
		{"id.server.", TXT, nil}, {"hostname.bind.", TXT, nil}, {"version.bind.", TXT, nil},
		{"version.server.", TXT, nil}, {"authors.bind.", TXT, nil}, {"id.server.", A, nil},
		{"foo.bind.", TXT, nil}, {"ID.SERVER.", TXT, nil}, {"id.server.", TXT, []mod{tcp}},
		{"id.server.", TXT, []mod{nsid}}, {"hostname.bind.", TXT, []mod{noEDNS}}, {"id.server.", ANY, nil},
	} {
		c.add("chaos", "CHAOS TXT identity query", q.name, q.t, append([]mod{ch}, q.mods...)...)
	}
	c.add("chaos", "CHAOS name in class IN: no zone", "id.server.", TXT)

	// Opcodes other than QUERY.
	for _, o := range []int{dns.OpcodeIQuery, dns.OpcodeStatus, 3, dns.OpcodeNotify, dns.OpcodeUpdate, 6, 15} {
		c.add("opcode", "opcode other than QUERY", "example.com.", SOA, opcode(o))
	}

	addMalformed(c)
	addDNSSEC(c)
	return c.cases
}

// addDNSSEC asks the same questions of the NSEC, NSEC3 and NSEC3 opt-out
// zones, mostly with DO set.
func addDNSSEC(c *corpus) {
	for _, z := range signedZones {
		o := z.Origin
		cat := "dnssec-" + strings.TrimSuffix(strings.TrimSuffix(o, "."), ".test")
		for _, q := range []struct {
			name, note string
			t          uint16
			mods       []mod
		}{
			{o, "apex SOA with RRSIG", dns.TypeSOA, []mod{do}},
			{o, "apex NS", dns.TypeNS, []mod{do}},
			{o, "DNSKEY", dns.TypeDNSKEY, []mod{do}},
			{o, "DNSKEY without DO", dns.TypeDNSKEY, nil},
			{o, "NSEC3PARAM", dns.TypeNSEC3PARAM, []mod{do}},
			{o, "qtype NSEC at the apex", dns.TypeNSEC, []mod{do}},
			{o, "qtype RRSIG at the apex", dns.TypeRRSIG, []mod{do}},
			{o, "ANY at the apex", dns.TypeANY, []mod{do}},
			{"www." + o, "signed A", dns.TypeA, []mod{do}},
			{"www." + o, "no RRSIG without DO", dns.TypeA, nil},
			{"www." + o, "NODATA proof", dns.TypeTXT, []mod{do}},
			{"www." + o, "NODATA without DO", dns.TypeTXT, nil},
			{"nothere." + o, "NXDOMAIN proof", dns.TypeA, []mod{do}},
			{"nothere." + o, "NXDOMAIN without DO", dns.TypeA, nil},
			{"a.b.nothere." + o, "NXDOMAIN proof, deeper", dns.TypeA, []mod{do}},
			{"foo.wild." + o, "wildcard answer with its proof", dns.TypeTXT, []mod{do}},
			{"foo.wild." + o, "wildcard NODATA proof", dns.TypeMX, []mod{do}},
			{"a.ent." + o, "ENT NODATA proof", dns.TypeA, []mod{do}},
			{"alias." + o, "signed CNAME followed", dns.TypeA, []mod{do}},
			{"secure." + o, "DS at a secure delegation", dns.TypeDS, []mod{do}},
			{"secure." + o, "DS without DO", dns.TypeDS, nil},
			{"host.secure." + o, "referral with DS", dns.TypeA, []mod{do}},
			{"insecure." + o, "no DS at an insecure delegation: proof", dns.TypeDS, []mod{do}},
			{"host.insecure." + o, "insecure referral with proof of no DS", dns.TypeA, []mod{do}},
			{"host.insecure2." + o, "insecure referral without glue", dns.TypeA, []mod{do}},
			{"insecure3." + o, "no DS at an insecure delegation without glue", dns.TypeDS, []mod{do}},
			{"x.dn." + o, "signed DNAME, unsigned synthesized CNAME", dns.TypeA, []mod{do}},
			{"nothere." + o, "NXDOMAIN proof over TCP", dns.TypeA, []mod{do, tcp}},
			{o, "DNSKEY with DO in 512 octets", dns.TypeDNSKEY, []mod{do, bufsize(512)}},
		} {
			c.add(cat, q.note, q.name, q.t, q.mods...)
		}
	}
}

// addMalformed adds queries sent as raw bytes: broken messages that a
// message library would refuse to build.
func addMalformed(c *corpus) {
	base := func(name string, qtype uint16) []byte {
		m := new(dns.Msg)
		m.Id = 0x4d2e
		m.Question = []dns.Question{{Name: name, Qtype: qtype, Qclass: dns.ClassINET}}
		b, err := m.Pack()
		if err != nil {
			panic(err)
		}
		return b
	}
	patch := func(b []byte, off int, v uint16) []byte {
		b = append([]byte(nil), b...)
		binary.BigEndian.PutUint16(b[off:], v)
		return b
	}
	const qd, an, ns, ar = 4, 6, 8, 10
	q := base("www.example.com.", dns.TypeA)
	question := q[12:]

	two := append(patch(q, qd, 2), question...)
	c.raw("malformed", "qdcount2", "two questions (RFC 9619: FORMERR)", two)
	c.raw("malformed", "qdcount0", "no question", patch(q, qd, 0)[:12])
	c.raw("malformed", "qdcount1-header-only", "QDCOUNT 1 and nothing after the header", q[:12])
	c.raw("malformed", "truncated-name", "question cut inside the name", q[:12+6])
	c.raw("malformed", "truncated-type", "question cut before QTYPE/QCLASS", q[:len(q)-4])
	c.raw("malformed", "truncated-class", "question cut inside QCLASS", q[:len(q)-1])
	c.raw("malformed", "short-header", "eleven octets", q[:11])
	c.raw("malformed", "empty", "zero octets", []byte{})
	resp := append([]byte(nil), q...)
	resp[2] |= 0x80 // QR
	c.raw("malformed", "qr-set", "a response sent as a query: must be ignored", resp)
	c.raw("malformed", "trailing-garbage", "octets after the question", append(append([]byte(nil), q...), 0xde, 0xad, 0xbe, 0xef))
	c.raw("malformed", "ancount1-missing", "ANCOUNT 1 without the record", patch(q, an, 1))
	c.raw("malformed", "arcount1-missing", "ARCOUNT 1 without the record", patch(q, ar, 1))
	c.raw("malformed", "nscount1-missing", "NSCOUNT 1 without the record", patch(q, ns, 1))

	// Names: a label type that does not exist (0x40), a compression
	// pointer to itself, a pointer past the end, a name over 255 octets.
	hdr := q[:12]
	tail := []byte{0, 1, 0, 1}
	withName := func(name []byte) []byte { return append(append(append([]byte(nil), hdr...), name...), tail...) }
	c.raw("malformed", "label-type-0x40", "extended label type", withName([]byte{0x41, 'a', 0}))
	c.raw("malformed", "pointer-loop", "compression pointer to itself", withName([]byte{0xc0, 12}))
	c.raw("malformed", "pointer-forward", "compression pointer past the end", withName([]byte{0xc0, 200}))
	var longName []byte
	for i := 0; i < 5; i++ {
		longName = append(longName, 63)
		longName = append(longName, []byte(strings.Repeat("a", 63))...)
	}
	c.raw("malformed", "name-over-255", "320-octet name", withName(append(longName, 0)))

	// EDNS: two OPT records, and an OPT whose owner is not the root.
	opt := []byte{0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0}
	twoOpt := append(append(append([]byte(nil), patch(q, ar, 2)...), opt...), opt...)
	c.raw("malformed", "two-opt", "two OPT records (RFC 6891: FORMERR)", twoOpt)
	badOwner := append(append([]byte(nil), patch(q, ar, 1)...), 0xc0, 12, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0)
	c.raw("malformed", "opt-owner-not-root", "OPT owned by the query name", badOwner)
}
