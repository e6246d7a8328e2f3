// Package risk is Lanyard's behavioural risk engine. Before a password is
// checked, Assess scores the sign-in attempt against what the engine has
// learnt of the user (places, networks, devices and the hours of the week
// they sign in, each fading with a half-life) and of their organisation's
// and role's population, plus what it sees across users (recent failures
// on the account, one address trying many accounts, anonymising networks,
// impossible travel). It decides allow, step up (ask for a second factor)
// or block, with a score and reasons people can read. Observe, after the
// outcome, teaches the profile from successful sign-ins only.
//
// The score is a sum of log-likelihood ratios in bits: how much more
// likely the attempt's features are for an attacker than for this user.
// Thresholds on it are national defaults that organisations may tighten.
//
// The engine never reads the clock (an Attempt carries its time), keeps
// its profiles in the directory and its counters in the ephemeral store,
// so any instance assesses any attempt. It works without a GeoIP database:
// location features then simply say nothing.
package risk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/ephemeral"
)

// Verdict is what the engine decides for an attempt.
type Verdict string

// The verdicts.
const (
	Allow  Verdict = directory.RiskAllow  // carry on as the organisation's policy says
	StepUp Verdict = directory.RiskStepUp // ask for a second factor, whatever the policy
	Block  Verdict = directory.RiskBlock  // refuse the sign-in
)

// Thresholds turn a score into a verdict: at or above StepUp the attempt
// is stepped up, at or above Block it is blocked.
type Thresholds struct {
	StepUp float64
	Block  float64
}

// DefaultThresholds are the national defaults, chosen with the evaluation
// harness (bench/risk, docs/risk.md).
var DefaultThresholds = Thresholds{StepUp: 7, Block: 20}

// Tighten returns t with each threshold lowered to the organisation's
// where the organisation set one that is lower; organisations may only
// tighten.
func (t Thresholds) Tighten(p directory.RiskPolicy) Thresholds {
	if p.StepUp > 0 && p.StepUp < t.StepUp {
		t.StepUp = p.StepUp
	}
	if p.Block > 0 && p.Block < t.Block {
		t.Block = p.Block
	}
	return t
}

// Config holds the engine's settings; zero fields take the defaults.
type Config struct {
	// Thresholds are the national thresholds (DefaultThresholds).
	Thresholds Thresholds
	// HalfLife is how fast old habits fade (30 days).
	HalfLife time.Duration
	// TimeZone is the zone of an attempt that names none (Europe/London).
	TimeZone string
	// Window is how long failures and sprays are counted (1 hour).
	Window time.Duration
	// PopulationFlush is how many sign-ins an instance learns into a
	// population before merging them into the stored profile (64).
	PopulationFlush int
	// PopulationTTL is how long an instance uses a population profile
	// before reading it again (5 minutes).
	PopulationTTL time.Duration
}

func (c *Config) defaults() {
	if c.Thresholds == (Thresholds{}) {
		c.Thresholds = DefaultThresholds
	}
	if c.HalfLife <= 0 {
		c.HalfLife = 30 * 24 * time.Hour
	}
	if c.TimeZone == "" {
		c.TimeZone = "Europe/London"
	}
	if c.Window <= 0 {
		c.Window = time.Hour
	}
	if c.PopulationFlush <= 0 {
		c.PopulationFlush = 64
	}
	if c.PopulationTTL <= 0 {
		c.PopulationTTL = 5 * time.Minute
	}
}

// Store is what the engine needs of the directory.
type Store interface {
	RiskProfile(ctx context.Context, userID string) (directory.RiskProfile, error)
	PutRiskProfile(ctx context.Context, p directory.RiskProfile) error
	RiskPopulation(ctx context.Context, key string) (directory.RiskPopulation, error)
	PutRiskPopulation(ctx context.Context, p directory.RiskPopulation) error
	RiskPolicy(ctx context.Context, orgID string) (directory.RiskPolicy, error)
}

// txStore is a Store that can run a transaction (directory.Store can):
// Observe then reads and writes a user's profile in one, so that two
// sign-ins of the same user finishing at once cannot lose an update.
type txStore interface {
	InTx(ctx context.Context, fn func(directory.Store) error) error
}

