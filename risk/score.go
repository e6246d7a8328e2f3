package risk

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"time"
)

// The attack model: how likely an attacker's attempt is to share each
// feature's value with the user (an attacker rarely holds the user's
// device cookie, sometimes shares their country, and in the hardest case
// sits on their home network).
var attackKnown = [nFeatures]float64{
	fDevice:  0.002,
	fBrowser: 0.35,
	fPrefix:  0.03,
	fASN:     0.15,
	fCity:    0.25,
	fCountry: 0.7,
}

// Bounds on each feature's contribution in bits, so that no single
// feature decides alone and a familiar value cannot hide everything.
var (
	featureMin = [nFeatures]float64{fDevice: -3, fBrowser: -0.5, fPrefix: -2, fASN: -1, fCity: -1, fCountry: -1}
	featureMax = [nFeatures]float64{fDevice: 5, fBrowser: 1.5, fPrefix: 3, fASN: 3, fCity: 3, fCountry: 6}
)

const (
	hourPrior        = 1.5 // how many sign-ins the population's hours count as in a user's
	popShareBoost    = 8.0 // how much a value common in the population softens novelty
	hourMin, hourMax = -2.5, 5.0
	travelBits       = 9.0
	travelMinKm      = 500.0
	travelMaxKmh     = 900.0
	travelOverhead   = 1.5 // hours
)

// component is one term of the score.
type component struct {
	kind string // a feature name, or "hour", "anonymiser", "travel", "failures", "spray"
	bits float64
	info string
}

type scored struct {
	total float64
	parts []component
	// stepUp asks for a second factor whatever the total: a pattern that
	// is cheap to confirm and must not be allowed, but is too common among
	// real users to count towards a block.
	stepUp bool
	// discount lowers the step-up threshold for this attempt, in bits.
	discount float64
}

// score sums the log-likelihood ratios, in bits, of an attempt's
// features under the attack model against the user's profile u (nil for
// none) and their population pop (nil for none).
func score(u, pop *profile, o *observation, t time.Time, fails, spray int64) scored {
	var s scored
	add := func(kind string, bits float64, info string) {
		s.total += bits
		s.parts = append(s.parts, component{kind, bits, info})
	}
	if u == nil {
		u = &profile{}
	}
	n := u.n
	// Location: the country when it is new, else the city. Network: the
	// operator when new (or unknown), else the /24. A finer feature adds
	// nothing once the coarser one is new.
	skip := [nFeatures]bool{}
	anonKnown := false
	if o.anon {
		// A VPN's exit says nothing of the user's place, and its operator
		// is the anonymiser term's to judge (counted there unless the user
		// uses it already), not a network operator new to the user twice
		// over.
		skip[fCountry], skip[fCity], skip[fASN] = true, true, true
		// The user's own VPN or relay: its operator is known to them.
		anonKnown = o.has[fASN] && u.weight(fASN, o.keys[fASN]) >= 1
	}
	if o.has[fCountry] && !u.knows(fCountry, o.keys[fCountry]) {
		skip[fCity] = true
	}
	// A new device brings its own browser: then only how common the
	// browser is in the population counts, not whether the user used it.
	newDevice := !(o.has[fDevice] && u.knows(fDevice, o.keys[fDevice]))
	if o.has[fASN] && !u.knows(fASN, o.keys[fASN]) {
		skip[fPrefix] = true
	} else if o.has[fASN] {
		skip[fASN] = true
	}
	for f := range nFeatures {
		if skip[f] || (!o.has[f] && f != fDevice) {
			continue
		}
		known := o.has[f] && u.knows(f, o.keys[f])
		pNew := (u.novel[f] + 1) / (n + 2)
		var bits float64
		if known {
			bits = math.Log2(attackKnown[f] / (1 - pNew))
		} else {
			bits = math.Log2((1 - attackKnown[f]) / pNew)
		}
		bits = math.Max(featureMin[f], math.Min(featureMax[f], bits))
		if f == fBrowser && newDevice {
			bits = 0
		}
		if !known && o.has[f] {
			// A value new to the user is less surprising when many in the
			// population use it (a big broadband provider), and more when
			// none do (a hosting provider, Tor, a far country).
			bits += pop.valueBits(f, o.keys[f])
		}
		info := ""
		if !known {
			info = "new"
		}
		add(featureNames[f], bits, info)
	}

	// The hour of the week.
	uniform := 1.0 / hoursPerWeek
	pPop := uniform
	if pop != nil {
		if p := pop.hourProb(o.how); p >= 0 {
			pPop = 0.8*p + 0.2*uniform
		}
	}
	pUser := 0.0
	if p := u.hourProb(o.how); p >= 0 {
		pUser = p
	}
	pHour := (n*pUser + hourPrior*pPop + 0.3*uniform) / (n + hourPrior + 0.3)
	add("hour", math.Max(hourMin, math.Min(hourMax, math.Log2(uniform/pHour))), "")

	if !o.anon && newDevice && n > 0 && o.has[fASN] && !u.knows(fASN, o.keys[fASN]) && pop.valueBits(fASN, o.keys[fASN]) > 0 {
		// Nothing of the attempt is known to the user's profile: a device
		// and a network operator both new to them, and an operator few of
		// their population use (not a big broadband provider or mobile
		// carrier, where a new phone would be). Then less surprise
		// suffices to ask for a second factor.
		s.discount = unknownContextDiscount
	}
	if o.anon && newDevice && n > 0 {
		// A VPN hides where the user is, so the device is the only thing
		// left to recognise them by: a device they have never used, behind
		// a VPN (even the one they use), is the pattern of someone who has
		// their password. Real users do this too (a new laptop on the home
		// VPN), so it asks for a second factor but adds nothing towards a
		// block.
		s.stepUp = true
		s.parts = append(s.parts, component{"anonymiser", anonNewDeviceBits, "new device"})
	}
	if o.anon && !anonKnown {
		pAnon := (u.anon + 0.05) / (n + 1)
		if pop != nil && pop.n > 0 {
			pAnon = (n*pAnon + (pop.anon+0.05)/(pop.n+1)) / (n + 1)
		}
		add("anonymiser", math.Max(-1.5, math.Min(6, math.Log2(0.3/pAnon))), "")
	}

	if !o.anon && o.place.HasLoc && u.lastHasPlace && !(o.has[fCity] && u.knows(fCity, o.keys[fCity])) {
		km := distanceKm(float64(u.lastLat), float64(u.lastLon), o.place.Lat, o.place.Lon)
		hours := math.Max(t.Sub(time.Unix(u.lastAt, 0)).Hours(), 1.0/60)
		// Flying takes time at both ends as well as in the air.
		if km > travelMinKm && hours < travelOverhead+km/travelMaxKmh {
			add("travel", travelBits, fmt.Sprintf("%.0f km in %s", km, roundDuration(time.Duration(hours*float64(time.Hour)))))
		}
	}
	if fails > 0 {
		add("failures", 1.2*float64(min(fails, 5)), itoa(fails))
	}
	// One address failing on many accounts, when this attempt does not
	// come from a network the user knows.
	if spray >= 3 && !(o.has[fPrefix] && u.knows(fPrefix, o.keys[fPrefix])) {
		add("spray", math.Min(4+2*math.Log2(float64(spray)/3), 14), itoa(spray))
	}
	return s
}

