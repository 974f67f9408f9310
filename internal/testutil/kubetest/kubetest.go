// Package kubetest gives tests a real Kubernetes control plane (envtest: kube-apiserver + etcd)
// with this operator's CRDs installed.
//
// A test binary shares one control plane, started on first use and stopped by Shutdown (call it
// from TestMain); each test gets its own namespace. The binaries come from $KUBEBUILDER_ASSETS or,
// when that is unset (a plain `go test` from an IDE), from bin/k8s/<version>-<os>-<arch> in the
// repository, where `make envtest` puts them (downloaded, or built from source when offline). Missing binaries fail the test with a message
// saying how to build them: tests never skip.
package kubetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	integrationsv1alpha1 "github.com/insforge/integrations-operator/api/v1alpha1"
)

// Env is a running control plane.
type Env struct {
	// Config reaches the apiserver as an administrator.
	Config *rest.Config
	// Client is a controller-runtime client with this operator's types registered.
	Client client.Client
	// Scheme holds client-go's and this operator's types.
	Scheme *k8sruntime.Scheme
	// Root is the repository root (where go.mod is).
	Root string

	env *envtest.Environment
}

// shared is the control plane of this test binary; package state because sharing it between
// the tests of a binary is the point. Shutdown stops it.
var shared struct {
	once sync.Once
	env  *Env
	err  error
}

// Shared returns the test binary's control plane, starting it on first use.
func Shared(t testing.TB) *Env {
	t.Helper()
	shared.once.Do(func() { shared.env, shared.err = Start() })
	if shared.err != nil {
		t.Fatalf("kubetest: %v", shared.err)
	}
	return shared.env
}

// Shutdown stops the shared control plane if it was started. Call it from TestMain after m.Run.
func Shutdown() {
	if shared.env != nil {
		if err := shared.env.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "kubetest: stopping the control plane: %v\n", err)
		}
	}
}

// Start starts a control plane with the CRDs from config/crd/bases installed.
func Start() (*Env, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets, err := AssetsDir(root)
	if err != nil {
		return nil, err
	}
	scheme := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("building the scheme: %w", err)
	}
	if err := integrationsv1alpha1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("building the scheme: %w", err)
	}
	te := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     []string{filepath.Join(root, "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		Scheme:                scheme,
	}
	// envtest's /24 holds 254 Services; the fleet benchmarks create a Service per PaymentRoute.
	te.ControlPlane.GetAPIServer().Configure().Set("service-cluster-ip-range", "10.0.0.0/16")
	cfg, err := te.Start()
	if err != nil {
		return nil, fmt.Errorf("starting envtest with binaries from %s: %w", assets, err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		_ = te.Stop()
		return nil, fmt.Errorf("creating a client: %w", err)
	}
	return &Env{Config: cfg, Client: c, Scheme: scheme, Root: root, env: te}, nil
}

// Stop stops the control plane.
func (e *Env) Stop() error { return e.env.Stop() }

// Kubeconfig writes a kubeconfig for an administrator of this control plane into the test's
// temp dir (for kubectl or a manager process) and returns its path.
func (e *Env) Kubeconfig(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := e.WriteKubeconfig(path); err != nil {
		t.Fatal(err)
	}
	return path
}

// WriteKubeconfig writes a kubeconfig for an administrator of this control plane to path (mode
// 0600: it holds a client key), for programs that are not tests (`make demo`).
func (e *Env) WriteKubeconfig(path string) error {
	user, err := e.env.AddUser(envtest.User{Name: "kubetest-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return fmt.Errorf("kubetest: adding a user: %w", err)
	}
	raw, err := user.KubeConfig()
	if err != nil {
		return fmt.Errorf("kubetest: rendering a kubeconfig: %w", err)
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return fmt.Errorf("kubetest: writing the kubeconfig: %w", err)
	}
	return nil
}

// Namespace creates a fresh namespace for one test. envtest cannot delete namespaces (there is
// no namespace controller), so it is left behind; names are random so tests never collide.
func (e *Env) Namespace(t testing.TB) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "test-" + hex.EncodeToString(b)}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.Client.Create(ctx, ns); err != nil {
		t.Fatalf("kubetest: creating namespace: %v", err)
	}
	return ns.Name
}

// RepoRoot finds the repository root by walking up from the working directory to go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			if _, err := os.Stat(filepath.Join(dir, "config", "crd", "bases")); err == nil {
				return dir, nil
			}
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no repository root (a directory with go.mod and config/crd/bases) above the working directory")
		}
		dir = parent
	}
}

// AssetsDir returns the directory holding kube-apiserver and etcd: $KUBEBUILDER_ASSETS, or the
// newest bin/k8s/<version>-<os>-<arch> under root.
func AssetsDir(root string) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		if err := checkAssets(dir); err != nil {
			return "", fmt.Errorf("KUBEBUILDER_ASSETS=%s: %w", dir, err)
		}
		return dir, nil
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "bin", "k8s", "*-"+runtime.GOOS+"-"+runtime.GOARCH))
	sort.Sort(sort.Reverse(sort.StringSlice(dirs)))
	for _, dir := range dirs {
		if checkAssets(dir) == nil {
			return dir, nil
		}
	}
	return "", fmt.Errorf("envtest binaries (kube-apiserver, etcd) not found in $KUBEBUILDER_ASSETS or %s: "+
		"run `make envtest` (the setup-envtest download, or a build from source of about 10 minutes and 2.5 GB of RAM when offline)",
		filepath.Join(root, "bin", "k8s"))
}

func checkAssets(dir string) error {
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		info, err := os.Stat(filepath.Join(dir, bin))
		if err != nil || info.Mode()&0o111 == 0 {
			return fmt.Errorf("%s missing or not executable in %s", bin, dir)
		}
	}
	return nil
}
