module github.com/shoestring-dns/shoestring

go 1.26

require (
	github.com/jwhited/corebgp v0.8.5
	github.com/miekg/dns v1.1.73
	github.com/osrg/gobgp/v4 v4.8.0
	go.etcd.io/bbolt v1.5.0
	golang.org/x/net v0.57.0
	golang.org/x/sys v0.47.0
	gopkg.in/yaml.v3 v3.0.1
)
