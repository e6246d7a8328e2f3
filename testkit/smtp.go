package testkit

import (
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// Mail is a message the sink received.
type Mail struct {
	From string
	To   []string
	Data string // the whole message, headers and body
}

// SMTPSink is a real SMTP server (github.com/emersion/go-smtp) on loopback
// that keeps what it receives, for tests of mail delivery.
type SMTPSink struct {
	Host string
	Port int

	mu       sync.Mutex
	mails    []Mail
	failNext int
	arrived  chan struct{}
}

// NewSMTPSink starts a sink, stopped when the test ends.
func NewSMTPSink(t testing.TB) *SMTPSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k := &SMTPSink{arrived: make(chan struct{}, 1000)}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &sinkSession{k: k}, nil }))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.ErrorLog = nil
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	addr := ln.Addr().(*net.TCPAddr)
	k.Host, k.Port = addr.IP.String(), addr.Port
	return k
}

// FailNext makes the next n messages fail with a temporary error (451).
func (k *SMTPSink) FailNext(n int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.failNext = n
}

// Mails returns what the sink has received so far.
func (k *SMTPSink) Mails() []Mail {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Mail(nil), k.mails...)
}

// Wait waits until the sink holds at least n messages, failing the test
// after 30 seconds.
func (k *SMTPSink) Wait(t testing.TB, n int) []Mail {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if m := k.Mails(); len(m) >= n {
			return m
		}
		select {
		case <-k.arrived:
		case <-deadline:
			t.Fatalf("SMTP sink: %d messages after 30s, want %d", len(k.Mails()), n)
		}
	}
}

// LastTo returns the newest message to addr, or fails the test.
func (k *SMTPSink) LastTo(t testing.TB, addr string) Mail {
	t.Helper()
	m := k.Mails()
	for i := len(m) - 1; i >= 0; i-- {
		for _, to := range m[i].To {
			if strings.EqualFold(to, addr) {
				return m[i]
			}
		}
	}
	t.Fatalf("no mail to %s among %d", addr, len(m))
	return Mail{}
}

type sinkSession struct {
	k    *SMTPSink
	from string
	to   []string
}

func (s *sinkSession) Reset()        { s.from, s.to = "", nil }
func (s *sinkSession) Logout() error { return nil }
func (s *sinkSession) Mail(from string, _ *smtp.MailOptions) error {
	s.from = from
	return nil
}
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.to = append(s.to, to)
	return nil
}

func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(io.LimitReader(r, 10<<20))
	if err != nil {
		return err
	}
	s.k.mu.Lock()
	defer s.k.mu.Unlock()
	if s.k.failNext > 0 {
		s.k.failNext--
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try again later"}
	}
	s.k.mails = append(s.k.mails, Mail{From: s.from, To: s.to, Data: string(b)})
	select {
	case s.k.arrived <- struct{}{}:
	default:
	}
	return nil
}
