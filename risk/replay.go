package risk

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"time"
)

// Event is one past sign-in attempt, a line of the replay input:
//
//	{"time": RFC 3339, "user": ID, "org": ODS, "role": ROLE, "ip": IP,
//	 "device": ID, "ua": STRING, "tz": IANA zone,
//	 "outcome": "success"|"failure", "second_factor": "pass"|"fail"}
//
// Unknown fields are ignored. SecondFactor says what would have happened
// had a second factor been asked for; the replay reads it only once the
// engine has decided to step up.
type Event struct {
	Time         time.Time `json:"time"`
	User         string    `json:"user"`
	Org          string    `json:"org"`
	Role         string    `json:"role"`
	IP           string    `json:"ip"`
	Device       string    `json:"device"`
	UA           string    `json:"ua"`
	TZ           string    `json:"tz"`
	Outcome      string    `json:"outcome"`
	SecondFactor string    `json:"second_factor"`

	addr netip.Addr
}

// MaxEventLine bounds one line of replay input.
const MaxEventLine = 64 << 10

// ParseEvent parses and checks one line of replay input.
func ParseEvent(line []byte) (Event, error) {
	var ev Event
	if len(line) > MaxEventLine {
		return ev, fmt.Errorf("line longer than %d bytes", MaxEventLine)
	}
	if err := json.Unmarshal(line, &ev); err != nil {
		return ev, fmt.Errorf("not a JSON object of the event fields: %w", err)
	}
	if ev.Time.IsZero() {
		return ev, errors.New(`"time" must be an RFC 3339 time`)
	}
	if ev.User == "" {
		return ev, errors.New(`"user" must not be empty`)
	}
	a, err := netip.ParseAddr(ev.IP)
	if err != nil {
		return ev, fmt.Errorf(`"ip" must be an IP address, got %q`, ev.IP)
	}
	ev.addr = a.WithZone("")
	switch ev.Outcome {
	case "success", "failure":
	default:
		return ev, fmt.Errorf(`"outcome" must be "success" or "failure", got %q`, ev.Outcome)
	}
	switch ev.SecondFactor {
	case "", "pass", "fail":
	default:
		return ev, fmt.Errorf(`"second_factor" must be "pass", "fail" or absent, got %q`, ev.SecondFactor)
	}
	return ev, nil
}

// Attempt returns the attempt the event describes.
func (ev *Event) Attempt() Attempt {
	return Attempt{
		Time: ev.Time, UserID: ev.User, OrgID: ev.Org, Role: ev.Role, IP: ev.addr,
		Device: ev.Device, UserAgent: ev.UA, TimeZone: ev.TZ,
	}
}

// Play assesses the event and then tells the engine its outcome as it
// would have been: a blocked attempt teaches nothing, and a step-up
// succeeds only when the event says the second factor would pass.
func (e *Engine) Play(ctx context.Context, ev *Event) Decision {
	at := ev.Attempt()
	d := e.Assess(ctx, at)
	var out Outcome
	switch {
	case ev.Outcome == "failure":
		out = PasswordFailed
	case d.Verdict == Block:
		out = Refused
	case d.Verdict == StepUp && ev.SecondFactor != "pass":
		out = SecondFactorFailed
	default:
		out = Succeeded
	}
	e.Observe(ctx, at, out)
	return d
}

// AppendResult appends the replay output line for d (with its newline):
// {"decision": …, "score": …, "reasons": […]}.
func AppendResult(b []byte, d Decision) []byte {
	b = append(b, `{"decision":"`...)
	b = append(b, d.Verdict...)
	b = append(b, `","score":`...)
	b = strconv.AppendFloat(b, d.Score, 'f', -1, 64)
	b = append(b, `,"reasons":[`...)
	for i, r := range d.Reasons {
		if i > 0 {
			b = append(b, ',')
		}
		q, _ := json.Marshal(r)
		b = append(b, q...)
	}
	return append(b, "]}\n"...)
}

// Replay runs the engine over events read from r, one JSON object a line
// in time order, writing one decision a line to w. It stops at the first
// line that does not parse or goes back in time, naming its line number.
func (e *Engine) Replay(ctx context.Context, r io.Reader, w io.Writer) (n int, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), MaxEventLine+1)
	bw := bufio.NewWriterSize(w, 64<<10)
	defer func() {
		if ferr := bw.Flush(); err == nil {
			err = ferr
		}
	}()
	var last time.Time
	var out []byte
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		ev, err := ParseEvent(b)
		if err != nil {
			return n, fmt.Errorf("line %d: %w", line, err)
		}
		if ev.Time.Before(last) {
			return n, fmt.Errorf("line %d: time %s is before the previous event's %s; events must be in time order",
				line, ev.Time.Format(time.RFC3339), last.Format(time.RFC3339))
		}
		last = ev.Time
		d := e.Play(ctx, &ev)
		out = AppendResult(out[:0], d)
		if _, err := bw.Write(out); err != nil {
			return n, err
		}
		n++
		if err := ctx.Err(); err != nil {
			return n, err
		}
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return n, fmt.Errorf("line %d: longer than %d bytes", line+1, MaxEventLine)
	} else if err != nil {
		return n, err
	}
	return n, nil
}
