package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"

	"github.com/lanyard/lanyard/risk/geotest"
)

// The synthetic world: places, network operators and their address
// ranges, written out as a MaxMind-format database and an anonymiser list
// so that `idp risk replay` sees exactly what the harness saw.

type city struct {
	name, country string
	lat, lon      float64
}

var ukCities = []city{
	{"London", "GB", 51.507, -0.128}, {"Leeds", "GB", 53.801, -1.549}, {"Manchester", "GB", 53.481, -2.243},
	{"Birmingham", "GB", 52.486, -1.890}, {"Bristol", "GB", 51.455, -2.588}, {"Newcastle upon Tyne", "GB", 54.978, -1.618},
	{"Sheffield", "GB", 53.381, -1.470}, {"Nottingham", "GB", 52.954, -1.158}, {"Liverpool", "GB", 53.408, -2.992},
	{"Norwich", "GB", 52.630, 1.297}, {"Plymouth", "GB", 50.376, -4.143}, {"Leicester", "GB", 52.637, -1.140},
	{"York", "GB", 53.960, -1.087}, {"Exeter", "GB", 50.718, -3.534}, {"Cambridge", "GB", 52.205, 0.122},
	{"Southampton", "GB", 50.910, -1.404},
}

var holidayCities = []city{
	{"Malaga", "ES", 36.721, -4.421}, {"Palma", "ES", 39.570, 2.650}, {"Faro", "PT", 37.019, -7.930},
	{"Paris", "FR", 48.857, 2.352}, {"Rome", "IT", 41.903, 12.496}, {"Athens", "GR", 37.984, 23.728},
	{"Dublin", "IE", 53.350, -6.260}, {"Orlando", "US", 28.538, -81.379}, {"Antalya", "TR", 36.897, 30.713},
	{"Amsterdam", "NL", 52.370, 4.895},
}

var attackCities = []city{
	{"Moscow", "RU", 55.756, 37.617}, {"Lagos", "NG", 6.524, 3.379}, {"Sao Paulo", "BR", -23.551, -46.633},
	{"Hanoi", "VN", 21.028, 105.834}, {"Shanghai", "CN", 31.230, 121.474}, {"Bucharest", "RO", 44.427, 26.103},
	{"Ashburn", "US", 39.044, -77.487}, {"Frankfurt", "DE", 50.110, 8.682}, {"Singapore", "SG", 1.352, 103.820},
	{"Jakarta", "ID", -6.208, 106.846},
}

// operator is a network operator (an autonomous system) with address
// ranges, each /24 in one city.
type operator struct {
	asn      uint32
	name     string
	prefixes []netip.Prefix
	cityOf   []city // cityOf[i] is where prefixes[i] is
	anon     bool   // listed as anonymising
}

func (o *operator) addr(r *rand.Rand, i int) netip.Addr {
	b := o.prefixes[i].Addr().As4()
	b[3] = byte(1 + r.IntN(254))
	return netip.AddrFrom4(b)
}

func (o *operator) random(r *rand.Rand) (netip.Addr, int) {
	i := r.IntN(len(o.prefixes))
	return o.addr(r, i), i
}

// inCity returns the indexes of the operator's prefixes in c.
func (o *operator) inCity(c city) []int {
	var out []int
	for i, pc := range o.cityOf {
		if pc.name == c.name {
			out = append(out, i)
		}
	}
	return out
}

type world struct {
	next      uint32 // next /24 to hand out, as a uint32 of its first address
	operators []*operator

	hscn      *operator   // the NHS network: one or more /24 per site
	homeISPs  []*operator // UK broadband
	mobiles   []*operator // UK mobile carriers (CGNAT, few cities)
	cloudGB   *operator   // cloud desktops, UK region
	cloudNL   *operator   // cloud desktops, Netherlands region
	vpn       *operator   // a commercial VPN (listed)
	relay     *operator   // a private relay (listed)
	tor       *operator   // Tor exits (listed)
	abroadISP map[string]*operator
	hosting   []*operator // attack infrastructure abroad
	hostingGB *operator   // a UK hosting provider
}

