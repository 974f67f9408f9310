package tokenexchange

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Signing key file bounds.
const (
	// KeyPollInterval is how often the key file is reread. Kubernetes updates a mounted Secret
	// by swapping the ..data symlink, so the path is reopened each time (no open handle, no
	// inotify watch on a file that is replaced rather than written).
	KeyPollInterval = 2 * time.Second
	// maxKeyBytes caps the key file: JWT secrets are tens of bytes.
	maxKeyBytes = 4096
	// weakKeyBytes: HS256 keys shorter than the hash (32 bytes) are weak; logged, still used,
	// because InsForge verifies with whatever JWT_SECRET it has.
	weakKeyBytes = 32
)

// signingKey is one loaded key; immutable.
type signingKey struct {
	secret      []byte
	fingerprint string
}

// KeyFile is the HS256 signing key read from a file and reloaded when the file changes. An empty
// or missing file unloads the key: the exchange then refuses to mint (503) rather than sign with
// an empty key.
type KeyFile struct {
	path     string
	log      *slog.Logger
	onChange func(fingerprint string) // "" when unloaded

	cur    atomic.Pointer[signingKey]
	mu     sync.Mutex // serializes reloads
	lastEr string     // the last load error, logged once per change
}

// NewKeyFile reads the key file once (a missing file is not an error here: Ready reports it).
// onChange, if set, is called with the new fingerprint ("" when the key is unloaded).
func NewKeyFile(path string, log *slog.Logger, onChange func(fingerprint string)) *KeyFile {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	k := &KeyFile{path: path, log: log, onChange: onChange}
	_ = k.Reload()
	return k
}

// Fingerprint names a key without revealing it: sha256: and the first 12 hex digits of its
// SHA-256.
func Fingerprint(secret []byte) string {
	sum := sha256.Sum256(secret)
	return "sha256:" + hex.EncodeToString(sum[:])[:12]
}

// Reload rereads the file now. The error says why no key is loaded (nil when one is).
func (k *KeyFile) Reload() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	secret, err := readKey(k.path)
	old := k.cur.Load()
	switch {
	case err != nil:
		if old != nil {
			k.cur.Store(nil)
			k.log.Error("signing key unloaded; exchanges answer 503 until it is back", "file", k.path, "error", err)
			k.notify("")
		} else if err.Error() != k.lastEr {
			k.log.Error("no signing key; exchanges answer 503 until it is readable", "file", k.path, "error", err)
		}
		k.lastEr = err.Error()
		return err
	case old != nil && bytes.Equal(old.secret, secret):
		return nil
	}
	k.lastEr = ""
	nk := &signingKey{secret: secret, fingerprint: Fingerprint(secret)}
	k.cur.Store(nk)
	if len(secret) < weakKeyBytes {
		k.log.Warn("the signing key is shorter than 32 bytes; InsForge's JWT_SECRET should be longer", "fingerprint", nk.fingerprint)
	}
	if old == nil {
		k.log.Info("signing key loaded", "file", k.path, "fingerprint", nk.fingerprint)
	} else {
		k.log.Info("signing key changed", "file", k.path, "fingerprint", nk.fingerprint, "previous", old.fingerprint)
	}
	k.notify(nk.fingerprint)
	return nil
}

func (k *KeyFile) notify(fp string) {
	if k.onChange != nil {
		k.onChange(fp)
	}
}

// Run rereads the file every interval until ctx ends.
func (k *KeyFile) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = k.Reload()
		}
	}
}

// Ready is nil when a key is loaded.
func (k *KeyFile) Ready() error {
	if k.cur.Load() == nil {
		return fmt.Errorf("no signing key in %s", k.path)
	}
	return nil
}

// Fingerprint of the loaded key, "" when none.
func (k *KeyFile) Fingerprint() string {
	if c := k.cur.Load(); c != nil {
		return c.fingerprint
	}
	return ""
}

func (k *KeyFile) current() *signingKey { return k.cur.Load() }

// readKey reads the whole file, bytes as they are: the key must equal InsForge's JWT_SECRET,
// which is the Secret's value verbatim, so nothing is trimmed. Only a file that is empty or all
// white space counts as no key.
func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxKeyBytes+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("signing key: %w", err)
	case len(b) > maxKeyBytes:
		return nil, fmt.Errorf("signing key: %s is larger than %d bytes", path, maxKeyBytes)
	case len(bytes.TrimSpace(b)) == 0:
		return nil, errors.New("signing key: " + path + " is empty")
	}
	return b, nil
}
