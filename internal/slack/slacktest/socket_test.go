package slacktest_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/incidentbot/incident-bot/internal/slack/slacktest"
)

// socketClient is one replica's Socket Mode connection, played by hand.
type socketClient struct {
	t  *testing.T
	ws *websocket.Conn
}

func connectSocket(t *testing.T, fake *slacktest.Server) *socketClient {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, fake.APIURL()+"apps.connections.open", nil)
	req.Header.Set("Authorization", "Bearer "+fake.AppToken())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var open struct {
		OK  bool
		URL string
	}
	err = json.NewDecoder(resp.Body).Decode(&open)
	resp.Body.Close()
	if err != nil || !open.OK {
		t.Fatalf("apps.connections.open: %v %+v", err, open)
	}
	ws, _, err := websocket.DefaultDialer.Dial(open.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	c := &socketClient{t: t, ws: ws}
	if hello := c.read(); hello["type"] != "hello" {
		t.Fatalf("first frame %v, want hello", hello)
	}
	return c
}

func (c *socketClient) read() map[string]any {
	c.t.Helper()
	_ = c.ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var v map[string]any
	if err := c.ws.ReadJSON(&v); err != nil {
		c.t.Fatalf("reading a frame: %v", err)
	}
	return v
}

func (c *socketClient) ack(envelopeID string) {
	c.t.Helper()
	if err := c.ws.WriteJSON(map[string]any{"envelope_id": envelopeID}); err != nil {
		c.t.Fatal(err)
	}
}

// send runs SendEnvelope in the background.
func send(fake *slacktest.Server, env slacktest.Envelope) <-chan slacktest.Ack {
	out := make(chan slacktest.Ack, 1)
	go func() {
		a, _ := fake.SendEnvelope(env, 20*time.Second)
		out <- a
	}()
	return out
}

// TestSocketModeSeveralConnections: with several connections open (one per
// replica), each envelope goes to one of them, in turn; an envelope whose
// acknowledgement is lost, or whose connection drops before it is
// acknowledged, is delivered again on another connection as a retry.
func TestSocketModeSeveralConnections(t *testing.T) {
	fake := slacktest.NewServer(slacktest.Config{})
	defer fake.Close()
	a, b := connectSocket(t, fake), connectSocket(t, fake)
	ids := fake.SocketConnectionIDs()
	if len(ids) != 2 {
		t.Fatalf("connections %v, want 2", ids)
	}

	// In turn: two envelopes, one on each connection.
	var got []string
	for _, c := range []*socketClient{b, a} {
		done := send(fake, slacktest.Envelope{Type: "events_api", Payload: map[string]any{"n": 1}})
		env := c.read()
		c.ack(env["envelope_id"].(string))
		if ack := <-done; ack.EnvelopeID != env["envelope_id"] || ack.Attempt != 0 {
			t.Fatalf("ack %+v of %v", ack, env)
		}
		got = append(got, env["envelope_id"].(string))
	}
	if got[0] == got[1] {
		t.Fatalf("the same envelope twice: %v", got)
	}

	// A lost acknowledgement: the first connection acknowledges, the ack is
	// lost with the connection, and the envelope comes again on the other.
	done := send(fake, slacktest.Envelope{Type: "slash_commands", Payload: map[string]any{"text": "x"}, Conn: ids[0], LoseAck: true})
	first := a.read()
	a.ack(first["envelope_id"].(string))
	again := b.read()
	if again["envelope_id"] != first["envelope_id"] || again["retry_attempt"] != float64(1) || again["retry_reason"] != "timeout" {
		t.Fatalf("redelivery %v of %v", again, first)
	}
	b.ack(again["envelope_id"].(string))
	if ack := <-done; ack.Conn != ids[1] || ack.Attempt != 1 {
		t.Fatalf("ack %+v, want from connection %d on attempt 1", ack, ids[1])
	}
	if !fakeWait(fake, func() bool { return len(fake.SocketConnectionIDs()) == 1 }) {
		t.Fatal("the connection whose ack was lost is still open")
	}

	// A connection that drops before acknowledging: delivered again on
	// the one left.
	c := connectSocket(t, fake)
	cid := fake.SocketConnectionIDs()[1]
	done = send(fake, slacktest.Envelope{Type: "interactive", Payload: map[string]any{"type": "block_actions"}, Conn: cid})
	env := c.read()
	c.ws.Close()
	again = b.read()
	if again["envelope_id"] != env["envelope_id"] || again["retry_attempt"] != float64(1) {
		t.Fatalf("redelivery %v of %v", again, env)
	}
	b.ack(again["envelope_id"].(string))
	if ack := <-done; ack.Conn != ids[1] {
		t.Fatalf("ack %+v, want from connection %d", ack, ids[1])
	}
	if n := len(fake.SocketAcks()); n != 4 || !strings.HasPrefix(fake.SocketAcks()[0].EnvelopeID, "env-") {
		t.Errorf("%d acks recorded, want 4 (the lost one is not)", n)
	}
}

func fakeWait(fake *slacktest.Server, cond func() bool) bool {
	return fake.Wait(5*time.Second, cond)
}
