// Package slacktest is an in-repo fake of the Slack Web API for tests: an
// HTTP server that speaks the real wire format (form-encoded or JSON
// requests with the token in the form or an Authorization header, JSON
// answers with "ok"/"error", 429 with Retry-After), keeps state (users,
// user groups, channels, messages, threads, topics, bookmarks, files,
// opened views), records every call, and can be told to fail the next
// calls of a method. It also plays Slack's Socket Mode (apps.connections.open
// and a WebSocket that sends envelopes and collects acknowledgements) and
// the response_url endpoints, and it can enforce Slack's rate-limit tiers
// on a scaled clock.
//
// Typical use:
//
//	fake := slacktest.NewServer(slacktest.Config{})
//	defer fake.Close()
//	fake.AddUser(slacktest.User{ID: "U1", Name: "alice", Email: "alice@example.com"})
//	client, _ := slack.NewClient(slack.ClientConfig{Token: fake.BotToken(), APIURL: fake.APIURL()})
//	fake.FailNext("chat.postMessage", 2, slacktest.RateLimited(1))
package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/incidentbot/incident-bot/internal/slack"
)

// Config configures a Server. The zero value works.
type Config struct {
	BotToken  string // default "xoxb-test-token"
	AppToken  string // default "xapp-1-A0TEST-1-0123abcd"
	TeamID    string // default "T0TEST"
	TeamName  string // default "Test Workspace"
	BotUserID string // default "U0BOT"
	BotName   string // default "incident-bot"
	BotID     string // default "B0BOT"
	AppID     string // default "A0TEST"
	// Scopes are reported in X-OAuth-Scopes (default slack.RequiredScopes).
	Scopes []string
	// Now is the fake's clock: message timestamps and rate-limit windows
	// (default time.Now).
	Now func() time.Time
	// EnforceRateLimits answers 429 with Retry-After when a method's tier
	// (or chat.postMessage's one message a second per channel) is
	// exceeded. TimeScale speeds Slack's clock up: with 60, a Slack minute
	// lasts one second of Now.
	EnforceRateLimits bool
	TimeScale         float64
	// ChannelBurst is how many chat.postMessage calls in one channel may
	// go back to back before its one-a-second pace applies (default 4).
	ChannelBurst int
	// HomeTabDisabled answers views.publish of a home view with
	// not_enabled, as Slack does when the app's Home tab is off.
	HomeTabDisabled bool
}

// User is a workspace member.
type User struct {
	ID    string
	Name  string
	Email string
	IsBot bool
	// RealName is the profile's name (users.info shows it as the display
	// name too); "" when the user has not set one.
	RealName string
}

// Channel is a channel's state.
type Channel struct {
	ID       string
	Name     string
	Private  bool
	Archived bool
	Topic    string
	Members  []string
	Creator  string
	Created  time.Time
}

// Message is a message in a channel (top level or in a thread).
type Message struct {
	Channel  string
	TS       string
	ThreadTS string
	User     string
	BotID    string
	SubType  string
	Username string // an app's name on its message (AppPost)
	Text     string
	Blocks   json.RawMessage
	Files    []string
	// Metadata is the message metadata posted with it ({"event_type":…,
	// "event_payload":{…}}), or nil.
	Metadata json.RawMessage
	// Updates counts chat.update calls on it; Form is the last post or
	// update's form.
	Updates int
	Form    url.Values
}

// Ephemeral is a chat.postEphemeral message.
type Ephemeral struct {
	Channel, User, Text string
	Blocks              json.RawMessage
}

// View is a modal opened with views.open.
type View struct {
	ID        string
	TriggerID string
	JSON      json.RawMessage
}

// Bookmark is a bookmarks.add link.
type Bookmark struct {
	ID, Channel, Title, Link string
}

// File is an uploaded (and maybe shared) file.
type File struct {
	ID, Name, Title string
	Length          int
	Content         []byte
	Uploaded        bool
	Channel         string // where it was shared; "" until completed
	Comment         string
	ThreadTS        string
}

