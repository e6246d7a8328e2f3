package oidc

import (
	"context"
	"log/slog"
	"net/http"
	"runtime"
	"sync/atomic"

	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/lanyard/lanyard/authn"
)

// A refresh grant's one durable write, the rotation of the refresh token,
// runs while zitadel signs the new ID token, so that the signature (a
// millisecond of one core's time) and the commit (its fsync, on SQLite)
// overlap instead of adding up. Nothing is handed out before it is
// durable: the token response waits for the commit, and when the commit
// fails (a lost race with another use of the same token, which is reuse,
// or a database error) the response is the error the synchronous path
// would have given, and the access token made for it is deleted.
//
// The overlap helps only when a core is free to commit while another
// signs: with the cores already busy with other token requests, the commit
// would wait for a core while holding SQLite's write lock, and the
// requests behind it would wait longer (measured: a sixth fewer refreshes
// at two requests at once on two cores). So a request overlaps only when
// token requests in flight, itself included, are at most half the cores.

type pendingKeyType struct{}

var pendingKey pendingKeyType

// pendingSlot is where a token request's storage calls leave their write
// for the response to wait on; the token endpoint puts one in the request's
// context.
type pendingSlot struct {
	p     *pendingCommit
	async bool // a core is free to commit beside the signature
}

// tokenRequests counts token requests in flight.
var tokenRequests atomic.Int64

// overlapLimit is how many token requests may be in flight for one to
// overlap its commit with its signature: half the cores. Tests raise it.
var overlapLimit = func() int64 { return int64(max(runtime.GOMAXPROCS(0)/2, 1)) }

type pendingCommit struct {
	done chan struct{}
	err  error
	undo func(context.Context)
}

// commitAsync runs write in the background when the request's response
// will wait for it, and at once otherwise (outside the token endpoint, or
// when a write is already pending). undo runs when write fails.
func commitAsync(ctx context.Context, write func(context.Context) error, undo func(context.Context)) error {
	slot, _ := ctx.Value(pendingKey).(*pendingSlot)
	if slot == nil || !slot.async || slot.p != nil {
		if err := write(ctx); err != nil {
			undo(ctx)
			return err
		}
		return nil
	}
	pc := &pendingCommit{done: make(chan struct{}), undo: undo}
	slot.p = pc
	go func() {
		defer close(pc.done)
		pc.err = write(ctx)
	}()
	return nil
}

// awaitCommit serves the token endpoint with a pendingSlot, and holds the
// response until the pending write is settled; when it failed, the
// response is its error instead of what the handler was about to send.
func awaitCommit(next http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := tokenRequests.Add(1)
		defer tokenRequests.Add(-1)
		slot := &pendingSlot{async: n <= overlapLimit()}
		r = r.WithContext(context.WithValue(r.Context(), pendingKey, slot))
		hw := authn.HoldResponse(w, func() error {
			if slot.p == nil {
				return nil
			}
			<-slot.p.done
			return slot.p.err
		}, func(w http.ResponseWriter, err error) {
			slot.p.undo(context.WithoutCancel(r.Context()))
			op.RequestError(w, r, err, log)
		}, "Content-Type", "Content-Length")
		next.ServeHTTP(hw, r)
		hw.Settle() // also when the handler wrote nothing, so the write never outlives the request
	})
}
