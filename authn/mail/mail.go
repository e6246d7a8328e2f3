// Package mail sends Lanyard's messages to people: password resets, notices
// of changes to their account, alerts. With an SMTP relay configured it
// delivers through github.com/wneessen/go-mail with retries; without one it
// writes each message to a folder (<data>/outbox/) and notes that in the
// log. Message bodies can hold single-use links, so they never go to the
// log.
package mail

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// Message is one plain-text email.
type Message struct {
	To      string
	Subject string
	Body    string
}

// Sender delivers messages.
type Sender interface {
	Send(ctx context.Context, m Message) error
}

func checkMessage(m Message) error {
	if m.To == "" || strings.ContainsAny(m.To+m.Subject, "\r\n") {
		return errors.New("mail: recipient or subject empty or holds a line break")
	}
	return nil
}

// Folder writes each message as an .eml file to Dir (mode 0600) and logs
// the recipient and subject.
type Folder struct {
	Dir string
	Log *slog.Logger
	Now func() time.Time
}

// Send writes m to the folder.
func (f *Folder) Send(ctx context.Context, m Message) error {
	if err := checkMessage(m); err != nil {
		return err
	}
	if err := os.MkdirAll(f.Dir, 0o700); err != nil {
		return fmt.Errorf("mail: outbox folder: %w", err)
	}
	now := f.Now().UTC()
	name := filepath.Join(f.Dir, now.Format("20060102T150405.000000Z")+"-"+rand.Text()[:8]+".eml")
	content := fmt.Sprintf("Date: %s\r\nTo: %s\r\nSubject: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s",
		now.Format(time.RFC1123Z), m.To, m.Subject, strings.ReplaceAll(m.Body, "\n", "\r\n"))
	if err := os.WriteFile(name, []byte(content), 0o600); err != nil {
		return fmt.Errorf("mail: write outbox: %w", err)
	}
	f.Log.InfoContext(ctx, "mail written to outbox (no SMTP relay configured)", "to", m.To, "subject", m.Subject, "file", name)
	return nil
}

// TLS modes for SMTP.
const (
	TLSStartTLS = "starttls" // upgrade with STARTTLS, which must succeed
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
	TLSNone     = "none"     // plain text: only for a relay on loopback
)

// SMTP delivers through a relay, retrying failed attempts.
type SMTP struct {
	Host     string
	Port     int
	From     string
	Username string
	Password string
	TLS      string
	// Attempts is how many times a message is tried (at least 1); Backoff
	// is the wait before the second attempt, doubling after.
	Attempts int
	Backoff  time.Duration
	Timeout  time.Duration
}

// Send delivers m, trying up to Attempts times.
func (s *SMTP) Send(ctx context.Context, m Message) error {
	if err := checkMessage(m); err != nil {
		return err
	}
	msg := gomail.NewMsg()
	if err := msg.From(s.From); err != nil {
		return fmt.Errorf("mail: from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return fmt.Errorf("mail: to: %w", err)
	}
	msg.Subject(m.Subject)
	msg.SetBodyString(gomail.TypeTextPlain, m.Body)
	opts := []gomail.Option{gomail.WithPort(s.Port), gomail.WithTimeout(max(s.Timeout, time.Second))}
	switch s.TLS {
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if s.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthPlain), gomail.WithUsername(s.Username), gomail.WithPassword(s.Password))
	}
	c, err := gomail.NewClient(s.Host, opts...)
	if err != nil {
		return fmt.Errorf("mail: client: %w", err)
	}
	wait := s.Backoff
	var last error
	for i := range max(s.Attempts, 1) {
		if i > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			wait *= 2
		}
		if last = c.DialAndSendWithContext(ctx, msg); last == nil {
			return nil
		}
	}
	return fmt.Errorf("mail: send to %s failed after %d attempts: %w", m.To, max(s.Attempts, 1), last)
}

// Queue hands messages to a Sender in the background, so a page never
// waits for a mail relay. A full queue refuses new messages with an
// error rather than blocking.
type Queue struct {
	next Sender
	log  *slog.Logger
	ch   chan Message
	wg   sync.WaitGroup
	once sync.Once
}

// NewQueue starts a queue of size messages in front of next.
func NewQueue(next Sender, size int, log *slog.Logger) *Queue {
	q := &Queue{next: next, log: log, ch: make(chan Message, size)}
	q.wg.Go(q.run)
	return q
}

func (q *Queue) run() {
	for m := range q.ch {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		if err := q.next.Send(ctx, m); err != nil {
			q.log.Error("mail not delivered", "to", m.To, "subject", m.Subject, "reason", err.Error())
		}
		cancel()
	}
}

// ErrQueueFull: the background queue has no room.
var ErrQueueFull = errors.New("mail: queue full")

// Send queues m.
func (q *Queue) Send(_ context.Context, m Message) error {
	if err := checkMessage(m); err != nil {
		return err
	}
	select {
	case q.ch <- m:
		return nil
	default:
		return ErrQueueFull
	}
}

// Close stops taking messages and waits for those queued to be tried.
func (q *Queue) Close() {
	q.once.Do(func() { close(q.ch) })
	q.wg.Wait()
}
