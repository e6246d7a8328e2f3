package risk

import (
	"encoding/binary"
	"errors"
	"hash/fnv"
	"math"
	"slices"
	"time"
)

// The features a profile learns, each a set of values seen with a
// decayed weight, plus a decayed count of sign-ins where the value was new
// (its novelty).
const (
	fDevice  = iota // the device cookie's ID
	fBrowser        // browser family and system
	fPrefix         // the /24 (IPv4) or /48 (IPv6) network
	fASN            // the autonomous system (network operator)
	fCity           // country and city
	fCountry        // country
	nFeatures
)

var featureNames = [nFeatures]string{"device", "browser", "network", "network operator", "city", "country"}

// userCaps and popCaps bound the values kept per feature; the lightest
// value goes when a new one arrives. They keep a user's profile well under
// 2 KB.
var (
	userCaps = [nFeatures]int{8, 4, 8, 6, 8, 6}
	popCaps  = [nFeatures]int{0, 8, 32, 24, 24, 16}
)

const hoursPerWeek = 168

type entry struct {
	key uint64
	w   float64
}

// profile is what the engine has learnt from successful sign-ins: of one
// user, or of a population (an organisation and role). Weights decay with
// a half-life, all together, so they are kept as of updated and decayed
// when next touched.
type profile struct {
	updated int64 // Unix seconds the weights are as of; 0 for a new profile
	n       float64
	hours   [hoursPerWeek]float64
	novel   [nFeatures]float64
	values  [nFeatures][]entry
	anon    float64 // sign-ins from an anonymising network
	// The last successful sign-in with a known location, for travel speed.
	lastAt       int64
	lastLat      float32
	lastLon      float32
	lastHasPlace bool
}

// decay brings the weights to t.
func (p *profile) decay(t time.Time, halfLife time.Duration) {
	ts := t.Unix()
	if p.updated == 0 || ts <= p.updated {
		if p.updated == 0 {
			p.updated = ts
		}
		return
	}
	f := math.Exp2(-float64(ts-p.updated) / halfLife.Seconds())
	p.updated = ts
	if f > 0.999999 {
		return
	}
	p.n *= f
	p.anon *= f
	for i := range p.hours {
		p.hours[i] *= f
	}
	for i := range p.novel {
		p.novel[i] *= f
		vs := p.values[i]
		for j := range vs {
			vs[j].w *= f
		}
		// Values fade out of the profile once almost forgotten.
		p.values[i] = slices.DeleteFunc(vs, func(e entry) bool { return e.w < 0.05 })
	}
}

// weight returns the weight of value key of feature f (0 when unknown).
func (p *profile) weight(f int, key uint64) float64 {
	for _, e := range p.values[f] {
		if e.key == key {
			return e.w
		}
	}
	return 0
}

// add adds weight w to value key of feature f, a value new to the
// profile counting towards its novelty.
func (p *profile) add(f int, key uint64, w float64, caps *[nFeatures]int) {
	if !p.put(f, key, w, caps) {
		p.novel[f] += w
	}
}

// put adds weight w to value key of feature f, replacing the lightest
// value when the feature is full; known is true when key was there.
func (p *profile) put(f int, key uint64, w float64, caps *[nFeatures]int) (known bool) {
	if caps[f] == 0 {
		return false
	}
	vs := p.values[f]
	for j := range vs {
		if vs[j].key == key {
			vs[j].w += w
			return true
		}
	}
	if len(vs) < caps[f] {
		p.values[f] = append(vs, entry{key, w})
		return false
	}
	low := 0
	for j := range vs {
		if vs[j].w < vs[low].w {
			low = j
		}
	}
	vs[low] = entry{key, w}
	return false
}

// learn adds one successful sign-in.
func (p *profile) learn(o *observation, t time.Time, halfLife time.Duration, caps *[nFeatures]int) {
	p.decay(t, halfLife)
	p.n++
	p.hours[o.how]++
	for f := range nFeatures {
		if o.has[f] {
			p.add(f, o.keys[f], 1, caps)
		}
	}
	if o.anon {
		p.anon++
	}
	if o.place.HasLoc {
		p.lastAt, p.lastLat, p.lastLon, p.lastHasPlace = t.Unix(), float32(o.place.Lat), float32(o.place.Lon), true
	}
}

