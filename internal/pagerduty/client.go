package pagerduty

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/PagerDuty/go-pagerduty"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// PagerDuty REST error codes the bot reacts to.
const (
	codeAlreadyResolved     = 1001
	codeAlreadyAcknowledged = 1002
	codeCannotEscalate      = 1006
	codeRateLimited         = 2020
)

// maxRetryAfter caps the wait a 429 or 5xx may ask for.
const maxRetryAfter = 10 * time.Minute

// ClientConfig configures a Client.
type ClientConfig struct {
	// Token is the REST API token; empty: no REST API (pages go through the
	// Events API with RoutingKey, if set).
	Token string
	// From is the email of the PagerDuty user changes are made as
	// (PagerDuty requires it on every change).
	From string
	// RoutingKey is the Events API v2 integration key; empty: no Events API.
	RoutingKey string
	// APIURL and EventsURL are the API bases without a trailing slash
	// (defaults https://api.pagerduty.com and https://events.pagerduty.com).
	APIURL, EventsURL string
	// HTTP is the HTTP client (default: 10s timeout).
	HTTP    *http.Client
	Metrics *Metrics
}

// Client calls PagerDuty's REST API v2 and Events API v2 through
// go-pagerduty. Failures are classified for the job queue: 429, 5xx and
// network errors are incident.Retryable (after the ratelimit-reset or
// Retry-After the answer carried); any other failure is an *APIError.
type Client struct {
	cfg ClientConfig
	pd  *pagerduty.Client
}

// NewClient returns a client.
func NewClient(cfg ClientConfig) *Client {
	if cfg.APIURL == "" {
		cfg.APIURL = "https://api.pagerduty.com"
	}
	if cfg.EventsURL == "" {
		cfg.EventsURL = "https://events.pagerduty.com"
	}
	cfg.APIURL, cfg.EventsURL = strings.TrimRight(cfg.APIURL, "/"), strings.TrimRight(cfg.EventsURL, "/")
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	pd := pagerduty.NewClient(cfg.Token,
		pagerduty.WithAPIEndpoint(cfg.APIURL),
		pagerduty.WithV2EventsAPIEndpoint(cfg.EventsURL))
	pd.HTTPClient = &transport{next: cfg.HTTP, metrics: cfg.Metrics, prefixes: []string{pathOf(cfg.APIURL), pathOf(cfg.EventsURL)}}
	return &Client{cfg: cfg, pd: pd}
}

// REST reports whether the REST API is configured.
func (c *Client) REST() bool { return c.cfg.Token != "" }

// Events reports whether the Events API is configured.
func (c *Client) Events() bool { return c.cfg.RoutingKey != "" }

// APIError is a PagerDuty answer that retrying will not change.
type APIError struct {
	Method  string // e.g. "POST /incidents"
	Status  int
	Code    int // PagerDuty error code, 0 if none
	Message string
	Errors  []string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("PagerDuty %s: %d", e.Method, e.Status)
	if e.Message != "" {
		s += " " + e.Message
	}
	if e.Code != 0 {
		s += fmt.Sprintf(" (code %d)", e.Code)
	}
	if len(e.Errors) > 0 {
		s += ": " + strings.Join(e.Errors, "; ")
	}
	return s
}

// Plain says what went wrong in words for the incident's channel.
func (e *APIError) Plain() string {
	var why string
	switch {
	case e.Code == codeCannotEscalate:
		why = "PagerDuty cannot escalate it further (it is at the last level of its escalation policy, or has no escalation policy)"
	case e.Status == http.StatusUnauthorized || e.Code == 2006:
		why = "PagerDuty rejected the bot's API token (check PAGERDUTY_API_TOKEN)"
	case e.Status == http.StatusForbidden:
		why = "the bot's PagerDuty token is not allowed to do this"
	case e.Status == http.StatusNotFound || e.Code == 2100 || e.Code == 5001:
		why = "PagerDuty does not know it (it may have been deleted)"
	case e.Code == 1008:
		why = "PagerDuty does not know the user in PAGERDUTY_FROM_EMAIL"
	case e.Code == 1014:
		why = "PagerDuty does not know that escalation policy"
	case e.Code == 1015:
		why = "nobody is on call in that escalation policy"
	default:
		why = "PagerDuty answered " + strconv.Itoa(e.Status)
		if e.Message != "" {
			why += " " + e.Message
		}
		if len(e.Errors) > 0 {
			why += ": " + strings.Join(e.Errors, "; ")
		}
	}
	return why
}

