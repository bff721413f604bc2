// Package kubernetes_test checks the Kubernetes manifests in this directory
// for the properties the bot depends on.
package kubernetes_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

type kustomization struct {
	Resources []string `yaml:"resources"`
}

type object struct {
	Kind     string                `yaml:"kind"`
	Metadata struct{ Name string } `yaml:"metadata"`
	Data     map[string]string     `yaml:"data"`
	Spec     struct {
		Replicas       *int                  `yaml:"replicas"`
		UpdateStrategy struct{ Type string } `yaml:"updateStrategy"`
		Strategy       struct{ Type string } `yaml:"strategy"`
		Template       struct {
			Metadata struct {
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"metadata"`
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
		// Service
		Ports []struct {
			Port       int `yaml:"port"`
			TargetPort any `yaml:"targetPort"`
		} `yaml:"ports"`
		VolumeClaimTemplates []struct {
			Metadata struct{ Name string } `yaml:"metadata"`
		} `yaml:"volumeClaimTemplates"`
		// PodDisruptionBudget
		MinAvailable   any `yaml:"minAvailable"`
		MaxUnavailable any `yaml:"maxUnavailable"`
		Selector       struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
	} `yaml:"spec"`
}

type podSpec struct {
	ShareProcessNamespace *bool `yaml:"shareProcessNamespace"`
	SecurityContext       struct {
		RunAsNonRoot *bool `yaml:"runAsNonRoot"`
		RunAsUser    int   `yaml:"runAsUser"`
	} `yaml:"securityContext"`
	Containers                []container        `yaml:"containers"`
	TopologySpreadConstraints []spreadConstraint `yaml:"topologySpreadConstraints"`
	Volumes                   []struct {
		Name     string    `yaml:"name"`
		EmptyDir *struct{} `yaml:"emptyDir"`
	} `yaml:"volumes"`
}

type spreadConstraint struct {
	TopologyKey       string `yaml:"topologyKey"`
	WhenUnsatisfiable string `yaml:"whenUnsatisfiable"`
	MaxSkew           int    `yaml:"maxSkew"`
}

type probe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"`
	} `yaml:"httpGet"`
}

type container struct {
	Command []string `yaml:"command"`
	Ports   []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	EnvFrom []struct {
		SecretRef    *struct{ Name string } `yaml:"secretRef"`
		ConfigMapRef *struct{ Name string } `yaml:"configMapRef"`
	} `yaml:"envFrom"`
	LivenessProbe   *probe `yaml:"livenessProbe"`
	ReadinessProbe  *probe `yaml:"readinessProbe"`
	SecurityContext struct {
		ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
		AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
	} `yaml:"securityContext"`
	Resources struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	} `yaml:"volumeMounts"`
}

// render reads the manifests dir/kustomization.yaml lists, as kubectl
// apply -k would (no patches are used here).
func render(t *testing.T, dir string) []object {
	t.Helper()
	raw, err := os.ReadFile(path.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.Unmarshal(raw, &k); err != nil {
		t.Fatal(err)
	}
	var out []object
	for _, r := range k.Resources {
		b, err := os.ReadFile(path.Join(dir, r))
		if err != nil {
			t.Fatalf("kustomization lists %s: %v", r, err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o object
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", r, err)
			}
			out = append(out, o)
		}
	}
	return out
}

func TestManifests(t *testing.T) {
	workload, config, c := checkBot(t, render(t, "."))
	// Exactly one replica: bbolt has one writer.
	if workload.Spec.Replicas == nil || *workload.Spec.Replicas != 1 {
		t.Errorf("replicas must be exactly 1")
	}
	if workload.Kind == "Deployment" && workload.Spec.Strategy.Type != "Recreate" {
		t.Errorf("a Deployment must use the Recreate strategy so two pods never share the database")
	}
	// The database lives on a persistent volume.
	dbDir := path.Dir(config["BOT_DB"])
	claim := mountsOf(c)[dbDir]
	var persistent bool
	for _, v := range workload.Spec.VolumeClaimTemplates {
		persistent = persistent || v.Metadata.Name == claim
	}
	if claim == "" || !persistent {
		t.Errorf("BOT_DB's directory %s is not on a PersistentVolumeClaim", dbDir)
	}
}

func mountsOf(c container) map[string]string {
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m.Name
	}
	return mounts
}

// checkBot checks what every variant of the bot's manifests keeps — one
// workload, non-root, read-only, probes and metrics on BOT_METRICS_ADDR's
// port, only BOT_ADDR exposed, secrets from a Secret, a writable /tmp,
// requests — and returns the workload, its ConfigMap and its container.
func checkBot(t *testing.T, objs []object) (*object, map[string]string, container) {
	t.Helper()
	var (
		workload *object
		config   map[string]string
		services []object
	)
	for i, o := range objs {
		switch o.Kind {
		case "StatefulSet", "Deployment":
			if workload != nil {
				t.Fatal("more than one workload runs the bot")
			}
			workload = &objs[i]
		case "ConfigMap":
			config = o.Data
		case "Service":
			services = append(services, o)
		case "Secret":
			t.Errorf("a Secret with values is part of the rendered manifests (%s); create it out of band", o.Metadata.Name)
		}
	}
	if workload == nil || config == nil {
		t.Fatal("no workload or no ConfigMap")
	}
	pod := workload.Spec.Template.Spec
	if pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot || pod.SecurityContext.RunAsUser == 0 {
		t.Errorf("the pod must run as a non-root user")
	}
	if pod.ShareProcessNamespace == nil || !*pod.ShareProcessNamespace {
		t.Errorf("the bot is PID 1 without shareProcessNamespace, and nothing reaps what killed runbook steps leave behind")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("read-only root filesystem and no privilege escalation required")
	}
	// The probes and metrics are on BOT_METRICS_ADDR's port, which no
	// Service exposes; the Services expose BOT_ADDR's port, the routes
	// Slack and PagerDuty call.
	portName := func(addr string) (name, number string) {
		number = addr[strings.LastIndex(addr, ":")+1:]
		for _, p := range c.Ports {
			if p.Name != "" && strings.TrimSpace(number) == strconv.Itoa(p.ContainerPort) {
				return p.Name, number
			}
		}
		t.Fatalf("no named container port matches the address %q", addr)
		return "", ""
	}
	if config["BOT_METRICS_ADDR"] == "" {
		t.Fatal("BOT_METRICS_ADDR is unset: the probes and /metrics would share the exposed listener")
	}
	publicName, publicPort := portName(config["BOT_ADDR"])
	opsName, opsPort := portName(config["BOT_METRICS_ADDR"])
	if opsPort == publicPort {
		t.Fatal("BOT_METRICS_ADDR and BOT_ADDR share a port")
	}
	for name, pr := range map[string]*probe{"/healthz": c.LivenessProbe, "/readyz": c.ReadinessProbe} {
		if pr == nil || pr.HTTPGet.Path != name || (pr.HTTPGet.Port != opsName && fmt.Sprint(pr.HTTPGet.Port) != opsPort) {
			t.Errorf("probe %s missing or not on BOT_METRICS_ADDR's port %s: %+v", name, opsName, pr)
		}
	}
	if got := workload.Spec.Template.Metadata.Annotations["prometheus.io/port"]; got != opsPort {
		t.Errorf("prometheus.io/port is %q, want BOT_METRICS_ADDR's port %s", got, opsPort)
	}
	exposed := false
	for _, svc := range services {
		for _, p := range svc.Spec.Ports {
			target := fmt.Sprint(p.TargetPort)
			if target == opsName || target == opsPort {
				t.Errorf("Service %s exposes the metrics port (%s)", svc.Metadata.Name, target)
			}
			exposed = exposed || target == publicName || target == publicPort
		}
	}
	if !exposed {
		t.Errorf("no Service exposes BOT_ADDR's port %s", publicName)
	}
	// Secrets come from a Secret; the ConfigMap holds none.
	var fromSecret bool
	for _, e := range c.EnvFrom {
		fromSecret = fromSecret || e.SecretRef != nil
	}
	if !fromSecret {
		t.Errorf("tokens must come from a Secret (envFrom secretRef)")
	}
	for k := range config {
		if strings.Contains(k, "TOKEN") || strings.Contains(k, "SECRET") || strings.Contains(k, "ROUTING_KEY") || strings.Contains(k, "PASSWORD") {
			t.Errorf("the ConfigMap holds a secret: %s", k)
		}
	}
	// /tmp is writable for runbooks.
	mounts := mountsOf(c)
	var tmpWritable bool
	for _, v := range pod.Volumes {
		tmpWritable = tmpWritable || (v.Name == mounts["/tmp"] && v.EmptyDir != nil)
	}
	if !tmpWritable {
		t.Errorf("/tmp must be a writable emptyDir (runbook runs use it; the root filesystem is read-only)")
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
		t.Errorf("resource requests and a memory limit are required")
	}
	return workload, config, c
}
