package slacktest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

type handlerFunc func(s *Server, req apiRequest, now time.Time) (int, map[string]any, http.Header)

// handlers are the Web API methods the fake implements. Each runs with the
// server's lock held.
var handlers = map[string]handlerFunc{
	"auth.test":                    (*Server).authTest,
	"conversations.create":         (*Server).conversationsCreate,
	"conversations.list":           (*Server).conversationsList,
	"conversations.info":           (*Server).conversationsInfo,
	"conversations.join":           (*Server).conversationsJoin,
	"conversations.setTopic":       (*Server).conversationsSetTopic,
	"conversations.invite":         (*Server).conversationsInvite,
	"conversations.history":        (*Server).conversationsHistory,
	"conversations.replies":        (*Server).conversationsReplies,
	"chat.postMessage":             (*Server).chatPostMessage,
	"chat.update":                  (*Server).chatUpdate,
	"chat.postEphemeral":           (*Server).chatPostEphemeral,
	"chat.getPermalink":            (*Server).chatGetPermalink,
	"views.open":                   (*Server).viewsOpen,
	"views.publish":                (*Server).viewsPublish,
	"users.lookupByEmail":          (*Server).usersLookupByEmail,
	"users.info":                   (*Server).usersInfo,
	"usergroups.users.list":        (*Server).usergroupsUsersList,
	"bookmarks.add":                (*Server).bookmarksAdd,
	"files.getUploadURLExternal":   (*Server).filesGetUploadURLExternal,
	"files.completeUploadExternal": (*Server).filesCompleteUploadExternal,
}

func (s *Server) authTest(_ apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	return ok(map[string]any{
		"url": "https://test-workspace.slack.com/", "team": s.cfg.TeamName, "user": s.cfg.BotName,
		"team_id": s.cfg.TeamID, "user_id": s.cfg.BotUserID, "bot_id": s.cfg.BotID, "is_enterprise_install": false,
	})
}

// validChannelName applies Slack's naming rules (docs.slack.dev,
// conversations.create): lowercase letters, digits, '-' and '_', at most
// 80 characters, not only punctuation.
func validChannelName(name string) string {
	switch {
	case name == "":
		return "invalid_name_required"
	case utf8.RuneCountInString(name) > 80:
		return "invalid_name_maxlength"
	case strings.Trim(name, "-_") == "":
		return "invalid_name_punctuation"
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return "invalid_name_specials"
		}
	}
	return ""
}

func (s *Server) conversationsCreate(req apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	name := req.form.Get("name")
	if code := validChannelName(name); code != "" {
		return fail(code)
	}
	for _, ch := range s.channels {
		if ch.Name == name {
			return fail("name_taken")
		}
	}
	ch := s.newChannel(name, req.form.Get("is_private") == "true", s.cfg.BotUserID)
	return ok(map[string]any{"channel": s.channelJSON(ch)})
}

func (s *Server) conversationsList(req apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	types := req.form.Get("types")
	if types == "" {
		types = "public_channel"
	}
	wantPublic, wantPrivate := strings.Contains(types, "public_channel"), strings.Contains(types, "private_channel")
	limit, _ := strconv.Atoi(req.form.Get("limit"))
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	start := 0
	if c := req.form.Get("cursor"); c != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(c, "offset:"))
		if err != nil || !strings.HasPrefix(c, "offset:") {
			return fail("invalid_cursor")
		}
		start = n
	}
	var all []*Channel
	for _, ch := range s.channels {
		if !s.visible(ch) || (req.form.Get("exclude_archived") == "true" && ch.Archived) {
			continue
		}
		if (ch.Private && wantPrivate) || (!ch.Private && wantPublic) {
			all = append(all, ch)
		}
	}
	var page []map[string]any
	for i := start; i < len(all) && i < start+limit; i++ {
		page = append(page, s.channelJSON(all[i]))
	}
	next := ""
	if start+limit < len(all) {
		next = "offset:" + strconv.Itoa(start+limit)
	}
	if page == nil {
		page = []map[string]any{}
	}
	return ok(map[string]any{"channels": page, "response_metadata": map[string]any{"next_cursor": next}})
}

func (s *Server) conversationsInfo(req apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	ch := s.channel(req.form.Get("channel"))
	if !s.visible(ch) {
		return fail("channel_not_found")
	}
	return ok(map[string]any{"channel": s.channelJSON(ch)})
}

