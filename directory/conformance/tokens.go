package conformance

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/lanyard/lanyard/directory"
)

// Refresh tokens. cmp compares times with time.Time.Equal, so a diff shows
// a lost microsecond but not a changed zone.

// refresh returns a current refresh token of user-1 in family, with every
// field set and times at microsecond precision.
func refresh(id, family string) directory.RefreshToken {
	return directory.RefreshToken{
		ID:        id,
		TokenHash: directory.HashToken("secret-" + id),
		FamilyID:  family,
		ClientID:  "client-1",
		UserID:    "user-1",
		SessionID: "session-1",
		Scopes:    []string{"openid", "profile", "offline_access"},
		Audience:  []string{"client-1"},
		AMR:       []string{"pwd", "otp"},
		ACR:       "urn:lanyard:acr:mfa",
		AuthTime:  base.Add(-time.Minute + 3*time.Microsecond),
		CreatedAt: base,
		ExpiresAt: base.Add(30 * 24 * time.Hour),
	}
}

func mustCreateRefresh(t *testing.T, s directory.Store, rts ...directory.RefreshToken) {
	t.Helper()
	for _, rt := range rts {
		if err := s.CreateRefreshToken(t.Context(), rt); err != nil {
			t.Fatalf("CreateRefreshToken(%q): %v", rt.ID, err)
		}
	}
}

// wantRefresh checks that the token stored under want.TokenHash is want.
func wantRefresh(t *testing.T, s directory.Store, step string, want directory.RefreshToken) {
	t.Helper()
	got, err := s.RefreshTokenByHash(t.Context(), want.TokenHash)
	if err != nil {
		t.Errorf("%s: RefreshTokenByHash(hash of %q): %v", step, want.ID, err)
		return
	}
	if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
		t.Errorf("%s: RefreshTokenByHash(hash of %q) mismatch (-want +got):\n%s", step, want.ID, diff)
	}
}

// wantNoRefresh checks that no token is stored under rt.TokenHash.
func wantNoRefresh(t *testing.T, s directory.Store, step string, rt directory.RefreshToken) {
	t.Helper()
	got, err := s.RefreshTokenByHash(t.Context(), rt.TokenHash)
	if !errors.Is(err, directory.ErrNotFound) {
		t.Errorf("%s: RefreshTokenByHash(hash of %q) = %q, %v; want ErrNotFound", step, rt.ID, got.ID, err)
	}
}

func testRefreshCreateGet(t *testing.T, s directory.Store) {
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	zone := time.FixedZone("UTC-03:30", -(3*3600 + 1800))

	full := refresh("rt-1", "fam-1")
	full.Scopes = []string{"openid", `quote"d`, "ünïcödé", "openid"}
	full.AuthTime = time.Date(2031, time.March, 4, 1, 2, 3, 123456000, zone)
	full.CreatedAt = time.Date(2031, time.March, 4, 1, 3, 0, 999999000, zone)
	full.ExpiresAt = time.Date(2031, time.April, 3, 1, 3, 0, 1000, zone)

	// Zero times, no session, no lists.
	bare := directory.RefreshToken{
		ID: "rt-2", TokenHash: directory.HashToken("secret-rt-2"), FamilyID: "fam-2", ClientID: "client-2", UserID: "user-1",
		CreatedAt: base, ExpiresAt: base.Add(time.Hour),
	}

	retired := refresh("rt-3", "fam-1")
	retired.RotatedAt = base.Add(2*time.Hour + time.Microsecond)
	retired.RevokedAt = base.Add(3*time.Hour + 2*time.Microsecond).In(zone)
	retired.AuthTime = time.Date(1969, time.July, 20, 20, 17, 40, 999999000, zone) // before the Unix epoch

	mustCreateRefresh(t, s, full, bare, retired)
	for _, want := range []directory.RefreshToken{full, bare, retired} {
		wantRefresh(t, s, "after create", want)
	}
	if got, err := s.RefreshTokenByHash(t.Context(), bare.TokenHash); err == nil {
		for _, c := range []struct {
			name string
			at   time.Time
		}{{"AuthTime", got.AuthTime}, {"RotatedAt", got.RotatedAt}, {"RevokedAt", got.RevokedAt}} {
			if !c.at.IsZero() {
				t.Errorf("RefreshTokenByHash(hash of %q).%s = %v, want zero", bare.ID, c.name, c.at)
			}
		}
	}
}

