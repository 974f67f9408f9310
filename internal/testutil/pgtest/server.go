package pgtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/insforge/integrations-operator/internal/testutil/freeport"
	"github.com/insforge/integrations-operator/internal/testutil/proc"
)

// installHint tells a developer how to get a server; it ends every "not found" error.
const installHint = "install the PostgreSQL server binaries (Debian/Ubuntu: apt-get install postgresql; " +
	"macOS: brew install postgresql) so that initdb and postgres are on PATH or under /usr/lib/postgresql/*/bin, " +
	"or point " + EnvDatabaseURL + " at a server where the URL's role may CREATE DATABASE"

// Options tune a server started by StartServer.
type Options struct {
	// Settings are extra `-c name=value` server settings.
	Settings map[string]string
}

// Server is a PostgreSQL server process owned by a test. It listens on 127.0.0.1 only.
type Server struct {
	binDir  string
	dataDir string
	root    string // temp dir holding data, socket and log
	port    int
	cred    *syscall.Credential
	opts    Options
	proc    *proc.Process // nil while stopped
	logPath string
}

// StartServer starts a dedicated server for one test (for tests that stop and restart it) and
// removes it when the test ends.
func StartServer(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := startServer(opts)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Errorf("pgtest: stopping server: %v", err)
		}
		s.Remove()
	})
	return s
}

// Launch starts a server for a program that is not a test (`make demo`). The caller stops it
// with Stop and deletes its files with Remove.
func Launch(opts Options) (*Server, error) { return startServer(opts) }

// NewDatabase creates a fresh database on this server, dropped when the test ends (if the server
// is running then).
func (s *Server) NewDatabase(t testing.TB) *Database {
	t.Helper()
	return createDatabase(t, s.URL("postgres"))
}

// URL returns a superuser URL for the named database on this server.
func (s *Server) URL(database string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.User("postgres"),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Port is the TCP port the server listens on; it stays the same across Stop and Start.
func (s *Server) Port() int { return s.port }

func startServer(opts Options) (*Server, error) {
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("creating a temp dir: %w", err)
	}
	s := &Server{
		binDir:  binDir,
		root:    root,
		dataDir: filepath.Join(root, "data"),
		logPath: filepath.Join(root, "server.log"),
		cred:    cred,
		opts:    opts,
	}
	if cred != nil {
		// The unprivileged server user must own everything it writes.
		if err := os.Chown(root, int(cred.Uid), int(cred.Gid)); err != nil {
			s.Remove()
			return nil, fmt.Errorf("handing %s to uid %d: %w", root, cred.Uid, err)
		}
	}
	if err := s.initdb(); err != nil {
		s.Remove()
		return nil, err
	}
	// A free port can be taken by someone else between our probe and the server's bind; retry.
	for attempt := 1; ; attempt++ {
		if s.port, err = freeport.Port(); err != nil {
			s.Remove()
			return nil, err
		}
		if err = s.Start(); err == nil {
			return s, nil
		}
		if attempt == 3 {
			s.Remove()
			return nil, err
		}
	}
}

func (s *Server) initdb() error {
	cmd := exec.Command(filepath.Join(s.binDir, "initdb"),
		"--pgdata", s.dataDir, "--username", "postgres", "--auth", "trust",
		"--encoding", "UTF8", "--locale", "C", "--no-sync")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("initdb in %s failed: %w\n%s", s.dataDir, err, out.String())
	}
	return nil
}

// Start starts the server process and waits until it accepts connections.
func (s *Server) Start() error {
	if s.proc != nil {
		return errors.New("server already running")
	}
	args := []string{
		"-D", s.dataDir,
		"-p", strconv.Itoa(s.port),
		"-k", s.root, // unix socket next to the data, not in /var/run
		"-c", "listen_addresses=127.0.0.1",
		// Durability is not what tests measure; speed is what they need.
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=300",
	}
	keys := make([]string, 0, len(s.opts.Settings))
	for k := range s.opts.Settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "-c", k+"="+s.opts.Settings[k])
	}
	logFile, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening the server log: %w", err)
	}
	defer logFile.Close()
	if s.cred != nil {
		_ = logFile.Chown(int(s.cred.Uid), int(s.cred.Gid))
	}
	cmd := exec.Command(filepath.Join(s.binDir, "postgres"), args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Pdeathsig stops the server if the test binary dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred, Pdeathsig: syscall.SIGKILL}
	p, err := proc.Start(cmd)
	if err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	s.proc = p

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err = p.WaitReady(ctx, 50*time.Millisecond, func(ctx context.Context) error {
		conn, err := pgx.Connect(ctx, s.URL("postgres"))
		if err != nil {
			return err
		}
		return conn.Close(ctx)
	})
	switch {
	case errors.Is(err, proc.ErrExited):
		s.proc = nil
		return fmt.Errorf("postgres exited during start-up on port %d:\n%s", s.port, s.logTail())
	case err != nil:
		_ = s.Stop()
		return fmt.Errorf("postgres did not accept connections within 60s: %v\n%s", err, s.logTail())
	}
	return nil
}

// Stop shuts the server down (fast mode: connections are closed, data is kept) and waits for it.
func (s *Server) Stop() error {
	p := s.proc
	if p == nil {
		return nil
	}
	s.proc = nil
	select {
	case <-p.Exited():
		return fmt.Errorf("postgres had exited already: %v", p.Err())
	default:
	}
	if err := p.Stop(syscall.SIGINT, 30*time.Second); errors.Is(err, proc.ErrKilled) {
		return errors.New("postgres did not stop within 30s and was killed")
	}
	return nil
}

// Remove deletes the server's files. Call it after Stop.
func (s *Server) Remove() { _ = os.RemoveAll(s.root) }

func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// findBinDir locates a directory holding both initdb and postgres.
func findBinDir() (string, error) {
	var candidates []string
	if p, err := exec.LookPath("postgres"); err == nil {
		candidates = append(candidates, filepath.Dir(p))
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		candidates = append(candidates, strings.TrimSpace(string(out)))
	}
	installed, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first.
	sort.Slice(installed, func(i, j int) bool { return versionOf(installed[i]) > versionOf(installed[j]) })
	return findBinDirIn(append(candidates, installed...))
}

// findBinDirIn returns the first candidate directory that holds both initdb and postgres.
func findBinDirIn(candidates []string) (string, error) {
	for _, dir := range candidates {
		if isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "postgres")) {
			return dir, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server binaries found (looked on PATH, in `pg_config --bindir` and under /usr/lib/postgresql/*/bin): %s", installHint)
}

func versionOf(binDir string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(binDir)))
	return v
}

func isExecutable(path string) bool {
	info, err := os.Stat(path)
	return err == nil && !info.IsDir() && info.Mode()&0o111 != 0
}

// serverCredential returns the unprivileged identity to run the server as when we are root
// (postgres refuses to run as root), or nil to run as ourselves.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
		gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
		if err1 != nil || err2 != nil {
			continue
		}
		return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
	}
	return nil, errors.New("running as root, and neither a `postgres` nor a `nobody` user exists to run the server as " +
		"(postgres refuses to run as root): create one (useradd --system postgres) or run the tests as another user")
}

// ConnectError returns the error of connecting to url, which must name a closed port: a real
// pgconn.ConnectError, quoting what pgx quotes.
func ConnectError(t testing.TB, url string) error {
	t.Helper()
	cfg, err := pgconn.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	if _, err = pgconn.ConnectConfig(context.Background(), cfg); err == nil {
		t.Fatalf("connected to %s", cfg.Host)
	}
	return err
}
