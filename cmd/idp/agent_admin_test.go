package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/adsync"
	"github.com/lanyard/lanyard/directory/sqlstore"
)

func TestAdminAgentCommands(t *testing.T) {
	backends(t, func(t *testing.T, dir, db string) {
		ctx := t.Context()
		for _, o := range []string{"RRK", "RX1"} {
			if r := idp(t, dir, "", nil, "admin", "org", "create", "--database", db, "--ods", o, "--name", "Trust "+o); r.code != 0 {
				t.Fatalf("org create: %d %q", r.code, r.stderr)
			}
		}
		keyFile := func(name string) (string, adsync.PrivateKeys) {
			k, err := adsync.GenerateKeys()
			if err != nil {
				t.Fatal(err)
			}
			pem, err := k.Public().MarshalPEM()
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, name)
			if err := os.WriteFile(path, pem, 0o600); err != nil {
				t.Fatal(err)
			}
			return path, k
		}
		pub1, k1 := keyFile("agent1.pub")
		r := idp(t, dir, "", nil, "admin", "agent", "create", "--database", db, "--org", "rrk", "--public-key", pub1, "--json")
		if r.code != 0 {
			t.Fatalf("agent create: %d %q", r.code, r.stderr)
		}
		if got := decode(t, r.stdout); got["id"] != k1.Public().KeyID() || got["org"] != "RRK" {
			t.Errorf("agent create JSON = %v, want id %s", got, k1.Public().KeyID())
		}
		pub2, k2 := keyFile("agent2.pub")
		wantFail(t, idp(t, dir, "", nil, "admin", "agent", "create", "--database", db, "--org", "RRK", "--public-key", pub1), 1, "registered already")
		wantFail(t, idp(t, dir, "", nil, "admin", "agent", "create", "--database", db, "--org", "RRK", "--public-key", pub2), 1, "RRK has an active agent already")
		wantFail(t, idp(t, dir, "", nil, "admin", "agent", "create", "--database", db, "--org", "ZZZ", "--public-key", pub2), 2, `no organisation with ODS code "ZZZ"`)
		wantFail(t, idp(t, dir, "", nil, "admin", "agent", "create", "--database", db, "--org", "RRK"), 2, "missing --public-key")
		if err := os.WriteFile(filepath.Join(dir, "bad.pub"), []byte("not a key"), 0o600); err != nil {
			t.Fatal(err)
		}
		wantFail(t, idp(t, dir, "", nil, "admin", "agent", "create", "--database", db, "--org", "RRK", "--public-key", filepath.Join(dir, "bad.pub")), 2, "not an agent key file")

		// RX1's agent was registered two hours ago and never called: silent.
		st, err := sqlstore.Open(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		rx1, err := st.OrganisationByODS(ctx, "RX1")
		if err != nil {
			t.Fatal(err)
		}
		p2 := k2.Public()
		if err := st.CreateSyncAgent(ctx, directory.SyncAgent{ID: p2.KeyID(), OrgID: rx1.ID, SignKey: p2.Sign, SealKey: p2.Seal.Bytes(), CreatedAt: time.Now().Add(-2 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		r = idp(t, dir, "", nil, "admin", "agent", "list", "--database", db, "--json")
		if r.code != 0 {
			t.Fatalf("agent list: %d %q", r.code, r.stderr)
		}
		agents, _ := decode(t, r.stdout)["agents"].([]any)
		if len(agents) != 2 {
			t.Fatalf("agent list = %s", r.stdout)
		}
		silent := map[string]bool{}
		for _, a := range agents {
			m := a.(map[string]any)
			silent[m["id"].(string)] = m["silent"].(bool)
			if m["last_contact"] != nil {
				t.Errorf("last_contact of a new agent = %v", m["last_contact"])
			}
		}
		if silent[k1.Public().KeyID()] || !silent[p2.KeyID()] {
			t.Errorf("silent flags = %v", silent)
		}
		r = idp(t, dir, "", nil, "admin", "agent", "list", "--database", db, "--org", "RX1")
		if r.code != 0 || !strings.Contains(r.stdout, p2.KeyID()) || !strings.Contains(r.stdout, "SILENT") || strings.Contains(r.stdout, k1.Public().KeyID()) {
			t.Errorf("agent list --org RX1: %d %q %q", r.code, r.stdout, r.stderr)
		}
		// With a longer silence allowed, it is not silent.
		r = idp(t, dir, "", []string{"LANYARD_ADSYNC_SILENT_AFTER=3h"}, "admin", "agent", "list", "--database", db, "--org", "RX1")
		if r.code != 0 || strings.Contains(r.stdout, "SILENT") {
			t.Errorf("agent list with silent_after 3h: %d %q %q", r.code, r.stdout, r.stderr)
		}

		if err := st.ReplaceADUnmatched(ctx, rx1.ID, directory.UnmatchedAD, []directory.ADUnmatched{{Ref: "guid-1", Label: "someone@ad.local", SeenAt: time.Now()}}); err != nil {
			t.Fatal(err)
		}
		r = idp(t, dir, "", nil, "admin", "agent", "unmatched", "--database", db, "--org", "RX1")
		if r.code != 0 || !strings.Contains(r.stdout, "1 AD accounts without a Lanyard user") || !strings.Contains(r.stdout, "someone@ad.local") {
			t.Errorf("agent unmatched: %d %q %q", r.code, r.stdout, r.stderr)
		}
		r = idp(t, dir, "", nil, "admin", "agent", "unmatched", "--database", db, "--org", "RRK", "--json")
		if got := decode(t, r.stdout); r.code != 0 || len(got["ad"].([]any)) != 0 {
			t.Errorf("agent unmatched RRK: %d %q", r.code, r.stdout)
		}

		if r := idp(t, dir, "", nil, "admin", "agent", "disable", "--database", db, "--id", p2.KeyID()); r.code != 0 {
			t.Fatalf("agent disable: %d %q", r.code, r.stderr)
		}
		r = idp(t, dir, "", nil, "admin", "agent", "list", "--database", db, "--org", "RX1")
		if !strings.Contains(r.stdout, "disabled") || strings.Contains(r.stdout, "SILENT") {
			t.Errorf("agent list after disable: %q", r.stdout)
		}
		wantFail(t, idp(t, dir, "", nil, "admin", "agent", "frob"), 2, `unknown command "agent frob"`)
	})
}