func testRefreshInvalid(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	for _, c := range []struct {
		name  string
		clear func(*directory.RefreshToken)
	}{
		{"empty ID", func(rt *directory.RefreshToken) { rt.ID = "" }},
		{"empty hash", func(rt *directory.RefreshToken) { rt.TokenHash = "" }},
		{"empty family", func(rt *directory.RefreshToken) { rt.FamilyID = "" }},
		{"empty client", func(rt *directory.RefreshToken) { rt.ClientID = "" }},
		{"empty user", func(rt *directory.RefreshToken) { rt.UserID = "" }},
		{"zero expiry", func(rt *directory.RefreshToken) { rt.ExpiresAt = time.Time{} }},
	} {
		rt := refresh("rt-1", "fam-1")
		c.clear(&rt)
		wantErr(t, fmt.Sprintf("CreateRefreshToken(%s)", c.name), s.CreateRefreshToken(ctx, rt), directory.ErrInvalid)
	}
	wantNoRefresh(t, s, "after invalid creates", refresh("rt-1", "fam-1"))
}

func testRefreshDuplicate(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	rt := refresh("rt-1", "fam-1")
	mustCreateRefresh(t, s, rt)

	sameHash := refresh("rt-2", "fam-2")
	sameHash.TokenHash = rt.TokenHash
	wantErr(t, "CreateRefreshToken(same hash)", s.CreateRefreshToken(ctx, sameHash), directory.ErrConflict)
	sameID := refresh("rt-1", "fam-2")
	sameID.TokenHash = directory.HashToken("another secret")
	wantErr(t, "CreateRefreshToken(same ID)", s.CreateRefreshToken(ctx, sameID), directory.ErrConflict)

	wantRefresh(t, s, "after conflicting creates", rt)
	wantNoRefresh(t, s, "after conflicting creates", sameID)
}

func testRefreshMissing(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	mustCreateRefresh(t, s, refresh("rt-1", "fam-1"))
	for _, hash := range []string{directory.HashToken("never issued"), ""} {
		_, err := s.RefreshTokenByHash(ctx, hash)
		wantErr(t, fmt.Sprintf("RefreshTokenByHash(%q)", hash), err, directory.ErrNotFound)
	}

	next := refresh("rt-2", "fam-1")
	wantErr(t, "RotateRefreshToken(missing old token)", s.RotateRefreshToken(ctx, "rt-9", next, base), directory.ErrNotFound)
	wantNoRefresh(t, s, "after rotating a missing token", next)

	orphan := refresh("rt-3", "fam-3")
	orphan.UserID = "user-9"
	wantErr(t, "CreateRefreshToken(unknown user)", s.CreateRefreshToken(ctx, orphan), directory.ErrNotFound)
	wantNoRefresh(t, s, "after a create for an unknown user", orphan)
}

func testRotate(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	old := refresh("rt-1", "fam-1")
	mustCreateRefresh(t, s, old)

	now := base.Add(time.Hour + 7*time.Microsecond)
	next := refresh("rt-2", "fam-1")
	next.Scopes = []string{"openid"} // narrowed at refresh
	next.CreatedAt, next.ExpiresAt = now, now.Add(30*24*time.Hour)
	if err := s.RotateRefreshToken(ctx, old.ID, next, now); err != nil {
		t.Fatalf("RotateRefreshToken: %v", err)
	}
	old.RotatedAt = now
	wantRefresh(t, s, "old token after rotation", old)
	wantRefresh(t, s, "next token after rotation", next)
}

