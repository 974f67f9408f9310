// Package podrun runs the container of a Deployment as a local process, for a control plane
// without a kubelet (envtest): it resolves the container's env and envFrom from the real Secrets
// and ConfigMaps, materialises its ConfigMap and emptyDir volumes in a local directory, rewrites
// mount paths in the command line to that directory, and maps the image's binaries to local ones.
//
// It proves the rendered Deployment is runnable as rendered: anything it cannot resolve (a missing
// Secret key, a volume kind it does not know) is an error, never silently skipped.
package podrun

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/insforge/integrations-operator/internal/testutil/proc"
)

// Options say which container to run and how.
type Options struct {
	// Client reads the Secrets and ConfigMaps the container references.
	Client client.Reader
	// Deployment holds the pod template; its namespace is where references are resolved.
	Deployment *appsv1.Deployment
	// Container names the container; empty means the first.
	Container string
	// Binaries maps an executable path inside the image (command[0]) to a local binary.
	Binaries map[string]string
	// Dir receives one subdirectory per volume mount.
	Dir string
	// Edit, if set, may rewrite each file materialised from a ConfigMap volume (what a test must
	// change that a pod network would give for free, such as listen addresses). mounts maps
	// each container mount path to its local directory.
	Edit func(file string, data []byte, mounts map[string]string) ([]byte, error)
	// Stdout and Stderr receive the process's output; nil discards it.
	Stdout, Stderr io.Writer
}

// Process is a running container.
type Process struct {
	Cmd *exec.Cmd
	// Mounts maps each container mount path to its local directory.
	Mounts map[string]string
	// Env is the resolved environment. It holds secrets: never log it.
	Env []string

	run *proc.Process
}

// Start resolves everything and starts the process.
func Start(ctx context.Context, o Options) (*Process, error) {
	spec := o.Deployment.Spec.Template.Spec
	ctr, err := container(spec, o.Container)
	if err != nil {
		return nil, err
	}
	ns := o.Deployment.Namespace
	env, err := resolveEnv(ctx, o.Client, ns, ctr)
	if err != nil {
		return nil, err
	}
	mounts, err := materialise(ctx, o, spec, ctr)
	if err != nil {
		return nil, err
	}
	argv := append(append([]string{}, ctr.Command...), ctr.Args...)
	if len(argv) == 0 {
		return nil, fmt.Errorf("podrun: container %s has no command (the image's entrypoint cannot be known here)", ctr.Name)
	}
	bin, ok := o.Binaries[argv[0]]
	if !ok {
		return nil, fmt.Errorf("podrun: no local binary for %s", argv[0])
	}
	for i := range argv[1:] {
		argv[i+1] = remap(argv[i+1], mounts)
	}
	cmd := exec.Command(bin, argv[1:]...)
	cmd.Env = env
	cmd.Dir = o.Dir
	cmd.Stdout, cmd.Stderr = orDiscard(o.Stdout), orDiscard(o.Stderr)
	// Pdeathsig stops the process if ours dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	run, err := proc.Start(cmd)
	if err != nil {
		return nil, fmt.Errorf("podrun: starting %s: %w", bin, err)
	}
	return &Process{Cmd: cmd, Mounts: mounts, Env: env, run: run}, nil
}

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.run.Exited() }

// WaitReady calls ready every interval until it returns nil, the process exits (an error
// wrapping proc.ErrExited) or ctx ends.
func (p *Process) WaitReady(ctx context.Context, interval time.Duration, ready func(context.Context) error) error {
	return p.run.WaitReady(ctx, interval, ready)
}

// Stop sends SIGTERM, as the kubelet does, and waits up to grace before killing. It returns
// the process's exit error (nil for a clean exit).
func (p *Process) Stop(grace time.Duration) error {
	err := p.run.Stop(syscall.SIGTERM, grace)
	if errors.Is(err, proc.ErrKilled) {
		return fmt.Errorf("podrun: %w", err)
	}
	return err
}

func container(spec corev1.PodSpec, name string) (corev1.Container, error) {
	for _, c := range spec.Containers {
		if name == "" || c.Name == name {
			return c, nil
		}
	}
	return corev1.Container{}, fmt.Errorf("podrun: no container %q in the pod template", name)
}

// materialise creates a directory per volume mount and fills ConfigMap volumes.
func materialise(ctx context.Context, o Options, spec corev1.PodSpec, ctr corev1.Container) (map[string]string, error) {
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	mounts := map[string]string{}
	type pending struct{ dir, file string }
	var files []pending
	for i, m := range ctr.VolumeMounts {
		v, ok := volumes[m.Name]
		if !ok {
			return nil, fmt.Errorf("podrun: volume mount %s names no volume", m.Name)
		}
		dir := filepath.Join(o.Dir, fmt.Sprintf("mount-%d-%s", i, m.Name))
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("podrun: creating %s: %w", dir, err)
		}
		mounts[m.MountPath] = dir
		switch {
		case v.EmptyDir != nil:
		case v.ConfigMap != nil:
			var cm corev1.ConfigMap
			if err := o.Client.Get(ctx, client.ObjectKey{Namespace: o.Deployment.Namespace, Name: v.ConfigMap.Name}, &cm); err != nil {
				return nil, fmt.Errorf("podrun: reading ConfigMap %s of volume %s: %w", v.ConfigMap.Name, v.Name, err)
			}
			items := v.ConfigMap.Items
			if len(items) == 0 {
				for k := range cm.Data {
					items = append(items, corev1.KeyToPath{Key: k, Path: k})
				}
			}
			for _, it := range items {
				data, ok := cm.Data[it.Key]
				if !ok {
					return nil, fmt.Errorf("podrun: ConfigMap %s has no key %s", cm.Name, it.Key)
				}
				path := filepath.Join(dir, it.Path)
				if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
					return nil, fmt.Errorf("podrun: writing %s: %w", path, err)
				}
				files = append(files, pending{dir, path})
			}
		default:
			return nil, fmt.Errorf("podrun: volume %s is neither an emptyDir nor a ConfigMap", v.Name)
		}
	}
	if o.Edit != nil {
		for _, f := range files {
			data, err := os.ReadFile(f.file)
			if err != nil {
				return nil, fmt.Errorf("podrun: reading %s: %w", f.file, err)
			}
			if data, err = o.Edit(f.file, data, mounts); err != nil {
				return nil, fmt.Errorf("podrun: editing %s: %w", f.file, err)
			}
			if err := os.WriteFile(f.file, data, 0o600); err != nil {
				return nil, fmt.Errorf("podrun: writing %s: %w", f.file, err)
			}
		}
	}
	return mounts, nil
}

// Remap turns a container path under a mount into the local path; other values are returned
// unchanged. The longest mount path wins.
func Remap(value string, mounts map[string]string) string { return remap(value, mounts) }

func remap(value string, mounts map[string]string) string {
	paths := make([]string, 0, len(mounts))
	for p := range mounts {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	for _, p := range paths {
		if value == p {
			return mounts[p]
		}
		if rest, ok := strings.CutPrefix(value, strings.TrimSuffix(p, "/")+"/"); ok {
			return filepath.Join(mounts[p], rest)
		}
	}
	return value
}

func orDiscard(w io.Writer) io.Writer {
	if w == nil {
		return io.Discard
	}
	return w
}

// errUnsupported marks env sources a kubelet resolves that podrun does not.
var errUnsupported = errors.New("not supported by podrun")
