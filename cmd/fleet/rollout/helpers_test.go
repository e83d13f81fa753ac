package rollout

import "github.com/shoestring-dns/shoestring/firmware/api"

func prefix(p, state string) api.Prefix { return api.Prefix{Prefix: p, State: state} }