// Call is one recorded Web API call.
type Call struct {
	Method string
	Form   url.Values // form, query and top-level JSON fields (token removed)
	Header http.Header
	At     time.Time
	Status int    // HTTP status answered
	Error  string // Slack error code answered, "" when ok
	// Lost: the call was carried out (unless Error says why not) but its
	// answer was replaced by a 500 (Fault.AnswerLost).
	Lost bool
}

// ResponsePost is one POST to a response_url.
type ResponsePost struct {
	URL             string
	Text            string
	ResponseType    string
	ReplaceOriginal bool
	Body            json.RawMessage
}

// Fault is an injected failure; see FailNext.
type Fault struct {
	Status     int    // HTTP status (429, 500…); 0 means 200 with Error
	RetryAfter int    // seconds, sent as Retry-After with 429
	Error      string // Slack error code, for Status 0 (or 429's body)
	// AnswerLost makes the fake carry the call out and then answer 500, as
	// when the connection breaks (or the bot is killed) after Slack acted
	// and before the answer arrived: the caller cannot know it was done.
	AnswerLost bool
	// Delay holds the answer back this long (a slow Slack); with no other
	// field set the call then succeeds. The fake's lock is not held while
	// it waits.
	Delay time.Duration
}

// LostAnswer is a call that Slack carries out but whose answer is lost.
func LostAnswer() Fault { return Fault{AnswerLost: true} }

// Slow is a call answered (successfully) after d.
func Slow(d time.Duration) Fault { return Fault{Delay: d} }

// RateLimited is a 429 with Retry-After seconds.
func RateLimited(seconds int) Fault {
	return Fault{Status: http.StatusTooManyRequests, RetryAfter: seconds, Error: "ratelimited"}
}

// ServerError is a 500.
func ServerError() Fault { return Fault{Status: http.StatusInternalServerError} }

// SlackError is an ok:false answer with the given code.
func SlackError(code string) Fault { return Fault{Error: code} }

// Server is the fake Slack.
type Server struct {
	cfg  Config
	http *httptest.Server

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every change
	users      map[string]*User
	groups     map[string][]string
	channels   []*Channel
	messages   []*Message
	ephemerals []Ephemeral
	views      []View
	homes      []HomeView
	triggers   map[string]bool // issued trigger ids → used
	bookmarks  []Bookmark
	files      map[string]*File
	calls      []Call
	faults     map[string][]Fault
	responses  map[string][]ResponsePost
	seq        int
	lastTS     time.Time
	limits     *rateLimits

	socket *socketHub
}