// Counters is what the engine needs of the ephemeral store.
type Counters interface {
	Create(ctx context.Context, key string, value []byte, expires, now time.Time) error
	Incr(ctx context.Context, key string, delta int64, expires, now time.Time) (int64, error)
	Count(ctx context.Context, key string, now time.Time) (int64, error)
}

// Attempt is one sign-in attempt.
type Attempt struct {
	Time time.Time
	// UserID is the user the email belongs to; "" when no user has it.
	UserID string
	// Account names the account tried, known or not (a hash of the email);
	// "" means UserID.
	Account string
	// OrgID and Role choose the population a new user starts from.
	OrgID string
	Role  string
	IP    netip.Addr
	// Device is the device ID from a valid device cookie; "" when none.
	Device    string
	UserAgent string
	// TimeZone is the user's IANA zone; "" means Config.TimeZone.
	TimeZone string
}

func (a *Attempt) account() string {
	if a.Account != "" {
		return a.Account
	}
	return a.UserID
}

// Outcome is what happened to an attempt.
type Outcome int

// The outcomes.
const (
	// Succeeded: signed in (allowed, or stepped up and the second factor
	// proven). Only this teaches the profile.
	Succeeded Outcome = iota + 1
	// PasswordFailed: the password was wrong (whatever the verdict).
	PasswordFailed
	// SecondFactorFailed: stepped up and the second factor was wrong.
	SecondFactorFailed
	// Refused: blocked, or the step-up abandoned; teaches nothing.
	Refused
)

// Decision is the engine's verdict on an attempt, with its score and the
// reasons, for people, that raised it.
type Decision struct {
	Verdict Verdict
	Score   float64
	// Forced is a step-up asked by a pattern (a new device behind a VPN)
	// whatever the score; Discount is how much lower than usual the
	// step-up threshold was for this attempt (a device and a network both
	// new to the user).
	Forced   bool
	Discount float64
	Reasons  []string
	// Place is where the attempt came from, as far as GeoIP knows.
	Place      Place
	Anonymiser bool
}

// Engine assesses attempts and learns from outcomes. It is safe for
// concurrent use; it keeps only caches of its own (population profiles
// and organisations' thresholds), so instances may come and go.
type Engine struct {
	cfg      Config
	store    Store
	counters Counters
	geo      *GeoIP
	anon     *Anonymisers
	log      *slog.Logger

	mu    sync.Mutex
	pops  map[string]*popState
	zones sync.Map // name -> *time.Location
}

type popState struct {
	base    *profile
	loaded  time.Time
	delta   *profile
	pending int
	policy  directory.RiskPolicy
}

// New returns an engine. geo and anon may be nil (no location, no list).
func New(cfg Config, store Store, counters Counters, geo *GeoIP, anon *Anonymisers, log *slog.Logger) *Engine {
	cfg.defaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{cfg: cfg, store: store, counters: counters, geo: geo, anon: anon, log: log, pops: map[string]*popState{}}
}

// Thresholds returns the national thresholds in force.
func (e *Engine) Thresholds() Thresholds { return e.cfg.Thresholds }

// Geo returns the engine's GeoIP database (nil when none).
func (e *Engine) Geo() *GeoIP { return e.geo }

// observation is an attempt's features.
type observation struct {
	how   int // hour of the week in the user's zone, Monday 00:00 = 0
	local time.Time
	keys  [nFeatures]uint64
	has   [nFeatures]bool
	place Place
	anon  bool
}

func (e *Engine) zone(name string) *time.Location {
	if name == "" {
		name = e.cfg.TimeZone
	}
	if l, ok := e.zones.Load(name); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		l = time.UTC
		if name != e.cfg.TimeZone {
			return e.zone("")
		}
	}
	e.zones.Store(name, l)
	return l
}

