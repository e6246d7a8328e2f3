package main

import (
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"

	"github.com/lanyard/lanyard/risk"
	"github.com/lanyard/lanyard/risk/geotest"
)

func writeMMDB(path string, w *world) error {
	nets := w.networks()
	for _, n := range nets {
		a := n.Prefix.Addr().As4()
		countryByPrefix[[3]byte{a[0], a[1], a[2]}] = n.Country
	}
	return geotest.WriteFile(path, nets)
}

// tally counts attempts and how they were decided.
type tally struct {
	n, stepUp, block       int
	baseFlag               int
	successes, successStop int // attempts with the right password, and those stopped
}

func (t *tally) add(r *result, e *event) {
	t.n++
	switch r.verdict {
	case risk.StepUp:
		t.stepUp++
	case risk.Block:
		t.block++
	}
	if r.baseline {
		t.baseFlag++
	}
	if e.success {
		t.successes++
		if r.verdict != risk.Allow {
			t.successStop++
		}
	}
}

func (t *tally) caught() int { return t.stepUp + t.block }

type evaluation struct {
	legit, attacks, hard tally
	legitByPattern       map[string]*tally
	attackByPattern      map[string]*tally
	byKind               map[string]*tally
	byCohort             map[string]*tally
	sizes                []int
	missed               map[string][]string // kind -> a few reasons of missed attacks
	fpReasons            map[string]map[string]int
	legitByWeek          map[string]*tally
	peopleByPattern      map[string]map[*person]bool // who signed in, per shift pattern
	// byStratum counts legitimate attempts per shift pattern and per kind
	// of sign-in (where from, and cohort), for comparing patterns whose
	// mixes of sign-ins differ.
	byStratum map[string]map[string]*tally
}

func get(m map[string]*tally, k string) *tally {
	if m[k] == nil {
		m[k] = &tally{}
	}
	return m[k]
}

func report(g *generator, res []result) *evaluation {
	ev := &evaluation{legitByPattern: map[string]*tally{}, attackByPattern: map[string]*tally{}, byKind: map[string]*tally{},
		byCohort: map[string]*tally{}, missed: map[string][]string{}, fpReasons: map[string]map[string]int{}, legitByWeek: map[string]*tally{}, peopleByPattern: map[string]map[*person]bool{},
		byStratum: map[string]map[string]*tally{}}
	for i := range g.events {
		e, r := &g.events[i], &res[i]
		if e.warm {
			continue
		}
		pat := ""
		if e.p != nil {
			pat = patternNames[e.p.pattern]
		}
		switch e.kind {
		case "legit":
			ev.legit.add(r, e)
			get(ev.legitByPattern, pat).add(r, e)
			if ev.peopleByPattern[pat] == nil {
				ev.peopleByPattern[pat] = map[*person]bool{}
			}
			ev.peopleByPattern[pat][e.p] = true
			c := e.cohort
			if c == "" {
				c = "other"
			}
			get(ev.byCohort, c).add(r, e)
			if ev.byStratum[pat] == nil {
				ev.byStratum[pat] = map[string]*tally{}
			}
			get(ev.byStratum[pat], e.where+"/"+c).add(r, e)
			get(ev.legitByWeek, fmt.Sprintf("week %02d", int(e.t.Sub(g.start).Hours()/24/7))).add(r, e)
			if r.verdict != risk.Allow {
				m := ev.fpReasons[pat+"/"+c]
				if m == nil {
					m = map[string]int{}
					ev.fpReasons[pat+"/"+c] = m
				}
				for _, reason := range r.reasons {
					k, _, _ := strings.Cut(reason, ":")
					k, _, _ = strings.Cut(k, "(")
					m[k]++
				}
			}
		case kindHard:
			ev.hard.add(r, e)
		default:
			ev.attacks.add(r, e)
			get(ev.byKind, e.kind).add(r, e)
			if pat != "" {
				get(ev.attackByPattern, pat).add(r, e)
			}
			if r.verdict == risk.Allow && len(ev.missed[e.kind]) < 3 {
				ev.missed[e.kind] = append(ev.missed[e.kind], fmt.Sprintf("score %.1f: %s", r.score, strings.Join(r.reasons, "; ")))
			}
		}
	}
	return ev
}

