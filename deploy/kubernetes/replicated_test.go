package kubernetes_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestReplicatedManifests checks the replicated mode's manifests
// (replicated/): everything the single-replica ones keep, plus three
// replicas on etcd spread over nodes, a disruption budget that keeps two,
// and no local state.
func TestReplicatedManifests(t *testing.T) {
	objs := render(t, "replicated")
	workload, config, c := checkBot(t, objs)
	if workload.Kind != "Deployment" || workload.Spec.Replicas == nil || *workload.Spec.Replicas != 3 {
		t.Errorf("the replicated mode is a Deployment of 3 replicas, got a %s of %v", workload.Kind, workload.Spec.Replicas)
	}
	if workload.Spec.Strategy.Type != "RollingUpdate" {
		t.Errorf("replicas share nothing local: update them one by one (RollingUpdate), not %q", workload.Spec.Strategy.Type)
	}
	if config["BOT_STORE"] != "etcd" || config["BOT_ETCD_ENDPOINTS"] == "" {
		t.Errorf("BOT_STORE=etcd and BOT_ETCD_ENDPOINTS must be set: %v", config)
	}
	if len(workload.Spec.VolumeClaimTemplates) > 0 {
		t.Errorf("a replica keeps no state of its own: no volume claims")
	}
	for path, vol := range mountsOf(c) {
		if path == "/tmp" || strings.HasPrefix(path, "/etc/") {
			continue
		}
		t.Errorf("unexpected volume %s at %s: the state is in etcd", vol, path)
	}
	pod := workload.Spec.Template.Spec
	spread := slices.ContainsFunc(pod.TopologySpreadConstraints, func(s spreadConstraint) bool {
		return s.TopologyKey == "kubernetes.io/hostname" && s.WhenUnsatisfiable == "DoNotSchedule" && s.MaxSkew == 1
	})
	if !spread {
		t.Errorf("replicas must be spread one per node (topologySpreadConstraints on kubernetes.io/hostname, DoNotSchedule)")
	}
	var pdb *object
	for i, o := range objs {
		if o.Kind == "PodDisruptionBudget" {
			pdb = &objs[i]
		}
	}
	if pdb == nil {
		t.Fatal("no PodDisruptionBudget")
	}
	if fmt.Sprint(pdb.Spec.MaxUnavailable) != "1" && fmt.Sprint(pdb.Spec.MinAvailable) != "2" {
		t.Errorf("the disruption budget must keep two of three replicas: %+v", pdb.Spec)
	}
	if pdb.Spec.Selector.MatchLabels["app.kubernetes.io/name"] != "incident-bot" {
		t.Errorf("the disruption budget does not select the bot's pods")
	}
}

// TestMinimalEtcdManifests checks the documented 3-member etcd: a quorum
// that survives one member, members on different nodes and volumes,
// compaction on, and the endpoints the replicated ConfigMap names.
func TestMinimalEtcdManifests(t *testing.T) {
	objs := render(t, "etcd")
	var sts, pdb *object
	for i, o := range objs {
		switch o.Kind {
		case "StatefulSet":
			sts = &objs[i]
		case "PodDisruptionBudget":
			pdb = &objs[i]
		}
	}
	if sts == nil || pdb == nil {
		t.Fatal("no StatefulSet or no PodDisruptionBudget")
	}
	if sts.Spec.Replicas == nil || *sts.Spec.Replicas != 3 || len(sts.Spec.VolumeClaimTemplates) != 1 {
		t.Errorf("etcd must be 3 members, each on its own volume")
	}
	if fmt.Sprint(pdb.Spec.MinAvailable) != "2" {
		t.Errorf("the etcd disruption budget must keep a quorum (minAvailable 2), got %v", pdb.Spec.MinAvailable)
	}
	if len(sts.Spec.Template.Spec.TopologySpreadConstraints) == 0 {
		t.Errorf("etcd members must be spread over nodes")
	}
	cmd := strings.Join(sts.Spec.Template.Spec.Containers[0].Command, " ")
	for _, flag := range []string{"--auto-compaction-retention", "--quota-backend-bytes", "--initial-cluster=etcd-0="} {
		if !strings.Contains(cmd, flag) {
			t.Errorf("etcd command lacks %s", flag)
		}
	}
	_, config, _ := checkBot(t, render(t, "replicated"))
	for i := range 3 {
		if ep := fmt.Sprintf("http://etcd-%d.etcd.incident-bot.svc:2379", i); !strings.Contains(config["BOT_ETCD_ENDPOINTS"], ep) {
			t.Errorf("the replicated ConfigMap does not name member %s", ep)
		}
	}
}