func (s *Server) conversationsJoin(req apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	ch := s.channel(req.form.Get("channel"))
	switch {
	case !s.visible(ch):
		return fail("channel_not_found")
	case ch.Private:
		return fail("method_not_supported_for_channel_type")
	case ch.Archived:
		return fail("is_archived")
	}
	if !s.isMember(ch) {
		ch.Members = append(ch.Members, s.cfg.BotUserID)
	}
	return ok(map[string]any{"channel": s.channelJSON(ch)})
}

// writable returns the channel if the bot may post in it, or an error code.
func (s *Server) writable(id string) (*Channel, string) {
	ch := s.channel(id)
	switch {
	case !s.visible(ch):
		return nil, "channel_not_found"
	case ch.Archived:
		return nil, "is_archived"
	case !s.isMember(ch):
		return nil, "not_in_channel"
	}
	return ch, ""
}

func (s *Server) conversationsSetTopic(req apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	ch, code := s.writable(req.form.Get("channel"))
	if code != "" {
		return fail(code)
	}
	topic := req.form.Get("topic")
	if utf8.RuneCountInString(topic) > 250 {
		return fail("too_long")
	}
	ch.Topic = topic
	return ok(map[string]any{"channel": s.channelJSON(ch)})
}

// conversationsInvite invites all the users or none: one user that cannot
// be invited (already a member, the bot itself, unknown) fails the whole
// call, as Slack documents for calls without force.
func (s *Server) conversationsInvite(req apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	ch, code := s.writable(req.form.Get("channel"))
	if code != "" {
		return fail(code)
	}
	users := strings.Split(req.form.Get("users"), ",")
	if req.form.Get("users") == "" {
		return fail("no_user")
	}
	if len(users) > 100 {
		return fail("too_many_users")
	}
	var errs []map[string]any
	first := ""
	for _, u := range users {
		code := ""
		switch {
		case u == s.cfg.BotUserID:
			code = "cant_invite_self"
		case s.users[u] == nil:
			code = "user_not_found"
		case slices.Contains(ch.Members, u):
			code = "already_in_channel"
		}
		if code != "" {
			if first == "" {
				first = code
			}
			errs = append(errs, map[string]any{"user": u, "ok": false, "error": code})
		}
	}
	if first != "" {
		return http.StatusOK, map[string]any{"ok": false, "error": first, "errors": errs}, nil
	}
	ch.Members = append(ch.Members, users...)
	return ok(map[string]any{"channel": s.channelJSON(ch)})
}

// tsMicros orders Slack timestamps ("1700000000.000100").
func tsMicros(ts string) (int64, bool) {
	sec, frac, _ := strings.Cut(ts, ".")
	s, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return 0, false
	}
	frac = (frac + "000000")[:6]
	us, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, false
	}
	return s*1_000_000 + us, true
}

// inRange applies oldest/latest/inclusive as conversations.history does.
func inRange(req apiRequest, ts string) bool {
	t, _ := tsMicros(ts)
	incl := req.form.Get("inclusive") == "true" || req.form.Get("inclusive") == "1"
	if o := req.form.Get("oldest"); o != "" {
		ov, _ := tsMicros(o)
		if t < ov || (t == ov && !incl) {
			return false
		}
	}
	if l := req.form.Get("latest"); l != "" {
		lv, _ := tsMicros(l)
		if t > lv || (t == lv && !incl) {
			return false
		}
	}
	return true
}

func (s *Server) readable(id string) (*Channel, string) {
	ch := s.channel(id)
	switch {
	case !s.visible(ch):
		return nil, "channel_not_found"
	case !s.isMember(ch):
		return nil, "not_in_channel"
	}
	return ch, ""
}

// pageStart reads an "offset:N" cursor (the fake's own format; Slack's
// cursors are opaque too).
func pageStart(req apiRequest) (int, bool) {
	c := req.form.Get("cursor")
	if c == "" {
		return 0, true
	}
	n, err := strconv.Atoi(strings.TrimPrefix(c, "offset:"))
	return n, err == nil && strings.HasPrefix(c, "offset:") && n >= 0
}

// page cuts a list of messages to the request's cursor and limit and
// answers it with has_more and the next cursor. first (a thread's parent)
// leads every page and counts against the limit.
func (s *Server) page(req apiRequest, msgs []*Message, start, limit int, first map[string]any) (int, map[string]any, http.Header) {
	withMeta := req.form.Get("include_all_metadata") == "true" || req.form.Get("include_all_metadata") == "1"
	out := []map[string]any{}
	room := limit
	if first != nil {
		out = append(out, first)
		room = max(limit-1, 1)
	}
	start = min(start, len(msgs))
	end := min(start+room, len(msgs))
	for _, m := range msgs[start:end] {
		out = append(out, s.messageJSON(m, withMeta))
	}
	next := ""
	if end < len(msgs) {
		next = "offset:" + strconv.Itoa(end)
	}
	return ok(map[string]any{"messages": out, "has_more": next != "", "response_metadata": map[string]any{"next_cursor": next}})
}

