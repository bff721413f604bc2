// Package pdtest is an in-repo fake PagerDuty for tests: a REST API v2 and
// Events API v2 server speaking the real wire format (JSON bodies, the
// Authorization, From and Content-Type rules, the documented answers and
// error objects), with recorded calls and injectable failures; and helpers
// that build and sign V3 webhook deliveries from the documented payload
// samples.
//
// The server keeps state like PagerDuty: incidents with numbers, statuses,
// incident keys (a second open incident with the same key on a service is
// refused with 400), escalation levels and assignees from escalation
// policies, notes. Each change it makes is also queued as the V3 webhook
// event PagerDuty would send (TakeEvents), so a test can deliver the echo of
// the bot's own changes.
package pdtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// User is a PagerDuty user.
type User struct {
	ID, Name, Email string
}

// Service is a PagerDuty service; incidents opened on it follow its
// escalation policy.
type Service struct {
	ID, Name           string
	EscalationPolicyID string
}

// Policy is an escalation policy: Levels[i] are the targets paged at level
// i+1, user ids or schedule ids (a schedule pages whoever it has on call).
type Policy struct {
	ID, Name string
	Levels   [][]string
}

// Config configures a Server.
type Config struct {
	// Token is the REST API token callers must send ("Token token=...").
	Token    string
	Users    []User
	Services []Service
	Policies []Policy
	// Schedules are on call through the policy levels that name them.
	Schedules []Schedule
	// RoutingKeys maps Events API integration keys to service ids.
	RoutingKeys map[string]string
	// Now stamps incidents and events (default time.Now).
	Now func() time.Time
}

// Incident is the server's state of one incident.
type Incident struct {
	ID          string
	Number      int
	Title       string
	Details     string
	Status      string // triggered, acknowledged, resolved
	Key         string // incident_key (or the Events API dedup key)
	ServiceID   string
	PolicyID    string
	Level       int
	Urgency     string
	Assignees   []string // user ids
	Notes       []string
	CreatedAt   time.Time
	CreatedFrom string // "rest", "events" or "monitor"
}

// Call is one request the server received.
type Call struct {
	Method string
	Path   string
	Query  url.Values
	Header http.Header
	Body   []byte
	Status int // the answer's status
}

// Route is the call's route with ids replaced: "POST /incidents/{id}/notes".
func (c Call) Route() string { return c.Method + " " + route(c.Path) }

// JSON decodes the call's body into v.
func (c Call) JSON(v any) error { return json.Unmarshal(c.Body, v) }

// Fault makes the server fail calls.
type Fault struct {
	// Route is matched against Call.Route ("POST /incidents",
	// "PUT /incidents/{id}"); empty matches every call.
	Route string
	// Times is how many calls fail (at least 1).
	Times int
	// Status is the answer's status; 429 answers carry PagerDuty's
	// rate-limit headers and body.
	Status int
	// Reset is the ratelimit-reset header in seconds (429 only; 0: none).
	Reset int
	// Code and Message fill the error object (defaults by status).
	Code    int
	Message string
}

type fault struct {
	Fault
	left int
}

// Server is the fake PagerDuty.
type Server struct {
	// URL is the base of both APIs: REST paths and /v2/enqueue.
	URL string

	cfg       Config
	srv       *httptest.Server
	mu        sync.Mutex
	incidents []*Incident
	calls     []Call
	faults    []*fault
	outbox    []Event
	seq       int
}

// New starts a server; it is closed when the test ends.
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	s := NewServer(cfg)
	t.Cleanup(s.Close)
	return s
}

// NewServer starts a server; Close it when done.
func NewServer(cfg Config) *Server {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Schedules = slices.Clone(cfg.Schedules) // SetShifts changes them
	s := &Server{cfg: cfg}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL
	return s
}

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Calls returns every call so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallsTo returns the calls of one route ("POST /incidents").
func (s *Server) CallsTo(r string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Route() == r {
			out = append(out, c)
		}
	}
	return out
}

// Incidents returns copies of all incidents, oldest first.
func (s *Server) Incidents() []Incident {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Incident, len(s.incidents))
	for i, inc := range s.incidents {
		out[i] = *inc
		out[i].Assignees = slices.Clone(inc.Assignees)
		out[i].Notes = slices.Clone(inc.Notes)
	}
	return out
}