// testRotateRefused checks that a refused rotation stores nothing and
// leaves the old token current.
func testRotateRefused(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	mustCreateUser(t, s, user("user-2", "bob@example.nhs.uk"))
	old, other := refresh("rt-1", "fam-1"), refresh("rt-x", "fam-x")
	mustCreateRefresh(t, s, old, other)
	now := base.Add(time.Hour)

	next := func(change func(*directory.RefreshToken)) directory.RefreshToken {
		rt := refresh("rt-2", "fam-1")
		change(&rt)
		return rt
	}
	for _, c := range []struct {
		name  string
		oldID string
		next  directory.RefreshToken
		now   time.Time
		want  error
	}{
		{"next hash taken", old.ID, next(func(rt *directory.RefreshToken) { rt.TokenHash = other.TokenHash }), now, directory.ErrConflict},
		{"next ID taken", old.ID, next(func(rt *directory.RefreshToken) { rt.ID = other.ID }), now, directory.ErrConflict},
		{"next ID is the old one", old.ID, next(func(rt *directory.RefreshToken) { rt.ID = old.ID }), now, directory.ErrConflict},
		{"next without hash", old.ID, next(func(rt *directory.RefreshToken) { rt.TokenHash = "" }), now, directory.ErrInvalid},
		{"next in another family", old.ID, next(func(rt *directory.RefreshToken) { rt.FamilyID = "fam-2" }), now, directory.ErrInvalid},
		{"next for another client", old.ID, next(func(rt *directory.RefreshToken) { rt.ClientID = "client-2" }), now, directory.ErrInvalid},
		{"next for another user", old.ID, next(func(rt *directory.RefreshToken) { rt.UserID = "user-2" }), now, directory.ErrInvalid},
		{"next in another session", old.ID, next(func(rt *directory.RefreshToken) { rt.SessionID = "" }), now, directory.ErrInvalid},
		{"zero now", old.ID, next(func(*directory.RefreshToken) {}), time.Time{}, directory.ErrInvalid},
		{"empty old ID", "", next(func(*directory.RefreshToken) {}), now, directory.ErrInvalid},
	} {
		err := s.RotateRefreshToken(ctx, c.oldID, c.next, c.now)
		wantErr(t, fmt.Sprintf("RotateRefreshToken(%s)", c.name), err, c.want)
		wantRefresh(t, s, c.name+": old token", old)
		wantRefresh(t, s, c.name+": other token", other)
		if c.next.TokenHash != other.TokenHash {
			wantNoRefresh(t, s, c.name+": next token", c.next)
		}
	}

	// The refusals left the old token current.
	good := next(func(*directory.RefreshToken) {})
	if err := s.RotateRefreshToken(ctx, old.ID, good, now); err != nil {
		t.Errorf("RotateRefreshToken after refusals: %v", err)
	}
}

func testRotateTwice(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	old := refresh("rt-1", "fam-1")
	mustCreateRefresh(t, s, old)
	first, second := refresh("rt-2", "fam-1"), refresh("rt-3", "fam-1")
	now := base.Add(time.Hour)
	if err := s.RotateRefreshToken(ctx, old.ID, first, now); err != nil {
		t.Fatalf("first RotateRefreshToken: %v", err)
	}
	err := s.RotateRefreshToken(ctx, old.ID, second, now.Add(time.Minute))
	wantErr(t, "second RotateRefreshToken of the same token", err, directory.ErrConflict)

	old.RotatedAt = now
	wantRefresh(t, s, "old token", old)
	wantRefresh(t, s, "first next token", first)
	wantNoRefresh(t, s, "second next token", second)
}

// testRotateRace races racers rotations of one token, in several rounds:
// the first round may find the store's connections still being opened,
// which serialises it.
func testRotateRace(t *testing.T, s directory.Store) {
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	for r := range 5 {
		rotateRace(t, s, r)
	}
}

