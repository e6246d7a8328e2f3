package adsync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ErrRetryLater matches an error after which the same request may succeed
// later: a transport failure (Lanyard or the network down, a timeout) or
// an answer of 5xx or 429. The agent keeps the work queued and retries
// with backoff.
var ErrRetryLater = errors.New("lanyard is unavailable; retry later")

// ErrRefused matches a final answer of 4xx (other than 429): the request
// itself is wrong (malformed, unsigned, unknown agent, too large) and
// sending it again will not help.
var ErrRefused = errors.New("lanyard refused the request")

// StatusError is an answer of Lanyard that is not a success. It matches
// ErrRetryLater for 5xx and 429 and ErrRefused for other 4xx.
type StatusError struct {
	Status  int    // the HTTP status code
	Message string // the "error" of the JSON answer, or the status text
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("lanyard answered %d: %s", e.Status, e.Message)
}

// Is makes e match ErrRetryLater or ErrRefused by its status.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrRetryLater:
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests
	case ErrRefused:
		return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusTooManyRequests
	}
	return false
}

// TransportError is a request that got no answer from Lanyard (connection
// refused, TLS failure, timeout, an unreadable answer). It matches
// ErrRetryLater and unwraps to the cause, so errors.Is(err,
// context.Canceled) still tells a shutdown apart.
type TransportError struct {
	Op  string
	Err error
}

func (e *TransportError) Error() string { return e.Op + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *TransportError) Unwrap() error { return e.Err }

// Is makes e match ErrRetryLater.
func (e *TransportError) Is(target error) bool { return target == ErrRetryLater }

// maxAnswer bounds what the client reads of an answer.
const maxAnswer = 32 << 20

// MaxWait is the longest long poll Lanyard honours.
const MaxWait = 30 * time.Second

// Client makes signed requests to Lanyard's /adsync/v1/ API for one agent.
// It is safe for concurrent use.
type Client struct {
	base string
	keys PrivateKeys
	hc   *http.Client
	// Now is the clock requests are dated with; time.Now when nil.
	Now func() time.Time
}

// NewClient returns a client of the Lanyard at baseURL (scheme and host,
// e.g. "https://lanyard.example.nhs.uk"; any path is kept as a prefix)
// signing with keys. hc is the HTTP client to use (its Transport carries
// the TLS settings); http.DefaultClient when nil. Its Timeout, if set, must
// exceed the longest wait given to Changes.
func NewClient(baseURL string, keys PrivateKeys, hc *http.Client) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("lanyard URL %q: want http(s)://host[/prefix]", baseURL)
	}
	if keys.Sign == nil || keys.Seal == nil {
		return nil, fmt.Errorf("lanyard client: %w: keys missing", ErrKeyFile)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	return &Client{base: strings.TrimSuffix(u.String(), "/"), keys: keys, hc: hc}, nil
}

// AgentID is the ID Lanyard knows the client's agent by (its KeyID).
func (c *Client) AgentID() string { return c.keys.Public().KeyID() }

// Changes long-polls for the organisation's pending changes with Seq >
// after: Lanyard answers at once when there are some, else after wait (at
// most MaxWait) with none, or as soon as one is made.
func (c *Client) Changes(ctx context.Context, after int64, wait time.Duration) (Changes, error) {
	wait = min(max(wait, 0), MaxWait)
	q := url.Values{"after": {strconv.FormatInt(after, 10)}, "wait": {strconv.Itoa(int(wait / time.Second))}}
	var out Changes
	err := c.do(ctx, http.MethodGet, "changes?"+q.Encode(), nil, &out)
	return out, err
}

// Ack acknowledges changes; Lanyard deletes them from its outbox and
// audits each result. Acknowledging a change twice is harmless.
func (c *Client) Ack(ctx context.Context, acks ...Ack) error {
	return c.do(ctx, http.MethodPost, "acks", Acks{Acks: acks}, nil)
}

// SendADChange forwards a password change made in AD. Every outcome in
// the answer is final; resending the same ID is harmless.
func (c *Client) SendADChange(ctx context.Context, ch ADChange) (ADChangeResult, error) {
	var out ADChangeResult
	err := c.do(ctx, http.MethodPost, "passwords", ch, &out)
	return out, err
}

// PolicyCheck asks Lanyard whether AD may accept a password.
func (c *Client) PolicyCheck(ctx context.Context, pc PolicyCheck) (PolicyVerdict, error) {
	var out PolicyVerdict
	err := c.do(ctx, http.MethodPost, "policy-check", pc, &out)
	return out, err
}

// Policy fetches the offline parts of the organisation's policy.
func (c *Client) Policy(ctx context.Context) (OfflinePolicy, error) {
	var out OfflinePolicy
	err := c.do(ctx, http.MethodGet, "policy", nil, &out)
	return out, err
}

// Accounts sends the agent's view of AD's accounts and returns the links
// after matching.
func (c *Client) Accounts(ctx context.Context, a Accounts) (Links, error) {
	var out Links
	err := c.do(ctx, http.MethodPost, "accounts", a, &out)
	return out, err
}

// do sends one signed request to PathPrefix+endpoint with in as the JSON
// body (none when nil) and decodes a successful answer into out (ignored
// when nil).
func (c *Client) do(ctx context.Context, method, endpoint string, in, out any) error {
	op := method + " " + PathPrefix + strings.SplitN(endpoint, "?", 2)[0]
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return fmt.Errorf("%s: encode: %w", op, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+PathPrefix+endpoint, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	SignRequest(req, body, c.keys, now())
	resp, err := c.hc.Do(req)
	if err != nil {
		return &TransportError{Op: op, Err: err}
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return &TransportError{Op: op, Err: fmt.Errorf("read answer: %w", err)}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var e struct {
			Error string `json:"error"`
		}
		msg := http.StatusText(resp.StatusCode)
		if json.Unmarshal(raw, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return fmt.Errorf("%s: %w", op, &StatusError{Status: resp.StatusCode, Message: msg})
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		// A proxy's page in place of Lanyard's answer: try again later.
		return &TransportError{Op: op, Err: fmt.Errorf("decode answer: %w", err)}
	}
	return nil
}