// callInfo is filled by the transport for one call: the request context
// carries it there and back, because go-pagerduty keeps neither the
// response headers nor the error body of a failed call.
type callInfo struct {
	method     string
	status     int
	retryAfter time.Duration
	body       []byte
}

type callInfoKey struct{}

func withCall(ctx context.Context) (context.Context, *callInfo) {
	info := &callInfo{}
	return context.WithValue(ctx, callInfoKey{}, info), info
}

// transport is go-pagerduty's HTTP client: it counts and times every call
// and keeps what classification needs.
type transport struct {
	next     *http.Client
	metrics  *Metrics
	prefixes []string
}

func (t *transport) Do(req *http.Request) (*http.Response, error) {
	method := req.Method + " " + t.route(req.URL.Path)
	start := time.Now()
	resp, err := t.next.Do(req)
	took := time.Since(start)
	info, _ := req.Context().Value(callInfoKey{}).(*callInfo)
	if info == nil {
		info = &callInfo{}
	}
	info.method = method
	if err != nil {
		t.metrics.apiCall(method, APINetwork, took)
		return resp, err
	}
	info.status = resp.StatusCode
	outcome := APIOK
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		outcome = APIRateLimited
	case resp.StatusCode >= 500:
		outcome = APIServerError
	case resp.StatusCode >= 400:
		outcome = APIClientError
	}
	t.metrics.apiCall(method, outcome, took)
	if resp.StatusCode >= 400 {
		info.retryAfter = retryAfter(resp.Header)
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		info.body = body
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	return resp, nil
}

var idSegment = regexp.MustCompile(`^[A-Za-z0-9]+$`)

// route turns a request path into a low-cardinality metric label:
// "/incidents/PT4KHLK/notes" becomes "/incidents/{id}/notes".
func (t *transport) route(path string) string {
	for _, p := range t.prefixes {
		if p != "" && strings.HasPrefix(path, p) {
			path = strings.TrimPrefix(path, p)
			break
		}
	}
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

func pathOf(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return ""
	}
	return strings.TrimRight(u.Path, "/")
}

// retryAfter reads the wait a rate-limited or failing answer asks for:
// PagerDuty's ratelimit-reset (seconds), else Retry-After (seconds or a
// date). Zero: none given.
func retryAfter(h http.Header) time.Duration {
	var d time.Duration
	if v := strings.TrimSpace(h.Get("ratelimit-reset")); v != "" {
		if secs, err := strconv.ParseFloat(v, 64); err == nil && secs > 0 {
			d = time.Duration(secs * float64(time.Second))
		}
	}
	if v := strings.TrimSpace(h.Get("Retry-After")); d == 0 && v != "" {
		if secs, err := strconv.Atoi(v); err == nil && secs > 0 {
			d = time.Duration(secs) * time.Second
		} else if t, err := http.ParseTime(v); err == nil {
			d = time.Until(t)
		}
	}
	return min(max(d, 0), maxRetryAfter)
}

// classify turns a go-pagerduty failure into an error the queue
// understands.
func classify(what string, info *callInfo, err error) error {
	if err == nil {
		return nil
	}
	method := info.method
	if method == "" {
		method = what
	}
	switch {
	case info.status == 0:
		// No answer: a network error, a timeout.
		return incident.Retryable(fmt.Errorf("calling PagerDuty %s: %w", method, err), 0)
	case info.status == http.StatusTooManyRequests || info.status >= 500:
		return incident.Retryable(apiError(method, info), info.retryAfter)
	case info.status < 300:
		return &APIError{Method: method, Status: info.status, Message: "unreadable answer"}
	}
	return apiError(method, info)
}

