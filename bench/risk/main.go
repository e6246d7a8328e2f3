// Command risk is the evaluation harness of the risk engine. It builds a
// synthetic population of staff (day, night and rotating shifts, several
// sites, holidays abroad, new phones, VPN, cloud-desktop and private-relay
// users) over a number of days, injects attacks, runs the engine over
// every attempt in time order exactly as `idp risk replay` does, and
// prints detection and false-positive rates per attack kind, per shift
// pattern and per cohort, beside a naive baseline (new country, or outside
// 07:00–19:00). It writes the trade-off curve as SVG, and the world it
// used (geo.mmdb, anonymisers.txt, events.jsonl, labels.jsonl) so that
// replay reproduces it:
//
//	go run ./bench/risk -out /tmp/risk
//	go run ./cmd/idp risk replay --geoip /tmp/risk/geo.mmdb \
//	    --anonymisers /tmp/risk/anonymisers.txt < /tmp/risk/events.jsonl > /tmp/risk/decisions.jsonl
//	go run ./bench/risk -out /tmp/risk -check /tmp/risk/decisions.jsonl
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/lanyard/lanyard/directory/ephemeral/mem"
	"github.com/lanyard/lanyard/risk"
)

func main() {
	staff := flag.Int("staff", 10000, "members of staff")
	days := flag.Int("days", 90, "days measured")
	warmup := flag.Int("warmup", 28, "days simulated before the measured ones, in which the engine learns")
	perKind := flag.Int("attacks", 600, "attack attempts per kind (stuffing and spray come in campaigns)")
	seed := flag.Uint64("seed", 1, "random seed")
	out := flag.String("out", "risk-eval", "folder for geo.mmdb, anonymisers.txt, events.jsonl, labels.jsonl, curve.svg")
	stepUp := flag.Float64("step-up", risk.DefaultThresholds.StepUp, "step-up threshold in bits (to explore; replay uses the defaults)")
	block := flag.Float64("block", risk.DefaultThresholds.Block, "block threshold in bits (to explore)")
	check := flag.String("check", "", "decisions.jsonl from `idp risk replay` to compare with the harness's own")
	flag.Parse()
	if err := run(*staff, *warmup, *days, *perKind, *seed, *out, *check, risk.Thresholds{StepUp: *stepUp, Block: *block}); err != nil {
		fmt.Fprintln(os.Stderr, "risk:", err)
		os.Exit(1)
	}
}

func run(staff, warmup, days, perKind int, seed uint64, out, check string, th risk.Thresholds) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	t0 := time.Now()
	g := newGenerator(seed, staff, warmup, days)
	g.legit()
	g.attacks(perKind)
	g.sort()
	fmt.Printf("generated %d attempts by %d staff over %d days (%d warm-up, %d measured) in %s\n",
		len(g.events), staff, warmup+days, warmup, days, time.Since(t0).Round(time.Millisecond))

	geoPath, anonPath := filepath.Join(out, "geo.mmdb"), filepath.Join(out, "anonymisers.txt")
	if err := writeWorld(g.w, geoPath, anonPath); err != nil {
		return err
	}
	lines, err := writeEvents(g, filepath.Join(out, "events.jsonl"), filepath.Join(out, "labels.jsonl"))
	if err != nil {
		return err
	}
	geo, err := risk.OpenGeoIP(geoPath)
	if err != nil {
		return err
	}
	defer geo.Close()
	f, err := os.Open(anonPath)
	if err != nil {
		return err
	}
	anon, err := risk.LoadAnonymisers(f)
	f.Close()
	if err != nil {
		return err
	}
	store := risk.NewMemStore()
	eng := risk.New(risk.Config{Thresholds: th}, store, mem.New(50_000_000), geo, anon, nil)
	ctx := context.Background()

	res := make([]result, len(g.events))
	base := newBaseline(g.ukTZ)
	t1 := time.Now()
	for i, line := range lines {
		ev, err := risk.ParseEvent(line)
		if err != nil {
			return fmt.Errorf("event %d: %w", i+1, err)
		}
		d := eng.Play(ctx, &ev)
		res[i] = result{verdict: d.Verdict, score: d.Score, forced: d.Forced, discount: d.Discount, reasons: d.Reasons, baseline: base.flag(&g.events[i])}
	}
	elapsed := time.Since(t1)
	fmt.Printf("engine: %d attempts in %s (%.0f per second)\n\n", len(lines), elapsed.Round(time.Millisecond), float64(len(lines))/elapsed.Seconds())

	rep := report(g, res)
	rep.profileSizes(store.ProfileSizes())
	rep.print(os.Stdout)
	fmt.Println()
	sweep(os.Stdout, g, res)
	if err := writeCurve(filepath.Join(out, "curve.svg"), g, res, rep); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", filepath.Join(out, "curve.svg"))
	if check != "" {
		return compare(check, res)
	}
	return nil
}

