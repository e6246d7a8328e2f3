package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/risk"
)

// loginWrites gathers the directory writes of one sign-in request (its
// audit events, the password's last use, the risk engine's lesson from a
// sign-in that finished) so that they commit together, in one transaction
// just before the response goes out, rather than in one commit (on SQLite,
// one fsync) each. Nothing is acknowledged before it is written: the
// response waits for the commit, and a failed commit answers 503 instead
// of what the handler meant to say. It also keeps what the request reads
// more than once (the lockout generation), so that it is read once.
type loginWrites struct {
	audits []directory.AuditEvent
	cred   *directory.Credential
	learn  *risk.Attempt
	// gens memoises lockout generations for the request (see generation).
	gens map[string]string
}

type writesKey struct{}

func writesFrom(ctx context.Context) *loginWrites {
	lw, _ := ctx.Value(writesKey{}).(*loginWrites)
	return lw
}

// errLearn marks a failure of the risk engine's part of a commit.
var errLearn = errors.New("risk profile")

// batchWrites runs h with the request's directory writes gathered, and
// commits them before the first byte of the response.
func (a *Authenticator) batchWrites(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		lw := &loginWrites{}
		r = r.WithContext(context.WithValue(r.Context(), writesKey{}, lw))
		hw := HoldResponse(w, func() error { return a.commitWrites(r.Context(), lw) }, func(w http.ResponseWriter, err error) {
			a.unavailable(w, r, fmt.Errorf("commit sign-in writes: %w", err))
		}, "Location", "Set-Cookie", "Content-Type", "Content-Length")
		h(hw, r)
		hw.Settle()
	}
}

// commitWrites writes what lw gathered in one transaction. Learning is
// never a reason to refuse a sign-in: when the risk profile's write fails,
// the rest is committed without it.
func (a *Authenticator) commitWrites(ctx context.Context, lw *loginWrites) error {
	if lw.cred == nil && len(lw.audits) == 0 && lw.learn == nil {
		return nil
	}
	var learnPopulations func(context.Context)
	write := func(learn bool) error {
		return a.dir.InTx(ctx, func(tx directory.Store) error {
			if lw.cred != nil {
				if err := tx.PutCredential(ctx, *lw.cred); err != nil {
					return err
				}
			}
			for _, ev := range lw.audits {
				if _, err := tx.AppendAudit(ctx, ev); err != nil {
					return err
				}
			}
			if learn && lw.learn != nil {
				var err error
				if learnPopulations, err = a.cfg.Risk.LearnUser(ctx, tx, *lw.learn); err != nil {
					return fmt.Errorf("%w: %w", errLearn, err)
				}
			}
			return nil
		})
	}
	err := write(true)
	if errors.Is(err, errLearn) {
		a.log.WarnContext(ctx, "risk: learn sign-in", "reason", err.Error())
		err = write(false)
	}
	if err != nil {
		return err
	}
	if learnPopulations != nil {
		learnPopulations(ctx)
	}
	lw.audits, lw.cred, lw.learn = nil, nil, nil
	return nil
}

// HeldResponse holds a response until a check has run: check runs once,
// before the first byte of the response goes out (or at Settle, for a
// handler that wrote nothing). When it fails, what the handler meant to
// send is dropped (its status, its body and the headers named by drop) and
// fail answers instead. The sign-in's batched writes and the token
// endpoint's pending commit (package oidc) are such checks: nothing is
// acknowledged before it is durable.
type HeldResponse struct {
	http.ResponseWriter
	check   func() error
	fail    func(http.ResponseWriter, error)
	drop    []string
	settled bool
	failed  bool
}

// HoldResponse wraps w; see HeldResponse.
func HoldResponse(w http.ResponseWriter, check func() error, fail func(http.ResponseWriter, error), drop ...string) *HeldResponse {
	return &HeldResponse{ResponseWriter: w, check: check, fail: fail, drop: drop}
}

// Settle runs the check if it has not run yet.
func (w *HeldResponse) Settle() {
	if w.settled {
		return
	}
	w.settled = true
	if err := w.check(); err != nil {
		w.failed = true
		h := w.ResponseWriter.Header()
		for _, k := range w.drop {
			h.Del(k)
		}
		w.fail(w.ResponseWriter, err)
	}
}

func (w *HeldResponse) WriteHeader(status int) {
	w.Settle()
	if !w.failed {
		w.ResponseWriter.WriteHeader(status)
	}
}

func (w *HeldResponse) Write(b []byte) (int, error) {
	w.Settle()
	if w.failed {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *HeldResponse) Unwrap() http.ResponseWriter { return w.ResponseWriter }