// Incident returns a copy of one incident.
func (s *Server) Incident(id string) (Incident, bool) {
	for _, inc := range s.Incidents() {
		if inc.ID == id {
			return inc, true
		}
	}
	return Incident{}, false
}

// Fail injects a fault.
func (s *Server) Fail(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = append(s.faults, &fault{Fault: f, left: max(f.Times, 1)})
}

// RateLimit makes the next n calls of route answer 429 with
// ratelimit-reset: reset.
func (s *Server) RateLimit(route string, n, reset int) {
	s.Fail(Fault{Route: route, Times: n, Status: http.StatusTooManyRequests, Reset: reset})
}

// ServerError makes the next n calls of route answer 500.
func (s *Server) ServerError(route string, n int) {
	s.Fail(Fault{Route: route, Times: n, Status: http.StatusInternalServerError})
}

// TakeEvents returns the webhook events the server's changes generated
// since the last call, in order, and forgets them.
func (s *Server) TakeEvents() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.outbox
	s.outbox = nil
	return out
}

// Trigger opens an incident as a monitoring integration would (not through
// the API) and queues its incident.triggered event.
func (s *Server) Trigger(serviceID, title string) Incident {
	s.mu.Lock()
	defer s.mu.Unlock()
	inc := s.open(title, serviceID, "", "", "high", "monitor")
	s.emit("incident.triggered", inc, nil)
	return *inc
}

// Acknowledge acknowledges an incident as user would in PagerDuty's app and
// queues its incident.acknowledged event.
func (s *Server) Acknowledge(id, userID string) {
	s.setStatus(id, "acknowledged", userID)
}

// Resolve resolves an incident as user would in PagerDuty's app.
func (s *Server) Resolve(id, userID string) {
	s.setStatus(id, "resolved", userID)
}

func (s *Server) setStatus(id, status, userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	inc := s.find(id)
	if inc == nil {
		return
	}
	inc.Status = status
	s.emit("incident."+status, inc, s.user(userID))
}

var idSegment = regexp.MustCompile(`^[A-Za-z0-9]+$`)

func route(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) > 0 && segs[0] == "v2" {
		return "/" + strings.Join(segs, "/")
	}
	for i := 1; i < len(segs); i += 2 {
		if idSegment.MatchString(segs[i]) {
			segs[i] = "{id}"
		}
	}
	return "/" + strings.Join(segs, "/")
}

// rec is a response being written and recorded.
type rec struct {
	w    http.ResponseWriter
	call *Call
}

func (r rec) json(status int, v any) {
	r.call.Status = status
	r.w.Header().Set("Content-Type", "application/json")
	r.w.WriteHeader(status)
	_ = json.NewEncoder(r.w).Encode(v)
}

func (r rec) error(status, code int, message string, errs ...string) {
	e := map[string]any{"message": message, "code": code}
	if len(errs) > 0 {
		e["errors"] = errs
	}
	r.json(status, map[string]any{"error": e})
}