// apiError parses an error answer: the REST form {"error":{...}} or the
// Events API form {"status","message","errors"}. go-pagerduty parses only
// the first, and only with a JSON content type, so the body is read here.
func apiError(method string, info *callInfo) *APIError {
	e := &APIError{Method: method, Status: info.status}
	var rest struct {
		Error *struct {
			Message string   `json:"message"`
			Code    int      `json:"code"`
			Errors  []string `json:"errors"`
		} `json:"error"`
		Status  string   `json:"status"`
		Message string   `json:"message"`
		Errors  []string `json:"errors"`
	}
	if json.Unmarshal(info.body, &rest) == nil {
		if rest.Error != nil {
			e.Message, e.Code, e.Errors = rest.Error.Message, rest.Error.Code, rest.Error.Errors
		} else {
			e.Message, e.Errors = firstNonEmpty(rest.Message, rest.Status), rest.Errors
		}
	}
	if e.Message == "" {
		e.Message = http.StatusText(info.status)
	}
	if e.Code == codeRateLimited && info.status != http.StatusTooManyRequests {
		e.Status = http.StatusTooManyRequests
	}
	return e
}

// isAPIError reports whether err is a permanent PagerDuty answer with one of
// the codes.
func isAPIError(err error, codes ...int) bool {
	var e *APIError
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if e.Code == c {
			return true
		}
	}
	return false
}

// Incident is what the bot keeps of a PagerDuty incident.
type Incident struct {
	ID, URL, Status, Key string
	Number               int64
	ServiceID            string
	ServiceName          string
	EscalationPolicyID   string
}

func fromPD(in *pagerduty.Incident) Incident {
	return Incident{
		ID: in.ID, URL: in.HTMLURL, Status: in.Status, Key: in.IncidentKey, Number: int64(in.IncidentNumber),
		ServiceID: in.Service.ID, ServiceName: in.Service.Summary, EscalationPolicyID: in.EscalationPolicy.ID,
	}
}

// NewIncident is a page through the REST API.
type NewIncident struct {
	Title   string
	Details string
	// ServiceID is required; EscalationPolicyID, if set, pages that policy
	// instead of the service's own.
	ServiceID          string
	EscalationPolicyID string
	Urgency            string // default high
	// Key is the incident_key: a second create with the same key opens no
	// second incident.
	Key string
}

// CreateIncident opens a PagerDuty incident (POST /incidents). If one with
// the same key is already open (an earlier attempt succeeded but its answer
// was lost), that one is returned instead.
func (c *Client) CreateIncident(ctx context.Context, n NewIncident) (Incident, error) {
	if n.Urgency == "" {
		n.Urgency = "high"
	}
	opts := &pagerduty.CreateIncidentOptions{
		Title:       incident.Clip(n.Title, 1024),
		Service:     &pagerduty.APIReference{ID: n.ServiceID, Type: "service_reference"},
		Urgency:     n.Urgency,
		IncidentKey: n.Key,
	}
	if n.Details != "" {
		opts.Body = &pagerduty.APIDetails{Type: "incident_body", Details: n.Details}
	}
	if n.EscalationPolicyID != "" {
		opts.EscalationPolicy = &pagerduty.APIReference{ID: n.EscalationPolicyID, Type: "escalation_policy_reference"}
	}
	cctx, info := withCall(ctx)
	in, err := c.pd.CreateIncidentWithContext(cctx, c.cfg.From, opts)
	err = classify("POST /incidents", info, err)
	if err == nil {
		return fromPD(in), nil
	}
	var apiErr *APIError
	if n.Key != "" && errors.As(err, &apiErr) && apiErr.Status == http.StatusBadRequest {
		// PagerDuty refuses a second open incident with the same key on a
		// service (400). Whatever the wording, if an incident with our
		// key exists, the page was made.
		if found, ok, ferr := c.FindIncidentByKey(ctx, n.Key); ferr != nil {
			return Incident{}, ferr
		} else if ok {
			return found, nil
		}
	}
	return Incident{}, err
}