func (e *Engine) observe(at *Attempt) observation {
	var o observation
	o.local = at.Time.In(e.zone(at.TimeZone))
	o.how = (int(o.local.Weekday())+6)%7*24 + o.local.Hour()
	if at.Device != "" {
		o.keys[fDevice], o.has[fDevice] = hashKey(at.Device), true
	}
	o.keys[fBrowser], o.has[fBrowser] = hashKey(BrowserFamily(at.UserAgent)), true
	if at.IP.IsValid() {
		o.keys[fPrefix], o.has[fPrefix] = hashKey(networkOf(at.IP)), true
		o.place = e.geo.Lookup(at.IP)
		o.anon = e.anon.Contains(at.IP)
	}
	if o.place.ASN != 0 {
		o.keys[fASN], o.has[fASN] = uint64(o.place.ASN), true
	}
	if o.place.Country != "" {
		o.keys[fCountry], o.has[fCountry] = hashKey(o.place.Country), true
		if o.place.City != "" {
			o.keys[fCity], o.has[fCity] = hashKey(o.place.Country+"/"+o.place.City), true
		}
	}
	return o
}

// networkOf is the /24 (IPv4) or /48 (IPv6) holding ip.
func networkOf(ip netip.Addr) string {
	ip = ip.Unmap()
	bits := 48
	if ip.Is4() {
		bits = 24
	}
	p, _ := ip.Prefix(bits)
	return p.String()
}

// Counter keys in the ephemeral store.
const (
	keyFail      = "risk:fail:"    // + account: failures within the window
	keySprayPair = "risk:spray:p:" // + ip + ":" + account: counted once
	keySpray     = "risk:spray:n:" // + ip: accounts failing from it
)

// Assess scores an attempt before its password is checked. It never
// fails: when a store cannot answer it logs and assesses with what it
// has, and without GeoIP it leaves location out.
func (e *Engine) Assess(ctx context.Context, at Attempt) Decision {
	o := e.observe(&at)
	user := e.userProfile(ctx, at.UserID)
	pop, policy := e.population(ctx, at.OrgID, at.Role, at.Time)
	var fails, spray int64
	var err error
	if acct := at.account(); acct != "" {
		if fails, err = e.counters.Count(ctx, keyFail+acct, at.Time); err != nil {
			e.log.WarnContext(ctx, "risk: read failure counter", "reason", err.Error())
		}
	}
	if at.IP.IsValid() {
		if spray, err = e.counters.Count(ctx, keySpray+at.IP.String(), at.Time); err != nil {
			e.log.WarnContext(ctx, "risk: read spray counter", "reason", err.Error())
		}
	}
	s := score(user, pop, &o, at.Time, fails, spray)
	d := Decision{Verdict: Allow, Score: math.Round(s.total*10) / 10, Forced: s.stepUp, Discount: s.discount, Place: o.place, Anonymiser: o.anon}
	th := e.cfg.Thresholds.Tighten(policy)
	switch {
	case s.total >= th.Block:
		d.Verdict = Block
	case s.total >= th.StepUp-s.discount, s.stepUp:
		d.Verdict = StepUp
	}
	d.Reasons = s.reasons(&o, at.TimeZone, e.cfg.TimeZone)
	return d
}

// Observe learns from an attempt's outcome: a success teaches the user's
// profile and their population's; a failure counts towards the account's
// failures and, from a network the user does not know, towards the
// address's spray count. Errors are logged, not returned: learning is
// never a reason to refuse a sign-in.
func (e *Engine) Observe(ctx context.Context, at Attempt, out Outcome) {
	if err := e.observe1(ctx, &at, out); err != nil {
		e.log.WarnContext(ctx, "risk: observe", "user_id", at.UserID, "reason", err.Error())
	}
}

