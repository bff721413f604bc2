package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"

	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/incidentbot/incident-bot/internal/etcdstore/etcdembed"
)

// failoverGoal is #16's goal: from the leader's death to the first job
// completed by the new leader.
const failoverGoal = 15 * time.Second

// failoverReplica is one `bot serve` of the failover measurement.
type failoverReplica struct {
	cmd  *exec.Cmd
	addr string
}

// runFailover measures the replicated mode's failover: three `bot serve`
// replicas on a three-member etcd embedded in this process, webhooks
// arriving on every replica throughout (each a job for the leader), and
// the leader SIGKILLed kills times, a replacement started after each
// failover. A failover lasts from the kill to the first job the new
// leader completes, as its /metrics tell (incidentbot_leader and
// incidentbot_job_runs_total{outcome="done"}, scraped every 25 ms).
func runFailover(ctx context.Context, bot string, env []string, dir string, kills int, ttl time.Duration, pdSecret string) (string, error) {
	members, endpoints, err := etcdembed.StartCluster(filepath.Join(dir, "failover-etcd"), 3)
	if err != nil {
		return "", err
	}
	defer func() {
		for _, m := range members {
			m.Close()
		}
	}()
	client := httpClient(2 * time.Second)
	var (
		mu       sync.Mutex
		replicas [3]*failoverReplica
		gen      int
	)
	start := func(i int) error {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		addr := ln.Addr().String()
		ln.Close()
		gen++
		cmd := exec.Command(bot, "serve")
		cmd.Env = append(slices.Clone(env), "BOT_ADDR="+addr, "BOT_DB="+filepath.Join(dir, fmt.Sprintf("failover-%d.db", i)),
			"BOT_ADMIN_SOCKET="+filepath.Join(dir, fmt.Sprintf("failover-%d.sock", gen)),
			"BOT_STORE=etcd", "BOT_ETCD_ENDPOINTS="+strings.Join(endpoints, ","), "BOT_ETCD_PREFIX=/failover/",
			"BOT_ETCD_LEADER_TTL="+ttl.String())
		if err := cmd.Start(); err != nil {
			return err
		}
		r := &failoverReplica{cmd: cmd, addr: addr}
		for t0 := time.Now(); ; time.Sleep(20 * time.Millisecond) {
			if resp, err := client.Get("http://" + addr + "/readyz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Since(t0) > 30*time.Second {
				_ = cmd.Process.Kill()
				_ = cmd.Wait()
				return fmt.Errorf("replica %d did not become ready within 30s", i)
			}
		}
		mu.Lock()
		replicas[i] = r
		mu.Unlock()
		return nil
	}
	stopAll := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range replicas {
			if r != nil {
				_ = r.cmd.Process.Signal(syscall.SIGTERM)
				_ = r.cmd.Wait()
			}
		}
	}
	defer stopAll()
	for i := range 3 {
		if err := start(i); err != nil {
			return "", err
		}
	}

	// Traffic: a PagerDuty annotation every 100 ms to a running replica.
	tctx, stopTraffic := context.WithCancel(ctx)
	var traffic sync.WaitGroup
	defer func() { stopTraffic(); traffic.Wait() }()
	traffic.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		rng := rand.New(rand.NewPCG(1, 16))
		for n := 0; ; n++ {
			select {
			case <-tctx.Done():
				return
			case <-tick.C:
			}
			mu.Lock()
			r := replicas[rng.IntN(3)]
			mu.Unlock()
			if r == nil {
				continue
			}
			typ := "incident.annotated"
			if n == 0 {
				typ = "incident.triggered"
			}
			id := fmt.Sprintf("fo-%d", n)
			body := webhookBody("PFAILOVER", typ, id, time.Now())
			req, _ := http.NewRequestWithContext(tctx, http.MethodPost, "http://"+r.addr+"/webhooks/pagerduty", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Webhook-Id", id)
			req.Header.Set("X-PagerDuty-Signature", "v1="+hexHMAC(pdSecret, body))
			do(client, req)
		}
	})

	// scrape reads whether replica i leads and how many jobs it completed.
	scrape := func(i int) (leading bool, done float64, ok bool) {
		mu.Lock()
		r := replicas[i]
		mu.Unlock()
		if r == nil {
			return false, 0, false
		}
		resp, err := client.Get("http://" + r.addr + "/metrics")
		if err != nil {
			return false, 0, false
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			name, val, _ := strings.Cut(sc.Text(), " ")
			v, err := strconv.ParseFloat(val, 64)
			if err != nil {
				continue
			}
			switch {
			case name == "incidentbot_leader":
				leading = v == 1
			case strings.HasPrefix(name, "incidentbot_job_runs_total{") && strings.Contains(name, `outcome="done"`):
				done += v
			}
		}
		return leading, done, resp.StatusCode == http.StatusOK
	}
	var took []time.Duration
	for k := range kills {
		leader := -1
		for t0 := time.Now(); leader < 0; time.Sleep(50 * time.Millisecond) {
			for i := range 3 {
				if l, _, _ := scrape(i); l {
					leader = i
				}
			}
			if time.Since(t0) > ttl+time.Minute {
				return "", fmt.Errorf("kill %d: no leader", k+1)
			}
		}
		base := map[int]float64{}
		for i := range 3 {
			if i != leader {
				_, base[i], _ = scrape(i)
			}
		}
		mu.Lock()
		victim := replicas[leader]
		replicas[leader] = nil
		mu.Unlock()
		killed := time.Now()
		_ = victim.cmd.Process.Signal(syscall.SIGKILL)
		_ = victim.cmd.Wait()
		var d time.Duration
		for d == 0 {
			for i, b := range base {
				if l, done, _ := scrape(i); l && done > b {
					d = time.Since(killed)
				}
			}
			if d == 0 && time.Since(killed) > ttl+time.Minute {
				return "", fmt.Errorf("kill %d: no new leader completed a job within %s", k+1, ttl+time.Minute)
			}
			time.Sleep(25 * time.Millisecond)
		}
		took = append(took, d)
		if err := start(leader); err != nil {
			return "", err
		}
	}
	slices.Sort(took)
	verdict := "met"
	if took[len(took)-1] >= failoverGoal {
		verdict = "missed"
	}
	var each []string
	for _, d := range took {
		each = append(each, d.Round(10*time.Millisecond).String())
	}
	return fmt.Sprintf("failover: 3 replicas on a 3-member etcd, BOT_ETCD_LEADER_TTL=%s, %d SIGKILLs of the leader: median %s, max %s (goal < %s: %s; sorted: %s)\n",
		ttl, len(took), took[len(took)/2].Round(10*time.Millisecond), took[len(took)-1].Round(10*time.Millisecond), failoverGoal, verdict, strings.Join(each, " ")), nil
}