func (s *Server) conversationsHistory(req apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	ch, code := s.readable(req.form.Get("channel"))
	if code != "" {
		return fail(code)
	}
	limit, _ := strconv.Atoi(req.form.Get("limit"))
	if limit <= 0 {
		limit = 100
	}
	start, valid := pageStart(req)
	if !valid {
		return fail("invalid_cursor")
	}
	var msgs []*Message
	for i := len(s.messages) - 1; i >= 0; i-- { // newest first
		m := s.messages[i]
		if m.Channel != ch.ID || (m.ThreadTS != "" && m.ThreadTS != m.TS && m.SubType != "thread_broadcast") || !inRange(req, m.TS) {
			continue
		}
		msgs = append(msgs, m)
	}
	return s.page(req, msgs, start, limit, nil)
}

func (s *Server) conversationsReplies(req apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	ch, code := s.readable(req.form.Get("channel"))
	if code != "" {
		return fail(code)
	}
	m := s.message(ch.ID, req.form.Get("ts"))
	if m == nil {
		return fail("thread_not_found")
	}
	parentTS := m.TS
	if m.ThreadTS != "" {
		parentTS = m.ThreadTS
	}
	parent := s.message(ch.ID, parentTS)
	if parent == nil {
		return fail("thread_not_found")
	}
	limit, _ := strconv.Atoi(req.form.Get("limit"))
	if limit <= 0 {
		limit = 1000
	}
	start, valid := pageStart(req)
	if !valid {
		return fail("invalid_cursor")
	}
	var msgs []*Message
	for _, r := range s.messages {
		if r.Channel == ch.ID && r.ThreadTS == parentTS && r.TS != parentTS && inRange(req, r.TS) {
			msgs = append(msgs, r)
		}
	}
	// The parent comes first on every page; the range and limit apply to
	// the replies.
	withMeta := req.form.Get("include_all_metadata") == "true" || req.form.Get("include_all_metadata") == "1"
	return s.page(req, msgs, start, limit, s.messageJSON(parent, withMeta))
}

// checkMessage applies Slack's message limits (text, blocks).
func checkMessage(req apiRequest) (json.RawMessage, string) {
	text, rawBlocks := req.form.Get("text"), req.form.Get("blocks")
	if text == "" && rawBlocks == "" && req.form.Get("attachments") == "" {
		return nil, "no_text"
	}
	if utf8.RuneCountInString(text) > 40000 {
		return nil, "msg_too_long"
	}
	if rawBlocks == "" {
		return nil, ""
	}
	var blocks []map[string]json.RawMessage
	if err := json.Unmarshal([]byte(rawBlocks), &blocks); err != nil {
		return nil, "invalid_blocks_format"
	}
	if len(blocks) > 50 {
		return nil, "invalid_blocks"
	}
	for _, b := range blocks {
		var typ string
		_ = json.Unmarshal(b["type"], &typ)
		if typ == "" {
			return nil, "invalid_blocks"
		}
		var txt struct {
			Text string `json:"text"`
		}
		if t, has := b["text"]; has {
			if json.Unmarshal(t, &txt) != nil || utf8.RuneCountInString(txt.Text) > 3000 {
				return nil, "invalid_blocks"
			}
		}
		if typ == "section" {
			if _, has := b["text"]; !has {
				if _, hasFields := b["fields"]; !hasFields {
					return nil, "invalid_blocks"
				}
			}
		}
	}
	return json.RawMessage(rawBlocks), ""
}

func (s *Server) chatPostMessage(req apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	ch, code := s.writable(req.form.Get("channel"))
	if code != "" {
		return fail(code)
	}
	blocks, code := checkMessage(req)
	if code != "" {
		return fail(code)
	}
	thread := req.form.Get("thread_ts")
	if thread != "" && s.message(ch.ID, thread) == nil {
		return fail("thread_not_found")
	}
	meta, code := checkMetadata(req.form.Get("metadata"))
	if code != "" {
		return fail(code)
	}
	m := &Message{Channel: ch.ID, TS: s.nextTS(), ThreadTS: thread, User: s.cfg.BotUserID, BotID: s.cfg.BotID,
		Text: req.form.Get("text"), Blocks: blocks, Metadata: meta, Form: cloneValues(req.form)}
	s.messages = append(s.messages, m)
	return ok(map[string]any{"channel": ch.ID, "ts": m.TS, "message": s.messageJSON(m, true)})
}

