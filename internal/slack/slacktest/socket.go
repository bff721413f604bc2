package slacktest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Envelope is a Socket Mode envelope the fake sends to the bot.
type Envelope struct {
	// Type is "events_api", "slash_commands" or "interactive".
	Type string
	// Payload is the envelope's payload: an Events API body, a slash
	// command's fields, or an interaction payload.
	Payload any
	// EnvelopeID is generated when empty; reuse one to redeliver.
	EnvelopeID             string
	AcceptsResponsePayload bool
	RetryAttempt           int
	RetryReason            string
	// Conn, if not 0, is the connection (SocketConnectionIDs) the first
	// delivery goes to; otherwise Slack picks one (see SendEnvelope).
	Conn int
	// LoseAck loses the first delivery's acknowledgement and closes that
	// connection, as when the replica that handled the envelope dies
	// before its acknowledgement reaches Slack; Slack then delivers the
	// envelope again on another connection.
	LoseAck bool
}

// Ack is the bot's acknowledgement of an envelope.
type Ack struct {
	EnvelopeID string
	Payload    json.RawMessage // the response payload, if any
	// Conn is the connection it came on; Attempt the delivery it
	// acknowledged (0: the first, as retry_attempt counts).
	Conn    int
	Attempt int
}

// socketHub plays Slack's Socket Mode endpoint.
type socketHub struct {
	s        *Server
	upgrader websocket.Upgrader

	mu      sync.Mutex
	conns   []*socketConn
	waiters map[string]chan Ack
	acks    []Ack
	lose    map[string]int // envelope id -> connection whose ack is lost
	opened  int            // connections accepted so far
	next    int            // round-robin position among open connections
	seq     int
	closed  bool
	wg      sync.WaitGroup
}

type socketConn struct {
	id      int
	ws      *websocket.Conn
	writeMu sync.Mutex
	done    chan struct{}
}

func newSocketHub(s *Server) *socketHub {
	// The Socket Mode client sends Origin: https://api.slack.com, which is
	// never this server's origin.
	up := websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	return &socketHub{s: s, waiters: map[string]chan Ack{}, lose: map[string]int{}, upgrader: up}
}

func (h *socketHub) url() string {
	h.mu.Lock()
	h.seq++
	n := h.seq
	h.mu.Unlock()
	return "ws" + strings.TrimPrefix(h.s.http.URL, "http") + fmt.Sprintf("/socket?ticket=%d&app_id=%s", n, h.s.cfg.AppID)
}

func (c *socketConn) write(v any) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.ws.WriteJSON(v)
}

func (c *socketConn) ping() error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.ws.WriteControl(websocket.PingMessage, []byte("ping"), time.Now().Add(5*time.Second))
}

func (h *socketHub) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	closed := h.closed
	h.mu.Unlock()
	if closed {
		http.Error(w, "closed", http.StatusServiceUnavailable)
		return
	}
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &socketConn{ws: ws, done: make(chan struct{})}
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		_ = ws.Close()
		return
	}
	h.opened++
	c.id = h.opened
	h.conns = append(h.conns, c)
	open := len(h.conns)
	h.wg.Add(2)
	h.mu.Unlock()
	_ = c.write(map[string]any{
		"type": "hello", "num_connections": open,
		"debug_info":      map[string]any{"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060},
		"connection_info": map[string]any{"app_id": h.s.cfg.AppID},
	})
	_ = c.ping()
	h.s.mu.Lock()
	h.s.change()
	h.s.mu.Unlock()
	go h.pinger(c)
	go h.reader(c)
}

// pinger pings like Slack does, so the client's dead-connection timer
// never fires in a test.
func (h *socketHub) pinger(c *socketConn) {
	defer h.wg.Done()
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if c.ping() != nil {
				return
			}
		}
	}
}

func (h *socketHub) reader(c *socketConn) {
	defer h.wg.Done()
	defer func() {
		close(c.done)
		_ = c.ws.Close()
		h.mu.Lock()
		for i, x := range h.conns {
			if x == c {
				h.conns = append(h.conns[:i], h.conns[i+1:]...)
				break
			}
		}
		h.mu.Unlock()
	}()
	for {
		_, raw, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var a struct {
			EnvelopeID string          `json:"envelope_id"`
			Payload    json.RawMessage `json:"payload"`
		}
		if json.Unmarshal(raw, &a) != nil || a.EnvelopeID == "" {
			continue
		}
		ack := Ack{EnvelopeID: a.EnvelopeID, Payload: a.Payload, Conn: c.id}
		h.mu.Lock()
		if h.lose[a.EnvelopeID] == c.id {
			// The replica "dies" with its acknowledgement unsent.
			delete(h.lose, a.EnvelopeID)
			h.mu.Unlock()
			return
		}
		h.acks = append(h.acks, ack)
		if w, ok := h.waiters[a.EnvelopeID]; ok {
			select {
			case w <- ack:
			default:
			}
		}
		h.mu.Unlock()
		h.s.mu.Lock()
		h.s.change()
		h.s.mu.Unlock()
	}
}

func (h *socketHub) close() {
	h.mu.Lock()
	h.closed = true
	conns := append([]*socketConn(nil), h.conns...)
	h.mu.Unlock()
	for _, c := range conns {
		c.writeMu.Lock()
		_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, "bye"), time.Now().Add(time.Second))
		c.writeMu.Unlock()
		_ = c.ws.Close()
	}
	h.wg.Wait()
}

