// Package etcdembed runs etcd members in-process (go.etcd.io/etcd's embed
// package) on loopback, for the load tool's etcd mode and its failover
// measurement. Tests use etcdtest.
package etcdembed

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Start starts one etcd member on loopback ports chosen at run time, with
// its data in dir, and returns it with its client URL. Close stops it.
func Start(dir string) (*embed.Etcd, string, error) {
	members, urls, err := StartCluster(dir, 1)
	if err != nil {
		return nil, "", err
	}
	return members[0], urls[0], nil
}

// StartCluster starts an n-member cluster on loopback ports chosen at run
// time, member i's data in dir/m<i>, and returns the members with their
// client URLs. Close each member to stop it.
func StartCluster(dir string, n int) ([]*embed.Etcd, []string, error) {
	var cfgs []*embed.Config
	var initial, clients []string
	for i := range n {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = filepath.Join(dir, cfg.Name)
		var urls []url.URL
		for range 2 {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				return nil, nil, err
			}
			urls = append(urls, url.URL{Scheme: "http", Host: ln.Addr().String()})
			ln.Close()
		}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = urls[:1], urls[:1]
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = urls[1:], urls[1:]
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		initial = append(initial, cfg.Name+"="+urls[1].String())
		clients = append(clients, urls[0].String())
		cfgs = append(cfgs, cfg)
	}
	type started struct {
		e   *embed.Etcd
		err error
	}
	done := make(chan started, n)
	for _, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
		go func() {
			e, err := embed.StartEtcd(cfg)
			done <- started{e, err}
		}()
	}
	var members []*embed.Etcd
	var errs []error
	for range n {
		s := <-done
		if s.err != nil {
			errs = append(errs, fmt.Errorf("starting etcd: %w", s.err))
			continue
		}
		members = append(members, s.e)
	}
	closeAll := func() {
		for _, e := range members {
			e.Close()
		}
	}
	if len(errs) > 0 {
		closeAll()
		return nil, nil, errors.Join(errs...)
	}
	timeout := time.After(30 * time.Second)
	for _, e := range members {
		select {
		case <-e.Server.ReadyNotify():
		case err := <-e.Err():
			closeAll()
			return nil, nil, fmt.Errorf("etcd: %w", err)
		case <-timeout:
			closeAll()
			return nil, nil, fmt.Errorf("etcd did not become ready")
		}
	}
	// Members come back from the goroutines in any order; return them in
	// the order of their client URLs.
	ordered := make([]*embed.Etcd, n)
	for _, e := range members {
		for i, u := range clients {
			if len(e.Config().ListenClientUrls) > 0 && e.Config().ListenClientUrls[0].String() == u {
				ordered[i] = e
			}
		}
	}
	return ordered, clients, nil
}