// checkMetadata validates chat.postMessage's metadata argument: a JSON
// object with an event_type (lowercase letters, digits and underscores,
// as Slack's metadata design guide asks, https://api.slack.com/reference/metadata)
// and an event_payload object. Slack answers invalid_metadata_format for a
// value that is not such JSON and invalid_metadata_schema for a wrong shape.
func checkMetadata(raw string) (json.RawMessage, string) {
	if raw == "" {
		return nil, ""
	}
	var md struct {
		EventType    string          `json:"event_type"`
		EventPayload json.RawMessage `json:"event_payload"`
	}
	if err := json.Unmarshal([]byte(raw), &md); err != nil {
		return nil, "invalid_metadata_format"
	}
	var payload map[string]any
	if md.EventType == "" || json.Unmarshal(md.EventPayload, &payload) != nil || payload == nil {
		return nil, "invalid_metadata_schema"
	}
	for _, r := range md.EventType {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_') {
			return nil, "invalid_metadata_schema"
		}
	}
	return json.RawMessage(raw), ""
}

func (s *Server) chatUpdate(req apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	ch, code := s.writable(req.form.Get("channel"))
	if code != "" {
		return fail(code)
	}
	m := s.message(ch.ID, req.form.Get("ts"))
	if m == nil {
		return fail("message_not_found")
	}
	if m.BotID != s.cfg.BotID {
		return fail("cant_update_message")
	}
	blocks, code := checkMessage(req)
	if code != "" {
		return fail(code)
	}
	m.Text, m.Blocks, m.Form = req.form.Get("text"), blocks, cloneValues(req.form)
	m.Updates++
	return ok(map[string]any{"channel": ch.ID, "ts": m.TS, "text": m.Text})
}

func (s *Server) chatPostEphemeral(req apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	ch, code := s.writable(req.form.Get("channel"))
	if code != "" {
		return fail(code)
	}
	user := req.form.Get("user")
	if s.users[user] == nil {
		return fail("user_not_found")
	}
	if !slices.Contains(ch.Members, user) {
		return fail("user_not_in_channel")
	}
	blocks, code := checkMessage(req)
	if code != "" {
		return fail(code)
	}
	s.ephemerals = append(s.ephemerals, Ephemeral{Channel: ch.ID, User: user, Text: req.form.Get("text"), Blocks: blocks})
	return ok(map[string]any{"message_ts": s.nextTS()})
}

// chatGetPermalink answers as Slack does
// (https://api.slack.com/methods/chat.getPermalink): the workspace's
// address, /archives/<channel>/p<ts without the dot>, and for a reply
// ?thread_ts=<parent>&cid=<channel>.
func (s *Server) chatGetPermalink(req apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	ch := s.channel(req.form.Get("channel"))
	if !s.visible(ch) {
		return fail("channel_not_found")
	}
	m := s.message(ch.ID, req.form.Get("message_ts"))
	if m == nil {
		return fail("message_not_found")
	}
	link := fmt.Sprintf("https://%s.slack.com/archives/%s/p%s", s.domain(), ch.ID, strings.Replace(m.TS, ".", "", 1))
	if m.ThreadTS != "" && m.ThreadTS != m.TS {
		link += fmt.Sprintf("?thread_ts=%s&cid=%s", m.ThreadTS, ch.ID)
	}
	return ok(map[string]any{"channel": ch.ID, "permalink": link})
}

func (s *Server) viewsOpen(req apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	trigger := req.form.Get("trigger_id")
	used, known := s.triggers[trigger]
	switch {
	case trigger == "":
		return fail("invalid_arguments")
	case !known:
		return fail("invalid_trigger_id")
	case used:
		return fail("exchanged_trigger_id")
	}
	var view struct {
		Type   string                `json:"type"`
		Title  struct{ Text string } `json:"title"`
		Blocks []json.RawMessage     `json:"blocks"`
	}
	raw := req.form.Get("view")
	if err := json.Unmarshal([]byte(raw), &view); err != nil || view.Type != "modal" {
		return fail("invalid_arguments")
	}
	if view.Title.Text == "" || utf8.RuneCountInString(view.Title.Text) > 24 || len(view.Blocks) == 0 || len(view.Blocks) > 100 {
		return fail("invalid_arguments")
	}
	s.triggers[trigger] = true
	s.seq++
	id := fmt.Sprintf("V%07d", s.seq)
	s.views = append(s.views, View{ID: id, TriggerID: trigger, JSON: json.RawMessage(raw)})
	var obj map[string]any
	_ = json.Unmarshal([]byte(raw), &obj)
	obj["id"] = id
	obj["team_id"] = s.cfg.TeamID
	return ok(map[string]any{"view": obj})
}

