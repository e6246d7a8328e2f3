// Package geotest builds small MaxMind-format databases (GeoIP2 City and
// ASN fields in one file) with github.com/maxmind/mmdbwriter, so that tests
// and the evaluation harness control exactly where each address is.
package geotest

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Network is one range and what the database says of it. Empty fields
// are left out of the record.
type Network struct {
	Prefix   netip.Prefix
	Country  string // ISO code
	City     string
	Lat, Lon float64
	ASN      uint32
	ASOrg    string
}

// Build returns a database holding nets. Reserved ranges (documentation,
// private) are allowed, so tests can use 192.0.2.0/24 and friends.
func Build(nets []Network) ([]byte, error) {
	w, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType: "Lanyard-Test-City-ASN", IncludeReservedNetworks: true, RecordSize: 28,
		Languages: []string{"en"}, Description: map[string]string{"en": "Lanyard test database"},
	})
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		rec := mmdbtype.Map{}
		if n.Country != "" {
			rec["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(n.Country)}
		}
		if n.City != "" {
			rec["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(n.City)}}
		}
		if n.Lat != 0 || n.Lon != 0 {
			rec["location"] = mmdbtype.Map{"latitude": mmdbtype.Float64(n.Lat), "longitude": mmdbtype.Float64(n.Lon)}
		}
		if n.ASN != 0 {
			rec["autonomous_system_number"] = mmdbtype.Uint32(n.ASN)
			rec["autonomous_system_organization"] = mmdbtype.String(n.ASOrg)
		}
		p := n.Prefix.Masked()
		if err := w.Insert(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}, rec); err != nil {
			return nil, fmt.Errorf("insert %s: %w", p, err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteFile builds a database holding nets and writes it to path.
func WriteFile(path string, nets []Network) error {
	b, err := Build(nets)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
