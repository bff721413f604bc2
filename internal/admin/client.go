package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"

	"github.com/incidentbot/incident-bot/internal/incident"
)

// Client calls the admin API of the bot serving on a Unix socket. It
// implements Backend. Calls have no timeout of their own: callers bound
// them with ctx (a backup of a big database takes a while).
type Client struct {
	socket string
	hc     *http.Client
}

var _ Backend = (*Client)(nil)

// NewClient returns a client for the admin socket at path.
func NewClient(socket string) *Client {
	return &Client{socket: socket, hc: &http.Client{
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}}
}

// Incidents implements Backend.
func (c *Client) Incidents(ctx context.Context, f incident.Filter) ([]*incident.Incident, error) {
	q := url.Values{}
	if f.OpenOnly {
		q.Set("open", "1")
	}
	var out []*incident.Incident
	return out, c.call(ctx, http.MethodGet, "/admin/incidents?"+q.Encode(), nil, &out)
}

// Check implements Backend.
func (c *Client) Check(ctx context.Context) (Stats, error) {
	var st Stats
	return st, c.call(ctx, http.MethodGet, "/admin/check", nil, &st)
}

// WriteBackup implements Backend: the bot streams its backup.
func (c *Client) WriteBackup(ctx context.Context, w io.Writer) (int64, error) {
	resp, err := c.do(ctx, http.MethodGet, "/admin/backup", nil)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	return io.Copy(w, resp.Body)
}

// Digest implements Backend.
func (c *Client) Digest(ctx context.Context, req DigestRequest) (DigestReply, error) {
	var reply DigestReply
	return reply, c.call(ctx, http.MethodGet, "/admin/digest?"+digestQuery(req), nil, &reply)
}

// PostDigest asks the bot to queue the digest of a resolved period for
// posting to its digest channel.
func (c *Client) PostDigest(ctx context.Context, req DigestRequest) (DigestReply, error) {
	var reply DigestReply
	return reply, c.call(ctx, http.MethodPost, "/admin/digest", req, &reply)
}

// Postmortem implements Backend.
func (c *Client) Postmortem(ctx context.Context, n int64) (PostmortemDraft, error) {
	var d PostmortemDraft
	return d, c.call(ctx, http.MethodGet, "/admin/postmortem/"+incident.FormatID(n), nil, &d)
}

// Handover implements Backend.
func (c *Client) Handover(ctx context.Context) (HandoverReply, error) {
	var h HandoverReply
	return h, c.call(ctx, http.MethodGet, "/admin/handover", nil, &h)
}

// call sends a request (body, if not nil, as JSON) and decodes the JSON
// answer into v.
func (c *Client) call(ctx context.Context, method, path string, body, v any) error {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("admin API %s: reading the answer: %w", path, err)
	}
	return nil
}

// do sends a request; an answer other than 2xx is an error: a domain error
// with the bot's message for 4xx (the bot mapped it from one), otherwise an
// error naming the status.
func (c *Client) do(ctx context.Context, method, path string, body any) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		raw, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://admin"+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%w (%s)", errNoBot, c.socket)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := string(bytes.TrimSpace(raw))
	code := map[int]string{
		http.StatusBadRequest: incident.EINVALID,
		http.StatusNotFound:   incident.ENOTFOUND,
		http.StatusConflict:   incident.ECONFLICT,
		http.StatusForbidden:  incident.EFORBIDDEN,
	}[resp.StatusCode]
	if code != "" && msg != "" {
		return nil, incident.Errorf(code, "%s", msg)
	}
	return nil, fmt.Errorf("the bot answered %s %s: %s: %s", method, path, resp.Status, msg)
}