func (s *Server) usersLookupByEmail(req apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	email := strings.ToLower(req.form.Get("email"))
	for _, u := range s.users {
		if u.Email != "" && strings.ToLower(u.Email) == email {
			return ok(map[string]any{"user": map[string]any{"id": u.ID, "name": u.Name, "team_id": s.cfg.TeamID, "is_bot": u.IsBot,
				"profile": map[string]any{"email": u.Email}}})
		}
	}
	return fail("users_not_found")
}

// usersInfo answers users.info like Slack: the user with a profile whose
// display_name is the user's RealName (empty when not set).
func (s *Server) usersInfo(req apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	id := req.form.Get("user")
	for _, u := range s.users {
		if u.ID == id {
			return ok(map[string]any{"user": map[string]any{"id": u.ID, "name": u.Name, "real_name": u.RealName, "team_id": s.cfg.TeamID, "is_bot": u.IsBot,
				"profile": map[string]any{"email": u.Email, "real_name": u.RealName, "display_name": u.RealName}}})
		}
	}
	return fail("user_not_found")
}

func (s *Server) usergroupsUsersList(req apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	members, found := s.groups[req.form.Get("usergroup")]
	if !found {
		return fail("no_such_subteam")
	}
	return ok(map[string]any{"users": append([]string{}, members...)})
}

func (s *Server) bookmarksAdd(req apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	ch, code := s.writable(req.form.Get("channel_id"))
	if code != "" {
		return fail(code)
	}
	title, typ, link := req.form.Get("title"), req.form.Get("type"), req.form.Get("link")
	switch {
	case title == "":
		return fail("invalid_arguments")
	case typ != "link":
		return fail("invalid_bookmark_type")
	case !strings.HasPrefix(link, "http://") && !strings.HasPrefix(link, "https://"):
		return fail("invalid_link")
	}
	s.seq++
	b := Bookmark{ID: fmt.Sprintf("Bk%07d", s.seq), Channel: ch.ID, Title: title, Link: link}
	s.bookmarks = append(s.bookmarks, b)
	return ok(map[string]any{"bookmark": map[string]any{"id": b.ID, "channel_id": b.Channel, "title": b.Title, "link": b.Link, "type": "link"}})
}

func (s *Server) filesGetUploadURLExternal(req apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	name := req.form.Get("filename")
	n, err := strconv.Atoi(req.form.Get("length"))
	if name == "" || err != nil || n <= 0 {
		return fail("invalid_arguments")
	}
	s.seq++
	id := fmt.Sprintf("F%07d", s.seq)
	s.files[id] = &File{ID: id, Name: name, Length: n}
	return ok(map[string]any{"upload_url": s.http.URL + "/upload/" + id, "file_id": id})
}

func (s *Server) filesCompleteUploadExternal(req apiRequest, _ time.Time) (int, map[string]any, http.Header) {
	var files []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(req.form.Get("files")), &files); err != nil || len(files) == 0 {
		return fail("invalid_arguments")
	}
	var ch *Channel
	if id := req.form.Get("channel_id"); id != "" {
		var code string
		if ch, code = s.writable(id); code != "" {
			return fail(code)
		}
	}
	var out []map[string]any
	for _, f := range files {
		file := s.files[f.ID]
		if file == nil {
			return fail("file_not_found")
		}
		if !file.Uploaded {
			return fail("file_upload_incomplete")
		}
	}
	for _, f := range files {
		file := s.files[f.ID]
		file.Title = f.Title
		if ch != nil {
			file.Channel, file.Comment, file.ThreadTS = ch.ID, req.form.Get("initial_comment"), req.form.Get("thread_ts")
		}
		out = append(out, map[string]any{"id": file.ID, "title": file.Title, "name": file.Name})
	}
	if ch != nil {
		ids := make([]string, len(files))
		for i, f := range files {
			ids[i] = f.ID
		}
		s.messages = append(s.messages, &Message{Channel: ch.ID, TS: s.nextTS(), ThreadTS: req.form.Get("thread_ts"),
			User: s.cfg.BotUserID, BotID: s.cfg.BotID, SubType: "file_share", Text: req.form.Get("initial_comment"), Files: ids})
	}
	return ok(map[string]any{"files": out})
}
