package api

import (
	"errors"
	"strings"

	"github.com/shoestring-dns/shoestring/firmware/secondary"
	"github.com/shoestring-dns/shoestring/firmware/zone"
	"github.com/shoestring-dns/shoestring/firmware/zones"
)

// The zone endpoints (api.go) and the status page read and change the
// node's zones through Zones, and turn what package zones reports into
// ZoneInfo here.

// Zones is what the zone endpoints need: package zones' *Zones.
type Zones interface {
	List() ([]zones.Info, error)
	// Get returns zones.ErrNotFound for a zone the node does not have.
	Get(origin string) (zones.Info, *zone.Zone, error)
	PutText(origin string, text []byte, source string) (zones.Info, error)
	Delete(origin string) error
}

// ZoneList lists every zone as the API shows it (metrics read it too).
func ZoneList(zs Zones) ([]ZoneInfo, error) {
	infos, err := zs.List()
	if err != nil {
		return nil, err
	}
	out := make([]ZoneInfo, 0, len(infos))
	for _, in := range infos {
		out = append(out, zoneInfo(in))
	}
	return out, nil
}

func zoneInfo(in zones.Info) ZoneInfo {
	return ZoneInfo{Origin: in.Origin, Serial: in.Serial, Records: in.Records, Updated: in.Updated, Source: in.Source,
		Serving: in.Serving, ServedSerial: in.ServedSerial, Problem: in.Problem}
}

// masterText is a zone's records in master file form, one a line.
func masterText(z *zone.Zone) string {
	var b strings.Builder
	for _, rr := range z.Records {
		b.WriteString(rr.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// isNotFound: errors the API answers with 404.
func isNotFound(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, zones.ErrNotFound) || errors.Is(err, secondary.ErrNotSecondary)
}
