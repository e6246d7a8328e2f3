package directory

import (
	"context"
	"errors"
	"testing"
	"time"
)

type sliceLog struct {
	evs      []AuditEvent
	headSeq  int64
	headHash []byte
}

func (l *sliceLog) AuditEvents(_ context.Context, after int64, limit int) ([]AuditEvent, error) {
	var out []AuditEvent
	for _, e := range l.evs {
		if e.Seq > after && len(out) < limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func (l *sliceLog) AuditHead(context.Context) (int64, []byte, error) {
	return l.headSeq, l.headHash, nil
}

func chain(n int) *sliceLog {
	l := &sliceLog{}
	var prev []byte
	t0 := time.Date(2026, 11, 23, 9, 0, 0, 123456789, time.UTC)
	for i := 1; i <= n; i++ {
		e := AuditEvent{Seq: int64(i), Time: AuditTime(t0.Add(time.Duration(i) * time.Second)), Actor: "cli", Action: "user.create",
			Target: "u", Outcome: OutcomeSuccess, Detail: map[string]string{"b": "2", "a": "1"}, PrevHash: prev}
		e.Hash = ChainHash(prev, e)
		prev = e.Hash
		l.evs = append(l.evs, e)
	}
	l.headSeq, l.headHash = int64(n), prev
	return l
}

func TestVerifyAudit(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(*sliceLog)
		n      int
		broken int64 // 0: intact
	}{
		{"intact", func(*sliceLog) {}, 2500, 0},
		{"empty", func(l *sliceLog) { *l = sliceLog{} }, 0, 0},
		{"edited actor", func(l *sliceLog) { l.evs[3].Actor = "someone" }, 10, 4},
		{"edited detail", func(l *sliceLog) { l.evs[7].Detail = map[string]string{"a": "1", "b": "3"} }, 10, 8},
		{"edited time", func(l *sliceLog) { l.evs[0].Time = l.evs[0].Time.Add(time.Microsecond) }, 10, 1},
		{"deleted middle", func(l *sliceLog) { l.evs = append(l.evs[:4], l.evs[5:]...) }, 10, 5},
		{"deleted first", func(l *sliceLog) { l.evs = l.evs[1:] }, 10, 1},
		{"deleted last", func(l *sliceLog) { l.evs = l.evs[:9] }, 10, 10},
		{"rehashed edit", func(l *sliceLog) {
			l.evs[2].Outcome = OutcomeFailure
			l.evs[2].Hash = ChainHash(l.evs[2].PrevHash, l.evs[2])
		}, 10, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := chain(tc.n)
			tc.tamper(l)
			_, err := VerifyAudit(t.Context(), l)
			var bl *BrokenLink
			switch {
			case tc.broken == 0 && err != nil:
				t.Errorf("VerifyAudit = %v, want intact", err)
			case tc.broken != 0 && !errors.As(err, &bl):
				t.Errorf("VerifyAudit = %v, want BrokenLink at %d", err, tc.broken)
			case tc.broken != 0 && bl.Seq != tc.broken:
				t.Errorf("VerifyAudit broken at %d (%s), want %d", bl.Seq, bl.Reason, tc.broken)
			}
		})
	}
}

func TestChainHashDistinguishesFields(t *testing.T) {
	base := AuditEvent{Seq: 1, Time: time.Unix(0, 0), Actor: "ab", Action: "c"}
	moved := AuditEvent{Seq: 1, Time: time.Unix(0, 0), Actor: "a", Action: "bc"}
	if string(ChainHash(nil, base)) == string(ChainHash(nil, moved)) {
		t.Error("moving bytes between fields keeps the hash")
	}
	d1 := base
	d1.Detail = map[string]string{"k": "v"}
	d2 := base
	d2.Detail = map[string]string{"kv": ""}
	if string(ChainHash(nil, d1)) == string(ChainHash(nil, d2)) {
		t.Error("moving bytes between detail key and value keeps the hash")
	}
}
