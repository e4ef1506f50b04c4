// Package sqlite is the single-node store.Storage backend: one SQLite file, opened in WAL mode
// with a busy timeout so that the admin CLI and a running server can use it at the same time.
//
// Times are stored as INTEGER microseconds since the Unix epoch (UTC), durations as INTEGER
// nanoseconds and string lists as JSON arrays. Every transaction begins IMMEDIATE (it takes the
// write lock up front, waiting up to the busy timeout), so single-use operations are serialised
// across connections and processes.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/mattn/go-sqlite3"

	"github.com/visage-idp/visage/store"
)

// BusyTimeout is how long a statement waits for another connection's (or process's) write
// lock before failing with "database is locked".
const BusyTimeout = 5 * time.Second

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is a store.Storage over one SQLite database file.
type Store struct {
	db   *sql.DB
	path string
}

var _ store.Storage = (*Store)(nil)

// Open opens (creating it if needed) the database file at path and applies any pending
// migrations.
func Open(ctx context.Context, path string) (*Store, error) {
	db, err := OpenDB(ctx, path)
	if err != nil {
		return nil, err
	}
	if _, err := Migrate(ctx, db); err != nil {
		db.Close()
		return nil, err
	}
	return &Store{db: db, path: path}, nil
}

// Path returns the database file's path, as given to Open. Its write-ahead log is Path()+"-wal".
func (s *Store) Path() string { return s.path }

// OpenDB opens the database file at path with Visage's connection settings (WAL journal,
// synchronous NORMAL, foreign keys on, BusyTimeout, IMMEDIATE transactions) without migrating
// it. It is for tools such as `idp migrate`; the server uses Open. A new file is created with
// mode 0600.
func OpenDB(ctx context.Context, path string) (*sql.DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: open %q: want the path of a database file", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	// The file holds signing keys and sealed templates: create it private to the owner (SQLite
	// gives the -wal and -shm files the database file's mode). An existing file keeps its mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	f.Close()
	params := url.Values{}
	params.Set("_journal_mode", "WAL")
	params.Set("_synchronous", "NORMAL")
	params.Set("_foreign_keys", "on")
	params.Set("_busy_timeout", fmt.Sprint(BusyTimeout.Milliseconds()))
	params.Set("_txlock", "immediate")
	dsn := (&url.URL{Scheme: "file", Path: abs, RawQuery: params.Encode()}).String()

	db, err := sql.Open("sqlite3", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	// Writers queue on the file lock anyway; a few connections serve concurrent readers.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %q: %w", path, err)
	}
	return db, nil
}

// Migrate applies the embedded migrations that db has not seen yet, in name order, each in its
// own IMMEDIATE transaction together with its row in schema_migrations, and returns the names
// of those it applied. It is idempotent and safe to run from two processes at once.
func Migrate(ctx context.Context, db *sql.DB) (applied []string, err error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("sqlite: migrate: %w", err)
	}
	sort.Strings(names)
	// A dedicated connection, so the raw BEGIN IMMEDIATE / COMMIT pairs stay on it whatever the
	// DSN of db says about transactions.
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlite: migrate: %w", err)
	}
	defer conn.Close()
	for _, name := range names {
		version := strings.TrimSuffix(filepath.Base(name), ".sql")
		body, err := migrationFiles.ReadFile(name)
		if err != nil {
			return applied, fmt.Errorf("sqlite: migrate %s: %w", version, err)
		}
		done, err := migrateOne(ctx, conn, version, string(body))
		if err != nil {
			return applied, fmt.Errorf("sqlite: migrate %s: %w", version, err)
		}
		if done {
			applied = append(applied, version)
		}
	}
	return applied, nil
}

func migrateOne(ctx context.Context, conn *sql.Conn, version, body string) (applied bool, err error) {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return false, err
	}
	defer func() {
		if err != nil {
			// Use a fresh context: the caller's may be the reason we are rolling back.
			_, _ = conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    TEXT    NOT NULL PRIMARY KEY,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return false, err
	}
	var n int
	if err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations WHERE version = ?", version).Scan(&n); err != nil {
		return false, err
	}
	if n > 0 {
		_, err = conn.ExecContext(ctx, "COMMIT")
		return false, err
	}
	if _, err := conn.ExecContext(ctx, body); err != nil {
		return false, err
	}
	if _, err := conn.ExecContext(ctx, "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)", version, micros(time.Now())); err != nil {
		return false, err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		return false, err
	}
	return true, nil
}

