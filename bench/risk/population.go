package main

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"time"
)

// The synthetic population and its sign-ins.

type pattern int

const (
	dayShift pattern = iota
	nightShift
	rotaShift
)

var patternNames = []string{"day", "night", "rota"}

var (
	uaWindowsChrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36"
	uaWindowsEdge   = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36 Edg/124.0"
	uaIPhone        = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
	uaAndroid       = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Mobile Safari/537.36"
	uaMac           = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15"
	uaFirefoxLinux  = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
	uaScript        = "python-requests/2.31.0"
)

type org struct {
	ods    string
	sites  []city
	siteIP [][]int // HSCN prefixes per site
	wardPC [][]string
	cloud  *operator // cloud desktop region, nil when the organisation has none
	kiosk  bool      // ward computers keep no cookies
}

type person struct {
	id      string
	org     *org
	role    string
	site    int
	pattern pattern
	offset  int // rota week offset, or first night of a night worker's week

	home       city
	isp        *operator
	homeIdx    int
	dynamicIP  bool
	mobile     *operator
	phone, ua  string
	relay      bool
	homePC     string
	homeUA     string
	wardPCs    []string
	cloud      bool
	cloudDev   string // "" for a non-persistent desktop
	vpn        bool
	offDuty    float64 // chance per day off of signing in from home
	newPhone   int     // day the phone is replaced, -1 never
	newPhoneID string
	newPhoneUA string
	holFrom    int // holiday abroad, days [holFrom, holTo); -1 none
	holTo      int
	holCity    city
	holOffset  time.Duration // local time abroad minus UK time
	start      int           // first day (new starters join later)
}

// event is a generated sign-in attempt with its truth.
type event struct {
	t            time.Time
	user         string
	org, role    string
	ip           netip.Addr
	device, ua   string
	success      bool
	kind         string // "legit" or an attack kind
	p            *person
	cohort       string // for legit events: "vpn", "cloud", "relay", "abroad", "new-phone", "new-starter" or ""
	where        string // for legit events: "shift" (at work), "home" (off duty) or "holiday"
	secondFactor string
	warm         bool // in the warm-up, not measured
}

type generator struct {
	r     *rand.Rand
	w     *world
	start time.Time
	days  int // simulated, warm-up included
	// measureFrom is the first measured day; the days before it are a
	// warm-up in which the engine learns, as it would have in service.
	measureFrom int
	orgs        []*org
	people      []*person
	events      []event
	ukTZ        *time.Location
	nextID      int
}

func (g *generator) id(prefix string) string {
	g.nextID++
	return fmt.Sprintf("%s%06d", prefix, g.nextID)
}

func (g *generator) device() string { return g.id("dev-") }

func newGenerator(seed uint64, staff, warmup, days int) *generator {
	uk, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	g := &generator{
		r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), w: newWorld(), days: warmup + days, measureFrom: warmup, ukTZ: uk,
		start: time.Date(2025, time.January, 6, 0, 0, 0, 0, uk), // a Monday
	}
	// Eight organisations, one to three sites each.
	for i := range 8 {
		o := &org{ods: fmt.Sprintf("R%02dX", i+10), kiosk: i == 5}
		nSites := 1 + i%3
		for s := range nSites {
			c := ukCities[(i*3+s)%len(ukCities)]
			o.sites = append(o.sites, c)
			o.siteIP = append(o.siteIP, g.w.grant(g.w.hscn, c, 2))
			var pcs []string
			for range 150 {
				pcs = append(pcs, g.device())
			}
			o.wardPC = append(o.wardPC, pcs)
		}
		switch i {
		case 2, 6:
			o.cloud = g.w.cloudGB
		case 4:
			o.cloud = g.w.cloudNL
		}
		g.orgs = append(g.orgs, o)
	}
	for range staff {
		g.people = append(g.people, g.newPerson())
	}
	return g
}

func (g *generator) pick(p float64) bool { return g.r.Float64() < p }

