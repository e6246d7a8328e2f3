package adsync

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestClientSignsAndClassifiesErrors checks that every request the client
// makes verifies, and that answers map to ErrRetryLater or ErrRefused.
func TestClientSignsAndClassifiesErrors(t *testing.T) {
	k, _ := GenerateKeys()
	lookup := func(id string) (ed25519.PublicKey, error) {
		if id != k.Public().KeyID() {
			return nil, ErrUnknownAgent
		}
		return k.Public().Sign, nil
	}
	status := http.StatusOK
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := VerifyRequest(r, lookup, time.Now())
		if err != nil {
			w.WriteHeader(http.StatusUnauthorized)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		got = append(got, r.Method+" "+r.URL.RequestURI()+" "+string(v.Body))
		w.WriteHeader(status)
		switch {
		case status != http.StatusOK:
			_, _ = io.WriteString(w, `{"error":"nope"}`)
		case r.URL.Path == PathPrefix+"changes":
			_, _ = io.WriteString(w, `{"changes":[{"seq":7,"id":"c"}]}`)
		case r.URL.Path == PathPrefix+"passwords":
			_, _ = io.WriteString(w, `{"outcome":"applied"}`)
		default:
			_, _ = io.WriteString(w, `{}`)
		}
	}))
	defer srv.Close()
	c, err := NewClient(srv.URL, k, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	ch, err := c.Changes(ctx, 5, 2*time.Second)
	if err != nil || len(ch.Changes) != 1 || ch.Changes[0].Seq != 7 {
		t.Fatalf("Changes = %+v, %v", ch, err)
	}
	if res, err := c.SendADChange(ctx, ADChange{ID: "a", Password: "pw"}); err != nil || res.Outcome != OutcomeApplied {
		t.Fatalf("SendADChange = %+v, %v", res, err)
	}
	if err := c.Ack(ctx, Ack{ID: "c", Result: ResultApplied}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Policy(ctx); err != nil {
		t.Fatal(err)
	}
	if got[0] != "GET /adsync/v1/changes?after=5&wait=2 " || got[2] != `POST /adsync/v1/acks {"acks":[{"id":"c","result":"applied"}]}` {
		t.Errorf("requests: %q", got)
	}

	for st, want := range map[int]error{400: ErrRefused, 401: ErrRefused, 413: ErrRefused, 429: ErrRetryLater, 500: ErrRetryLater, 503: ErrRetryLater} {
		status = st
		_, err := c.PolicyCheck(ctx, PolicyCheck{Password: "x"})
		var se *StatusError
		if !errors.Is(err, want) || !errors.As(err, &se) || se.Status != st || se.Message != "nope" {
			t.Errorf("status %d: %v, want %v", st, err, want)
		}
	}
	other, _ := GenerateKeys()
	oc, _ := NewClient(srv.URL, other, srv.Client())
	if _, err := oc.Policy(ctx); !errors.Is(err, ErrRefused) {
		t.Errorf("unknown agent: %v, want ErrRefused", err)
	}
	srv.Close()
	if _, err := c.Policy(ctx); !errors.Is(err, ErrRetryLater) {
		t.Errorf("server down: %v, want ErrRetryLater", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Policy(cctx); !errors.Is(err, ErrRetryLater) || !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v, want ErrRetryLater and context.Canceled", err)
	}
	if _, err := NewClient("ftp://x", k, nil); err == nil {
		t.Error("ftp URL accepted")
	}
}