func (e *Engine) observe1(ctx context.Context, at *Attempt, out Outcome) error {
	o := e.observe(at)
	switch out {
	case Succeeded:
		if at.UserID == "" {
			return nil
		}
		var err error
		if ts, ok := e.store.(txStore); ok {
			err = ts.InTx(ctx, func(tx directory.Store) error { return e.learnUser(ctx, tx, at, &o) })
		} else {
			err = e.learnUser(ctx, e.store, at, &o)
		}
		if err != nil {
			return err
		}
		return e.learnPopulation(ctx, at, &o)
	case PasswordFailed, SecondFactorFailed:
		acct := at.account()
		if acct == "" {
			return nil
		}
		exp := at.Time.Add(e.cfg.Window)
		if _, err := e.counters.Incr(ctx, keyFail+acct, 1, exp, at.Time); err != nil {
			return err
		}
		if !at.IP.IsValid() {
			return nil
		}
		if p := e.userProfile(ctx, at.UserID); p != nil && p.knows(fPrefix, o.keys[fPrefix]) {
			return nil // the user's own network: a mistyped password, not a spray
		}
		ip := at.IP.String()
		err := e.counters.Create(ctx, keySprayPair+ip+":"+acct, nil, exp, at.Time)
		if errors.Is(err, ephemeral.ErrExists) {
			return nil
		} else if err != nil {
			return err
		}
		_, err = e.counters.Incr(ctx, keySpray+ip, 1, exp, at.Time)
		return err
	}
	return nil
}

// LearnUser teaches the user's profile a successful sign-in, as Observe
// does with Succeeded, but reads and writes it through st: a Store bound to
// the caller's transaction, so that the profile's update commits with the
// caller's other writes of the sign-in (in one commit rather than one
// each) and, on SQLite, whose write transactions exclude each other,
// cannot lose a concurrent update. It returns the store's error, for the
// caller to roll back or to retry without learning, and the rest of the
// lesson, teaching the user's populations (the organisation and role's,
// and the national one), for the caller to run once outside the
// transaction: populations are kept in memory and merged into the
// directory now and then, which must not happen inside it. The sign-in is
// observed (GeoIP, User-Agent) once for both.
func (e *Engine) LearnUser(ctx context.Context, st Store, at Attempt) (learnPopulations func(context.Context), err error) {
	if at.UserID == "" {
		return func(context.Context) {}, nil
	}
	o := e.observe(&at)
	learnPopulations = func(ctx context.Context) {
		if err := e.learnPopulation(ctx, &at, &o); err != nil {
			e.log.WarnContext(ctx, "risk: learn population", "user_id", at.UserID, "reason", err.Error())
		}
	}
	return learnPopulations, e.learnUser(ctx, st, &at, &o)
}

// learnUser teaches the user's profile, read and written through st; the
// caller has checked that the attempt names a user.
func (e *Engine) learnUser(ctx context.Context, st Store, at *Attempt, o *observation) error {
	p := e.userProfileIn(ctx, st, at.UserID)
	if p == nil {
		p = &profile{}
	}
	p.learn(o, at.Time, e.cfg.HalfLife, &userCaps)
	return st.PutRiskProfile(ctx, directory.RiskProfile{UserID: at.UserID, Data: p.encode(), UpdatedAt: at.Time})
}

func (e *Engine) userProfile(ctx context.Context, userID string) *profile {
	return e.userProfileIn(ctx, e.store, userID)
}

func (e *Engine) userProfileIn(ctx context.Context, st Store, userID string) *profile {
	if userID == "" {
		return nil
	}
	rp, err := st.RiskProfile(ctx, userID)
	if errors.Is(err, directory.ErrNotFound) {
		return nil
	} else if err != nil {
		e.log.WarnContext(ctx, "risk: read profile", "user_id", userID, "reason", err.Error())
		return nil
	}
	p, err := decodeProfile(rp.Data)
	if err != nil {
		e.log.WarnContext(ctx, "risk: profile unreadable, starting afresh", "user_id", userID, "reason", err.Error())
		return nil
	}
	return p
}

// nationalKey names the population of everyone, used for attempts on
// accounts that belong to no organisation (or to no one).
const nationalKey = "national"

func popKey(org, role string) string {
	if org == "" {
		return nationalKey
	}
	return org + ":" + role
}