func (w *world) newOperator(asn uint32, name string, anon bool) *operator {
	o := &operator{asn: asn, name: name, anon: anon}
	w.operators = append(w.operators, o)
	return o
}

func (w *world) grant(o *operator, c city, n int) []int {
	var idx []int
	for range n {
		a := netip.AddrFrom4([4]byte{byte(w.next >> 24), byte(w.next >> 16), byte(w.next >> 8), 0})
		w.next += 256
		idx = append(idx, len(o.prefixes))
		o.prefixes = append(o.prefixes, netip.PrefixFrom(a, 24))
		o.cityOf = append(o.cityOf, c)
	}
	return idx
}

func newWorld() *world {
	w := &world{next: 11 << 24, abroadISP: map[string]*operator{}}
	w.hscn = w.newOperator(64600, "Health and Social Care Network", false)
	for i, name := range []string{"Broadband One", "Fibre Co", "Cable UK", "Home Net", "Village Wireless"} {
		o := w.newOperator(uint32(64501+i), name, false)
		for _, c := range ukCities {
			w.grant(o, c, 24)
		}
		w.homeISPs = append(w.homeISPs, o)
	}
	for i, name := range []string{"Mobile Red", "Mobile Blue", "Mobile Orange"} {
		o := w.newOperator(uint32(64520+i), name, false)
		for _, c := range []city{ukCities[0], ukCities[2], ukCities[3], ukCities[1]} {
			w.grant(o, c, 40)
		}
		w.mobiles = append(w.mobiles, o)
	}
	w.cloudGB = w.newOperator(64700, "Cloud Desktop Ltd", false)
	w.grant(w.cloudGB, ukCities[0], 16)
	w.cloudNL = w.newOperator(64700+1, "Cloud Desktop BV", false)
	w.grant(w.cloudNL, holidayCities[9], 16)
	w.vpn = w.newOperator(64800, "Private Tunnel VPN", true)
	for _, c := range []city{ukCities[0], ukCities[2], holidayCities[9], attackCities[6], attackCities[7]} {
		w.grant(w.vpn, c, 8)
	}
	w.relay = w.newOperator(64810, "Privacy Relay Edge", true)
	for _, c := range ukCities {
		w.grant(w.relay, c, 6)
	}
	w.tor = w.newOperator(64820, "Tor exits (various)", true)
	for _, c := range []city{attackCities[7], holidayCities[3], holidayCities[9], attackCities[5], attackCities[6]} {
		w.grant(w.tor, c, 4)
	}
	for i, c := range holidayCities {
		o := w.newOperator(uint32(64830+i), "Telecom "+c.country+" "+c.name, false)
		w.grant(o, c, 30)
		w.abroadISP[c.name] = o
	}
	for i, c := range attackCities {
		o := w.newOperator(uint32(64900+i), "Hosting "+c.country, false)
		w.grant(o, c, 20)
		w.hosting = append(w.hosting, o)
		isp := w.newOperator(uint32(64930+i), "Telecom "+c.country, false)
		w.grant(isp, c, 30)
		w.abroadISP[c.name] = isp
	}
	w.hostingGB = w.newOperator(64960, "Hosting GB", false)
	w.grant(w.hostingGB, ukCities[0], 20)
	return w
}

// networks lists every range for the database.
func (w *world) networks() []geotest.Network {
	var out []geotest.Network
	for _, o := range w.operators {
		for i, p := range o.prefixes {
			c := o.cityOf[i]
			out = append(out, geotest.Network{Prefix: p, Country: c.country, City: c.name, Lat: c.lat, Lon: c.lon, ASN: o.asn, ASOrg: o.name})
		}
	}
	return out
}

// anonymiserList is the operator-supplied list: the VPN, relay and Tor ranges.
func (w *world) anonymiserList() string {
	var b strings.Builder
	b.WriteString("# synthetic anonymising networks: VPN, private relay, Tor\n")
	for _, o := range w.operators {
		if !o.anon {
			continue
		}
		fmt.Fprintf(&b, "# AS%d %s\n", o.asn, o.name)
		for _, p := range o.prefixes {
			b.WriteString(p.String() + "\n")
		}
	}
	return b.String()
}
