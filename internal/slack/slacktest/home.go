package slacktest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"
)

// HomeView is one views.publish of a user's Home tab.
type HomeView struct {
	ID   string
	User string
	Hash string // the hash Slack gave this version
	JSON json.RawMessage
}

// Blocks decodes the view's blocks.
func (v HomeView) Blocks() []map[string]any {
	var view struct {
		Blocks []map[string]any `json:"blocks"`
	}
	_ = json.Unmarshal(v.JSON, &view)
	return view.Blocks
}

// HomeViews returns every Home view published so far, oldest first; with a
// user, only that user's.
func (s *Server) HomeViews(user string) []HomeView {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []HomeView
	for _, v := range s.homes {
		if user == "" || v.User == user {
			out = append(out, v)
		}
	}
	return out
}

// Limits of a Home view (docs.slack.dev/reference/methods/views.publish and
// /reference/block-kit/blocks): 100 blocks, 250 kB, section text 3000
// characters, button text 75; action and block ids unique in the view.
const (
	maxViewBlocks  = 100
	maxViewBytes   = 250 * 1000
	maxSectionText = 3000
	maxButtonText  = 75
)

// viewsPublish validates the view as Slack does and keeps it as the user's
// Home tab. Errors as documented: invalid_arguments (no user_id, not a home
// view, a block Slack would refuse), view_too_large, not_enabled (the
// app's Home tab is off), hash_conflict (the hash is not the current one).
func (s *Server) viewsPublish(req apiRequest, now time.Time) (int, map[string]any, http.Header) {
	user := req.form.Get("user_id")
	raw := req.form.Get("view")
	if user == "" || raw == "" {
		return fail("invalid_arguments")
	}
	if len(raw) > maxViewBytes {
		return fail("view_too_large")
	}
	var view struct {
		Type   string           `json:"type"`
		Blocks []map[string]any `json:"blocks"`
	}
	if err := json.Unmarshal([]byte(raw), &view); err != nil || view.Type != "home" {
		return fail("invalid_arguments")
	}
	if s.cfg.HomeTabDisabled {
		return fail("not_enabled")
	}
	if len(view.Blocks) > maxViewBlocks || !validBlocks(view.Blocks) {
		return fail("invalid_arguments")
	}
	var current *HomeView
	for i := range s.homes {
		if s.homes[i].User == user {
			current = &s.homes[i]
		}
	}
	if hash := req.form.Get("hash"); hash != "" && (current == nil || current.Hash != hash) {
		return fail("hash_conflict")
	}
	id := ""
	if current != nil {
		id = current.ID // a user's Home view keeps its id
	} else {
		s.seq++
		id = fmt.Sprintf("V%07d", s.seq)
	}
	s.seq++
	hash := fmt.Sprintf("%d.%d", now.Unix(), s.seq)
	s.homes = append(s.homes, HomeView{ID: id, User: user, Hash: hash, JSON: json.RawMessage(raw)})
	var obj map[string]any
	_ = json.Unmarshal([]byte(raw), &obj)
	obj["id"], obj["team_id"], obj["hash"], obj["app_id"] = id, s.cfg.TeamID, hash, s.cfg.AppID
	return ok(map[string]any{"view": obj})
}

// validBlocks checks what Slack checks of the blocks the bot uses: a type
// on each, unique block and action ids, and the text limits.
func validBlocks(blocks []map[string]any) bool {
	var blockIDs, actionIDs []string
	textLen := func(v any) int {
		t, _ := v.(map[string]any)
		s, _ := t["text"].(string)
		return utf8.RuneCountInString(s)
	}
	for _, b := range blocks {
		typ, _ := b["type"].(string)
		if typ == "" {
			return false
		}
		if id, _ := b["block_id"].(string); id != "" {
			if slices.Contains(blockIDs, id) {
				return false
			}
			blockIDs = append(blockIDs, id)
		}
		if typ == "section" && textLen(b["text"]) > maxSectionText {
			return false
		}
		elements, _ := b["elements"].([]any)
		if acc, ok := b["accessory"]; ok {
			elements = append(elements, acc)
		}
		for _, e := range elements {
			el, _ := e.(map[string]any)
			if el["type"] == "button" && textLen(el["text"]) > maxButtonText {
				return false
			}
			if id, _ := el["action_id"].(string); id != "" {
				if slices.Contains(actionIDs, id) {
					return false
				}
				actionIDs = append(actionIDs, id)
			}
		}
	}
	return true
}

// AppHomeOpened is an app_home_opened event: user opened the app's tab
// ("home" or "messages"). Like Slack's, it carries the Home view published
// to the user before, if any. Send it with Sender.Event (HTTP) or as the
// payload of an "events_api" Envelope (Socket Mode).
func (s *Server) AppHomeOpened(eventID, user, tab string) map[string]any {
	ev := map[string]any{"type": "app_home_opened", "user": user, "channel": "D0" + user, "tab": tab, "event_ts": s.eventTS()}
	if tab == "home" {
		if views := s.HomeViews(user); len(views) > 0 {
			v := views[len(views)-1]
			var obj map[string]any
			_ = json.Unmarshal(v.JSON, &obj)
			obj["id"], obj["hash"], obj["team_id"], obj["app_id"] = v.ID, v.Hash, s.cfg.TeamID, s.cfg.AppID
			ev["view"] = obj
		}
	}
	return s.EventCallback(eventID, ev)
}
