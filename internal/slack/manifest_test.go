package slack

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

type manifest struct {
	Features struct {
		AppHome struct {
			HomeTab     bool `yaml:"home_tab_enabled"`
			MessagesTab bool `yaml:"messages_tab_enabled"`
		} `yaml:"app_home"`
		SlashCommands []struct {
			Command      string `yaml:"command"`
			URL          string `yaml:"url"`
			ShouldEscape bool   `yaml:"should_escape"`
		} `yaml:"slash_commands"`
		Shortcuts []struct {
			Name        string `yaml:"name"`
			Type        string `yaml:"type"`
			CallbackID  string `yaml:"callback_id"`
			Description string `yaml:"description"`
		} `yaml:"shortcuts"`
	} `yaml:"features"`
	OAuth struct {
		Scopes struct {
			Bot []string `yaml:"bot"`
		} `yaml:"scopes"`
	} `yaml:"oauth_config"`
	Settings struct {
		Events struct {
			RequestURL string   `yaml:"request_url"`
			BotEvents  []string `yaml:"bot_events"`
		} `yaml:"event_subscriptions"`
		Interactivity struct {
			Enabled    bool   `yaml:"is_enabled"`
			RequestURL string `yaml:"request_url"`
		} `yaml:"interactivity"`
		SocketMode bool `yaml:"socket_mode_enabled"`
	} `yaml:"settings"`
}

func path(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Path
}

// The manifests ask for exactly the scopes, command, events and
// interactivity the bot uses.
func TestManifests(t *testing.T) {
	for _, tc := range []struct {
		file   string
		socket bool
	}{{"manifest.yaml", false}, {"manifest-socket.yaml", true}} {
		t.Run(tc.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("..", "..", "deploy", "slack", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var m manifest
			if err := yaml.Unmarshal(raw, &m); err != nil {
				t.Fatal(err)
			}
			scopes := slices.Sorted(slices.Values(m.OAuth.Scopes.Bot))
			if want := slices.Sorted(slices.Values(RequiredScopes)); !slices.Equal(scopes, want) {
				t.Errorf("scopes\n got %v\nwant %v", scopes, want)
			}
			if len(m.Features.SlashCommands) != 1 || m.Features.SlashCommands[0].Command != "/incident" || !m.Features.SlashCommands[0].ShouldEscape {
				t.Errorf("slash commands: %+v", m.Features.SlashCommands)
			}
			var shortcuts []Shortcut
			for _, sc := range m.Features.Shortcuts {
				shortcuts = append(shortcuts, Shortcut{Type: sc.Type, CallbackID: sc.CallbackID, Name: sc.Name})
				if sc.Description == "" || len(sc.Description) > 150 {
					t.Errorf("shortcut %s: description must be 1-150 characters", sc.CallbackID)
				}
			}
			if !slices.Equal(shortcuts, Shortcuts) {
				t.Errorf("shortcuts\n got %+v\nwant %+v", shortcuts, Shortcuts)
			}
			events := slices.Sorted(slices.Values(m.Settings.Events.BotEvents))
			if !slices.Equal(events, []string{"app_home_opened", "member_joined_channel", "pin_added", "reaction_added"}) {
				t.Errorf("events: %v", events)
			}
			// The Home tab is published on app_home_opened; the bot reads
			// no direct messages, so the Messages tab is off.
			if !m.Features.AppHome.HomeTab || m.Features.AppHome.MessagesTab {
				t.Errorf("app_home: %+v", m.Features.AppHome)
			}
			if !m.Settings.Interactivity.Enabled || m.Settings.SocketMode != tc.socket {
				t.Errorf("settings: %+v", m.Settings)
			}
			if tc.socket {
				if m.Settings.Events.RequestURL != "" || m.Settings.Interactivity.RequestURL != "" || m.Features.SlashCommands[0].URL != "" {
					t.Error("socket mode manifest has request URLs")
				}
				return
			}
			for got, want := range map[string]string{
				path(t, m.Features.SlashCommands[0].URL):     "/slack/commands",
				path(t, m.Settings.Events.RequestURL):        "/slack/events",
				path(t, m.Settings.Interactivity.RequestURL): "/slack/interactions",
			} {
				if got != want {
					t.Errorf("request URL path %q, want %q", got, want)
				}
			}
		})
	}
}