// NewServer starts a fake Slack on a local port.
func NewServer(cfg Config) *Server {
	if cfg.BotToken == "" {
		cfg.BotToken = "xoxb-test-token"
	}
	if cfg.AppToken == "" {
		cfg.AppToken = "xapp-1-A0TEST-1-0123abcd"
	}
	if cfg.TeamID == "" {
		cfg.TeamID = "T0TEST"
	}
	if cfg.TeamName == "" {
		cfg.TeamName = "Test Workspace"
	}
	if cfg.BotUserID == "" {
		cfg.BotUserID = "U0BOT"
	}
	if cfg.BotName == "" {
		cfg.BotName = "incident-bot"
	}
	if cfg.BotID == "" {
		cfg.BotID = "B0BOT"
	}
	if cfg.AppID == "" {
		cfg.AppID = "A0TEST"
	}
	if cfg.Scopes == nil {
		cfg.Scopes = slack.RequiredScopes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TimeScale <= 0 {
		cfg.TimeScale = 1
	}
	s := &Server{
		cfg:       cfg,
		changed:   make(chan struct{}),
		users:     map[string]*User{},
		groups:    map[string][]string{},
		triggers:  map[string]bool{},
		files:     map[string]*File{},
		faults:    map[string][]Fault{},
		responses: map[string][]ResponsePost{},
		limits:    newRateLimits(cfg.TimeScale, cfg.ChannelBurst),
	}
	s.users[cfg.BotUserID] = &User{ID: cfg.BotUserID, Name: cfg.BotName, IsBot: true}
	s.socket = newSocketHub(s)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/{method}", s.serveAPI)
	mux.HandleFunc("GET /api/{method}", s.serveAPI)
	mux.HandleFunc("POST /upload/{id}", s.serveUpload)
	mux.HandleFunc("POST /response/{id}", s.serveResponse)
	mux.HandleFunc("GET /socket", s.socket.serve)
	s.http = httptest.NewServer(mux)
	return s
}

// Close stops the server and its Socket Mode connections.
func (s *Server) Close() {
	s.socket.close()
	s.http.Close()
}

// APIURL is the Web API base URL, ending in "/" (SLACK_API_URL).
func (s *Server) APIURL() string { return s.http.URL + "/api/" }

// BotToken is the bot token the fake accepts.
func (s *Server) BotToken() string { return s.cfg.BotToken }

// AppToken is the app-level token the fake accepts for Socket Mode.
func (s *Server) AppToken() string { return s.cfg.AppToken }

// TeamID is the workspace id.
func (s *Server) TeamID() string { return s.cfg.TeamID }

// BotUserID is the bot's user id.
func (s *Server) BotUserID() string { return s.cfg.BotUserID }

// change wakes Wait; callers hold s.mu.
func (s *Server) change() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Wait blocks until cond holds or timeout passes, re-checking cond after
// every change to the fake's state (no polling); it reports whether cond
// held. cond may call the Server's methods.
func (s *Server) Wait(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ch := s.changed
		s.mu.Unlock()
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-deadline.C:
			return cond()
		}
	}
}

// AddUser adds a workspace member.
func (s *Server) AddUser(u User) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cp := u
	s.users[u.ID] = &cp
	s.change()
}

// AddUserGroup defines a user group and its members.
func (s *Server) AddUserGroup(id string, members ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups[id] = append([]string(nil), members...)
	s.change()
}

// AddChannel creates a channel outside the API (an existing #incidents,
// say) with these members, the first of them its creator, and returns its
// id.
func (s *Server) AddChannel(name string, private bool, members ...string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	creator := ""
	if len(members) > 0 {
		creator = members[0]
	}
	ch := s.newChannel(name, private, creator)
	for _, m := range members {
		if !slices.Contains(ch.Members, m) {
			ch.Members = append(ch.Members, m)
		}
	}
	s.change()
	return ch.ID
}

// ArchiveChannel archives a channel.
func (s *Server) ArchiveChannel(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.channel(id); ch != nil {
		ch.Archived = true
		s.change()
	}
}

// JoinChannel adds a user to a channel.
func (s *Server) JoinChannel(channelID, user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.channel(channelID); ch != nil && !slices.Contains(ch.Members, user) {
		ch.Members = append(ch.Members, user)
		s.change()
	}
}

// UserPost posts a message as a user (not through the API) and returns its ts.
func (s *Server) UserPost(channelID, user, text string) string {
	return s.UserReply(channelID, "", user, text)
}

// UserReply posts a reply in a thread as a user and returns its ts.
func (s *Server) UserReply(channelID, threadTS, user, text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := &Message{Channel: channelID, TS: s.nextTS(), ThreadTS: threadTS, User: user, Text: text}
	s.messages = append(s.messages, m)
	s.change()
	return m.TS
}

// Channels returns every channel, in creation order.
func (s *Server) Channels() []Channel {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Channel, len(s.channels))
	for i, ch := range s.channels {
		out[i] = *ch
		out[i].Members = slices.Clone(ch.Members)
	}
	return out
}

// ChannelByName returns the channel with this name.
func (s *Server) ChannelByName(name string) (Channel, bool) {
	for _, ch := range s.Channels() {
		if ch.Name == name {
			return ch, true
		}
	}
	return Channel{}, false
}

// Messages returns the messages in a channel (thread replies included),
// in posting order.
func (s *Server) Messages(channelID string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.Channel == channelID {
			out = append(out, copyMessage(m))
		}
	}
	return out
}

