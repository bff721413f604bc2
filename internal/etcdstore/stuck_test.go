package etcdstore_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/incidentbot/incident-bot/internal/etcdstore"
	"github.com/incidentbot/incident-bot/internal/etcdstore/etcdtest"
	"github.com/incidentbot/incident-bot/internal/incident"
)

// stallProxy forwards loopback TCP to an etcd member until freeze: from
// then on nothing more is forwarded either way, and the connections stay
// open — a member that took a request and never answers it (seen after
// members were stopped and restarted). thaw forwards again.
type stallProxy struct {
	ln     net.Listener
	target string

	mu   sync.Mutex
	gate chan struct{} // closed while forwarding
	// onLarge freezes the proxy at the first large request (a chunk of a
	// staged value), letting the smaller reads before it through.
	onLarge bool
	conns   []net.Conn
	wg      sync.WaitGroup
}

func startStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target, gate: make(chan struct{})}
	close(p.gate)
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		_ = ln.Close()
		p.thaw()
		p.mu.Lock()
		for _, c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *stallProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(up, c, true) })
		p.wg.Go(func() { p.pipe(c, up, false) })
	}
}

func (p *stallProxy) pipe(dst, src net.Conn, request bool) {
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			if request && p.onLarge && n >= 16<<10 {
				p.onLarge = false
				p.freezeLocked()
			}
			gate := p.gate
			p.mu.Unlock()
			<-gate
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *stallProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.freezeLocked()
}

func (p *stallProxy) freezeOnLarge() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onLarge = true
}

func (p *stallProxy) freezeLocked() {
	select {
	case <-p.gate:
		p.gate = make(chan struct{})
	default:
	}
}

func (p *stallProxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.onLarge = false
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}

// TestRequestsWithWriterHeldEnd: a write whose request to etcd is never
// answered fails after the request timeout, even when the caller's
// context has no deadline (the chat sync's and the job queue's writes run
// under context.WithoutCancel), and frees this replica's writer slot. It
// used to wait for ever in the lease grant of a redelivery key, of a large
// value's staging (webhook bodies) or of the fence check: every later
// write of the replica then queued behind it, and the leader's workers
// with them, so due jobs were never started.
func TestRequestsWithWriterHeldEnd(t *testing.T) {
	cluster := etcdtest.Start(t, 1)
	p := startStallProxy(t, strings.TrimPrefix(cluster.Members[0].ClientURL, "http://"))
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{"http://" + p.ln.Addr().String()}, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := etcdstore.New(ctx, cli, etcdstore.Options{Prefix: "/stall/", DialTimeout: 300 * time.Millisecond,
		ExpiringKeys: []string{"delivery:"}, KeyTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	large := []byte(strings.Repeat("x", 400<<10)) // above the inline limit: staged as a blob

	for _, tc := range []struct {
		name  string
		write func(incident.Tx) error
	}{
		{"redelivery key (lease grant)", func(tx incident.Tx) error {
			p.freeze() // after the snapshot's read: the lease grant is never answered
			return tx.PutKey("delivery:1", []byte("1"), time.Now())
		}},
		{"large webhook job (blob staging)", func(tx incident.Tx) error {
			p.freezeOnLarge() // the first chunk's put is never answered
			return tx.Enqueue(&incident.Job{Kind: "webhook", Key: "inc-1", Due: time.Now(), Payload: large})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer p.thaw()
			done := make(chan error, 1)
			go func() {
				done <- s.Update(context.Background(), tc.write)
			}()
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("the write succeeded through a connection that forwards nothing")
				}
				t.Logf("the write failed: %v", err)
			case <-time.After(30 * time.Second): // a watchdog: the bound is 2 × DialTimeout
				t.Fatal("the write still waits on a request etcd never answers, holding the replica's writer slot")
			}
			p.thaw()
			// The writer slot is free again and the failed write changed nothing.
			wctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if err := s.Update(wctx, func(tx incident.Tx) error {
				return tx.PutKey("after:"+tc.name, []byte("1"), time.Now())
			}); err != nil {
				t.Fatalf("the next write: %v", err)
			}
			if err := s.View(wctx, func(tx incident.Tx) error {
				n, err := tx.PendingJobs()
				if err == nil && n != 0 {
					t.Errorf("%d jobs pending after the failed write, want 0", n)
				}
				_, ok, err2 := tx.Key("delivery:1")
				if ok {
					t.Error("the failed write's redelivery key was stored")
				}
				return errors.Join(err, err2)
			}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
