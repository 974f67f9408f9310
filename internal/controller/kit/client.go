package kit

// The manager's client-side limit on Kubernetes API requests (--kube-api-qps, --kube-api-burst).
// Benchmarks run their managers with these, so that what they measure is what ships.
const (
	DefaultKubeAPIQPS   = 100
	DefaultKubeAPIBurst = 200
)