func (g *generator) newPerson() *person {
	r := g.r
	o := g.orgs[r.IntN(len(g.orgs))]
	p := &person{id: g.id("u"), org: o, role: "staff", site: r.IntN(len(o.sites)), newPhone: -1, holFrom: -1}
	switch x := r.Float64(); {
	case x < 0.5:
		p.pattern = dayShift
	case x < 0.7:
		p.pattern = nightShift
	default:
		p.pattern = rotaShift
	}
	if g.pick(0.05) {
		p.role, p.pattern = "org-admin", dayShift
	}
	p.offset = r.IntN(7)
	// Home near the site, usually in the same city.
	site := o.sites[p.site]
	p.home = site
	if g.pick(0.3) {
		p.home = ukCities[r.IntN(len(ukCities))]
	}
	p.isp = g.w.homeISPs[r.IntN(len(g.w.homeISPs))]
	idx := p.isp.inCity(p.home)
	p.homeIdx = idx[r.IntN(len(idx))]
	p.dynamicIP = g.pick(0.3)
	p.mobile = g.w.mobiles[r.IntN(len(g.w.mobiles))]
	p.phone = g.device()
	if g.pick(0.5) {
		p.ua = uaIPhone
		p.relay = g.pick(0.25)
	} else {
		p.ua = uaAndroid
	}
	if g.pick(0.4) {
		p.homePC = g.device()
		p.homeUA = []string{uaWindowsChrome, uaMac, uaWindowsEdge, uaFirefoxLinux}[r.IntN(4)]
		p.vpn = g.pick(0.12)
	}
	pcs := o.wardPC[p.site]
	start := r.IntN(len(pcs) - 10)
	p.wardPCs = pcs[start : start+4+r.IntN(6)]
	if o.cloud != nil && g.pick(0.5) {
		p.cloud = true
		if g.pick(0.5) {
			p.cloudDev = g.device()
		}
	}
	p.offDuty = []float64{0, 0.05, 0.15, 0.3}[r.IntN(4)]
	if g.pick(0.12) {
		p.newPhone = g.measureFrom + r.IntN(g.days-g.measureFrom-3)
		p.newPhoneID = g.device()
		p.newPhoneUA = p.ua
		if g.pick(0.3) {
			p.newPhoneUA = map[bool]string{true: uaAndroid, false: uaIPhone}[p.ua == uaIPhone]
		}
	}
	if g.pick(0.2) {
		p.holFrom = g.measureFrom + r.IntN(g.days-g.measureFrom-7)
		p.holTo = p.holFrom + 7 + r.IntN(8)
		p.holCity = holidayCities[r.IntN(len(holidayCities)-1)]
		switch p.holCity.country {
		case "GR", "TR":
			p.holOffset = 2 * time.Hour
		case "US":
			p.holOffset = -5 * time.Hour
		case "IE", "PT":
			p.holOffset = 0
		default:
			p.holOffset = time.Hour
		}
	}
	if g.pick(0.04) {
		p.start = g.measureFrom + r.IntN(g.days-g.measureFrom-10)
	}
	return p
}

// working reports whether p works on day d and the shift's start and
// length in hours.
func (g *generator) working(p *person, d int) (bool, float64, float64) {
	wd := (d + 7) % 7 // day 0 is a Monday
	if p.holFrom >= 0 && d >= p.holFrom && d < p.holTo {
		return false, 0, 0
	}
	switch p.pattern {
	case dayShift:
		return wd < 5 && !g.pick(0.06), 7.5 + g.r.Float64()*1.5, 9
	case nightShift:
		// Four nights a week from the person's first night.
		return (wd-p.offset+7)%7 < 4 && !g.pick(0.05), 19.5 + g.r.Float64(), 12
	default:
		week := (d/7 + p.offset) % 4
		switch week {
		case 0: // earlies
			return wd < 4, 7 + g.r.Float64()*0.5, 8
		case 1: // lates
			return wd >= 1 && wd < 5, 13 + g.r.Float64()*0.5, 8.5
		case 2: // nights, over the weekend
			return wd >= 4, 20 + g.r.Float64()*0.5, 12
		default: // long days, weekend and two weekdays
			return wd == 5 || wd == 6 || wd == 2 || wd == 3, 7.5, 12.5
		}
	}
}

func (g *generator) at(d int, hour float64) time.Time {
	day := g.start.AddDate(0, 0, d)
	return day.Add(time.Duration(hour * float64(time.Hour)))
}

func (g *generator) emit(e event) {
	e.warm = e.t.Before(g.at(g.measureFrom, 0))
	if e.p != nil {
		e.user, e.org, e.role = e.p.id, e.p.org.ods, e.p.role
	}
	if e.kind == "legit" {
		e.secondFactor = "pass"
		// A mistyped password first, now and then.
		if g.pick(0.03) {
			f := e
			f.t, f.success = e.t.Add(-time.Duration(10+g.r.IntN(30))*time.Second), false
			g.events = append(g.events, f)
		}
	} else {
		e.secondFactor = "fail"
	}
	g.events = append(g.events, e)
}

