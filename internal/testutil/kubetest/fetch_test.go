package kubetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// These tests run hack/build-envtest.sh on fake binaries (shell scripts that answer --version),
// so they check which path it takes without building or downloading a control plane.

// pinned returns the Kubernetes and etcd versions the script reads from hack/envtest.
func pinned(t *testing.T, root string) (k8s, etcd string) {
	t.Helper()
	list := func(dir, mod string) string {
		cmd := exec.Command("go", "list", "-m", "-f", "{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}", mod)
		cmd.Dir = filepath.Join(root, "hack", "envtest", dir)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("go list -m %s: %v", mod, err)
		}
		return strings.TrimSpace(string(out))
	}
	return list("kube-apiserver", "k8s.io/kubernetes"), list("etcd", "go.etcd.io/etcd/server/v3")
}

// fakeBinaries are the contents of a kube-apiserver and an etcd that only report a version.
func fakeBinaries(k8s, etcd string) map[string]string {
	return map[string]string{
		"kube-apiserver": fmt.Sprintf("#!/bin/sh\necho 'Kubernetes %s'\n", k8s),
		"etcd":           fmt.Sprintf("#!/bin/sh\necho 'etcd Version: %s'\necho 'Git SHA: fake'\n", strings.TrimPrefix(etcd, "v")),
	}
}

// runScript runs hack/build-envtest.sh with env added and returns stdout, stderr and the error.
func runScript(t *testing.T, root string, env ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(root, "hack", "build-envtest.sh"))
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return strings.TrimSpace(stdout.String()), stderr.String(), err
}

func platformDir(assetsRoot, k8s string) string {
	return filepath.Join(assetsRoot, "k8s", strings.TrimPrefix(k8s, "v")+"-"+runtime.GOOS+"-"+runtime.GOARCH)
}

// closedURL is an index URL nothing listens on.
func closedURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return "http://" + addr + "/index.yaml"
}

// TestBuildEnvtestKeepsPresentBinaries: binaries of the pinned versions are used as they are,
// without network (the index URL is closed and a download is the only other path allowed).
func TestBuildEnvtestKeepsPresentBinaries(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	k8s, etcd := pinned(t, root)
	assetsRoot := t.TempDir()
	dir := platformDir(assetsRoot, k8s)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range fakeBinaries(k8s, etcd) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	out, logs, err := runScript(t, root, "ENVTEST_ASSETS_DIR="+assetsRoot, "ENVTEST_SOURCE=download",
		"ENVTEST_INDEX="+closedURL(t), "SETUP_ENVTEST="+filepath.Join(t.TempDir(), "setup-envtest"))
	if err != nil {
		t.Fatalf("build-envtest.sh: %v\n%s", err, logs)
	}
	if out != dir {
		t.Errorf("printed %q, want %q", out, dir)
	}
	if !strings.Contains(logs, "present:") || strings.Contains(logs, "setup-envtest") {
		t.Errorf("want the present path and no setup-envtest, got:\n%s", logs)
	}
}

// TestBuildEnvtestDownloadsThenKeeps: with no binaries, the archive from the setup-envtest index
// lands in bin/k8s/<version>-<os>-<arch> (its etcd accepted whatever version it is), and the next
// run keeps it. With the index unreachable and downloads only, the script fails fast.
func TestBuildEnvtestDownloadsThenKeeps(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	k8s, _ := pinned(t, root)
	version := strings.TrimPrefix(k8s, "v")
	// The release's etcd need not be the version hack/envtest/etcd pins.
	archive := tarGz(t, fakeBinaries(k8s, "v3.0.99"))
	sum := sha512.Sum512(archive)
	name := fmt.Sprintf("envtest-v%s-%s-%s.tar.gz", version, runtime.GOOS, runtime.GOARCH)
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	defer srv.Close()
	mux.HandleFunc("/index.yaml", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "releases:\n  v%s:\n    %s:\n      hash: %s\n      selfLink: %s/%s\n",
			version, name, hex.EncodeToString(sum[:]), srv.URL, name)
	})
	mux.HandleFunc("/"+name, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(archive) })

	assetsRoot := t.TempDir()
	setupEnvtest := filepath.Join(t.TempDir(), "setup-envtest") // built by the script
	env := []string{"ENVTEST_ASSETS_DIR=" + assetsRoot, "ENVTEST_SOURCE=download", "SETUP_ENVTEST=" + setupEnvtest}

	// Offline first: nothing is written, and the failure is quick once setup-envtest is built.
	start := time.Now()
	_, logs, err := runScript(t, root, append(env, "ENVTEST_INDEX="+closedURL(t))...)
	if err == nil || !strings.Contains(logs, "download index not reachable") {
		t.Fatalf("want a failure naming the unreachable index, got %v:\n%s", err, logs)
	}
	t.Logf("offline attempt, including building setup-envtest: %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	if _, logs, err = runScript(t, root, append(env, "ENVTEST_INDEX="+closedURL(t))...); err == nil {
		t.Fatalf("want a failure, got:\n%s", logs)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the offline attempt took %s with setup-envtest built; want it to give up at once", d)
	}
	dir := platformDir(assetsRoot, k8s)
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a failed download left %v in %s", entries, dir)
	}

	env = append(env, "ENVTEST_INDEX="+srv.URL+"/index.yaml")
	out, logs, err := runScript(t, root, env...)
	if err != nil {
		t.Fatalf("download: %v\n%s", err, logs)
	}
	if out != dir || !strings.Contains(logs, "download:") {
		t.Fatalf("printed %q, want %q after a download; log:\n%s", out, dir, logs)
	}
	if err := checkAssets(dir); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(assetsRoot, "k8s", ".download.*")); len(left) != 0 {
		t.Errorf("scratch directories left behind: %v", left)
	}

	out, logs, err = runScript(t, root, env...)
	if err != nil || out != dir || !strings.Contains(logs, "present:") || !strings.Contains(logs, "from download") {
		t.Fatalf("second run: want the downloaded binaries kept, got %q, %v:\n%s", out, err, logs)
	}
}

func tarGz(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		hdr := &tar.Header{Name: "controller-tools/envtest/" + name, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