// merge adds the weights of d (learnt since the last merge) into p; both
// are decayed to t first.
func (p *profile) merge(d *profile, t time.Time, halfLife time.Duration, caps *[nFeatures]int) {
	p.decay(t, halfLife)
	d.decay(t, halfLife)
	p.n += d.n
	p.anon += d.anon
	for i := range p.hours {
		p.hours[i] += d.hours[i]
	}
	for f := range nFeatures {
		p.novel[f] += d.novel[f]
		for _, e := range d.values[f] {
			p.put(f, e.key, e.w, caps)
		}
	}
}

// hourProb returns the probability of a sign-in in hour-of-week h under
// the profile alone, smoothed over neighbouring hours and mixed with the
// same hour on any day, or -1 when the profile has no sign-ins.
func (p *profile) hourProb(h int) float64 {
	if p.n < 1e-3 {
		return -1
	}
	kernel := [...]float64{0.4, 0.2, 0.1} // weights of 0, ±1, ±2 hours
	at := func(i int) float64 { return p.hours[((i%hoursPerWeek)+hoursPerWeek)%hoursPerWeek] }
	week := kernel[0] * at(h)
	for k := 1; k < len(kernel); k++ {
		week += kernel[k] * (at(h-k) + at(h+k))
	}
	day := 0.0
	for d := range 7 {
		c := d*24 + h%24
		day += kernel[0] * at(c)
		for k := 1; k < len(kernel); k++ {
			day += kernel[k] * (at(c-k) + at(c+k))
		}
	}
	return (0.35*week + 0.65*day/7) / p.n
}

// Encoding: a version byte, then unsigned varints. Weights are stored in
// sixteenths (hours in 64ths), which is all the precision scoring needs.

const profileVersion = 1

var errProfile = errors.New("risk: profile data not valid")

func (p *profile) encode() []byte {
	b := make([]byte, 0, 512)
	b = append(b, profileVersion)
	w := func(x float64, scale float64) { b = binary.AppendUvarint(b, uint64(math.Round(max(x, 0)*scale))) }
	b = binary.AppendUvarint(b, uint64(max(p.updated, 0)))
	w(p.n, 16)
	w(p.anon, 16)
	for _, h := range p.hours {
		w(h, 64)
	}
	for f := range nFeatures {
		w(p.novel[f], 16)
		b = binary.AppendUvarint(b, uint64(len(p.values[f])))
		for _, e := range p.values[f] {
			b = binary.AppendUvarint(b, e.key)
			w(e.w, 16)
		}
	}
	if p.lastHasPlace {
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(max(p.lastAt, 0)))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(p.lastLat))
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(p.lastLon))
	} else {
		b = append(b, 0)
	}
	return b
}

func decodeProfile(b []byte) (*profile, error) {
	if len(b) == 0 || b[0] != profileVersion {
		return nil, errProfile
	}
	b = b[1:]
	bad := false
	u := func() uint64 {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			bad = true
			return 0
		}
		b = b[n:]
		return v
	}
	p := &profile{}
	p.updated = int64(u() & math.MaxInt64)
	p.n = float64(u()) / 16
	p.anon = float64(u()) / 16
	for i := range p.hours {
		p.hours[i] = float64(u()) / 64
	}
	for f := range nFeatures {
		p.novel[f] = float64(u()) / 16
		n := u()
		if n > 64 {
			return nil, errProfile
		}
		for range n {
			p.values[f] = append(p.values[f], entry{key: u(), w: float64(u()) / 16})
		}
	}
	if bad || len(b) < 1 {
		return nil, errProfile
	}
	if b[0] == 1 {
		b = b[1:]
		p.lastAt = int64(u() & math.MaxInt64)
		if bad || len(b) != 8 {
			return nil, errProfile
		}
		p.lastLat = math.Float32frombits(binary.LittleEndian.Uint32(b))
		p.lastLon = math.Float32frombits(binary.LittleEndian.Uint32(b[4:]))
		p.lastHasPlace = true
	} else if len(b) != 1 {
		return nil, errProfile
	}
	if bad {
		return nil, errProfile
	}
	return p, nil
}

// hashKey turns a feature value into the key a profile keeps.
func hashKey(s string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return h.Sum64()
}

// knownWeight is the weight from which a value counts as known to a
// profile: one sign-in, decayed for up to two half-lives.
const knownWeight = 0.25

// knows reports whether value key of feature f is known to the profile.
func (p *profile) knows(f int, key uint64) bool { return p.weight(f, key) >= knownWeight }
