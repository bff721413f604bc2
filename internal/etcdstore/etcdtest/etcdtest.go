// Package etcdtest runs real etcd members in-process (go.etcd.io/etcd's
// embed package) for tests: on loopback, on ports chosen at run time, with
// data in the test's temporary directory. Only tests import it.
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/incidentbot/incident-bot/internal/etcdstore"
)

// Member is one running etcd member.
type Member struct {
	Name      string
	ClientURL string
	peerURL   string
	dir       string
	etcd      *embed.Etcd
}

// Cluster is a set of members started together.
type Cluster struct {
	t       testing.TB
	Members []*Member
	initial string
}

// freePort reserves a loopback port and frees it for etcd to bind. Another
// process could take it in between; Start then starts again on new ports.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Start starts an n-member cluster and stops it when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	// The ports are free when chosen, but another process may bind one
	// before etcd does: start again on new ports then.
	var err error
	for range 3 {
		var c *Cluster
		if c, err = tryStart(t, n); err == nil {
			t.Cleanup(func() {
				for _, m := range c.Members {
					m.Stop()
				}
			})
			return c
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	t.Fatal(err)
	return nil
}

func tryStart(t testing.TB, n int) (*Cluster, error) {
	c := &Cluster{t: t}
	var initial []string
	for i := range n {
		m := &Member{
			Name:      fmt.Sprintf("m%d", i),
			ClientURL: "http://" + freePort(t),
			peerURL:   "http://" + freePort(t),
			dir:       t.TempDir(),
		}
		c.Members = append(c.Members, m)
		initial = append(initial, m.Name+"="+m.peerURL)
	}
	c.initial = strings.Join(initial, ",")
	errs := make(chan error, n)
	for _, m := range c.Members {
		go func() { errs <- c.start(m, embed.ClusterStateFlagNew) }()
	}
	var first error
	for range n {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	if first != nil {
		for _, m := range c.Members {
			m.Stop()
		}
		return nil, first
	}
	return c, nil
}

func (c *Cluster) start(m *Member, state string) error {
	cfg := embed.NewConfig()
	cfg.Name = m.Name
	cfg.Dir = m.dir
	cu, _ := url.Parse(m.ClientURL)
	pu, _ := url.Parse(m.peerURL)
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{*cu}, []url.URL{*cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{*pu}, []url.URL{*pu}
	cfg.InitialCluster = c.initial
	cfg.ClusterState = state
	// Members log to nowhere: a stopped member's listeners report errors
	// that are expected here.
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	// A short election timeout keeps failover tests short; loopback is fast.
	cfg.TickMs, cfg.ElectionMs = 20, 200
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return fmt.Errorf("starting etcd member %s: %w", m.Name, err)
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return fmt.Errorf("etcd member %s: %w", m.Name, err)
	case <-time.After(30 * time.Second):
		e.Close()
		return fmt.Errorf("etcd member %s did not become ready", m.Name)
	}
	m.etcd = e
	return nil
}

// Stop stops the member (its data stays for Restart).
func (m *Member) Stop() {
	if m.etcd != nil {
		m.etcd.Close()
		m.etcd = nil
	}
}

// Restart starts a stopped member again on its data.
func (c *Cluster) Restart(m *Member) {
	c.t.Helper()
	if err := c.start(m, embed.ClusterStateFlagExisting); err != nil {
		c.t.Fatal(err)
	}
}

// Endpoints are the members' client URLs.
func (c *Cluster) Endpoints() []string {
	var out []string
	for _, m := range c.Members {
		out = append(out, m.ClientURL)
	}
	return out
}

// Client returns a client of the whole cluster, closed when the test ends.
func (c *Cluster) Client() *clientv3.Client {
	c.t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: c.Endpoints(), DialTimeout: 5 * time.Second})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// Open opens a store on the cluster under prefix (a new prefix gives an
// empty store), closed when the test ends.
func (c *Cluster) Open(prefix string, opts etcdstore.Options) *etcdstore.Store {
	c.t.Helper()
	opts.Endpoints, opts.Prefix = c.Endpoints(), prefix
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := etcdstore.Open(ctx, opts)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = s.Close() })
	return s
}
