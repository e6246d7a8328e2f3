package policy

import (
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

func TestDefaultList(t *testing.T) {
	l := DefaultList()
	if got, want := l.Len(), 49233; got != want {
		t.Errorf("DefaultList().Len() = %d, want %d", got, want)
	}
	for _, w := range []string{"password", "123456", "qwertyuiop", "iloveyou", "1qaz2wsx", "xpcrew"} {
		if !l.Contains(w) {
			t.Errorf("DefaultList().Contains(%q) = false, want true", w)
		}
	}
	for _, w := range []string{"correcthorsebatterystaple", "Password", "", "nhs"} {
		if l.Contains(w) {
			t.Errorf("DefaultList().Contains(%q) = true, want false", w)
		}
	}
	if DefaultList() != l {
		t.Error("DefaultList() returned a different list the second time")
	}
}

func TestLoadList(t *testing.T) {
	in := "\uFEFFDragon\r\n\r\nhunter2\n  spaced  \nＦＵＬＬ\nbad\xffline\nhunter2\n" + strings.Repeat("x", 5000) + "\nlast"
	l, err := LoadList(strings.NewReader(in))
	if err != nil {
		t.Fatalf("LoadList() error = %v", err)
	}
	for _, w := range []string{"dragon", "hunter2", "  spaced  ", "full", "last"} {
		if !l.Contains(w) {
			t.Errorf("LoadList(…).Contains(%q) = false, want true", w)
		}
	}
	if got, want := l.Len(), 5; got != want {
		t.Errorf("LoadList(…).Len() = %d, want %d (blank, invalid, over-long and repeated lines dropped)", got, want)
	}

	wantErr := errors.New("disk on fire")
	if _, err := LoadList(iotest.ErrReader(wantErr)); !errors.Is(err, wantErr) {
		t.Errorf("LoadList(failing reader) error = %v, want %v", err, wantErr)
	}
}

func TestUnion(t *testing.T) {
	a, _ := LoadList(strings.NewReader("alpha\nbeta\n"))
	b, _ := LoadList(strings.NewReader("beta\ngamma\n"))
	u := a.Union(b)
	if got := u.Len(); got != 3 {
		t.Errorf("Union().Len() = %d, want 3", got)
	}
	for _, w := range []string{"alpha", "beta", "gamma"} {
		if !u.Contains(w) {
			t.Errorf("Union().Contains(%q) = false, want true", w)
		}
	}
	if a.Len() != 2 || a.Contains("gamma") {
		t.Error("Union modified its receiver")
	}
	var none *List
	if got := none.Union(a).Len(); got != 2 {
		t.Errorf("nil.Union(a).Len() = %d, want 2", got)
	}
	if none.Contains("alpha") || none.Len() != 0 {
		t.Error("a nil List should be empty")
	}
}