func (ev *evaluation) profileSizes(s []int) { ev.sizes = s }

func (ev *evaluation) print(w io.Writer) {
	fmt.Fprintln(w, "| attempts | n | engine: stepped up | engine: blocked | engine: caught | baseline: flagged |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	row := func(name string, t *tally) {
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s |\n", name, t.n, pct(t.stepUp, t.n), pct(t.block, t.n), pct(t.caught(), t.n), pct(t.baseFlag, t.n))
	}
	row("**legitimate, all**", &ev.legit)
	for _, p := range patternNames {
		if t := ev.legitByPattern[p]; t != nil {
			row("legitimate, "+p+" shifts", t)
		}
	}
	for _, c := range []string{"vpn", "cloud", "relay", "abroad", "new-phone", "new-starter", "other"} {
		if t := ev.byCohort[c]; t != nil {
			row("legitimate, "+c, t)
		}
	}
	row("**attacks, all kinds**", &ev.attacks)
	for _, k := range attackKinds {
		if t := ev.byKind[k]; t != nil {
			row("attack: "+k, t)
		}
	}
	for _, p := range patternNames {
		if t := ev.attackByPattern[p]; t != nil {
			row("attacks on "+p+"-shift staff", t)
		}
	}
	row("hard case: "+kindHard, &ev.hard)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "attacks with the right password stopped: engine %d of %d; ", ev.attacks.successStop, ev.attacks.successes)
	fmt.Fprintf(w, "hard case %d of %d\n", ev.hard.successStop, ev.hard.successes)
	if len(ev.sizes) > 0 {
		slices.Sort(ev.sizes)
		fmt.Fprintf(w, "profile size: median %d B, p99 %d B, max %d B (%d profiles)\n",
			ev.sizes[len(ev.sizes)/2], ev.sizes[len(ev.sizes)*99/100], ev.sizes[len(ev.sizes)-1], len(ev.sizes))
	}
	if os.Getenv("RISK_DEBUG") != "" {
		for p, m := range ev.byStratum {
			for k, t := range m {
				fmt.Fprintf(os.Stderr, "stratum %s %s: n %d flagged %s\n", p, k, t.n, pct(t.caught(), t.n))
			}
			fmt.Fprintf(os.Stderr, "standardised %s: %.3f%%\n", p, 100*ev.standardised(p))
		}
		for k, t := range ev.legitByWeek {
			fmt.Fprintf(os.Stderr, "%s: legit %d, flagged %s\n", k, t.n, pct(t.caught(), t.n))
		}
		for k, m := range ev.fpReasons {
			fmt.Fprintf(os.Stderr, "false positives %s: %v\n", k, m)
		}
	}
	for _, k := range append(slices.Clone(attackKinds), kindHard) {
		for _, m := range ev.missed[k] {
			fmt.Fprintf(os.Stderr, "missed %s: %s\n", k, m)
		}
	}
	fmt.Fprintln(w)
	goal := func(ok bool, s string) {
		mark := "MET"
		if !ok {
			mark = "NOT MET"
		}
		fmt.Fprintf(w, "%-8s %s\n", mark, s)
	}
	rate := func(n, d int) float64 {
		if d == 0 {
			return 0
		}
		return float64(n) / float64(d)
	}
	goal(rate(ev.attacks.caught(), ev.attacks.n) >= 0.995, "at least 99.5% of attack attempts stepped up or blocked")
	every := true
	for _, k := range attackKinds {
		if t := ev.byKind[k]; t == nil || rate(t.caught(), t.n) < 0.95 {
			every = false
		}
	}
	goal(every, "every attack kind at least 95%")
	goal(ev.attacks.successStop == ev.attacks.successes, "every attack with the right password stopped")
	goal(rate(ev.hard.caught(), ev.hard.n) >= 0.5, "at least half of the hard case")
	goal(rate(ev.legit.stepUp+ev.legit.block, ev.legit.n) <= 0.01, "at most 1% of legitimate attempts stepped up (or blocked)")
	goal(rate(ev.legit.block, ev.legit.n) <= 0.001, "at most 0.1% of legitimate attempts blocked")
	// Night and rota staff no worse than day staff: compared on the same
	// kinds of sign-in (at work, from home off duty, on holiday; on a new
	// phone, through a relay…), since night staff work four long shifts a
	// week and so sign in from home, where sign-ins are more often new,
	// proportionally more often than day staff; and per person, which is
	// how often each member of staff is actually interrupted. The raw rate
	// per attempt is printed beside them.
	day := ev.legitByPattern["day"]
	dayPeople := len(ev.peopleByPattern["day"])
	perPerson := func(p string) float64 {
		if len(ev.peopleByPattern[p]) == 0 {
			return 0
		}
		return float64(ev.legitByPattern[p].caught()) / float64(len(ev.peopleByPattern[p]))
	}
	fair := day != nil && dayPeople > 0
	for _, p := range []string{"night", "rota"} {
		if ev.legitByPattern[p] == nil || ev.standardised(p) > ev.standardised("day") || perPerson(p) > perPerson("day") {
			fair = false
		}
	}
	goal(fair, "night and rota staff no worse than day staff (legitimate attempts stepped up or blocked, on the same kinds of sign-in and per person)")
	for _, p := range patternNames {
		t := ev.legitByPattern[p]
		if t == nil || len(ev.peopleByPattern[p]) == 0 {
			continue
		}
		fmt.Fprintf(w, "         %-5s staff: %.2f%% on the day staff's mix of sign-ins, %.2f per person over the measured days; %.2f%% of all their attempts (%d people, %.1f sign-ins each, %.1f%% from home off duty)\n",
			p, 100*ev.standardised(p), perPerson(p), 100*rate(t.caught(), t.n), len(ev.peopleByPattern[p]), float64(t.n)/float64(len(ev.peopleByPattern[p])), 100*ev.share(p, "home/"))
	}
	goal(rate(ev.legit.caught(), ev.legit.n) < rate(ev.legit.baseFlag, ev.legit.n) &&
		rate(ev.attacks.caught(), ev.attacks.n) > rate(ev.attacks.baseFlag, ev.attacks.n), "better than the naive baseline on both axes")
}

