package server

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/lanyard/lanyard/directory"
	"github.com/lanyard/lanyard/directory/admin"
)

// The demo data `idp serve --demo` creates.
const (
	DemoODS         = "DEMO1"
	DemoEmail       = "demo.user@lanyard.test"
	DemoRedirectURI = "http://127.0.0.1:9999/callback"
)

// Demo holds the demo credentials, printed at start.
type Demo struct {
	ODSCode      string `json:"ods_code"`
	Email        string `json:"email"`
	Password     string `json:"password"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	RedirectURI  string `json:"redirect_uri"`
}

func (d Demo) String() string {
	return fmt.Sprintf("Demo organisation: %s\nDemo user:         %s\nPassword:          %s\nOIDC client_id:    %s\nclient_secret:     %s\nredirect_uri:      %s\n",
		d.ODSCode, d.Email, d.Password, d.ClientID, d.ClientSecret, d.RedirectURI)
}

// SeedDemo creates, once, the demo organisation, user and OIDC client. The
// credentials are kept in <data>/demo-credentials.json (mode 0600) so a
// restart prints them again; hashes alone are in the directory. created is
// false when the demo already existed.
func (s *Server) SeedDemo(ctx context.Context) (d Demo, created bool, err error) {
	path := filepath.Join(s.Config.Data, "demo-credentials.json")
	if _, err := s.Directory.OrganisationByODS(ctx, DemoODS); err == nil {
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return Demo{}, false, fmt.Errorf("demo organisation %s exists but %s is gone: its credentials were printed when it was created", DemoODS, path)
		} else if err != nil {
			return Demo{}, false, err
		}
		if err := json.Unmarshal(data, &d); err != nil {
			return Demo{}, false, fmt.Errorf("read %s: %w", path, err)
		}
		return d, false, nil
	} else if !errors.Is(err, directory.ErrNotFound) {
		return Demo{}, false, err
	}
	by := admin.Actor{ID: "demo"}
	if _, err := s.Admin.CreateOrganisation(ctx, by, DemoODS, "Demo Organisation"); err != nil {
		return Demo{}, false, err
	}
	d = Demo{ODSCode: DemoODS, Email: DemoEmail, Password: rand.Text()[:20], RedirectURI: DemoRedirectURI}
	if _, err := s.Admin.CreateUser(ctx, by, admin.NewUser{OrgODS: DemoODS, Email: DemoEmail, Name: "Demo User", Password: d.Password}); err != nil {
		return Demo{}, false, err
	}
	c, secret, err := s.Admin.CreateClient(ctx, by, admin.NewClient{
		OrgODS: DemoODS, Name: "Demo Application", RedirectURIs: []string{DemoRedirectURI},
		PostLogoutRedirectURIs: []string{"http://127.0.0.1:9999/"},
	})
	if err != nil {
		return Demo{}, false, err
	}
	d.ClientID, d.ClientSecret = c.ID, secret
	data, _ := json.MarshalIndent(d, "", "  ")
	if err := os.MkdirAll(s.Config.Data, 0o700); err != nil {
		return Demo{}, false, err
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return Demo{}, false, fmt.Errorf("save demo credentials: %w", err)
	}
	return d, true, nil
}
