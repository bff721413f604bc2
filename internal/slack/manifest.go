package slack

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// appManifest is the part of a Slack app manifest the bot depends on
// (docs.slack.dev/reference/app-manifest).
type appManifest struct {
	Features struct {
		Shortcuts []manifestShortcut `yaml:"shortcuts"`
	} `yaml:"features"`
	OAuth struct {
		Scopes struct {
			Bot []string `yaml:"bot"`
		} `yaml:"scopes"`
	} `yaml:"oauth_config"`
	Settings struct {
		Interactivity struct {
			Enabled bool `yaml:"is_enabled"`
		} `yaml:"interactivity"`
	} `yaml:"settings"`
}

type manifestShortcut struct {
	Type       string `yaml:"type"`
	CallbackID string `yaml:"callback_id"`
}

// DefaultManifests are the manifests `bot doctor` checks when run from a
// checkout of the repository and given none.
var DefaultManifests = []string{"deploy/slack/manifest.yaml", "deploy/slack/manifest-socket.yaml"}

// manifestChecks checks the app manifests at paths (the ones the app was
// created or last updated from): the bot cannot read the installed app's
// configuration with its token, so the manifest is where a missing
// shortcut shows before someone looks for it in Slack. Paths that do not
// exist are skipped; if none exists, the check says what the app must
// declare.
func manifestChecks(paths []string) []Check {
	var checks []Check
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			checks = append(checks, Check{Name: "app manifest " + p, Detail: "cannot read it: " + err.Error(), Fix: "Check the path and its permissions."})
			continue
		}
		checks = append(checks, ManifestCheck(p, raw))
	}
	if len(checks) == 0 {
		checks = append(checks, Check{Name: "app manifest", OK: true,
			Detail: "no manifest file to check; the app must declare the shortcuts " + shortcutList(Shortcuts) + " (as deploy/slack/manifest.yaml does)"})
	}
	return checks
}

// ManifestCheck checks one app manifest: it must declare every shortcut
// the bot handles (Shortcuts), every scope it uses (RequiredScopes) and
// turn interactivity on.
func ManifestCheck(name string, raw []byte) Check {
	ch := Check{Name: "app manifest " + name}
	var m appManifest
	if err := yaml.Unmarshal(raw, &m); err != nil {
		ch.Detail, ch.Fix = "not a valid manifest: "+err.Error(), "Start again from deploy/slack/manifest.yaml."
		return ch
	}
	var missing []Shortcut
	for _, s := range Shortcuts {
		if !slices.Contains(m.Features.Shortcuts, manifestShortcut{Type: s.Type, CallbackID: s.CallbackID}) {
			missing = append(missing, s)
		}
	}
	var scopes []string
	for _, s := range RequiredScopes {
		if !slices.Contains(m.OAuth.Scopes.Bot, s) {
			scopes = append(scopes, s)
		}
	}
	var problems []string
	if len(missing) > 0 {
		problems = append(problems, "missing shortcuts "+shortcutList(missing))
	}
	if len(scopes) > 0 {
		problems = append(problems, "missing scopes "+strings.Join(scopes, ", "))
	}
	if !m.Settings.Interactivity.Enabled {
		problems = append(problems, "interactivity is off (shortcuts, buttons and forms need it)")
	}
	if len(problems) > 0 {
		ch.Detail = strings.Join(problems, "; ")
		ch.Fix = "Add them as deploy/slack/manifest.yaml (or manifest-socket.yaml) does, then paste the manifest under your app's App Manifest page and reinstall the app."
		return ch
	}
	ch.OK, ch.Detail = true, fmt.Sprintf("declares the %d shortcuts (%s), the scopes and interactivity", len(Shortcuts), shortcutList(Shortcuts))
	return ch
}

func shortcutList(ss []Shortcut) string {
	var out []string
	for _, s := range ss {
		out = append(out, fmt.Sprintf("%q (%s, %s)", s.Name, s.Type, s.CallbackID))
	}
	return strings.Join(out, ", ")
}
