package templates

import (
	"strings"
	"testing"
)

// The risk pages join pageCases, so the golden, structure and asset tests
// cover them too.
func init() {
	for _, c := range riskPageCases {
		pageCases = append(pageCases, struct {
			name string
			page Page
		}{c.name, c.page})
	}
}

var riskPageCases = []struct {
	name string
	page Page
}{
	{"risk_report", RiskReport{Action: "/login/risk/report", CSRFToken: "csrf-token-12", Token: "token-1",
		Details: []string{"Sunday 3 March 2031 at 03:04 (Europe/London)", "From Paris, FR", "Firefox on Linux"}}},
	{"risk_report_done", RiskReport{Done: true, Title: "Your account is locked",
		Paragraphs: []string{"We have locked your account and told your organisation's administrators.", "They will help you back in."}}},
}

func TestRiskReportParts(t *testing.T) {
	p := newPages(t)
	form := render(t, p, riskPageCases[0].page)
	for _, want := range []string{`action="/login/risk/report"`, `name="token" value="token-1"`, "From Paris, FR", "lock my account"} {
		if !strings.Contains(form, want) {
			t.Errorf("report page lacks %q", want)
		}
	}
	done := render(t, p, riskPageCases[1].page)
	if strings.Contains(done, "<form") || !strings.Contains(done, "Your account is locked") {
		t.Errorf("done page shows a form or lacks its title:\n%s", done)
	}
}