// phoneCtx returns the phone's device, browser and address for a sign-in
// away from work on day d.
func (g *generator) phoneCtx(p *person, d int, wifi bool) (string, string, netip.Addr) {
	dev, ua := p.phone, p.ua
	if p.newPhone >= 0 && d >= p.newPhone {
		dev, ua = p.newPhoneID, p.newPhoneUA
	}
	switch {
	case p.relay && ua == uaIPhone:
		idx := g.w.relay.inCity(p.home)
		return dev, ua, g.w.relay.addr(g.r, idx[g.r.IntN(len(idx))])
	case wifi:
		return dev, ua, g.homeAddr(p, d)
	default:
		ip, _ := p.mobile.random(g.r)
		return dev, ua, ip
	}
}

func (g *generator) homeAddr(p *person, d int) netip.Addr {
	i := p.homeIdx
	if p.dynamicIP {
		idx := p.isp.inCity(p.home)
		i = idx[(slices.Index(idx, p.homeIdx)+d/30)%len(idx)]
	}
	return p.isp.addr(g.r, i)
}

func (g *generator) cohort(p *person, d int) string {
	switch {
	case p.start > 0 && d < p.start+7:
		return "new-starter"
	case p.newPhone >= 0 && d >= p.newPhone && d < p.newPhone+7:
		return "new-phone"
	}
	return ""
}

// legit generates everyone's own sign-ins.
func (g *generator) legit() {
	for _, p := range g.people {
		for d := p.start; d < g.days; d++ {
			g.personDay(p, d)
		}
	}
}

func (g *generator) personDay(p *person, d int) {
	r := g.r
	o := p.org
	if works, start, length := g.working(p, d); works {
		n := 1
		if g.pick(0.45) {
			n++
		}
		if g.pick(0.2) {
			n++
		}
		for i := range n {
			h := start + r.Float64()*0.75
			if i > 0 {
				h = start + 1 + r.Float64()*(length-1.5)
			}
			e := event{t: g.at(d, h), p: p, kind: "legit", success: true, cohort: g.cohort(p, d), where: "shift"}
			switch {
			case p.cloud && g.pick(0.8):
				e.ip, _ = o.cloud.random(r)
				e.device, e.ua = p.cloudDev, uaWindowsEdge
				if e.cohort == "" {
					e.cohort = "cloud"
				}
			case g.pick(0.1): // on the phone, on site
				e.device, e.ua, e.ip = g.phoneCtx(p, d, false)
				if e.cohort == "" && p.relay && e.ua == uaIPhone {
					e.cohort = "relay"
				}
			default:
				ips := o.siteIP[p.site]
				e.ip = g.w.hscn.addr(r, ips[r.IntN(len(ips))])
				e.ua = uaWindowsEdge
				switch {
				case o.kiosk:
				case g.pick(0.04): // another ward's computer
					e.device = o.wardPC[p.site][r.IntN(len(o.wardPC[p.site]))]
				default:
					e.device = p.wardPCs[r.IntN(len(p.wardPCs))]
				}
			}
			g.emit(e)
		}
		return
	}
	if p.holFrom >= 0 && d >= p.holFrom && d < p.holTo {
		if !g.pick(0.35) {
			return
		}
		local := 9 + r.Float64()*13
		e := event{t: g.at(d, local).Add(-p.holOffset), p: p, kind: "legit", success: true, cohort: "abroad", where: "holiday"}
		e.device, e.ua = p.phone, p.ua
		if p.newPhone >= 0 && d >= p.newPhone {
			e.device, e.ua = p.newPhoneID, p.newPhoneUA
		}
		if g.pick(0.6) {
			e.ip, _ = g.w.abroadISP[p.holCity.name].random(r)
		} else {
			e.ip, _ = p.mobile.random(r) // roaming: the home carrier's address
		}
		g.emit(e)
		return
	}
	if !g.pick(p.offDuty) {
		return
	}
	// Off duty, from home: the rota, e-learning.
	h := 17 + r.Float64()*5
	if p.pattern == nightShift {
		h = 12 + r.Float64()*6
	}
	e := event{t: g.at(d, h), p: p, kind: "legit", success: true, cohort: g.cohort(p, d), where: "home"}
	if p.homePC != "" && g.pick(0.5) {
		e.device, e.ua, e.ip = p.homePC, p.homeUA, g.homeAddr(p, d)
		if p.vpn {
			e.ip, _ = g.w.vpn.random(r)
			if r.IntN(10) < 8 {
				idx := g.w.vpn.inCity(ukCities[0])
				e.ip = g.w.vpn.addr(r, idx[r.IntN(len(idx))])
			}
			if e.cohort == "" {
				e.cohort = "vpn"
			}
		}
	} else {
		e.device, e.ua, e.ip = g.phoneCtx(p, d, g.pick(0.6))
		if e.cohort == "" && p.relay && e.ua == uaIPhone {
			e.cohort = "relay"
		}
	}
	g.emit(e)
}
