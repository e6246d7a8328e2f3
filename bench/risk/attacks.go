package main

import (
	"slices"
	"time"
)

// The injected attacks. Attackers never hold the second factor.

const (
	kindStuffing = "stuffing-abroad"
	kindStolen   = "stolen-0300-new-city"
	kindTravel   = "impossible-travel"
	kindSpray    = "password-spray"
	kindAnon     = "anonymiser-usual-hour"
	kindHard     = "hard-home-network-odd-hour"
)

var attackKinds = []string{kindStuffing, kindStolen, kindTravel, kindSpray, kindAnon}

var attackUAs = []string{uaWindowsChrome, uaWindowsChrome, uaFirefoxLinux, uaMac, uaScript}

// mature returns a random person who has been signing in for a fortnight
// by day d.
func (g *generator) victim(minDay int) *person {
	for {
		p := g.people[g.r.IntN(len(g.people))]
		if p.start+14 <= minDay {
			return p
		}
	}
}

// attackDay returns a day in the measured period.
func (g *generator) attackDay() int { return g.measureFrom + g.r.IntN(g.days-g.measureFrom) }

func (g *generator) attackTime() (int, time.Time) {
	d := g.attackDay()
	return d, g.at(d, g.r.Float64()*24)
}

func (g *generator) attacks(perKind int) {
	r := g.r
	// Credential stuffing from abroad: campaigns from a few hosting
	// addresses, one attempt per account, a few passwords right.
	for range max(perKind/150, 1) {
		_, t := g.attackTime()
		op := g.w.hosting[r.IntN(len(g.w.hosting))]
		var ips = make([]int, 2+r.IntN(4))
		for i := range ips {
			ips[i] = r.IntN(len(op.prefixes))
		}
		for i := range 150 {
			e := event{t: t.Add(time.Duration(i) * time.Duration(20+r.IntN(100)) * time.Second), kind: kindStuffing,
				ip: op.addr(r, ips[r.IntN(len(ips))]), ua: attackUAs[r.IntN(len(attackUAs))], success: g.pick(0.03)}
			if g.pick(0.8) {
				e.p = g.victim(15)
			} else {
				e.user, e.success = g.id("ghost-"), false
			}
			g.emit(e)
		}
	}
	// A stolen password used at about 03:00 from another UK city.
	for range perKind {
		p := g.victim(15)
		d := g.attackDay()
		c := ukCities[r.IntN(len(ukCities))]
		for c.name == p.home.name || c.name == p.org.sites[p.site].name {
			c = ukCities[r.IntN(len(ukCities))]
		}
		isp := g.w.homeISPs[r.IntN(len(g.w.homeISPs))]
		idx := isp.inCity(c)
		g.emit(event{t: g.at(d, 2+r.Float64()*2), p: p, kind: kindStolen, ip: isp.addr(r, idx[r.IntN(len(idx))]),
			device: g.device(), ua: attackUAs[r.IntN(len(attackUAs)-1)], success: true})
	}
	// Impossible travel: a sign-in from abroad shortly after the user's own.
	legit := g.legitByUser()
	for range perKind {
		p := g.victim(20)
		evs := legit[p.id]
		var own event
		for range 20 {
			own = evs[r.IntN(len(evs))]
			if own.t.Sub(g.start) > time.Duration(g.measureFrom*24)*time.Hour && own.cohort != "abroad" {
				break
			}
		}
		c := attackCities[r.IntN(len(attackCities))]
		isp := g.w.abroadISP[c.name]
		ip, _ := isp.random(r)
		g.emit(event{t: own.t.Add(time.Duration(5+r.IntN(85)) * time.Minute), p: p, kind: kindTravel, ip: ip,
			device: g.device(), ua: attackUAs[r.IntN(len(attackUAs)-1)], success: true})
	}
	// Password sprays: one address, hundreds of accounts, one password.
	for i := range max(perKind/400, 1) {
		_, t := g.attackTime()
		op := g.w.hostingGB
		if i%2 == 1 {
			op = g.w.hosting[r.IntN(len(g.w.hosting))]
		}
		ip, _ := op.random(r)
		for j := range 400 {
			e := event{t: t.Add(time.Duration(j) * 9 * time.Second), kind: kindSpray, ip: ip, ua: uaScript, success: g.pick(0.01)}
			if g.pick(0.9) {
				e.p = g.victim(15)
			} else {
				e.user, e.success = g.id("ghost-"), false
			}
			g.emit(e)
		}
	}
	// An anonymising network at one of the user's usual hours.
	for range perKind {
		p := g.victim(20)
		evs := legit[p.id]
		own := evs[r.IntN(len(evs))]
		weeks := 1 + r.IntN(3)
		t := own.t.Add(time.Duration(weeks*7*24) * time.Hour)
		if t.Sub(g.start) > time.Duration(g.days*24)*time.Hour {
			t = own.t.Add(-time.Duration(weeks*7*24) * time.Hour)
		}
		t = t.Add(time.Duration(r.IntN(40)-20) * time.Minute)
		op := g.w.tor
		if g.pick(0.5) {
			op = g.w.vpn
		}
		ip, _ := op.random(r)
		g.emit(event{t: t, p: p, kind: kindAnon, ip: ip, device: g.device(), ua: attackUAs[r.IntN(len(attackUAs)-1)], success: true})
	}
	// The hard case: someone on the user's own home network, on their own
	// computer, at an hour the user never signs in.
	for range perKind {
		p := g.victim(20)
		hours := make([]bool, 24)
		for _, e := range legit[p.id] {
			h := e.t.In(g.ukTZ).Hour()
			for k := -1; k <= 1; k++ {
				hours[(h+k+24)%24] = true
			}
		}
		var free []int
		for h, used := range hours {
			if !used {
				free = append(free, h)
			}
		}
		if len(free) == 0 {
			continue
		}
		d := g.attackDay()
		h := float64(free[r.IntN(len(free))]) + r.Float64()
		g.emit(event{t: g.at(d, h), p: p, kind: kindHard, ip: g.homeAddr(p, d), device: g.device(),
			ua: []string{uaWindowsChrome, uaMac, uaAndroid}[r.IntN(3)], success: true})
	}
}

func (g *generator) legitByUser() map[string][]event {
	m := map[string][]event{}
	for _, e := range g.events {
		if e.kind == "legit" && e.success {
			m[e.user] = append(m[e.user], e)
		}
	}
	return m
}

func (g *generator) sort() {
	slices.SortStableFunc(g.events, func(a, b event) int { return a.t.Compare(b.t) })
}
