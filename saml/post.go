package saml

// This file writes the pages that carry a SAML message on through the
// browser: an auto-submitting form (HTTP-POST binding) under a strict
// Content-Security-Policy that allows only its one script and only its
// destination's origin as a form target.

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
)

const autoSubmit = `document.getElementById('SAMLForm').submit();`

var (
	autoSubmitHash = func() string {
		sum := sha256.Sum256([]byte(autoSubmit))
		return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
	}()
	postForm = template.Must(template.New("post").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Continuing…</title></head>
<body>
<form method="post" action="{{.URL}}" id="SAMLForm">
<input type="hidden" name="{{.Param}}" value="{{.Value}}">
{{- if .RelayState}}
<input type="hidden" name="RelayState" value="{{.RelayState}}">{{end}}
<noscript><p>JavaScript is off: press the button to continue.</p></noscript>
<button type="submit">Continue</button>
</form>
<script>` + autoSubmit + `</script>
</body></html>
`))
)

// writePost answers with a form that posts param=value (and RelayState)
// to action.
func writePost(w http.ResponseWriter, action, param, value, relayState string) error {
	u, err := url.Parse(action)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := postForm.Execute(&buf, struct{ URL, Param, Value, RelayState string }{action, param, value, relayState}); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; script-src "+autoSubmitHash+"; form-action "+u.Scheme+"://"+u.Host+
		"; base-uri 'none'; frame-ancestors 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	_, err = w.Write(buf.Bytes())
	return err
}
