package podrun

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// objects is a client.Reader over a fixed set of Secrets and ConfigMaps.
type objects struct {
	secrets    map[string]*corev1.Secret
	configMaps map[string]*corev1.ConfigMap
}

func (o objects) Get(_ context.Context, key client.ObjectKey, obj client.Object, _ ...client.GetOption) error {
	switch dst := obj.(type) {
	case *corev1.Secret:
		if s, ok := o.secrets[key.Name]; ok {
			s.DeepCopyInto(dst)
			return nil
		}
		return apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, key.Name)
	case *corev1.ConfigMap:
		if cm, ok := o.configMaps[key.Name]; ok {
			cm.DeepCopyInto(dst)
			return nil
		}
		return apierrors.NewNotFound(schema.GroupResource{Resource: "configmaps"}, key.Name)
	}
	return fmt.Errorf("unexpected %T", obj)
}

func (o objects) List(context.Context, client.ObjectList, ...client.ListOption) error {
	return fmt.Errorf("not implemented")
}

func secretRef(name, secret, key string, optional bool) corev1.EnvVar {
	return corev1.EnvVar{Name: name, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Key: key, Optional: ptr.To(optional),
	}}}
}

func fixture() objects {
	return objects{
		secrets: map[string]*corev1.Secret{
			"db":      {Data: map[string][]byte{"uri": []byte("postgres://u:hunter2@db/app")}},
			"headers": {Data: map[string][]byte{"Authorization": []byte("Bearer t0ken"), "X-Api": []byte("k")}},
		},
		configMaps: map[string]*corev1.ConfigMap{
			"settings": {Data: map[string]string{"LEVEL": "debug"}},
			"app":      {Data: map[string]string{"config.json": `{"spoolDir":"/var/spool/app","listen":":8080"}`}},
		},
	}
}

func TestResolveEnv(t *testing.T) {
	ctr := corev1.Container{
		EnvFrom: []corev1.EnvFromSource{
			{Prefix: "H_", SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "headers"}}},
			{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "settings"}}},
		},
		Env: []corev1.EnvVar{
			{Name: "PLAIN", Value: "v"},
			secretRef("DB", "db", "uri", false),
			secretRef("MAYBE", "absent", "x", true),
			{Name: "LEVEL", Value: "info"}, // env overrides envFrom, as in a pod
		},
	}
	env, err := resolveEnv(context.Background(), fixture(), "ns", ctr)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(env, "\n")
	for _, want := range []string{"H_Authorization=Bearer t0ken", "H_X-Api=k", "PLAIN=v", "DB=postgres://u:hunter2@db/app", "LEVEL=info"} {
		if !strings.Contains(got, want) {
			t.Errorf("env lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "MAYBE") || strings.Contains(got, "LEVEL=debug") {
		t.Errorf("optional missing or overridden variables present:\n%s", got)
	}
}

func TestResolveEnvMissingKeyNamesItWithoutValues(t *testing.T) {
	ctr := corev1.Container{Env: []corev1.EnvVar{secretRef("DB", "db", "url", false)}}
	_, err := resolveEnv(context.Background(), fixture(), "ns", ctr)
	if err == nil || !strings.Contains(err.Error(), "Secret db has no key url") {
		t.Fatalf("err = %v, want it to name the Secret and the key", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("the error leaks a secret value: %v", err)
	}
}

func TestRemap(t *testing.T) {
	mounts := map[string]string{"/etc/app": "/tmp/a", "/etc/app/nested": "/tmp/b", "/var/spool/": "/tmp/c"}
	for in, want := range map[string]string{
		"/etc/app/config.json":   "/tmp/a/config.json",
		"/etc/app/nested/x":      "/tmp/b/x",
		"/etc/app":               "/tmp/a",
		"/var/spool/out":         "/tmp/c/out",
		"/etc/application":       "/etc/application",
		"--log-level=info":       "--log-level=info",
		"relative/etc/app/thing": "relative/etc/app/thing",
	} {
		if got := Remap(in, mounts); got != want {
			t.Errorf("Remap(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestStart runs /bin/sh as the image's /app: the script writes its env and its (edited) config
// file into the spool emptyDir, through paths given in the container's args.
func TestStart(t *testing.T) {
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "app", Namespace: "ns"},
		Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name:    "app",
				Command: []string{"/app"},
				Args:    []string{"-c", `printf '%s\n' "$DB" > "$1"; cat "$2" >> "$1"`, "sh", "/var/spool/app/out", "/etc/app/config.json"},
				Env:     []corev1.EnvVar{secretRef("DB", "db", "uri", false)},
				VolumeMounts: []corev1.VolumeMount{
					{Name: "config", MountPath: "/etc/app", ReadOnly: true},
					{Name: "spool", MountPath: "/var/spool/app"},
				},
			}},
			Volumes: []corev1.Volume{
				{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
					LocalObjectReference: corev1.LocalObjectReference{Name: "app"},
				}}},
				{Name: "spool", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
		}}},
	}
	edit := func(_ string, data []byte, mounts map[string]string) ([]byte, error) {
		return []byte(strings.ReplaceAll(string(data), "/var/spool/app", mounts["/var/spool/app"])), nil
	}
	p, err := Start(context.Background(), Options{
		Client: fixture(), Deployment: d, Binaries: map[string]string{"/app": "/bin/sh"},
		Dir: t.TempDir(), Edit: edit,
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("the process did not exit")
	}
	if p.Cmd.ProcessState.ExitCode() != 0 {
		t.Fatalf("exit code %d", p.Cmd.ProcessState.ExitCode())
	}
	spool := p.Mounts["/var/spool/app"]
	out, err := os.ReadFile(filepath.Join(spool, "out"))
	if err != nil {
		t.Fatal(err)
	}
	want := "postgres://u:hunter2@db/app\n" + `{"spoolDir":"` + spool + `","listen":":8080"}`
	if string(out) != want {
		t.Errorf("the process wrote\n%s\nwant\n%s", out, want)
	}
}

func TestStartRefusesUnknownBinary(t *testing.T) {
	d := &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
		Containers: []corev1.Container{{Name: "app", Command: []string{"/other"}}},
	}}}}
	_, err := Start(context.Background(), Options{Client: fixture(), Deployment: d, Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "no local binary for /other") {
		t.Fatalf("err = %v, want a refusal naming /other", err)
	}
}
