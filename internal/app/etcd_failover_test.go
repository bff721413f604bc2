package app_test

import (
	"flag"
	"testing"
	"time"
)

// TestEtcdFailover is the long run of the failure schedule of
// etcd_storm_test.go (TestEtcdFailuresShort is the default suite's): it
// SIGKILLs the leader -etcd.kills times during the storm, then stops an etcd
// member and cuts a replica off, checks everything exactly once, and logs
// the failover times (median and max). Run it, and measure failover, with:
//
//	go test ./internal/app -run TestEtcdFailover$ -v -args -etcd.kills=10 -etcd.ttl=10s
var (
	etcdKills = flag.Int("etcd.kills", 0, "leader SIGKILLs in TestEtcdFailover (0: skip it)")
	etcdTTL   = flag.Duration("etcd.ttl", 2*time.Second, "BOT_ETCD_LEADER_TTL in TestEtcdFailover")
	etcdSeed  = flag.Int64("etcd.seed", 0, "seed of the failure schedule and the storm (0: from the clock; printed)")
)

func TestEtcdFailover(t *testing.T) {
	if *etcdKills <= 0 {
		t.Skip("a long failure run: set -etcd.kills=N")
	}
	runHA(t, haConfig{seed: *etcdSeed, kills: *etcdKills, ttl: *etcdTTL, remind: 4 * time.Second, pace: 100 * time.Millisecond, settle: 2 * time.Second, incidents: 10, grace: 5 * time.Second})
}
