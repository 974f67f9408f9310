package ledger

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// Spool file names inside the spool directory.
const (
	spoolActive   = "outcomes.jsonl"
	spoolReplay   = ".replay" // suffix of files taken for replay
	spoolRejected = "rejected.jsonl"
)

// SpoolRecord is one line of the spool: an outcome that could not be written to the database,
// with the ticket of the claim attempt it belongs to.
type SpoolRecord struct {
	ID string `json:"id"`
	// Seq is the ticket's Seq; absent (0) in records written before tickets, which are applied
	// unfenced.
	Seq     int       `json:"seq,omitempty"`
	Outcome Outcome   `json:"outcome"`
	At      time.Time `json:"at"`
}

// ticket is the record's claim attempt, and outcome what to apply. A record written before
// tickets (and served) existed was a gateway's own outcome, and a settled one had been answered
// with the content, so it counts as served.
func (r SpoolRecord) ticket() (Ticket, Outcome) {
	o := r.Outcome
	if r.Seq == 0 && o.Status == StatusSettled {
		o.Served = true
	}
	return Ticket{ID: r.ID, Seq: r.Seq}, o
}

// Applier writes an outcome to the ledger; *Ledger implements it.
type Applier interface {
	Apply(ctx context.Context, t Ticket, o Outcome) error
}

// Spool is a durable local log of settle outcomes that the gateway could not record because the
// database was unreachable right after settle. Each record is fsynced before Append returns, and
// Replay applies them once the database is back. The gateway gives it an emptyDir: it survives
// container restarts, not pod loss. That is acceptable because the row is already settling in
// the database (MarkSettling precedes settle), so the resolver finds the outcome even without
// the spool: two independent safety nets.
//
// One process per directory.
type Spool struct {
	dir      string
	mu       sync.Mutex // guards f and the active file
	f        *os.File
	replayMu sync.Mutex // one replay at a time
}

// ReplayResult counts what Replay did.
type ReplayResult struct {
	// Applied records were written to the ledger (or were already there).
	Applied int
	// Rejected records can never apply (unknown id, contradicting state); they are moved to
	// rejected.jsonl in the spool directory for an operator to inspect.
	Rejected int
	// Corrupt lines could not be decoded (a torn last write); they are dropped.
	Corrupt int
}

// OpenSpool opens (creating if needed) the spool in dir.
func OpenSpool(dir string) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("ledger: creating spool directory: %w", err)
	}
	return &Spool{dir: dir}, nil
}

// Append durably records an outcome of claim attempt t. It returns only after the record is on
// disk.
func (s *Spool) Append(ctx context.Context, t Ticket, o Outcome) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	line, err := json.Marshal(SpoolRecord{ID: t.ID, Seq: t.Seq, Outcome: o, At: time.Now().UTC()})
	if err != nil {
		return fmt.Errorf("ledger: encoding spool record: %w", err)
	}
	line = append(line, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		f, err := os.OpenFile(filepath.Join(s.dir, spoolActive), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("ledger: opening spool: %w", err)
		}
		// The file's directory entry must be durable too.
		if err := syncDir(s.dir); err != nil {
			_ = f.Close()
			return err
		}
		s.f = f
	}
	// One write per record: a crash can tear only the last line, which Replay skips.
	if _, err := s.f.Write(line); err != nil {
		return fmt.Errorf("ledger: writing spool: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("ledger: syncing spool: %w", err)
	}
	return nil
}

// Close closes the active spool file; records stay on disk for the next Replay.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// Replay applies every spooled record through a, oldest first, and deletes what it has applied.
// Applying is idempotent, so replaying after a crash mid-replay is safe. It stops at the first
// error that may be transient (database down) and keeps the rest for the next call.
func (s *Spool) Replay(ctx context.Context, a Applier) (ReplayResult, error) {
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	var res ReplayResult
	if err := s.rotate(); err != nil {
		return res, err
	}
	files, err := filepath.Glob(filepath.Join(s.dir, "*"+spoolReplay))
	if err != nil {
		return res, fmt.Errorf("ledger: listing spool: %w", err)
	}
	sort.Strings(files) // names carry a zero-padded timestamp: oldest first
	for _, file := range files {
		if err := s.replayFile(ctx, a, file, &res); err != nil {
			return res, err
		}
	}
	return res, nil
}