func writeWorld(w *world, geoPath, anonPath string) error {
	if err := writeMMDB(geoPath, w); err != nil {
		return fmt.Errorf("write %s: %w", geoPath, err)
	}
	return os.WriteFile(anonPath, []byte(w.anonymiserList()), 0o644)
}

// writeEvents writes the replay input and the truth beside it, and
// returns the input lines.
func writeEvents(g *generator, eventsPath, labelsPath string) ([][]byte, error) {
	ef, err := os.Create(eventsPath)
	if err != nil {
		return nil, err
	}
	defer ef.Close()
	lf, err := os.Create(labelsPath)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	ew, lw := bufio.NewWriterSize(ef, 1<<20), bufio.NewWriterSize(lf, 1<<20)
	lines := make([][]byte, len(g.events))
	for i := range g.events {
		e := &g.events[i]
		b := appendEvent(nil, e)
		lines[i] = b
		ew.Write(b)
		ew.WriteByte('\n')
		pat := ""
		if e.p != nil {
			pat = patternNames[e.p.pattern]
		}
		fmt.Fprintf(lw, `{"kind":%q,"pattern":%q,"cohort":%q,"warmup":%t}`+"\n", e.kind, pat, e.cohort, e.warm)
	}
	if err := ew.Flush(); err != nil {
		return nil, err
	}
	return lines, lw.Flush()
}

func appendEvent(b []byte, e *event) []byte {
	q := func(k, v string) {
		b = append(b, ',', '"')
		b = append(b, k...)
		b = append(b, '"', ':')
		b = strconv.AppendQuote(b, v)
	}
	b = append(b, `{"time":"`...)
	b = e.t.UTC().AppendFormat(b, time.RFC3339)
	b = append(b, '"')
	q("user", e.user)
	q("org", e.org)
	q("role", e.role)
	q("ip", e.ip.String())
	q("device", e.device)
	q("ua", e.ua)
	q("tz", "Europe/London")
	q("outcome", map[bool]string{true: "success", false: "failure"}[e.success])
	q("second_factor", e.secondFactor)
	return append(b, '}')
}

// compare checks that replay's output matches the harness's decisions.
func compare(path string, res []result) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	i := 0
	for ; sc.Scan(); i++ {
		var got struct {
			Decision string  `json:"decision"`
			Score    float64 `json:"score"`
		}
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
			return fmt.Errorf("%s line %d: %w", path, i+1, err)
		}
		if i >= len(res) || got.Decision != string(res[i].verdict) || got.Score != res[i].score {
			return fmt.Errorf("%s line %d: %s %v differs from the harness", path, i+1, got.Decision, got.Score)
		}
	}
	if err := sc.Err(); err != nil && err != io.EOF {
		return err
	}
	if i != len(res) {
		return fmt.Errorf("%s: %d decisions, harness made %d", path, i, len(res))
	}
	fmt.Printf("replay output %s matches the harness: %d decisions\n", path, i)
	return nil
}

// baseline is the naive rule: step up a new country (for the user) or a
// sign-in outside 07:00–19:00.
type baseline struct {
	tz        *time.Location
	countries map[string]map[string]bool
}

func newBaseline(tz *time.Location) *baseline {
	return &baseline{tz: tz, countries: map[string]map[string]bool{}}
}

func (b *baseline) flag(e *event) bool {
	country := countryOf(e)
	h := e.t.In(b.tz).Hour()
	seen := b.countries[e.user]
	flag := (len(seen) > 0 && !seen[country]) || h < 7 || h >= 19
	if e.success && (!flag || e.secondFactor == "pass") {
		if seen == nil {
			seen = map[string]bool{}
			b.countries[e.user] = seen
		}
		seen[country] = true
	}
	return flag
}

var countryByPrefix = map[[3]byte]string{}

func countryOf(e *event) string {
	a := e.ip.As4()
	return countryByPrefix[[3]byte{a[0], a[1], a[2]}]
}

type result struct {
	verdict  risk.Verdict
	score    float64
	forced   bool    // a step-up whatever the score
	discount float64 // the step-up threshold was this much lower
	reasons  []string
	baseline bool
}

// flagged tells whether the attempt is stepped up or blocked when the
// step-up threshold is th.
func (r *result) flagged(th float64) bool { return r.score >= th-r.discount || r.forced }

func pct(n, d int) string {
	if d == 0 {
		return "–"
	}
	return strconv.FormatFloat(100*float64(n)/float64(d), 'f', 2, 64) + "%"
}