// FindIncidentByKey finds the incident with an incident_key (GET
// /incidents?incident_key=).
func (c *Client) FindIncidentByKey(ctx context.Context, key string) (Incident, bool, error) {
	cctx, info := withCall(ctx)
	resp, err := c.pd.ListIncidentsWithContext(cctx, pagerduty.ListIncidentsOptions{IncidentKey: key, DateRange: "all"})
	if err := classify("GET /incidents", info, err); err != nil {
		return Incident{}, false, err
	}
	for i := range resp.Incidents {
		if resp.Incidents[i].IncidentKey == key {
			return fromPD(&resp.Incidents[i]), true, nil
		}
	}
	return Incident{}, false, nil
}

// GetIncident reads an incident's current state (GET /incidents/{id}).
func (c *Client) GetIncident(ctx context.Context, id string) (Incident, error) {
	cctx, info := withCall(ctx)
	in, err := c.pd.GetIncidentWithContext(cctx, id)
	if err := classify("GET /incidents/{id}", info, err); err != nil {
		return Incident{}, err
	}
	return fromPD(in), nil
}

// IncidentStatus returns a PagerDuty incident's current status
// (incident.EscalationPolicy.PagerStatus).
func (c *Client) IncidentStatus(ctx context.Context, id string) (incident.Status, error) {
	in, err := c.GetIncident(ctx, id)
	if err != nil {
		return "", err
	}
	switch st := incident.Status(in.Status); st {
	case incident.StatusTriggered, incident.StatusAcknowledged, incident.StatusResolved:
		return st, nil
	}
	return "", fmt.Errorf("PagerDuty incident %s has an unknown status %q", id, in.Status)
}

// Escalate moves an incident to an escalation level (bulk PUT /incidents:
// go-pagerduty has no single-incident PUT).
func (c *Client) Escalate(ctx context.Context, id string, level int) error {
	if level < 1 {
		return fmt.Errorf("escalation level %d", level)
	}
	cctx, info := withCall(ctx)
	_, err := c.pd.ManageIncidentsWithContext(cctx, c.cfg.From, []pagerduty.ManageIncidentsOptions{{ID: id, EscalationLevel: uint(level)}})
	return classify("PUT /incidents", info, err)
}

// SetStatus acknowledges or resolves an incident. An incident already in
// that state (or resolved, when acknowledging) is not an error.
func (c *Client) SetStatus(ctx context.Context, id, status string) error {
	cctx, info := withCall(ctx)
	_, err := c.pd.ManageIncidentsWithContext(cctx, c.cfg.From, []pagerduty.ManageIncidentsOptions{{ID: id, Status: status}})
	err = classify("PUT /incidents", info, err)
	if isAPIError(err, codeAlreadyResolved, codeAlreadyAcknowledged) {
		return nil
	}
	return err
}

// AddNote adds a note to an incident (POST /incidents/{id}/notes).
func (c *Client) AddNote(ctx context.Context, id, text string) error {
	cctx, info := withCall(ctx)
	// go-pagerduty takes the From header from the note's user summary.
	_, err := c.pd.CreateIncidentNoteWithContext(cctx, id, pagerduty.IncidentNote{Content: text, User: pagerduty.APIObject{Summary: c.cfg.From}})
	return classify("POST /incidents/{id}/notes", info, err)
}

// UserEmail returns a user's email (GET /users/{id}).
func (c *Client) UserEmail(ctx context.Context, id string) (string, error) {
	cctx, info := withCall(ctx)
	u, err := c.pd.GetUserWithContext(cctx, id, pagerduty.GetUserOptions{})
	if err := classify("GET /users/{id}", info, err); err != nil {
		return "", err
	}
	return u.Email, nil
}

// Target kinds.
const (
	KindService          = "service"
	KindEscalationPolicy = "escalation_policy"
)