// Message returns one message.
func (s *Server) Message(channelID, ts string) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m := s.message(channelID, ts); m != nil {
		return copyMessage(m), true
	}
	return Message{}, false
}

func copyMessage(m *Message) Message {
	cp := *m
	cp.Files = slices.Clone(m.Files)
	cp.Form = cloneValues(m.Form)
	return cp
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = slices.Clone(vs)
	}
	return out
}

// Ephemerals returns the chat.postEphemeral messages.
func (s *Server) Ephemerals() []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.ephemerals)
}

// Views returns the modals opened.
func (s *Server) Views() []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.views)
}

// Bookmarks returns the bookmarks of a channel.
func (s *Server) Bookmarks(channelID string) []Bookmark {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Bookmark
	for _, b := range s.bookmarks {
		if b.Channel == channelID {
			out = append(out, b)
		}
	}
	return out
}

// Files returns the files, uploaded or shared, by id order.
func (s *Server) Files() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []File
	for _, f := range s.files {
		cp := *f
		cp.Content = slices.Clone(f.Content)
		out = append(out, cp)
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Calls returns the recorded calls of a method ("" for all), in order.
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Call
	for _, c := range s.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// FailNext makes the next n calls of method fail with f.
func (s *Server) FailNext(method string, n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults[method] = append(s.faults[method], f)
	}
}

// FailNextIn makes the next n calls of method naming channel (its
// "channel" or "channel_id" argument) fail with f. They are used before
// the faults FailNext set for the method as a whole.
func (s *Server) FailNextIn(method, channel string, n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := faultKey(method, channel)
	for range n {
		s.faults[k] = append(s.faults[k], f)
	}
}

func faultKey(method, channel string) string { return method + " " + channel }

// takeFault removes and returns the next fault for a call; callers hold s.mu.
func (s *Server) takeFault(req apiRequest) (Fault, bool) {
	ch := req.form.Get("channel")
	if ch == "" {
		ch = req.form.Get("channel_id")
	}
	for _, k := range []string{faultKey(req.method, ch), req.method} {
		if q := s.faults[k]; len(q) > 0 && (k == req.method || ch != "") {
			s.faults[k] = q[1:]
			return q[0], true
		}
	}
	return Fault{}, false
}

// ClearFaults drops the failures not yet used.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = map[string][]Fault{}
}

// NewTriggerID issues a trigger id that views.open accepts once.
func (s *Server) NewTriggerID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := fmt.Sprintf("%d.%d.%x", 100000+s.seq, 4700000+s.seq, 0xabc000+s.seq)
	s.triggers[id] = false
	return id
}

// NewResponseURL issues a response_url served by the fake.
func (s *Server) NewResponseURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	return fmt.Sprintf("%s/response/R%06d", s.http.URL, s.seq)
}

// Responses returns the posts made to a response_url.
func (s *Server) Responses(responseURL string) []ResponsePost {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.responses[responseURL])
}

// --- HTTP ---

// apiRequest is a parsed Web API call.
type apiRequest struct {
	method string
	form   url.Values
	token  string
	raw    []byte
}

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	req, err := parseAPIRequest(r)
	if err != nil {
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "error": "invalid_form_data"}, nil)
		return
	}
	s.mu.Lock()
	f, faulty := s.takeFault(req)
	if faulty && f.Delay > 0 {
		s.mu.Unlock()
		select {
		case <-time.After(f.Delay):
		case <-r.Context().Done():
		}
		s.mu.Lock()
		faulty = f.Status != 0 || f.Error != "" || f.AnswerLost
	}
	defer s.mu.Unlock()
	now := s.cfg.Now()
	call := Call{Method: req.method, Form: req.form, Header: r.Header.Clone(), At: now}
	var (
		status int
		body   map[string]any
		hdr    http.Header
	)
	switch {
	case faulty && f.AnswerLost:
		status, body, hdr = s.dispatch(req, now)
		call.Lost = true
		if ok, _ := body["ok"].(bool); !ok {
			call.Error, _ = body["error"].(string)
		}
		status, body = http.StatusInternalServerError, map[string]any{"ok": false, "error": "answer_lost"}
	case faulty:
		status, body, hdr = faultAnswer(f)
	default:
		status, body, hdr = s.dispatch(req, now)
	}
	call.Status = status
	if ok, _ := body["ok"].(bool); !ok && call.Error == "" && !call.Lost {
		call.Error, _ = body["error"].(string)
	}
	s.calls = append(s.calls, call)
	s.change()
	if hdr == nil {
		hdr = http.Header{}
	}
	hdr.Set("X-OAuth-Scopes", strings.Join(s.cfg.Scopes, ","))
	if status == http.StatusInternalServerError {
		for k, v := range hdr {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "<html><body>Internal Server Error</body></html>")
		return
	}
	writeJSON(w, status, body, hdr)
}

