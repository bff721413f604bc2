package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/incidentbot/incident-bot/internal/boltstore"
	"github.com/incidentbot/incident-bot/internal/incident"
)

func seed(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	db := fs.String("db", "", "database file to create or extend")
	n := fs.Int("incidents", 100000, "incidents to add")
	events := fs.Int("events", 10, "timeline events per incident")
	if err := fs.Parse(args); err != nil || *db == "" {
		fmt.Fprintln(stderr, "usage: loadtest seed --db FILE [--incidents N] [--events E]")
		return 2
	}
	start := time.Now()
	if err := seedStore(*db, *n, *events); err != nil {
		fmt.Fprintf(stderr, "loadtest seed: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "seeded %d incidents with %d events each into %s in %s\n", *n, *events, *db, time.Since(start).Round(time.Millisecond))
	return 0
}

// seedStore adds n resolved incidents (one in ten left open) with events
// each, a thousand incidents per transaction.
func seedStore(path string, n, events int) error {
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		return err
	}
	defer s.Close()
	base := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for done := 0; done < n; {
		batch := min(1000, n-done)
		err := s.Update(context.Background(), func(tx incident.Tx) error {
			for range batch {
				num, err := tx.NextIncidentNumber()
				if err != nil {
					return err
				}
				at := base.Add(time.Duration(num) * 7 * time.Minute)
				inc := &incident.Incident{
					Number: num, Title: fmt.Sprintf("seeded incident %d", num), Severity: incident.Severity(1 + num%4),
					Status: incident.StatusResolved, Source: incident.SourcePagerDuty, DetectedAt: at, DeclaredAt: at,
					AcknowledgedAt: at.Add(3 * time.Minute), MitigatedAt: at.Add(20 * time.Minute), ResolvedAt: at.Add(45 * time.Minute),
					Services: []string{fmt.Sprintf("service-%d", num%12)},
					Chat:     incident.ChatRef{ChannelID: fmt.Sprintf("CSEED%d", num), ChannelName: fmt.Sprintf("inc-%d-seeded", num), PostedSeq: int64(events)},
				}
				if num%10 == 0 {
					inc.Status, inc.MitigatedAt, inc.ResolvedAt = incident.StatusAcknowledged, time.Time{}, time.Time{}
				}
				if err := tx.PutIncident(inc); err != nil {
					return err
				}
				for e := range events {
					ev := &incident.Event{Incident: num, At: at.Add(time.Duration(e) * time.Minute), Kind: incident.EventNote,
						Actor: incident.Actor{ID: "USEED", Source: incident.SourceSlack}, Text: fmt.Sprintf("note %d", e), Recorded: at}
					if _, err := tx.AppendEvent(ev); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		done += batch
	}
	return nil
}

func startup(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest startup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bot := fs.String("bot", "", "the bot binary")
	db := fs.String("db", "", "the database file to start on")
	addr := fs.String("addr", "127.0.0.1:18080", "address for the bot to listen on")
	runs := fs.Int("runs", 5, "start-ups to time (the median is reported)")
	if err := fs.Parse(args); err != nil || *bot == "" || *db == "" {
		fmt.Fprintln(stderr, "usage: loadtest startup --bot BINARY --db FILE [--addr HOST:PORT] [--runs N]")
		return 2
	}
	empty := filepath.Join(os.TempDir(), fmt.Sprintf("loadtest-empty-%d.db", os.Getpid()))
	defer os.Remove(empty)
	defer os.Remove(empty + ".sock")
	baseline, err := timeStartups(*bot, empty, *addr, *runs)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest startup (empty database): %v\n", err)
		return 1
	}
	full, err := timeStartups(*bot, *db, *addr, *runs)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest startup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "start-up to ready, median of %d: empty database %s, %s %s (ratio %.1f)\n",
		*runs, baseline.Round(time.Millisecond), *db, full.Round(time.Millisecond), float64(full)/float64(baseline))
	return 0
}

func timeStartups(bot, db, addr string, runs int) (time.Duration, error) {
	var times []time.Duration
	for range runs {
		d, err := timeStartup(bot, db, addr)
		if err != nil {
			return 0, err
		}
		times = append(times, d)
	}
	return result{latencies: times}.pct(50), nil
}

// timeStartup starts `bot serve` and measures the time until /readyz
// answers 200, then stops it with SIGTERM and waits for it to exit.
func timeStartup(bot, db, addr string) (time.Duration, error) {
	cmd := exec.Command(bot, "serve")
	cmd.Env = append(os.Environ(), "BOT_DB="+db, "BOT_ADDR="+addr, "BOT_LOG_LEVEL=warn")
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	client := httpClient(200 * time.Millisecond)
	for time.Since(start) < 60*time.Second {
		resp, err := client.Get("http://" + addr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return time.Since(start), nil
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	return 0, fmt.Errorf("bot did not become ready within 60s")
}