// population returns the population profile for org and role (the
// national one when org is ""; nil when none) and the organisation's
// thresholds, from the cache when fresh.
func (e *Engine) population(ctx context.Context, org, role string, now time.Time) (*profile, directory.RiskPolicy) {
	key := popKey(org, role)
	e.mu.Lock()
	st := e.pops[key]
	if st != nil && now.Sub(st.loaded) < e.cfg.PopulationTTL && !now.Before(st.loaded) {
		defer e.mu.Unlock()
		return st.base, st.policy
	}
	e.mu.Unlock()
	base := e.loadPopulation(ctx, key)
	var policy directory.RiskPolicy
	if org != "" {
		var err error
		if policy, err = e.store.RiskPolicy(ctx, org); err != nil && !errors.Is(err, directory.ErrNotFound) {
			e.log.WarnContext(ctx, "risk: read organisation thresholds", "reason", err.Error())
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if st = e.pops[key]; st == nil {
		st = &popState{}
		e.pops[key] = st
	}
	st.base, st.loaded, st.policy = base, now, policy
	return base, policy
}

func (e *Engine) loadPopulation(ctx context.Context, key string) *profile {
	rp, err := e.store.RiskPopulation(ctx, key)
	if err != nil {
		if !errors.Is(err, directory.ErrNotFound) {
			e.log.WarnContext(ctx, "risk: read population", "reason", err.Error())
		}
		return nil
	}
	p, err := decodeProfile(rp.Data)
	if err != nil {
		e.log.WarnContext(ctx, "risk: population unreadable", "reason", err.Error())
		return nil
	}
	return p
}

// learnPopulation adds a success to the instance's delta for the
// population and merges the delta into the stored profile every
// PopulationFlush successes.
func (e *Engine) learnPopulation(ctx context.Context, at *Attempt, o *observation) error {
	err := e.learnPopulation1(ctx, nationalKey, at, o)
	if at.OrgID != "" {
		err = errors.Join(err, e.learnPopulation1(ctx, popKey(at.OrgID, at.Role), at, o))
	}
	return err
}

func (e *Engine) learnPopulation1(ctx context.Context, key string, at *Attempt, o *observation) error {
	e.mu.Lock()
	st := e.pops[key]
	if st == nil {
		st = &popState{}
		e.pops[key] = st
	}
	if st.delta == nil {
		st.delta = &profile{}
	}
	st.delta.learn(o, at.Time, e.cfg.HalfLife, &popCaps)
	st.pending++
	if st.pending < e.cfg.PopulationFlush {
		e.mu.Unlock()
		return nil
	}
	delta := st.delta
	st.delta, st.pending = nil, 0
	e.mu.Unlock()
	return e.mergePopulation(ctx, key, delta, at.Time)
}

func (e *Engine) mergePopulation(ctx context.Context, key string, delta *profile, now time.Time) error {
	base := e.loadPopulation(ctx, key)
	if base == nil {
		base = &profile{}
	}
	base.merge(delta, now, e.cfg.HalfLife, &popCaps)
	if err := e.store.PutRiskPopulation(ctx, directory.RiskPopulation{Key: key, Data: base.encode(), UpdatedAt: now}); err != nil {
		return fmt.Errorf("population %s: %w", key, err)
	}
	e.mu.Lock()
	if st := e.pops[key]; st != nil {
		st.base, st.loaded = base, now
	}
	e.mu.Unlock()
	return nil
}

// Flush merges every population delta the instance holds into the store
// (at shutdown, and in tools that replay).
func (e *Engine) Flush(ctx context.Context, now time.Time) error {
	e.mu.Lock()
	type job struct {
		key   string
		delta *profile
	}
	var jobs []job
	for k, st := range e.pops {
		if st.delta != nil {
			jobs = append(jobs, job{k, st.delta})
			st.delta, st.pending = nil, 0
		}
	}
	e.mu.Unlock()
	slices.SortFunc(jobs, func(a, b job) int {
		if a.key < b.key {
			return -1
		}
		return 1
	})
	var errs []error
	for _, j := range jobs {
		errs = append(errs, e.mergePopulation(ctx, j.key, j.delta, now))
	}
	return errors.Join(errs...)
}

// ProfileSize returns the encoded size of the user's profile (0 when
// none), for measurement.
func (e *Engine) ProfileSize(ctx context.Context, userID string) int {
	rp, err := e.store.RiskProfile(ctx, userID)
	if err != nil {
		return 0
	}
	return len(rp.Data)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
