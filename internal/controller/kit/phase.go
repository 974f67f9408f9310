package kit

import (
	"hash/fnv"
	"time"

	"k8s.io/apimachinery/pkg/types"
)

// UntilSlot is how long until an object's next periodic check: each object has a fixed slot in
// the interval (from its UID), so the checks of many objects are spread over the interval
// instead of arriving together after a restart, and each object is still checked once per
// interval. The result is in (0, interval].
func UntilSlot(now time.Time, interval time.Duration, uid types.UID) time.Duration {
	if interval <= 0 {
		return interval
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(uid))
	phase := int64(h.Sum64() % uint64(interval))
	pos := (now.UnixNano() + phase) % int64(interval)
	if pos < 0 {
		pos += int64(interval)
	}
	return interval - time.Duration(pos)
}