func rotateRace(t *testing.T, s directory.Store, round int) {
	t.Helper()
	ctx := t.Context()
	family := fmt.Sprintf("fam-%d", round)
	token := func(i int) directory.RefreshToken { return refresh(fmt.Sprintf("%s-rt-%d", family, i), family) }
	old := token(0)
	mustCreateRefresh(t, s, old)
	now := base.Add(time.Hour)

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		winners   []int
		conflicts int
		start     = make(chan struct{})
	)
	for i := 1; i <= racers; i++ {
		wg.Go(func() {
			<-start
			err := s.RotateRefreshToken(ctx, old.ID, token(i), now)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				winners = append(winners, i)
			case errors.Is(err, directory.ErrConflict):
				conflicts++
			default:
				t.Errorf("round %d: RotateRefreshToken(racer %d): %v, want nil or ErrConflict", round, i, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(winners) != 1 || conflicts != racers-1 {
		t.Fatalf("round %d: %d concurrent rotations: %d succeeded (%v) and %d got ErrConflict; want 1 and %d",
			round, racers, len(winners), winners, conflicts, racers-1)
	}

	old.RotatedAt = now
	wantRefresh(t, s, fmt.Sprintf("round %d: old token", round), old)
	for i := 1; i <= racers; i++ {
		if i == winners[0] {
			wantRefresh(t, s, fmt.Sprintf("round %d: winner's next token", round), token(i))
		} else {
			wantNoRefresh(t, s, fmt.Sprintf("round %d: loser %d's next token", round, i), token(i))
		}
	}
}

func testRotateRevoked(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	old := refresh("rt-1", "fam-1")
	revokedAtCreate := refresh("rt-2", "fam-2")
	revokedAtCreate.RevokedAt = base.Add(time.Minute)
	mustCreateRefresh(t, s, old, revokedAtCreate)

	revokedAt := base.Add(time.Hour)
	if n, err := s.RevokeRefreshFamily(ctx, "fam-1", revokedAt); err != nil || n != 1 {
		t.Fatalf("RevokeRefreshFamily = %d, %v; want 1, nil", n, err)
	}
	for _, c := range []struct {
		old  directory.RefreshToken
		next directory.RefreshToken
	}{
		{old, refresh("rt-3", "fam-1")},
		{revokedAtCreate, refresh("rt-4", "fam-2")},
	} {
		err := s.RotateRefreshToken(ctx, c.old.ID, c.next, revokedAt.Add(time.Minute))
		wantErr(t, fmt.Sprintf("RotateRefreshToken(revoked %q)", c.old.ID), err, directory.ErrConflict)
		wantNoRefresh(t, s, "next token of a revoked one", c.next)
	}
	old.RevokedAt = revokedAt
	wantRefresh(t, s, "revoked token after refused rotation", old)
	wantRefresh(t, s, "token revoked at create after refused rotation", revokedAtCreate)
}

// testRefreshInTx checks that the refresh-token methods join the caller's
// transaction.
func testRefreshInTx(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	old, next := refresh("rt-1", "fam-1"), refresh("rt-2", "fam-1")
	now := base.Add(time.Hour)
	work := func(tx directory.Store) error {
		if err := tx.CreateRefreshToken(ctx, old); err != nil {
			return err
		}
		if err := tx.RotateRefreshToken(ctx, old.ID, next, now); err != nil {
			return err
		}
		if _, err := tx.RefreshTokenByHash(ctx, next.TokenHash); err != nil {
			return fmt.Errorf("read own write: %w", err)
		}
		if n, err := tx.RevokeRefreshFamily(ctx, "fam-1", now); err != nil || n != 2 {
			return fmt.Errorf("RevokeRefreshFamily = %d, %v; want 2", n, err)
		}
		return nil
	}

	err := s.InTx(ctx, func(tx directory.Store) error {
		if err := work(tx); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("InTx = %v, want the error fn returned", err)
	}
	wantNoRefresh(t, s, "after rollback", old)
	wantNoRefresh(t, s, "after rollback", next)

	if err := s.InTx(ctx, work); err != nil {
		t.Fatalf("InTx: %v", err)
	}
	old.RotatedAt, old.RevokedAt, next.RevokedAt = now, now, now
	wantRefresh(t, s, "after commit", old)
	wantRefresh(t, s, "after commit", next)
}

func testRevokeFamily(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	rotated, current := refresh("rt-1", "fam-1"), refresh("rt-2", "fam-1")
	rotated.RotatedAt = base.Add(time.Minute)
	earlier := refresh("rt-3", "fam-1")
	earlier.RevokedAt = base.Add(2 * time.Minute)
	other := refresh("rt-4", "fam-2")
	mustCreateRefresh(t, s, rotated, current, earlier, other)

	now := base.Add(time.Hour + time.Microsecond)
	if n, err := s.RevokeRefreshFamily(ctx, "fam-1", now); err != nil || n != 2 {
		t.Errorf("RevokeRefreshFamily(fam-1) = %d, %v; want 2, nil", n, err)
	}
	rotated.RevokedAt, current.RevokedAt = now, now
	for _, want := range []directory.RefreshToken{rotated, current, earlier, other} {
		wantRefresh(t, s, "after revoking fam-1", want)
	}

	if n, err := s.RevokeRefreshFamily(ctx, "fam-1", now.Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("RevokeRefreshFamily(fam-1) again = %d, %v; want 0, nil", n, err)
	}
	wantRefresh(t, s, "after revoking fam-1 again", current)
	if n, err := s.RevokeRefreshFamily(ctx, "fam-9", now); err != nil || n != 0 {
		t.Errorf("RevokeRefreshFamily(unknown family) = %d, %v; want 0, nil", n, err)
	}
	_, err := s.RevokeRefreshFamily(ctx, "", now)
	wantErr(t, `RevokeRefreshFamily("")`, err, directory.ErrInvalid)
	_, err = s.RevokeRefreshFamily(ctx, "fam-2", time.Time{})
	wantErr(t, "RevokeRefreshFamily(zero now)", err, directory.ErrInvalid)
	wantRefresh(t, s, "after refused revocations", other)
}

func testRevokeSession(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	inSession := func(id, family, session string) directory.RefreshToken {
		rt := refresh(id, family)
		rt.SessionID = session
		return rt
	}
	a, b := inSession("rt-1", "fam-1", "s-1"), inSession("rt-2", "fam-2", "s-1")
	earlier := inSession("rt-3", "fam-3", "s-1")
	earlier.RevokedAt = base.Add(time.Minute)
	otherSession, noSession := inSession("rt-4", "fam-4", "s-2"), inSession("rt-5", "fam-5", "")
	mustCreateRefresh(t, s, a, b, earlier, otherSession, noSession)

	now := base.Add(time.Hour + time.Microsecond)
	if n, err := s.RevokeRefreshTokensBySession(ctx, "s-1", now); err != nil || n != 2 {
		t.Errorf("RevokeRefreshTokensBySession(s-1) = %d, %v; want 2, nil", n, err)
	}
	a.RevokedAt, b.RevokedAt = now, now
	for _, want := range []directory.RefreshToken{a, b, earlier, otherSession, noSession} {
		wantRefresh(t, s, "after revoking s-1", want)
	}

	if n, err := s.RevokeRefreshTokensBySession(ctx, "s-1", now.Add(time.Hour)); err != nil || n != 0 {
		t.Errorf("RevokeRefreshTokensBySession(s-1) again = %d, %v; want 0, nil", n, err)
	}
	// No session is not a session: tokens issued without one stay valid.
	_, err := s.RevokeRefreshTokensBySession(ctx, "", now)
	wantErr(t, `RevokeRefreshTokensBySession("")`, err, directory.ErrInvalid)
	_, err = s.RevokeRefreshTokensBySession(ctx, "s-2", time.Time{})
	wantErr(t, "RevokeRefreshTokensBySession(zero now)", err, directory.ErrInvalid)
	wantRefresh(t, s, "after refused revocations", noSession)
	wantRefresh(t, s, "after refused revocations", otherSession)
}

func testRevokeUser(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	mustCreateUser(t, s, user("user-2", "bob@example.nhs.uk"))
	tok := func(id, family, userID, session string) directory.RefreshToken {
		rt := refresh(id, family)
		rt.UserID, rt.SessionID = userID, session
		return rt
	}
	a, b, kept := tok("rt-1", "fam-1", "user-1", "s-1"), tok("rt-2", "fam-2", "user-1", ""), tok("rt-3", "fam-3", "user-1", "s-keep")
	other := tok("rt-4", "fam-4", "user-2", "s-1")
	mustCreateRefresh(t, s, a, b, kept, other)

	now := base.Add(time.Hour + time.Microsecond)
	if n, err := s.RevokeRefreshTokensByUser(ctx, "user-1", "s-keep", now); err != nil || n != 2 {
		t.Errorf("RevokeRefreshTokensByUser(user-1, keep s-keep) = %d, %v; want 2, nil", n, err)
	}
	a.RevokedAt, b.RevokedAt = now, now
	for _, want := range []directory.RefreshToken{a, b, kept, other} {
		wantRefresh(t, s, "after revoking user-1's", want)
	}
	later := now.Add(time.Hour)
	if n, err := s.RevokeRefreshTokensByUser(ctx, "user-1", "", later); err != nil || n != 1 {
		t.Errorf("RevokeRefreshTokensByUser(user-1) = %d, %v; want 1 (the kept one), nil", n, err)
	}
	kept.RevokedAt = later
	wantRefresh(t, s, "after revoking all of user-1's", kept)
	wantRefresh(t, s, "after revoking all of user-1's", other)
	_, err := s.RevokeRefreshTokensByUser(ctx, "", "", now)
	wantErr(t, `RevokeRefreshTokensByUser("")`, err, directory.ErrInvalid)
	_, err = s.RevokeRefreshTokensByUser(ctx, "user-2", "", time.Time{})
	wantErr(t, "RevokeRefreshTokensByUser(zero now)", err, directory.ErrInvalid)
	wantRefresh(t, s, "after refused revocations", other)
}

// testRevokeWhileRotating revokes a family while its current token is
// being rotated over and over: when RevokeRefreshFamily returns, every
// token of the family, including one a rotation in flight was storing, is
// revoked, and no later rotation succeeds. The rotator stops after a few
// dozen rotations, as a writer in a tight loop can starve others on an
// engine with one write lock (SQLite).
func testRevokeWhileRotating(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	const (
		rounds       = 20
		headStart    = 3 // rotations before revoking
		maxRotations = headStart + 50
	)
	for r := range rounds {
		family := fmt.Sprintf("fam-%d", r)
		token := func(i int) directory.RefreshToken { return refresh(fmt.Sprintf("%s-rt-%d", family, i), family) }
		mustCreateRefresh(t, s, token(0))
		var (
			wg      sync.WaitGroup
			started = make(chan struct{})
			once    sync.Once
			revoked atomic.Bool
			last    int // the last token stored; the rotator's until wg.Wait returns
		)
		wg.Go(func() {
			defer once.Do(func() { close(started) })
			for i := 1; i <= maxRotations; i++ {
				if i > headStart {
					once.Do(func() { close(started) })
				}
				after := revoked.Load()
				err := s.RotateRefreshToken(ctx, token(i-1).ID, token(i), base.Add(time.Duration(i)*time.Microsecond))
				if errors.Is(err, directory.ErrConflict) {
					return
				} else if err != nil {
					t.Errorf("round %d: RotateRefreshToken(%d): %v", r, i, err)
					return
				}
				last = i
				if after {
					t.Errorf("round %d: rotation %d, begun after RevokeRefreshFamily returned, succeeded", r, i)
					return
				}
			}
		})
		<-started
		now := base.Add(time.Hour)
		n, err := s.RevokeRefreshFamily(ctx, family, now)
		revoked.Store(err == nil)
		wg.Wait()
		if err != nil {
			t.Errorf("round %d: RevokeRefreshFamily: %v", r, err)
			continue
		}
		if n != last+1 {
			t.Errorf("round %d: RevokeRefreshFamily = %d, want %d (every token stored)", r, n, last+1)
		}
		for i := 0; i <= last; i++ {
			got, err := s.RefreshTokenByHash(ctx, token(i).TokenHash)
			if err != nil || !got.RevokedAt.Equal(now) {
				t.Errorf("round %d: token %d of %d: RevokedAt = %v, %v; want %v", r, i, last, got.RevokedAt, err, now)
			}
		}
	}
}

func testDeleteExpiredRefresh(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateUser(t, s, user("user-1", "alice@example.nhs.uk"))
	now := base.Add(time.Hour)
	expiring := func(id string, at time.Time) directory.RefreshToken {
		rt := refresh(id, "fam-"+id)
		rt.ExpiresAt = at
		return rt
	}
	before, atNow, after := expiring("rt-1", now.Add(-time.Microsecond)), expiring("rt-2", now), expiring("rt-3", now.Add(time.Microsecond))
	rotatedBefore := expiring("rt-4", now.Add(-time.Hour))
	rotatedBefore.RotatedAt = base
	revokedAfter := expiring("rt-5", now.Add(time.Hour))
	revokedAfter.RevokedAt = base
	mustCreateRefresh(t, s, before, atNow, after, rotatedBefore, revokedAfter)

	if n, err := s.DeleteExpiredRefreshTokens(ctx, now); err != nil || n != 3 {
		t.Errorf("DeleteExpiredRefreshTokens = %d, %v; want 3, nil", n, err)
	}
	for _, rt := range []directory.RefreshToken{before, atNow, rotatedBefore} {
		wantNoRefresh(t, s, "expired", rt)
	}
	for _, rt := range []directory.RefreshToken{after, revokedAfter} {
		wantRefresh(t, s, "not yet expired", rt)
	}
	if n, err := s.DeleteExpiredRefreshTokens(ctx, now); err != nil || n != 0 {
		t.Errorf("DeleteExpiredRefreshTokens again = %d, %v; want 0, nil", n, err)
	}
}

// Signing keys.

func signingKey(gen int64) directory.SigningKey {
	return directory.SigningKey{
		ID:         fmt.Sprintf("key-%d", gen),
		Generation: gen,
		Algorithm:  "RS256",
		Private:    []byte{0, byte(gen), 0xff, 0},
		Public:     bytes.Repeat([]byte{0x80, byte(gen), 0}, 100),
		CreatedAt:  base.Add(time.Duration(gen)*time.Hour + time.Microsecond),
		SignFrom:   base.Add(time.Duration(gen+1)*time.Hour + 2*time.Microsecond),
	}
}

func mustCreateSigningKey(t *testing.T, s directory.Store, ks ...directory.SigningKey) {
	t.Helper()
	for _, k := range ks {
		if err := s.CreateSigningKey(t.Context(), k); err != nil {
			t.Fatalf("CreateSigningKey(%q): %v", k.ID, err)
		}
	}
}

func wantSigningKeys(t *testing.T, s directory.Store, step string, want []directory.SigningKey) {
	t.Helper()
	got, err := s.SigningKeys(t.Context())
	if err != nil {
		t.Errorf("%s: SigningKeys: %v", step, err)
		return
	}
	if diff := cmp.Diff(want, got, equateEmpty); diff != "" {
		t.Errorf("%s: SigningKeys mismatch (-want +got):\n%s", step, diff)
	}
}

func testSigningKeys(t *testing.T, s directory.Store) {
	wantSigningKeys(t, s, "none yet", nil)
	// 10 sorts after 9 as a number, before it as text.
	mustCreateSigningKey(t, s, signingKey(3), signingKey(10), signingKey(1), signingKey(9))
	wantSigningKeys(t, s, "after creates", []directory.SigningKey{signingKey(1), signingKey(3), signingKey(9), signingKey(10)})
}

func testSigningKeyConflict(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateSigningKey(t, s, signingKey(1))
	sameGen := signingKey(1)
	sameGen.ID = "key-other"
	wantErr(t, "CreateSigningKey(same generation)", s.CreateSigningKey(ctx, sameGen), directory.ErrConflict)
	sameID := signingKey(2)
	sameID.ID = "key-1"
	wantErr(t, "CreateSigningKey(same ID)", s.CreateSigningKey(ctx, sameID), directory.ErrConflict)
	wantSigningKeys(t, s, "after conflicting creates", []directory.SigningKey{signingKey(1)})
}

func testSigningKeyInvalid(t *testing.T, s directory.Store) {
	ctx := t.Context()
	for _, c := range []struct {
		name  string
		clear func(*directory.SigningKey)
	}{
		{"empty ID", func(k *directory.SigningKey) { k.ID = "" }},
		{"empty algorithm", func(k *directory.SigningKey) { k.Algorithm = "" }},
		{"no private key", func(k *directory.SigningKey) { k.Private = nil }},
		{"no public key", func(k *directory.SigningKey) { k.Public = []byte{} }},
	} {
		k := signingKey(1)
		c.clear(&k)
		wantErr(t, fmt.Sprintf("CreateSigningKey(%s)", c.name), s.CreateSigningKey(ctx, k), directory.ErrInvalid)
	}
	wantSigningKeys(t, s, "after invalid creates", nil)
}

func testDeleteSigningKey(t *testing.T, s directory.Store) {
	ctx := t.Context()
	mustCreateSigningKey(t, s, signingKey(1), signingKey(2))
	if err := s.DeleteSigningKey(ctx, "key-1"); err != nil {
		t.Errorf("DeleteSigningKey(key-1): %v", err)
	}
	wantSigningKeys(t, s, "after delete", []directory.SigningKey{signingKey(2)})
	wantErr(t, "DeleteSigningKey(key-1) again", s.DeleteSigningKey(ctx, "key-1"), directory.ErrNotFound)
	wantErr(t, "DeleteSigningKey(missing)", s.DeleteSigningKey(ctx, "key-9"), directory.ErrNotFound)
	wantSigningKeys(t, s, "after refused deletes", []directory.SigningKey{signingKey(2)})
}