// FindTarget resolves what `page` names: a service or an escalation
// policy, by id or by name. An exact name (any letter case) wins; a name
// that matches exactly one service or policy partially is taken too. It
// returns ENOTFOUND or EINVALID (ambiguous) domain errors for users.
func (c *Client) FindTarget(ctx context.Context, name string) (incident.PagerTarget, error) {
	name = strings.TrimSpace(name)
	if pdID.MatchString(name) {
		cctx, info := withCall(ctx)
		if s, err := c.pd.GetServiceWithContext(cctx, name, nil); err == nil {
			return incident.PagerTarget{Kind: KindService, ID: s.ID, Name: s.Name}, nil
		} else if err := classify("GET /services/{id}", info, err); !notFound(err) {
			return incident.PagerTarget{}, err
		}
		cctx, info = withCall(ctx)
		if p, err := c.pd.GetEscalationPolicyWithContext(cctx, name, nil); err == nil {
			return incident.PagerTarget{Kind: KindEscalationPolicy, ID: p.ID, Name: p.Name}, nil
		} else if err := classify("GET /escalation_policies/{id}", info, err); !notFound(err) {
			return incident.PagerTarget{}, err
		}
	}
	var candidates []incident.PagerTarget
	cctx, info := withCall(ctx)
	services, err := c.pd.ListServicesWithContext(cctx, pagerduty.ListServiceOptions{Query: name, Limit: 25})
	if err := classify("GET /services", info, err); err != nil {
		return incident.PagerTarget{}, err
	}
	for _, s := range services.Services {
		candidates = append(candidates, incident.PagerTarget{Kind: KindService, ID: s.ID, Name: s.Name})
	}
	cctx, info = withCall(ctx)
	policies, err := c.pd.ListEscalationPoliciesWithContext(cctx, pagerduty.ListEscalationPoliciesOptions{Query: name, Limit: 25})
	if err := classify("GET /escalation_policies", info, err); err != nil {
		return incident.PagerTarget{}, err
	}
	for _, p := range policies.EscalationPolicies {
		candidates = append(candidates, incident.PagerTarget{Kind: KindEscalationPolicy, ID: p.ID, Name: p.Name})
	}
	t, matched := choose(name, candidates, func(t incident.PagerTarget) (string, string) { return t.Name, t.ID })
	switch len(matched) {
	case 1:
		return t, nil
	case 0:
		return incident.PagerTarget{}, incident.Errorf(incident.ENOTFOUND, "PagerDuty has no service or escalation policy named %q.", incident.Clip(name, 64))
	}
	candidates = matched
	names := make([]string, 0, min(len(candidates), 5))
	for _, t := range candidates[:min(len(candidates), 5)] {
		names = append(names, fmt.Sprintf("%s (%s %s)", t.Name, strings.ReplaceAll(t.Kind, "_", " "), t.ID))
	}
	return incident.PagerTarget{}, incident.Errorf(incident.EINVALID, "%q matches more than one PagerDuty target: %s. Use the id.", incident.Clip(name, 64), strings.Join(names, ", "))
}

// pdID matches PagerDuty object ids.
var pdID = regexp.MustCompile(`^P[A-Z0-9]{5,13}$`)

func notFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && (e.Status == http.StatusNotFound || e.Code == 2100)
}

// Event is an Events API v2 event.
type Event struct {
	Action   string // trigger, acknowledge or resolve
	DedupKey string
	Summary  string // trigger only
	Severity string // critical, error, warning or info; trigger only
	Details  map[string]string
}

// SendEvent sends an Events API v2 event (POST /v2/enqueue, with the
// client method: go-pagerduty's package-level function ignores the
// configured endpoint) and returns the dedup key PagerDuty used.
func (c *Client) SendEvent(ctx context.Context, e Event) (string, error) {
	ev := &pagerduty.V2Event{RoutingKey: c.cfg.RoutingKey, Action: e.Action, DedupKey: e.DedupKey}
	if e.Action == "trigger" {
		ev.Payload = &pagerduty.V2Payload{Summary: incident.Clip(e.Summary, 1024), Source: "incident-bot", Severity: e.Severity}
		if len(e.Details) > 0 {
			ev.Payload.Details = e.Details
		}
	}
	cctx, info := withCall(ctx)
	resp, err := c.pd.ManageEventWithContext(cctx, ev)
	if err := classify("POST /v2/enqueue", info, err); err != nil {
		return "", err
	}
	if resp.DedupKey != "" {
		return resp.DedupKey, nil
	}
	return e.DedupKey, nil
}