func parseAPIRequest(r *http.Request) (apiRequest, error) {
	req := apiRequest{method: r.PathValue("method"), form: url.Values{}}
	raw, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return req, err
	}
	req.raw = raw
	for k, vs := range r.URL.Query() {
		req.form[k] = vs
	}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		if len(raw) > 0 {
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(raw, &obj); err != nil {
				return req, err
			}
			for k, v := range obj {
				var str string
				if json.Unmarshal(v, &str) == nil {
					req.form.Set(k, str)
				} else {
					req.form.Set(k, string(v))
				}
			}
		}
	default:
		vals, err := url.ParseQuery(string(raw))
		if err != nil {
			return req, err
		}
		for k, vs := range vals {
			req.form[k] = vs
		}
	}
	req.token = req.form.Get("token")
	req.form.Del("token")
	if auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && req.token == "" {
		req.token = auth
	}
	return req, nil
}

func writeJSON(w http.ResponseWriter, status int, body map[string]any, hdr http.Header) {
	for k, v := range hdr {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

func fail(code string) (int, map[string]any, http.Header) {
	return http.StatusOK, map[string]any{"ok": false, "error": code}, nil
}

func ok(fields map[string]any) (int, map[string]any, http.Header) {
	if fields == nil {
		fields = map[string]any{}
	}
	fields["ok"] = true
	return http.StatusOK, fields, nil
}

// dispatch answers one call; callers hold s.mu.
func (s *Server) dispatch(req apiRequest, now time.Time) (int, map[string]any, http.Header) {
	if req.method == "apps.connections.open" {
		if req.token != s.cfg.AppToken {
			return fail("invalid_auth")
		}
		return ok(map[string]any{"url": s.socket.url()})
	}
	if req.token != s.cfg.BotToken {
		if req.token == "" {
			return fail("not_authed")
		}
		return fail("invalid_auth")
	}
	if s.cfg.EnforceRateLimits {
		if wait, limited := s.limits.take(req.method, req.form.Get("channel"), now); limited {
			return faultAnswer(Fault{Status: http.StatusTooManyRequests, RetryAfter: wait, Error: "ratelimited"})
		}
	}
	h, found := handlers[req.method]
	if !found {
		return http.StatusNotFound, map[string]any{"ok": false, "error": "unknown_method"}, nil
	}
	return h(s, req, now)
}

func faultAnswer(f Fault) (int, map[string]any, http.Header) {
	if f.Status == 0 {
		return fail(f.Error)
	}
	hdr := http.Header{}
	if f.Status == http.StatusTooManyRequests && f.RetryAfter > 0 {
		hdr.Set("Retry-After", strconv.Itoa(f.RetryAfter))
	}
	code := f.Error
	if code == "" {
		code = http.StatusText(f.Status)
	}
	return f.Status, map[string]any{"ok": false, "error": code}, hdr
}

func (s *Server) serveResponse(w http.ResponseWriter, r *http.Request) {
	raw, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var body struct {
		Text            string `json:"text"`
		ResponseType    string `json:"response_type"`
		ReplaceOriginal bool   `json:"replace_original"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
		return
	}
	u := s.http.URL + r.URL.Path
	s.mu.Lock()
	s.responses[u] = append(s.responses[u], ResponsePost{URL: u, Text: body.Text, ResponseType: body.ResponseType, ReplaceOriginal: body.ReplaceOriginal, Body: raw})
	s.change()
	s.mu.Unlock()
	_, _ = io.WriteString(w, "ok")
}

func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	file, _, err := r.FormFile("file")
	if err != nil {
		http.Error(w, "no file", http.StatusBadRequest)
		return
	}
	content, _ := io.ReadAll(file)
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.files[id]
	if f == nil {
		http.Error(w, "unknown upload", http.StatusNotFound)
		return
	}
	f.Content, f.Uploaded = content, true
	s.calls = append(s.calls, Call{Method: "upload", Form: url.Values{"file_id": {id}}, Header: r.Header.Clone(), At: s.cfg.Now(), Status: http.StatusOK})
	s.change()
	_, _ = fmt.Fprintf(w, "OK - %d", len(content))
}

// --- state helpers; callers hold s.mu ---

func (s *Server) nextTS() string {
	now := s.cfg.Now().Truncate(time.Microsecond)
	if !now.After(s.lastTS) {
		now = s.lastTS.Add(time.Microsecond)
	}
	s.lastTS = now
	return fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000)
}

func (s *Server) newChannel(name string, private bool, creator string) *Channel {
	s.seq++
	prefix := "C"
	if private {
		prefix = "G"
	}
	ch := &Channel{ID: fmt.Sprintf("%s%07d", prefix, s.seq), Name: name, Private: private, Creator: creator, Created: s.cfg.Now()}
	if creator != "" {
		ch.Members = []string{creator}
	}
	s.channels = append(s.channels, ch)
	return ch
}

func (s *Server) channel(id string) *Channel {
	for _, ch := range s.channels {
		if ch.ID == id {
			return ch
		}
	}
	return nil
}

func (s *Server) message(channelID, ts string) *Message {
	for _, m := range s.messages {
		if m.Channel == channelID && m.TS == ts {
			return m
		}
	}
	return nil
}

// visible reports whether the bot can see a channel.
func (s *Server) visible(ch *Channel) bool {
	return ch != nil && (!ch.Private || slices.Contains(ch.Members, s.cfg.BotUserID))
}

func (s *Server) isMember(ch *Channel) bool { return slices.Contains(ch.Members, s.cfg.BotUserID) }

func (s *Server) channelJSON(ch *Channel) map[string]any {
	return map[string]any{
		"id": ch.ID, "name": ch.Name, "is_channel": !ch.Private, "is_group": false, "is_private": ch.Private,
		"is_archived": ch.Archived, "is_member": s.isMember(ch), "created": ch.Created.Unix(), "creator": ch.Creator,
		"topic": map[string]any{"value": ch.Topic}, "num_members": len(ch.Members),
	}
}

// messageJSON renders a message as conversations.history and .replies
// return it. Metadata is included only when the caller asked for it
// (include_all_metadata), as Slack does.
func (s *Server) messageJSON(m *Message, withMetadata bool) map[string]any {
	out := map[string]any{"type": "message", "ts": m.TS, "text": m.Text}
	if withMetadata && len(m.Metadata) > 0 {
		out["metadata"] = m.Metadata
	}
	if len(m.Files) > 0 {
		files := make([]map[string]any, 0, len(m.Files))
		for _, id := range m.Files {
			if f := s.files[id]; f != nil {
				files = append(files, map[string]any{"id": f.ID, "name": f.Name, "title": f.Title})
			}
		}
		out["files"] = files
	}
	if m.User != "" {
		out["user"] = m.User
	}
	if m.BotID != "" {
		out["bot_id"] = m.BotID
	}
	if m.SubType != "" {
		out["subtype"] = m.SubType
	}
	if m.Username != "" {
		out["username"] = m.Username
	}
	if m.ThreadTS != "" {
		out["thread_ts"] = m.ThreadTS
	}
	if len(m.Blocks) > 0 {
		out["blocks"] = m.Blocks
	}
	return out
}