func (s *Server) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 4<<20))
	call := Call{Method: req.Method, Path: req.URL.Path, Query: req.URL.Query(), Header: req.Header.Clone(), Body: body}
	r := rec{w: w, call: &call}
	s.mu.Lock()
	defer func() {
		s.calls = append(s.calls, call)
		s.mu.Unlock()
	}()
	if f := s.takeFault(call.Route()); f != nil {
		s.injected(r, f)
		return
	}
	if call.Route() == "POST /v2/enqueue" {
		s.enqueue(r, body)
		return
	}
	if req.Header.Get("Authorization") != "Token token="+s.cfg.Token {
		r.error(http.StatusUnauthorized, 2006, "Authentication failed")
		return
	}
	if (req.Method == http.MethodPost || req.Method == http.MethodPut) && !strings.HasPrefix(req.Header.Get("Content-Type"), "application/json") {
		r.error(http.StatusBadRequest, 2001, "Invalid Input Provided", "Content-Type must be application/json")
		return
	}
	switch call.Route() {
	case "POST /incidents", "PUT /incidents", "PUT /incidents/{id}", "POST /incidents/{id}/notes":
		from := req.Header.Get("From")
		if from == "" {
			r.error(http.StatusBadRequest, 2001, "Invalid Input Provided", "A valid From header is required")
			return
		}
		if s.userByEmail(from) == nil {
			r.error(http.StatusBadRequest, 1008, "Requester User Not Found")
			return
		}
	}
	id := pathID(req.URL.Path)
	switch call.Route() {
	case "POST /incidents":
		s.createIncident(r, req, body)
	case "GET /incidents":
		s.listIncidents(r, req)
	case "GET /incidents/{id}":
		inc := s.find(id)
		if inc == nil {
			r.error(http.StatusNotFound, 2100, "Not Found")
			return
		}
		r.json(http.StatusOK, map[string]any{"incident": s.incidentJSON(inc)})
	case "PUT /incidents":
		s.updateIncidents(r, req, body)
	case "PUT /incidents/{id}":
		s.updateIncident(r, req, id, body)
	case "POST /incidents/{id}/notes":
		s.addNote(r, req, id, body)
	case "GET /users/{id}":
		u := s.user(id)
		if u == nil {
			r.error(http.StatusNotFound, 2100, "Not Found")
			return
		}
		r.json(http.StatusOK, map[string]any{"user": map[string]any{"id": u.ID, "type": "user", "name": u.Name, "summary": u.Name, "email": u.Email, "html_url": "https://acme.pagerduty.com/users/" + u.ID}})
	case "GET /users":
		// query matches a user's name or email, in part, any letter case
		// (PagerDuty's List users: "searchable by name or email").
		var items []map[string]any
		for _, u := range s.cfg.Users {
			if q := req.URL.Query().Get("query"); matches(u.Name, q) || matches(u.Email, q) {
				items = append(items, map[string]any{"id": u.ID, "type": "user", "name": u.Name, "summary": u.Name, "email": u.Email})
			}
		}
		list(r, call.Query, "users", items)
	case "GET /services":
		var items []map[string]any
		for _, sv := range s.cfg.Services {
			if matches(sv.Name, req.URL.Query().Get("query")) {
				items = append(items, serviceJSON(sv))
			}
		}
		list(r, call.Query, "services", items)
	case "GET /services/{id}":
		for _, sv := range s.cfg.Services {
			if sv.ID == id {
				r.json(http.StatusOK, map[string]any{"service": serviceJSON(sv)})
				return
			}
		}
		r.error(http.StatusNotFound, 2100, "Not Found")
	case "GET /escalation_policies":
		var items []map[string]any
		for _, p := range s.cfg.Policies {
			if matches(p.Name, req.URL.Query().Get("query")) {
				items = append(items, s.policyJSON(p))
			}
		}
		list(r, call.Query, "escalation_policies", items)
	case "GET /escalation_policies/{id}":
		for _, p := range s.cfg.Policies {
			if p.ID == id {
				r.json(http.StatusOK, map[string]any{"escalation_policy": s.policyJSON(p)})
				return
			}
		}
		r.error(http.StatusNotFound, 2100, "Not Found")
	case "GET /schedules":
		s.listSchedules(r, call.Query)
	case "GET /schedules/{id}":
		s.getSchedule(r, id)
	case "GET /oncalls":
		s.listOnCalls(r, call.Query)
	default:
		r.error(http.StatusNotFound, 2100, "Not Found")
	}
}

func matches(name, query string) bool {
	return query == "" || strings.Contains(strings.ToLower(name), strings.ToLower(query))
}

func pathID(path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	if len(segs) >= 2 {
		return segs[1]
	}
	return ""
}

func (s *Server) takeFault(r string) *fault {
	for i, f := range s.faults {
		if f.Route == "" || f.Route == r {
			f.left--
			if f.left <= 0 {
				s.faults = slices.Delete(s.faults, i, i+1)
			}
			return f
		}
	}
	return nil
}

