package adsync

import (
	"bytes"
	"errors"
	"testing"
	"time"
)

func TestGUID(t *testing.T) {
	// objectGUID bytes as AD stores them, and the form AD shows.
	raw := []byte{0xd1, 0xa4, 0xe7, 0x8e, 0x6c, 0x3b, 0x0e, 0x4f, 0x9d, 0x55, 0x3b, 0x3c, 0x4c, 0x1f, 0x2a, 0x10}
	s, err := GUIDString(raw)
	if err != nil || s != "8ee7a4d1-3b6c-4f0e-9d55-3b3c4c1f2a10" {
		t.Fatalf("GUIDString = %q, %v", s, err)
	}
	back, err := ParseGUID(s)
	if err != nil || !bytes.Equal(back, raw) {
		t.Fatalf("ParseGUID = %x, %v", back, err)
	}
	f, _ := guidFilter(s)
	if f != `\d1\a4\e7\8e\6c\3b\0e\4f\9d\55\3b\3c\4c\1f\2a\10` {
		t.Errorf("guidFilter = %s", f)
	}
	for _, bad := range []string{"", "8ee7a4d1-3b6c-4f0e-9d55-3b3c4c1f2a1", "8ee7a4d1x3b6c-4f0e-9d55-3b3c4c1f2a10", "zee7a4d1-3b6c-4f0e-9d55-3b3c4c1f2a10"} {
		if _, err := ParseGUID(bad); !errors.Is(err, ErrGUID) {
			t.Errorf("ParseGUID(%q) = %v, want ErrGUID", bad, err)
		}
	}
	if _, err := GUIDString(raw[:15]); !errors.Is(err, ErrGUID) {
		t.Errorf("GUIDString of 15 bytes = %v", err)
	}
}

func TestFileTime(t *testing.T) {
	// 134399558066315870 is 2026-11-24T01:03:26.631587Z.
	want := time.Date(2026, 11, 24, 1, 3, 26, 631587000, time.UTC)
	if got := FileTime(134399558066315870); !got.Equal(want) {
		t.Errorf("FileTime = %v, want %v", got, want)
	}
	if ToFileTime(want) != 134399558066315870 {
		t.Errorf("ToFileTime = %d", ToFileTime(want))
	}
	if !FileTime(0).IsZero() || !FileTime(1<<63-1).IsZero() {
		t.Error("0 and never are not the zero time")
	}
}

func TestEncodePassword(t *testing.T) {
	if got := EncodePassword("é1"); got != "\"\x00\xe9\x001\x00\"\x00" {
		t.Errorf("EncodePassword = %q", got)
	}
}
