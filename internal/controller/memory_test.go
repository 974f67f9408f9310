package controller

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/insforge/integrations-operator/internal/testutil/controllertest"
	"github.com/insforge/integrations-operator/internal/testutil/kubetest"
)

func TestMain(m *testing.M) { controllertest.Main(m) }

// unrelatedSecrets is how many Secrets the operator has no business with the benchmark creates.
const unrelatedSecrets = 10000

// BenchmarkManagerMemoryWithUnrelatedSecrets measures the heap the manager (both reconcilers, as
// Setup wires them) holds once its caches are synced, in a namespace with 10,000 Secrets the
// operator does not use (2 KiB each, about a TLS Secret's size), with the Secret cache of
// CacheOptions and with an unrestricted one (the operator before Secrets opted in):
//
//	go test -run '^$' -bench ManagerMemory -benchtime 3x ./internal/controller/
func BenchmarkManagerMemoryWithUnrelatedSecrets(b *testing.B) {
	env := kubetest.Shared(b)
	ns := env.Namespace(b)
	createSecrets(b, env, ns, unrelatedSecrets)
	for _, mode := range []struct {
		name     string
		restrict bool
	}{{"all-secrets-cached", false}, {"opted-in-only", true}} {
		b.Run(mode.name, func(b *testing.B) {
			var grew uint64
			for range b.N {
				grew += heapGrowth(b, env, ns, mode.restrict)
			}
			b.ReportMetric(float64(grew)/float64(b.N)/(1<<20), "heap-MiB")
		})
	}
}

// heapGrowth starts a manager, waits for its caches, and returns how much the live heap grew.
func heapGrowth(b *testing.B, env *kubetest.Env, ns string, restrict bool) uint64 {
	b.Helper()
	before := liveHeap()
	opts := CacheOptions([]string{ns})
	if !restrict {
		opts.ByObject = nil
	}
	skip := true
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: env.Scheme, Cache: opts, Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0", Controller: config.Controller{SkipNameValidation: &skip},
	})
	if err != nil {
		b.Fatal(err)
	}
	if err := Setup(mgr, Options{GatewayImage: "gateway:test"}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	// The Secret informer starts with the controllers' watches; a list through the cache waits for it.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var list corev1.SecretList
		err := mgr.GetCache().List(ctx, &list)
		if err == nil && (!restrict || len(list.Items) == 0) && (restrict || len(list.Items) >= unrelatedSecrets) {
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("cache not synced: %v, %d Secrets", err, len(list.Items))
		}
		time.Sleep(100 * time.Millisecond)
	}
	after := liveHeap()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if after < before {
		return 0
	}
	return after - before
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func createSecrets(b *testing.B, env *kubetest.Env, ns string, n int) {
	b.Helper()
	value := strings.Repeat("x", 2048)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("unrelated-%05d", i)},
					Data: map[string][]byte{"tls.crt": []byte(value)}}
				if err := env.Client.Create(context.Background(), s); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		b.Fatalf("creating Secrets: %v", err)
	}
}
