package adsync

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// journal is the agent's durable record, an append-only file of JSON
// lines, rewritten compactly now and then:
//
//   - intent: the agent is about to write change ID to account GUID whose
//     pwdLastSet was Pre. After a crash, a pwdLastSet that moved means the
//     write happened, so it is not repeated.
//   - done: the change's result (and for a write, the pwdLastSet it gave,
//     remembered per account as the agent's own, for the conflict rule).
//   - acked: Lanyard took the acknowledgement; the entry can go.
//   - confirmed: a captured candidate of account GUID was confirmed by
//     pwdLastSet P, so no other candidate may be confirmed by the same P.
//
// Records that must survive a crash are synced before the agent acts on
// them. A torn last line (a crash mid-append) is ignored.
type journal struct {
	path    string
	f       *os.File
	records int // lines in the file

	changes   map[string]*jchange // by change ID
	own       map[string]int64    // GUID -> pwdLastSet of the agent's last write
	confirmed map[string]int64    // GUID -> pwdLastSet that last confirmed a candidate
}

type jchange struct {
	GUID   string
	Pre    int64
	Done   bool
	Result string
	Detail string
	Acked  time.Time // zero until acknowledged
}

type jrec struct {
	K      string `json:"k"`
	ID     string `json:"id,omitempty"`
	GUID   string `json:"guid,omitempty"`
	Pre    int64  `json:"pre,omitempty"`
	Set    int64  `json:"set,omitempty"`
	Result string `json:"res,omitempty"`
	Detail string `json:"det,omitempty"`
	At     int64  `json:"at,omitempty"` // unix seconds
}

const (
	journalFile = "journal"
	// journalKeepAcked is how long an acknowledged change is remembered,
	// in case a long poll already under way delivers it once more.
	journalKeepAcked = 30 * time.Minute
	// journalCompactAt is how many lines trigger a rewrite.
	journalCompactAt = 20000
)

func openJournal(state string, now time.Time) (*journal, error) {
	j := &journal{
		path:      filepath.Join(state, journalFile),
		changes:   map[string]*jchange{},
		own:       map[string]int64{},
		confirmed: map[string]int64{},
	}
	data, err := os.ReadFile(j.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read journal: %w", err)
	}
	for line := range bytes.Lines(data) {
		var r jrec
		if !bytes.HasSuffix(line, []byte("\n")) || json.Unmarshal(line, &r) != nil {
			continue // torn or damaged: nothing acted on it
		}
		j.apply(r)
	}
	if err := j.compact(now); err != nil {
		return nil, err
	}
	return j, nil
}

func (j *journal) apply(r jrec) {
	switch r.K {
	case "intent":
		j.changes[r.ID] = &jchange{GUID: r.GUID, Pre: r.Pre}
	case "done":
		c := j.changes[r.ID]
		if c == nil {
			c = &jchange{GUID: r.GUID}
			j.changes[r.ID] = c
		}
		c.Done, c.Result, c.Detail = true, r.Result, r.Detail
		if r.Set != 0 && r.GUID != "" {
			j.own[r.GUID] = r.Set
		}
	case "acked":
		if c := j.changes[r.ID]; c != nil {
			c.Acked = time.Unix(r.At, 0)
		}
	case "own":
		j.own[r.GUID] = r.Set
	case "confirmed":
		j.confirmed[r.GUID] = r.Set
	}
}

// append applies r and writes it, synced when sync.
func (j *journal) append(r jrec, sync bool) error {
	j.apply(r)
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	if _, err := j.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	j.records++
	if sync {
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("sync journal: %w", err)
		}
	}
	return nil
}

// maybeCompact rewrites the journal once it has grown.
func (j *journal) maybeCompact(now time.Time) error {
	if j.records < journalCompactAt {
		return nil
	}
	return j.compact(now)
}

// compact rewrites the journal with only what is still needed: changes
// not acknowledged or acknowledged recently, and the per-account marks.
func (j *journal) compact(now time.Time) error {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	n := 0
	put := func(r jrec) {
		b, _ := json.Marshal(r)
		w.Write(b)
		w.WriteByte('\n')
		n++
	}
	for id, c := range j.changes {
		if !c.Acked.IsZero() && now.Sub(c.Acked) > journalKeepAcked {
			delete(j.changes, id)
			continue
		}
		if !c.Done {
			put(jrec{K: "intent", ID: id, GUID: c.GUID, Pre: c.Pre})
			continue
		}
		put(jrec{K: "done", ID: id, GUID: c.GUID, Result: c.Result, Detail: c.Detail})
		if !c.Acked.IsZero() {
			put(jrec{K: "acked", ID: id, At: c.Acked.Unix()})
		}
	}
	for g, s := range j.own {
		put(jrec{K: "own", GUID: g, Set: s})
	}
	for g, s := range j.confirmed {
		put(jrec{K: "confirmed", GUID: g, Set: s})
	}
	w.Flush()
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
	if err := writeFileSync(filepath.Dir(j.path), filepath.Base(j.path), buf.Bytes()); err != nil {
		return fmt.Errorf("compact journal: %w", err)
	}
	f, err := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	j.f, j.records = f, n
	return nil
}

func (j *journal) close() {
	if j.f != nil {
		j.f.Close()
	}
}