func roundDuration(d time.Duration) string {
	switch {
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Round(time.Minute)/time.Minute))
	default:
		return fmt.Sprintf("%.1f h", d.Hours())
	}
}

// unknownContextDiscount is how much lower the step-up threshold is for an
// attempt from a device and a network operator both new to the user.
const unknownContextDiscount = 4.0

// anonNewDeviceBits ranks the reason "a new device behind a VPN" among the
// others; it is not added to the total (see scored.stepUp).
const anonNewDeviceBits = 4.0

// reasonBits is the smallest contribution worth a reason.
const reasonBits = 1.0

var dayNames = [7]string{"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"}

// reasons words the components that raised the score, largest first.
func (s *scored) reasons(o *observation, zone, defaultZone string) []string {
	parts := slices.Clone(s.parts)
	slices.SortStableFunc(parts, func(a, b component) int { return cmp.Compare(b.bits, a.bits) })
	if zone == "" {
		zone = defaultZone
	}
	var out []string
	for _, c := range parts {
		if c.bits < reasonBits {
			break
		}
		var r string
		switch c.kind {
		case "device":
			r = "a device not used before by this user"
		case "browser":
			r = "a browser not used before by this user"
		case "network":
			r = "a network not used before by this user"
		case "network operator":
			r = "a network operator not used before by this user"
			if o.place.ASN != 0 {
				r += fmt.Sprintf(" (AS%d %s)", o.place.ASN, o.place.ASOrg)
			}
		case "city":
			r = "a town or city not used before by this user: " + o.place.String()
		case "country":
			r = "a country not used before by this user: " + o.place.Country
		case "hour":
			r = fmt.Sprintf("an unusual time for this user: %s %02d:00 (%s)", dayNames[o.how/24], o.how%24, zone)
		case "anonymiser":
			r = "an anonymising network (VPN, relay or Tor)"
		case "travel":
			r = "impossible travel since the last sign-in: " + c.info
		case "failures":
			r = c.info + " failed attempts on this account recently"
		case "spray":
			r = "this address has failed on " + c.info + " accounts recently"
		default:
			r = c.kind
		}
		out = append(out, r)
	}
	return out
}

// attackValue is how likely an attacker is to come with one particular
// value of each feature (for a value the user has never used).
var attackValue = [nFeatures]float64{fBrowser: 0.1, fPrefix: 0.0005, fASN: 0.02, fCity: 0.02, fCountry: 0.05}

// valueBits compares an attacker's chance of value key of feature f with
// the population's: negative for values common in the population,
// positive for values it never shows. 0 without a population.
func (p *profile) valueBits(f int, key uint64) float64 {
	if p == nil || p.n < 20 || popCaps[f] == 0 || attackValue[f] == 0 {
		return 0
	}
	q := p.weight(f, key) / p.n
	if q == 0 {
		// A value the population has not kept: as rare as the values it
		// keeps for none of its sign-ins.
		q = math.Max(p.novel[f]/p.n, 0.001) * attackValue[f]
	}
	return math.Max(-3, math.Min(4, math.Log2(attackValue[f]/q)))
}
