package directory

import "time"

// MaxRiskProfileSize bounds the serialised profile the risk engine keeps
// per user or population; stores refuse larger ones with ErrInvalid.
const MaxRiskProfileSize = 4096

// RiskProfile is what the risk engine has learnt about one user's sign-ins
// (places, networks, devices, hours). Data is the engine's own compact
// encoding; the directory stores it as it is.
type RiskProfile struct {
	UserID    string
	Data      []byte
	UpdatedAt time.Time
}

// RiskPopulation is the risk engine's profile of a population (an
// organisation and role), from which new users start. Key names it.
type RiskPopulation struct {
	Key       string
	Data      []byte
	UpdatedAt time.Time
}

// The risk decisions.
const (
	RiskAllow  = "allow"
	RiskStepUp = "step_up"
	RiskBlock  = "block"
)

// RiskEvent is one sign-in the risk engine stepped up or blocked, kept
// with its reasons for the organisation's administrators.
type RiskEvent struct {
	ID       string
	Time     time.Time
	UserID   string
	OrgID    string // the user's first organisation; "" when none
	Decision string // RiskStepUp or RiskBlock (RiskAllow is not kept)
	Score    float64
	Reasons  []string
	IP       string
	Place    string // "City, Country" or "" when unknown
	// Outcome is what happened next: "" (not yet known), "passed" (the
	// second factor was proven), "failed", "abandoned", "blocked".
	Outcome string
	// ReportedAt is when the user said "it wasn't me"; zero when not.
	ReportedAt time.Time
}

// RiskPolicy is an organisation's tightening of the national risk
// thresholds: a zero field keeps the national value, and values above
// the national ones are ignored (organisations may only tighten).
type RiskPolicy struct {
	StepUp float64
	Block  float64
}