// Checkpoint copies the write-ahead log into the database and truncates the log file to zero
// bytes (PRAGMA wal_checkpoint(TRUNCATE)). SQLite checkpoints by itself but never shrinks the
// -wal file, which keeps the size of the busiest moment; a periodic truncating checkpoint gives
// the space back. It waits for writers (BusyTimeout); readers are not blocked for long.
func (s *Store) Checkpoint(ctx context.Context) error {
	var busy, logPages, checkpointed int
	if err := s.db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logPages, &checkpointed); err != nil {
		return fmt.Errorf("sqlite: checkpoint: %w", err)
	}
	if busy != 0 {
		return fmt.Errorf("sqlite: checkpoint: the log is in use (%d of %d pages checkpointed); next time", checkpointed, logPages)
	}
	return nil
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlite: close: %w", err)
	}
	return nil
}

// inTx runs fn in a transaction (BEGIN IMMEDIATE, see OpenDB) and commits if it returns nil.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// classify wraps constraint violations in the store's sentinel errors.
func classify(err error) error {
	var se sqlite3.Error
	if errors.As(err, &se) {
		switch se.ExtendedCode {
		case sqlite3.ErrConstraintPrimaryKey, sqlite3.ErrConstraintUnique:
			if strings.Contains(se.Error(), "users_email_lower") {
				return fmt.Errorf("%w: %w: %w", store.ErrAlreadyExists, store.ErrEmailTaken, err)
			}
			return fmt.Errorf("%w: %w", store.ErrAlreadyExists, err)
		case sqlite3.ErrConstraintForeignKey:
			return fmt.Errorf("%w: %w", store.ErrNotFound, err)
		}
	}
	return err
}

// affected returns store.ErrNotFound if res changed no row.
func affected(res sql.Result, err error) error {
	if err != nil {
		return classify(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// noRows turns sql.ErrNoRows into store.ErrNotFound.
func noRows(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// Column encodings.

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func nullMicros(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func nullDuration(d *time.Duration) sql.NullInt64 {
	if d == nil {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: int64(*d), Valid: true}
}

// list encodes a string list as a JSON array; nil and empty both become "[]".
func list(v []string) string {
	if len(v) == 0 {
		return "[]"
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // []string always marshals
	}
	return string(b)
}

// Scanners for the encodings above.

type timeCol struct{ t *time.Time }

func (c timeCol) Scan(src any) error {
	v, ok := src.(int64)
	if !ok {
		return fmt.Errorf("time column: got %T, want INTEGER", src)
	}
	*c.t = fromMicros(v)
	return nil
}

type nullTimeCol struct{ t **time.Time }

func (c nullTimeCol) Scan(src any) error {
	if src == nil {
		*c.t = nil
		return nil
	}
	v, ok := src.(int64)
	if !ok {
		return fmt.Errorf("time column: got %T, want INTEGER or NULL", src)
	}
	t := fromMicros(v)
	*c.t = &t
	return nil
}

type durationCol struct{ d *time.Duration }

func (c durationCol) Scan(src any) error {
	v, ok := src.(int64)
	if !ok {
		return fmt.Errorf("duration column: got %T, want INTEGER", src)
	}
	*c.d = time.Duration(v)
	return nil
}

type nullDurationCol struct{ d **time.Duration }

func (c nullDurationCol) Scan(src any) error {
	if src == nil {
		*c.d = nil
		return nil
	}
	v, ok := src.(int64)
	if !ok {
		return fmt.Errorf("duration column: got %T, want INTEGER or NULL", src)
	}
	d := time.Duration(v)
	*c.d = &d
	return nil
}

type listCol struct{ v *[]string }

func (c listCol) Scan(src any) error {
	var b []byte
	switch s := src.(type) {
	case string:
		b = []byte(s)
	case []byte:
		b = s
	default:
		return fmt.Errorf("list column: got %T, want TEXT", src)
	}
	var v []string
	if err := json.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("list column: %w", err)
	}
	if len(v) == 0 {
		v = nil
	}
	*c.v = v
	return nil
}

// execer is what *sql.DB and *sql.Tx have in common.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// row is what *sql.Row and *sql.Rows have in common.
type row interface {
	Scan(dest ...any) error
}
