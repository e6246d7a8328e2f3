package authn

import (
	"strings"

	"github.com/lanyard/lanyard/risk"
)

// deviceName summarises a User-Agent as "Browser on System" for people
// reading their own sign-ins; it is a label, not a security signal.
func deviceName(ua string) string {
	browser, system := risk.UserAgent(ua)
	switch {
	case browser == "" && strings.Contains(ua, "Go-http-client"):
		browser = "a program"
	case browser == "":
		browser = "Unknown browser"
	}
	if system == "" {
		return browser
	}
	return browser + " on " + system
}
