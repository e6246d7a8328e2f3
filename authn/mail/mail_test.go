package mail_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanyard/lanyard/authn/mail"
	"github.com/lanyard/lanyard/testkit"
)

func smtpTo(k *testkit.SMTPSink) *mail.SMTP {
	return &mail.SMTP{Host: k.Host, Port: k.Port, From: "lanyard@lanyard.test", TLS: mail.TLSNone, Attempts: 3, Backoff: 10 * time.Millisecond, Timeout: 5 * time.Second}
}

func TestSMTPDelivers(t *testing.T) {
	k := testkit.NewSMTPSink(t)
	if err := smtpTo(k).Send(t.Context(), mail.Message{To: "jane@nhs.net", Subject: "Your password was changed", Body: "Hello Jane"}); err != nil {
		t.Fatal(err)
	}
	m := k.LastTo(t, "jane@nhs.net")
	if !strings.Contains(m.Data, "Subject: Your password was changed") || !strings.Contains(m.Data, "Hello Jane") {
		t.Errorf("delivered message:\n%s", m.Data)
	}
}

func TestSMTPRetries(t *testing.T) {
	k := testkit.NewSMTPSink(t)
	k.FailNext(2)
	if err := smtpTo(k).Send(t.Context(), mail.Message{To: "jane@nhs.net", Subject: "s", Body: "b"}); err != nil {
		t.Fatalf("after two temporary failures: %v", err)
	}
	if n := len(k.Mails()); n != 1 {
		t.Errorf("%d messages delivered, want 1", n)
	}
	k.FailNext(3)
	if err := smtpTo(k).Send(t.Context(), mail.Message{To: "jane@nhs.net", Subject: "s", Body: "b"}); err == nil {
		t.Error("three failures of three attempts reported success")
	}
}

func TestRefusesHeaderInjection(t *testing.T) {
	k := testkit.NewSMTPSink(t)
	for _, m := range []mail.Message{
		{To: "jane@nhs.net\r\nBcc: evil@example.com", Subject: "s"},
		{To: "jane@nhs.net", Subject: "s\r\nBcc: evil@example.com"},
		{To: "", Subject: "s"},
	} {
		if err := smtpTo(k).Send(t.Context(), m); err == nil {
			t.Errorf("Send(%q) accepted", m)
		}
	}
}

func TestQueueAndFolder(t *testing.T) {
	dir := t.TempDir()
	f := &mail.Folder{Dir: filepath.Join(dir, "outbox"), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: time.Now}
	q := mail.NewQueue(f, 10, slog.New(slog.NewTextHandler(io.Discard, nil)))
	for range 3 {
		if err := q.Send(t.Context(), mail.Message{To: "jane@nhs.net", Subject: "Reset", Body: "link"}); err != nil {
			t.Fatal(err)
		}
	}
	q.Close()
	ents, _ := os.ReadDir(filepath.Join(dir, "outbox"))
	if len(ents) != 3 {
		t.Fatalf("%d files in the outbox, want 3", len(ents))
	}
	fi, _ := ents[0].Info()
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("outbox file mode %v, want 0600", fi.Mode().Perm())
	}
}