// writeCurve draws detection against legitimate step-ups as the step-up
// threshold moves, with the baseline as a point.
// sweep prints, for step-up thresholds around the default, the share of
// legitimate attempts, attacks and hard cases at or above them.
func sweep(w io.Writer, g *generator, res []result) {
	fmt.Fprintln(w, "| step-up threshold (bits) | legitimate stepped up or blocked | attacks caught | hard case caught |")
	fmt.Fprintln(w, "|---:|---:|---:|---:|")
	for _, th := range []float64{3, 4, 4.5, 5, 5.5, 6, 7, 8, 10} {
		var l, ln, a, an, h, hn int
		for i := range g.events {
			if g.events[i].warm {
				continue
			}
			hit := res[i].flagged(th)
			switch g.events[i].kind {
			case "legit":
				ln++
				if hit {
					l++
				}
			case kindHard:
				hn++
				if hit {
					h++
				}
			default:
				an++
				if hit {
					a++
				}
			}
		}
		fmt.Fprintf(w, "| %g | %s | %s | %s |\n", th, pct(l, ln), pct(a, an), pct(h, hn))
	}
}

func writeCurve(path string, g *generator, res []result, ev *evaluation) error {
	type pt struct{ x, y, th float64 }
	var pts []pt
	for th := -4.0; th <= 24; th += 0.5 {
		var fp, tp int
		for i := range g.events {
			if g.events[i].warm {
				continue
			}
			switch g.events[i].kind {
			case "legit":
				if res[i].flagged(th) {
					fp++
				}
			case kindHard:
			default:
				if res[i].flagged(th) {
					tp++
				}
			}
		}
		pts = append(pts, pt{100 * float64(fp) / float64(max(ev.legit.n, 1)), 100 * float64(tp) / float64(max(ev.attacks.n, 1)), th})
	}
	const W, H, L, B, T, R = 640.0, 440.0, 60.0, 50.0, 30.0, 20.0
	// x: legitimate attempts flagged, log scale from 0.01% to 100%.
	xs := func(v float64) float64 {
		lv := logClamp(v)
		return L + (lv+2)/4*(W-L-R)
	}
	ys := func(v float64) float64 { return H - B - v/100*(H-B-T) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", W, H)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="18" font-size="14">Risk engine trade-off: attacks caught vs legitimate sign-ins stepped up</text>`+"\n", L)
	for _, v := range []float64{0.01, 0.1, 1, 10, 100} {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="middle">%g%%</text>`+"\n",
			xs(v), T, xs(v), H-B, xs(v), H-B+16, v)
	}
	for _, v := range []float64{0, 25, 50, 75, 90, 100} {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%g%%</text>`+"\n",
			L, ys(v), W-R, ys(v), L-6, ys(v)+4, v)
	}
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">legitimate sign-ins stepped up or blocked (log scale)</text>`+"\n", (L+W-R)/2, H-12)
	fmt.Fprintf(&b, `<text transform="translate(16 %.0f) rotate(-90)" text-anchor="middle">attack attempts caught</text>`+"\n", (T+H-B)/2)
	var line strings.Builder
	for i, p := range pts {
		cmd := "L"
		if i == 0 {
			cmd = "M"
		}
		fmt.Fprintf(&line, "%s%.1f %.1f ", cmd, xs(p.x), ys(p.y))
	}
	fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="#005eb8" stroke-width="2"/>`+"\n", line.String())
	def := risk.DefaultThresholds.StepUp
	for _, p := range pts {
		if p.th == def {
			fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="5" fill="#005eb8"/><text x="%.1f" y="%.1f">engine, step-up at %g bits</text>`+"\n",
				xs(p.x), ys(p.y), xs(p.x)+8, ys(p.y)+16, def)
		}
	}
	bx, by := 100*float64(ev.legit.baseFlag)/float64(max(ev.legit.n, 1)), 100*float64(ev.attacks.baseFlag)/float64(max(ev.attacks.n, 1))
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="10" height="10" fill="#d5281b"/><text x="%.1f" y="%.1f" text-anchor="end">naive baseline</text>`+"\n",
		xs(bx)-5, ys(by)-5, xs(bx)-10, ys(by)+18)
	b.WriteString("</svg>\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}

func logClamp(v float64) float64 { return math.Log10(min(max(v, 0.01), 100)) }

// standardised returns pattern p's rate of legitimate attempts stepped up
// or blocked, had its staff signed in with the day staff's mix of kinds of
// sign-in (direct standardisation): the sum over kinds of the day staff's
// share of that kind times p's rate for it. A kind p never shows counts at
// the day staff's own rate.
func (ev *evaluation) standardised(p string) float64 {
	day, other := ev.byStratum["day"], ev.byStratum[p]
	total := 0
	for _, t := range day {
		total += t.n
	}
	if total == 0 {
		return 0
	}
	sum := 0.0
	for k, t := range day {
		r := float64(t.caught()) / float64(t.n)
		if o := other[k]; o != nil && o.n > 0 {
			r = float64(o.caught()) / float64(o.n)
		}
		sum += float64(t.n) / float64(total) * r
	}
	return sum
}

// share returns the fraction of pattern p's legitimate attempts whose kind
// starts with prefix.
func (ev *evaluation) share(p, prefix string) float64 {
	n, all := 0, 0
	for k, t := range ev.byStratum[p] {
		all += t.n
		if strings.HasPrefix(k, prefix) {
			n += t.n
		}
	}
	if all == 0 {
		return 0
	}
	return float64(n) / float64(all)
}
