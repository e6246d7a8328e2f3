package risk

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"
	"strings"

	"github.com/oschwald/maxminddb-golang/v2"
)

// ErrGeoIP wraps every failure to open or check a GeoIP database, so the
// server can report it as a configuration error.
var ErrGeoIP = errors.New("geoip database")

// Place is where an address is, as far as the GeoIP database knows. The
// zero Place means unknown; each field may be missing on its own.
type Place struct {
	Country  string // ISO 3166-1 alpha-2, "" when unknown
	City     string // English name, "" when unknown
	Lat, Lon float64
	HasLoc   bool   // Lat and Lon are set
	ASN      uint32 // 0 when unknown
	ASOrg    string
}

// String names the place for people: "Leeds, GB", "GB", or "" when unknown.
func (p Place) String() string {
	switch {
	case p.City != "" && p.Country != "":
		return p.City + ", " + p.Country
	case p.City != "":
		return p.City
	}
	return p.Country
}

// GeoIP looks addresses up in MaxMind-format databases (GeoIP2/GeoLite2
// City or Country, and ASN; or one database holding both kinds of field).
// A nil *GeoIP knows nothing. It is safe for concurrent use.
type GeoIP struct {
	readers []*maxminddb.Reader
}

// geoRecord is the part of a GeoIP2 City and ASN record the engine reads.
type geoRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	City struct {
		Names struct {
			EN string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
	Location struct {
		Latitude  *float64 `maxminddb:"latitude"`
		Longitude *float64 `maxminddb:"longitude"`
	} `maxminddb:"location"`
	ASN   uint32 `maxminddb:"autonomous_system_number"`
	ASOrg string `maxminddb:"autonomous_system_organization"`
}

// OpenGeoIP opens and verifies the databases at paths (one or more; later
// ones fill what earlier ones lack). Errors wrap ErrGeoIP and name the
// file: a missing file, one that is not a MaxMind DB, or a corrupt one.
func OpenGeoIP(paths ...string) (*GeoIP, error) {
	g := &GeoIP{}
	for _, p := range paths {
		r, err := maxminddb.Open(p)
		if err != nil {
			g.Close()
			return nil, fmt.Errorf("%w %s: %w", ErrGeoIP, p, err)
		}
		if err := r.Verify(); err != nil {
			r.Close()
			g.Close()
			return nil, fmt.Errorf("%w %s: corrupt: %w", ErrGeoIP, p, err)
		}
		g.readers = append(g.readers, r)
	}
	return g, nil
}

// OpenGeoIPBytes is OpenGeoIP for a database held in memory (tests).
func OpenGeoIPBytes(b []byte) (*GeoIP, error) {
	r, err := maxminddb.OpenBytes(b)
	if err == nil {
		if err = r.Verify(); err != nil {
			r.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrGeoIP, err)
	}
	return &GeoIP{readers: []*maxminddb.Reader{r}}, nil
}

// Lookup returns what the databases know of ip; the zero Place when
// nothing, including for a nil GeoIP or an invalid address.
func (g *GeoIP) Lookup(ip netip.Addr) Place {
	var p Place
	if g == nil || !ip.IsValid() {
		return p
	}
	ip = ip.Unmap()
	for _, r := range g.readers {
		var rec geoRecord
		if err := r.Lookup(ip).Decode(&rec); err != nil {
			continue
		}
		if p.Country == "" {
			p.Country = strings.ToUpper(rec.Country.ISOCode)
		}
		if p.City == "" {
			p.City = rec.City.Names.EN
		}
		if !p.HasLoc && rec.Location.Latitude != nil && rec.Location.Longitude != nil {
			p.Lat, p.Lon, p.HasLoc = *rec.Location.Latitude, *rec.Location.Longitude, true
		}
		if p.ASN == 0 {
			p.ASN, p.ASOrg = rec.ASN, rec.ASOrg
		}
	}
	return p
}

// Close releases the databases.
func (g *GeoIP) Close() error {
	if g == nil {
		return nil
	}
	var errs []error
	for _, r := range g.readers {
		errs = append(errs, r.Close())
	}
	g.readers = nil
	return errors.Join(errs...)
}

// Anonymisers is an operator's list of address ranges of anonymising
// networks (VPN providers, Tor exits, private relays). A nil *Anonymisers
// is empty. It is safe for concurrent use once loaded.
type Anonymisers struct {
	ranges []addrRange // disjoint, sorted; IPv4 as IPv4 addresses
	n      int         // entries read
}

type addrRange struct{ first, last netip.Addr }

// MaxAnonymiserLine bounds one line of the list.
const MaxAnonymiserLine = 1024

// LoadAnonymisers reads a list of ranges, one a line: a CIDR ("192.0.2.0/24"),
// or a single address. Blank lines and text after "#" are ignored. An
// entry that does not parse is an error naming its line.
func LoadAnonymisers(r io.Reader) (*Anonymisers, error) {
	a := &Anonymisers{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxAnonymiserLine)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		p, err := netip.ParsePrefix(line)
		if err != nil {
			ip, err2 := netip.ParseAddr(line)
			if err2 != nil || ip.Zone() != "" {
				return nil, fmt.Errorf("line %d: want an address range such as 192.0.2.0/24, got %q", n, line)
			}
			p = netip.PrefixFrom(ip, ip.BitLen())
		}
		if p.Addr().Is4In6() {
			if p.Bits() < 96 {
				return nil, fmt.Errorf("line %d: an IPv4-mapped range must be /96 or longer, got %q", n, line)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		p = p.Masked()
		a.ranges = append(a.ranges, addrRange{p.Addr(), lastAddr(p)})
		a.n++
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read anonymiser list: %w", err)
	}
	slices.SortFunc(a.ranges, func(x, y addrRange) int { return x.first.Compare(y.first) })
	merged := a.ranges[:0]
	for _, r := range a.ranges {
		if k := len(merged) - 1; k >= 0 && merged[k].last.Is4() == r.first.Is4() &&
			(r.first.Compare(merged[k].last) <= 0 || merged[k].last.Next() == r.first) {
			if r.last.Compare(merged[k].last) > 0 {
				merged[k].last = r.last
			}
			continue
		}
		merged = append(merged, r)
	}
	a.ranges = merged
	return a, nil
}

// lastAddr returns the last address of a masked prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Len returns how many entries the list was loaded from.
func (a *Anonymisers) Len() int {
	if a == nil {
		return 0
	}
	return a.n
}

// Contains reports whether ip is in one of the ranges.
func (a *Anonymisers) Contains(ip netip.Addr) bool {
	if a == nil || !ip.IsValid() {
		return false
	}
	ip = ip.Unmap().WithZone("")
	// The last range starting at or before ip is the only one that can hold it.
	i, found := slices.BinarySearchFunc(a.ranges, ip, func(r addrRange, ip netip.Addr) int { return r.first.Compare(ip) })
	if found {
		return true
	}
	return i > 0 && a.ranges[i-1].first.Is4() == ip.Is4() && ip.Compare(a.ranges[i-1].last) <= 0
}

// distanceKm is the great-circle distance between two points.
func distanceKm(lat1, lon1, lat2, lon2 float64) float64 {
	const r = 6371.0
	rad := math.Pi / 180
	dlat, dlon := (lat2-lat1)*rad, (lon2-lon1)*rad
	h := math.Sin(dlat/2)*math.Sin(dlat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dlon/2)*math.Sin(dlon/2)
	return 2 * r * math.Asin(math.Min(1, math.Sqrt(h)))
}