func (s *Server) injected(r rec, f *fault) {
	msg, code := f.Message, f.Code
	switch {
	case f.Status == http.StatusTooManyRequests:
		msg, code = or(msg, "Rate Limit Exceeded"), orInt(code, 2020)
		r.w.Header().Set("ratelimit-limit", "960")
		r.w.Header().Set("ratelimit-remaining", "0")
		if f.Reset > 0 {
			r.w.Header().Set("ratelimit-reset", strconv.Itoa(f.Reset))
		}
	case f.Status >= 500:
		msg = or(msg, "Internal Server Error")
	default:
		msg, code = or(msg, "Invalid Input Provided"), orInt(code, 2001)
	}
	r.error(f.Status, code, msg)
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func orInt(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

func (s *Server) user(id string) *User {
	for i := range s.cfg.Users {
		if s.cfg.Users[i].ID == id {
			return &s.cfg.Users[i]
		}
	}
	return nil
}

func (s *Server) userByEmail(email string) *User {
	for i := range s.cfg.Users {
		if strings.EqualFold(s.cfg.Users[i].Email, email) {
			return &s.cfg.Users[i]
		}
	}
	return nil
}

func (s *Server) service(id string) *Service {
	for i := range s.cfg.Services {
		if s.cfg.Services[i].ID == id {
			return &s.cfg.Services[i]
		}
	}
	return nil
}

func (s *Server) policy(id string) *Policy {
	for i := range s.cfg.Policies {
		if s.cfg.Policies[i].ID == id {
			return &s.cfg.Policies[i]
		}
	}
	return nil
}

func (s *Server) find(id string) *Incident {
	for _, inc := range s.incidents {
		if inc.ID == id {
			return inc
		}
	}
	return nil
}

func (s *Server) nextID(prefix string) string {
	s.seq++
	return fmt.Sprintf("%s%05d", prefix, s.seq)
}

// open creates an incident; the caller holds s.mu.
func (s *Server) open(title, serviceID, policyID, key, urgency, from string) *Incident {
	if policyID == "" {
		if sv := s.service(serviceID); sv != nil {
			policyID = sv.EscalationPolicyID
		}
	}
	inc := &Incident{
		ID: s.nextID("PI"), Number: len(s.incidents) + 1, Title: title, Status: "triggered", Key: key,
		ServiceID: serviceID, PolicyID: policyID, Level: 1, Urgency: urgency, CreatedAt: s.cfg.Now().UTC(), CreatedFrom: from,
	}
	inc.Assignees = s.levelUsers(policyID, 1)
	s.incidents = append(s.incidents, inc)
	return inc
}

func (s *Server) levelUsers(policyID string, level int) []string {
	p := s.policy(policyID)
	if p == nil || level < 1 || level > len(p.Levels) {
		return nil
	}
	var users []string
	for _, id := range p.Levels[level-1] {
		if sc := s.schedule(id); sc != nil {
			users = append(users, sc.onCallAt(s.cfg.Now())...)
		} else {
			users = append(users, id)
		}
	}
	return users
}

func (s *Server) createIncident(r rec, req *http.Request, body []byte) {
	var in struct {
		Incident *struct {
			Type             string `json:"type"`
			Title            string `json:"title"`
			Service          *ref   `json:"service"`
			Urgency          string `json:"urgency"`
			IncidentKey      string `json:"incident_key"`
			EscalationPolicy *ref   `json:"escalation_policy"`
			Body             *struct {
				Details string `json:"details"`
			} `json:"body"`
		} `json:"incident"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Incident == nil {
		r.error(http.StatusBadRequest, 2001, "Invalid Input Provided", "incident is required")
		return
	}
	i := in.Incident
	switch {
	case i.Type != "incident":
		r.error(http.StatusBadRequest, 2001, "Invalid Input Provided", "incident type must be incident")
		return
	case strings.TrimSpace(i.Title) == "":
		r.error(http.StatusBadRequest, 2001, "Invalid Input Provided", "Title cannot be empty")
		return
	case i.Service == nil || s.service(i.Service.ID) == nil:
		r.error(http.StatusBadRequest, 2001, "Invalid Input Provided", "Service not found")
		return
	case i.EscalationPolicy != nil && s.policy(i.EscalationPolicy.ID) == nil:
		r.error(http.StatusBadRequest, 1014, "Escalation Policy Not Found")
		return
	}
	if i.IncidentKey != "" {
		for _, inc := range s.incidents {
			if inc.Key == i.IncidentKey && inc.ServiceID == i.Service.ID && inc.Status != "resolved" {
				r.error(http.StatusBadRequest, 2001, "Invalid Input Provided", "Open incident with matching dedup key already exists on this service")
				return
			}
		}
	}
	policyID := ""
	if i.EscalationPolicy != nil {
		policyID = i.EscalationPolicy.ID
	}
	inc := s.open(i.Title, i.Service.ID, policyID, i.IncidentKey, or(i.Urgency, "high"), "rest")
	if i.Body != nil {
		inc.Details = i.Body.Details
	}
	s.emit("incident.triggered", inc, s.userByEmail(req.Header.Get("From")))
	r.json(http.StatusCreated, map[string]any{"incident": s.incidentJSON(inc)})
}

type ref struct {
	ID   string `json:"id"`
	Type string `json:"type"`
}

func (s *Server) listIncidents(r rec, req *http.Request) {
	key := req.URL.Query().Get("incident_key")
	list := []map[string]any{}
	for _, inc := range s.incidents {
		if key == "" || inc.Key == key {
			list = append(list, s.incidentJSON(inc))
		}
	}
	r.json(http.StatusOK, map[string]any{"incidents": list, "limit": 25, "offset": 0, "more": false})
}

type update struct {
	ID              string `json:"id"`
	Type            string `json:"type"`
	Status          string `json:"status"`
	EscalationLevel int    `json:"escalation_level"`
}

func (s *Server) updateIncidents(r rec, req *http.Request, body []byte) {
	var in struct {
		Incidents []update `json:"incidents"`
	}
	if err := json.Unmarshal(body, &in); err != nil || len(in.Incidents) == 0 {
		r.error(http.StatusBadRequest, 2001, "Invalid Input Provided", "incidents is required")
		return
	}
	if len(in.Incidents) > 250 {
		r.error(http.StatusRequestEntityTooLarge, 2001, "Too many incidents")
		return
	}
	var out []map[string]any
	for _, u := range in.Incidents {
		inc, status, code, msg := s.apply(req, u)
		if status != 0 {
			r.error(status, code, msg)
			return
		}
		out = append(out, s.incidentJSON(inc))
	}
	r.json(http.StatusOK, map[string]any{"incidents": out})
}

func (s *Server) updateIncident(r rec, req *http.Request, id string, body []byte) {
	var in struct {
		Incident *update `json:"incident"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Incident == nil {
		r.error(http.StatusBadRequest, 2001, "Invalid Input Provided", "incident is required")
		return
	}
	in.Incident.ID = id
	inc, status, code, msg := s.apply(req, *in.Incident)
	if status != 0 {
		r.error(status, code, msg)
		return
	}
	r.json(http.StatusOK, map[string]any{"incident": s.incidentJSON(inc)})
}

// apply changes one incident; a non-zero status is the error answer.
func (s *Server) apply(req *http.Request, u update) (*Incident, int, int, string) {
	if u.Type != "incident" && u.Type != "incident_reference" {
		return nil, http.StatusBadRequest, 2001, "Invalid Input Provided"
	}
	inc := s.find(u.ID)
	if inc == nil {
		return nil, http.StatusNotFound, 5001, "Incident Not Found"
	}
	agent := s.userByEmail(req.Header.Get("From"))
	if u.EscalationLevel != 0 {
		levels := 0
		if p := s.policy(inc.PolicyID); p != nil {
			levels = len(p.Levels)
		}
		if inc.Status == "resolved" || u.EscalationLevel < 1 || u.EscalationLevel > levels {
			return nil, http.StatusBadRequest, 1006, "Cannot Escalate"
		}
		inc.Level = u.EscalationLevel
		inc.Assignees = s.levelUsers(inc.PolicyID, inc.Level)
		if inc.Status == "acknowledged" {
			inc.Status = "triggered"
		}
		s.emit("incident.escalated", inc, agent)
	}
	switch u.Status {
	case "":
	case "acknowledged", "resolved":
		switch {
		case inc.Status == "resolved":
			return nil, http.StatusBadRequest, 1001, "Incident Already Resolved"
		case inc.Status == u.Status:
			return nil, http.StatusBadRequest, 1002, "Already Acknowledged"
		}
		inc.Status = u.Status
		s.emit("incident."+u.Status, inc, agent)
	default:
		return nil, http.StatusBadRequest, 2001, "Invalid Input Provided"
	}
	return inc, 0, 0, ""
}

func (s *Server) addNote(r rec, req *http.Request, id string, body []byte) {
	var in struct {
		Note *struct {
			Content string `json:"content"`
		} `json:"note"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Note == nil || strings.TrimSpace(in.Note.Content) == "" {
		r.error(http.StatusBadRequest, 2001, "Invalid Input Provided", "note content is required")
		return
	}
	inc := s.find(id)
	if inc == nil {
		r.error(http.StatusNotFound, 5001, "Incident Not Found")
		return
	}
	inc.Notes = append(inc.Notes, in.Note.Content)
	agent := s.userByEmail(req.Header.Get("From"))
	noteID := s.nextID("PN")
	s.emitData("incident.annotated", map[string]any{
		"incident": s.incidentRef(inc), "id": noteID, "content": in.Note.Content, "trimmed": false, "type": "incident_note",
	}, agent)
	r.json(http.StatusCreated, map[string]any{"note": map[string]any{
		"id": noteID, "user": userRef(agent), "channel": map[string]any{"summary": "The PagerDuty website or APIs"},
		"content": in.Note.Content, "created_at": s.cfg.Now().UTC().Format(time.RFC3339),
	}})
}

// enqueue is the Events API v2.
func (s *Server) enqueue(r rec, body []byte) {
	invalid := func(msg string) {
		r.json(http.StatusBadRequest, map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": []string{msg}})
	}
	var ev struct {
		RoutingKey  string `json:"routing_key"`
		EventAction string `json:"event_action"`
		DedupKey    string `json:"dedup_key"`
		Payload     *struct {
			Summary  string `json:"summary"`
			Source   string `json:"source"`
			Severity string `json:"severity"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		r.json(http.StatusBadRequest, map[string]any{"status": "Unrecognized object", "message": "Event object format is unrecognized", "errors": []string{"JSON parse error"}})
		return
	}
	serviceID, ok := s.cfg.RoutingKeys[ev.RoutingKey]
	if !ok {
		invalid("Invalid routing key")
		return
	}
	if len(ev.DedupKey) > 255 {
		invalid("'dedup_key' must be at most 255 characters")
		return
	}
	var open *Incident
	for _, inc := range s.incidents {
		if ev.DedupKey != "" && inc.Key == ev.DedupKey && inc.ServiceID == serviceID && inc.Status != "resolved" {
			open = inc
		}
	}
	switch ev.EventAction {
	case "trigger":
		p := ev.Payload
		if p == nil || p.Summary == "" || p.Source == "" || !slices.Contains([]string{"critical", "error", "warning", "info"}, p.Severity) {
			invalid("'payload' requires summary, source and a severity of critical, error, warning or info")
			return
		}
		if ev.DedupKey == "" {
			ev.DedupKey = s.nextID("dedup")
		}
		if open == nil {
			urgency := "high"
			if p.Severity == "warning" || p.Severity == "info" {
				urgency = "low"
			}
			inc := s.open(p.Summary, serviceID, "", ev.DedupKey, urgency, "events")
			s.emit("incident.triggered", inc, nil)
		}
	case "acknowledge", "resolve":
		if ev.DedupKey == "" {
			invalid("'dedup_key' is required for " + ev.EventAction)
			return
		}
		if open != nil {
			status := map[string]string{"acknowledge": "acknowledged", "resolve": "resolved"}[ev.EventAction]
			if open.Status != status {
				open.Status = status
				s.emit("incident."+status, open, nil)
			}
		}
	default:
		invalid("'event_action' must be trigger, acknowledge or resolve")
		return
	}
	r.json(http.StatusAccepted, map[string]any{"status": "success", "message": "Event processed", "dedup_key": ev.DedupKey})
}

func serviceJSON(sv Service) map[string]any {
	return map[string]any{"id": sv.ID, "type": "service", "name": sv.Name, "summary": sv.Name,
		"html_url":          "https://acme.pagerduty.com/services/" + sv.ID,
		"escalation_policy": map[string]any{"id": sv.EscalationPolicyID, "type": "escalation_policy_reference"}}
}

func (s *Server) policyJSON(p Policy) map[string]any {
	return map[string]any{"id": p.ID, "type": "escalation_policy", "name": p.Name, "summary": p.Name,
		"html_url": "https://acme.pagerduty.com/escalation_policies/" + p.ID, "num_loops": 0,
		"escalation_rules": s.escalationRules(p)}
}

func userRef(u *User) any {
	if u == nil {
		return nil
	}
	return map[string]any{"id": u.ID, "type": "user_reference", "summary": u.Name,
		"self": "https://api.pagerduty.com/users/" + u.ID, "html_url": "https://acme.pagerduty.com/users/" + u.ID}
}

func (s *Server) incidentRef(inc *Incident) map[string]any {
	return map[string]any{"id": inc.ID, "type": "incident_reference", "summary": inc.Title,
		"self": "https://api.pagerduty.com/incidents/" + inc.ID, "html_url": IncidentURL(inc.ID)}
}

// IncidentURL is the html_url the server gives incident id.
func IncidentURL(id string) string { return "https://acme.pagerduty.com/incidents/" + id }

// incidentJSON is the REST API's incident object.
func (s *Server) incidentJSON(inc *Incident) map[string]any {
	var assignments []map[string]any
	for _, id := range inc.Assignees {
		u := s.user(id)
		if u == nil {
			continue
		}
		assignments = append(assignments, map[string]any{"at": inc.CreatedAt.Format(time.RFC3339), "assignee": userRef(u)})
	}
	svc := map[string]any{"id": inc.ServiceID, "type": "service_reference"}
	if sv := s.service(inc.ServiceID); sv != nil {
		svc["summary"] = sv.Name
	}
	ep := map[string]any{"id": inc.PolicyID, "type": "escalation_policy_reference"}
	if p := s.policy(inc.PolicyID); p != nil {
		ep["summary"] = p.Name
	}
	return map[string]any{
		"id": inc.ID, "type": "incident", "summary": fmt.Sprintf("[#%d] %s", inc.Number, inc.Title),
		"self": "https://api.pagerduty.com/incidents/" + inc.ID, "html_url": IncidentURL(inc.ID),
		"incident_number": inc.Number, "title": inc.Title, "status": inc.Status, "incident_key": inc.Key,
		"created_at": inc.CreatedAt.Format(time.RFC3339), "service": svc, "escalation_policy": ep,
		"assignments": assignments, "urgency": inc.Urgency, "priority": nil,
		"body": map[string]any{"type": "incident_body", "details": inc.Details},
	}
}

// webhookData is the V3 webhook's incident data for inc.
func (s *Server) webhookData(inc *Incident) map[string]any {
	var assignees []any
	for _, id := range inc.Assignees {
		if u := s.user(id); u != nil {
			assignees = append(assignees, userRef(u))
		}
	}
	svc := map[string]any{"id": inc.ServiceID, "type": "service_reference", "html_url": "https://acme.pagerduty.com/services/" + inc.ServiceID}
	if sv := s.service(inc.ServiceID); sv != nil {
		svc["summary"] = sv.Name
	}
	ep := map[string]any{"id": inc.PolicyID, "type": "escalation_policy_reference"}
	if p := s.policy(inc.PolicyID); p != nil {
		ep["summary"] = p.Name
	}
	return map[string]any{
		"id": inc.ID, "type": "incident", "self": "https://api.pagerduty.com/incidents/" + inc.ID, "html_url": IncidentURL(inc.ID),
		"number": inc.Number, "status": inc.Status, "incident_key": inc.Key, "created_at": inc.CreatedAt.Format(time.RFC3339),
		"title": inc.Title, "service": svc, "assignees": orNil(assignees), "escalation_policy": ep, "teams": []any{},
		"priority": nil, "urgency": inc.Urgency, "conference_bridge": nil, "resolve_reason": nil,
	}
}

func orNil(l []any) []any {
	if l == nil {
		return []any{}
	}
	return l
}

// emit queues the webhook event for a change of inc; s.mu is held.
func (s *Server) emit(eventType string, inc *Incident, agent *User) {
	s.emitData(eventType, s.webhookData(inc), agent)
}

func (s *Server) emitData(eventType string, data map[string]any, agent *User) {
	var a *Ref
	if agent != nil {
		a = &Ref{ID: agent.ID, Type: "user_reference", Summary: agent.Name, HTMLURL: "https://acme.pagerduty.com/users/" + agent.ID}
	}
	raw, _ := json.Marshal(data)
	s.outbox = append(s.outbox, Event{ID: s.nextID("EV"), Type: eventType, OccurredAt: s.cfg.Now().UTC(), Agent: a, Data: raw})
}
