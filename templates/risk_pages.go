package templates

// riskPages lists the page types of the risk engine's pages, declared in
// this file.
var riskPages = []Page{RiskReport{}}

// RiskReport asks a user who followed the "it wasn't me" link in a
// sign-in alert to confirm, with one button, that the sign-in was not
// theirs; the form posts csrf_token and token to Action. Details describe the sign-in
// (time, place, device). Done, when set, shows the outcome instead of the
// form: Paragraphs say what happened.
type RiskReport struct {
	Action     string
	CSRFToken  string
	Token      string
	Details    []string
	Done       bool
	Title      string
	Paragraphs []string
}

func (RiskReport) templateName() string { return "risk_report.html" }