// SocketConnections is how many Socket Mode connections are open now.
func (s *Server) SocketConnections() int {
	s.socket.mu.Lock()
	defer s.socket.mu.Unlock()
	return len(s.socket.conns)
}

// SocketConnectionsOpened is how many Socket Mode connections were ever
// accepted (a reconnect adds one).
func (s *Server) SocketConnectionsOpened() int {
	s.socket.mu.Lock()
	defer s.socket.mu.Unlock()
	return s.socket.opened
}

// SocketAcks returns every acknowledgement received so far.
func (s *Server) SocketAcks() []Ack {
	s.socket.mu.Lock()
	defer s.socket.mu.Unlock()
	return append([]Ack(nil), s.socket.acks...)
}

// SocketConnectionIDs are the open Socket Mode connections' ids, oldest
// first. Ids count from 1 in the order connections were accepted, so a
// test that starts replicas one by one knows which connection is whose.
func (s *Server) SocketConnectionIDs() []int {
	s.socket.mu.Lock()
	defer s.socket.mu.Unlock()
	ids := make([]int, len(s.socket.conns))
	for i, c := range s.socket.conns {
		ids[i] = c.id
	}
	return ids
}

// ErrNoSocket is returned by SendEnvelope when the bot is not connected.
var ErrNoSocket = errors.New("slacktest: no socket mode connection")

// socketAckTimeout is how long Slack waits for an acknowledgement before
// it delivers the envelope again.
const socketAckTimeout = 3 * time.Second

// socketAttempts bounds the deliveries of one envelope (the first and
// three retries, as for Events API deliveries).
const socketAttempts = 4

// SendEnvelope delivers an envelope as Slack does to an app with several
// open Socket Mode connections (up to 10 per app, one per replica here):
// to one of them, in turn (or env.Conn), and, if that connection closes
// or does not acknowledge within 3 seconds, again on another open
// connection, with retry_attempt counting up and retry_reason "timeout",
// up to 4 deliveries. It returns the acknowledgement, or an error when
// none arrived within timeout. (Slack's docs on Socket Mode: several
// connections may be open, each envelope goes to one of them, and
// envelopes not acknowledged are delivered again;
// https://api.slack.com/apis/connections/socket-implement.)
func (s *Server) SendEnvelope(env Envelope, timeout time.Duration) (Ack, error) {
	h := s.socket
	h.mu.Lock()
	if len(h.conns) == 0 {
		h.mu.Unlock()
		return Ack{}, ErrNoSocket
	}
	if env.EnvelopeID == "" {
		h.seq++
		env.EnvelopeID = fmt.Sprintf("env-%06d", h.seq)
	}
	wait := make(chan Ack, socketAttempts)
	h.waiters[env.EnvelopeID] = wait
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.waiters, env.EnvelopeID)
		delete(h.lose, env.EnvelopeID)
		h.mu.Unlock()
	}()
	payload, err := json.Marshal(env.Payload)
	if err != nil {
		return Ack{}, err
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var last *socketConn
	for attempt := 0; attempt < socketAttempts; attempt++ {
		c := h.pick(env, attempt, last)
		if c == nil {
			return Ack{}, ErrNoSocket
		}
		last = c
		msg := map[string]any{
			"envelope_id": env.EnvelopeID, "type": env.Type, "payload": json.RawMessage(payload),
			"accepts_response_payload": env.AcceptsResponsePayload,
			"retry_attempt":            env.RetryAttempt + attempt, "retry_reason": env.RetryReason,
		}
		if attempt > 0 {
			msg["retry_reason"] = "timeout"
		}
		if err := c.write(msg); err != nil && attempt+1 == socketAttempts {
			return Ack{}, fmt.Errorf("slacktest: sending envelope: %w", err)
		}
		ackTimer := time.NewTimer(socketAckTimeout)
		select {
		case a := <-wait:
			ackTimer.Stop()
			a.Attempt = env.RetryAttempt + attempt
			return a, nil
		case <-c.done: // the replica went away: deliver again elsewhere
		case <-ackTimer.C:
		case <-deadline.C:
			ackTimer.Stop()
			return Ack{}, fmt.Errorf("slacktest: no acknowledgement of %s within %s", env.EnvelopeID, timeout)
		}
		ackTimer.Stop()
	}
	return Ack{}, fmt.Errorf("slacktest: %s not acknowledged after %d deliveries", env.EnvelopeID, socketAttempts)
}

// pick chooses the connection of a delivery: env.Conn for the first if
// set, else the open connections in turn, avoiding the one that just
// failed when there is another.
func (h *socketHub) pick(env Envelope, attempt int, last *socketConn) *socketConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.conns) == 0 {
		return nil
	}
	var c *socketConn
	if attempt == 0 && env.Conn != 0 {
		for _, x := range h.conns {
			if x.id == env.Conn {
				c = x
			}
		}
		if c == nil {
			return nil
		}
	} else {
		for range len(h.conns) {
			h.next++
			c = h.conns[h.next%len(h.conns)]
			if c != last {
				break
			}
		}
	}
	if attempt == 0 && env.LoseAck {
		h.lose[env.EnvelopeID] = c.id
	}
	return c
}

// DisconnectSockets asks the bot to reconnect, as Slack does before it
// rotates a connection.
func (s *Server) DisconnectSockets() {
	h := s.socket
	h.mu.Lock()
	conns := append([]*socketConn(nil), h.conns...)
	h.mu.Unlock()
	for _, c := range conns {
		_ = c.write(map[string]any{"type": "disconnect", "reason": "refresh_requested", "debug_info": map[string]any{"host": "applink-fake"}})
	}
}