// rotate moves the active file aside so Appends during a replay go to a fresh one.
func (s *Spool) rotate() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	active := filepath.Join(s.dir, spoolActive)
	info, err := os.Stat(active)
	if errors.Is(err, os.ErrNotExist) || (err == nil && info.Size() == 0) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("ledger: reading spool: %w", err)
	}
	if s.f != nil {
		if err := s.f.Close(); err != nil {
			return fmt.Errorf("ledger: closing spool: %w", err)
		}
		s.f = nil
	}
	name := fmt.Sprintf("outcomes-%020d%s", time.Now().UnixNano(), spoolReplay)
	if err := os.Rename(active, filepath.Join(s.dir, name)); err != nil {
		return fmt.Errorf("ledger: rotating spool: %w", err)
	}
	return syncDir(s.dir)
}

func (s *Spool) replayFile(ctx context.Context, a Applier, file string, res *ReplayResult) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("ledger: reading spool file: %w", err)
	}
	var lines [][]byte
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for sc.Scan() {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("ledger: scanning spool file %s: %w", filepath.Base(file), err)
	}
	for i, line := range lines {
		var rec SpoolRecord
		if err := json.Unmarshal(line, &rec); err != nil || rec.ID == "" {
			res.Corrupt++
			continue
		}
		t, o := rec.ticket()
		err := a.Apply(ctx, t, o)
		switch {
		case err == nil:
			res.Applied++
		case permanent(err):
			if err := s.reject(line); err != nil {
				return err
			}
			res.Rejected++
		default:
			// Keep what is left (this record included) for the next replay.
			if werr := rewrite(file, lines[i:]); werr != nil {
				return errors.Join(err, werr)
			}
			return fmt.Errorf("ledger: replaying spooled outcome for %s: %w", rec.ID, err)
		}
	}
	if err := os.Remove(file); err != nil {
		return fmt.Errorf("ledger: removing replayed spool file: %w", err)
	}
	return syncDir(s.dir)
}

// reject appends a record that can never apply to rejected.jsonl.
func (s *Spool) reject(line []byte) error {
	f, err := os.OpenFile(filepath.Join(s.dir, spoolRejected), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("ledger: opening rejected spool: %w", err)
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("ledger: writing rejected spool: %w", err)
	}
	return f.Sync()
}

// rewrite atomically replaces file with lines.
func rewrite(file string, lines [][]byte) error {
	tmp := file + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("ledger: rewriting spool: %w", err)
	}
	w := bufio.NewWriter(f)
	for _, l := range lines {
		_, _ = w.Write(l)
		_ = w.WriteByte('\n')
	}
	if err := errors.Join(w.Flush(), f.Sync(), f.Close()); err != nil {
		return fmt.Errorf("ledger: rewriting spool: %w", err)
	}
	if err := os.Rename(tmp, file); err != nil {
		return fmt.Errorf("ledger: rewriting spool: %w", err)
	}
	return syncDir(filepath.Dir(file))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("ledger: opening spool directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("ledger: syncing spool directory: %w", err)
	}
	return nil
}

// Len returns the number of records waiting in the spool (for readiness and metrics).
func (s *Spool) Len() (int, error) {
	files, err := filepath.Glob(filepath.Join(s.dir, "*"+spoolReplay))
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	files = append(files, filepath.Join(s.dir, spoolActive))
	n := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("ledger: reading spool: %w", err)
		}
		n += bytes.Count(data, []byte{'\n'})
	}
	return n, nil
}

// RunReplay replays the spool every interval until ctx ends, logging failures. It returns
// ctx's error.
func (s *Spool) RunReplay(ctx context.Context, a Applier, interval time.Duration, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	for {
		res, err := s.Replay(ctx, a)
		if err != nil && ctx.Err() == nil {
			log.Warn("ledger spool: replay stopped; will retry", "error", err, "applied", res.Applied)
		} else if res != (ReplayResult{}) {
			log.Info("ledger spool: replayed", "applied", res.Applied, "rejected", res.Rejected, "corrupt", res.Corrupt)
		}
		if !sleep(ctx, interval) {
			return ctx.Err()
		}
	}
}

// ApplyOrSpool records an outcome of claim attempt t in the ledger and, when the database cannot
// take it, in the spool (with t, so the replay is fenced like the write). It fails only when
// neither could record it; spooled reports the fallback. Outcomes the ledger refuses for good
// (ErrInvalidTransition, ErrNotFound, ErrTxHashInUse) are returned, not spooled: replaying them
// could never succeed.
func (l *Ledger) ApplyOrSpool(ctx context.Context, s *Spool, t Ticket, o Outcome) (spooled bool, err error) {
	err = l.Apply(ctx, t, o)
	if err == nil || permanent(err) {
		return false, err
	}
	// The request's context may be what ended; the record must still reach the disk.
	if serr := s.Append(context.WithoutCancel(ctx), t, o); serr != nil {
		return false, errors.Join(err, serr)
	}
	return true, nil
}
