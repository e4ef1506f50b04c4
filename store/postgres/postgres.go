// Package postgres is the store.Storage backend for more than one node: PostgreSQL through
// github.com/jackc/pgx/v5, with its own embedded migrations.
//
// Times are timestamptz (microsecond precision, read back in UTC), durations bigint
// nanoseconds and string lists text[]. Transactions run at READ COMMITTED: single-use
// operations rely on a conditional UPDATE (used_at IS NULL), whose row lock makes a concurrent
// second use wait and then see the first one; token inserts lock their grant's row (FOR SHARE)
// so they cannot slip past a concurrent RevokeGrant.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/visage-idp/visage/store"
)

// DefaultMaxConns is the most connections a Store opens at once, unless the DSN sets
// pool_max_conns (the parameter pgxpool uses).
const DefaultMaxConns = 10

// migrationLock is the first key of the advisory lock Migrate holds (the second is a hash of
// the schema), so concurrent migrations of one schema run one after the other.
const migrationLock = 0x76697361 // "visa"

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is a store.Storage over a PostgreSQL database (the schema first in its search_path).
type Store struct {
	pool *connPool
}

var _ store.Storage = (*Store)(nil)

// Open connects to the database named by dsn (a postgres:// URL or key=value string, as
// pgx.ParseConfig takes, plus an optional pool_max_conns) and applies pending migrations.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	maxConns := DefaultMaxConns
	if v, ok := cfg.RuntimeParams["pool_max_conns"]; ok {
		delete(cfg.RuntimeParams, "pool_max_conns")
		if maxConns, err = strconv.Atoi(v); err != nil || maxConns < 1 {
			return nil, fmt.Errorf("postgres: open: pool_max_conns %q: want a positive integer", v)
		}
	}
	s := &Store{pool: newConnPool(cfg, maxConns)}
	c, err := s.pool.acquire(ctx)
	if err != nil {
		s.pool.close()
		return nil, fmt.Errorf("postgres: open: connect to %s:%d database %q: %w", cfg.Host, cfg.Port, cfg.Database, err)
	}
	_, err = Migrate(ctx, c)
	s.pool.release(c)
	if err != nil {
		s.pool.close()
		return nil, err
	}
	return s, nil
}

// Migrate applies the embedded migrations that the connection's current schema has not seen
// yet, in name order, each in its own transaction together with its row in schema_migrations,
// and returns the names of those it applied. It is idempotent, and concurrent calls on one
// schema serialise on an advisory lock.
func Migrate(ctx context.Context, conn *pgx.Conn) (applied []string, err error) {
	names, err := fs.Glob(migrationFiles, "migrations/*.sql")
	if err != nil {
		return nil, fmt.Errorf("postgres: migrate: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		version := strings.TrimSuffix(path.Base(name), ".sql")
		body, err := migrationFiles.ReadFile(name)
		if err != nil {
			return applied, fmt.Errorf("postgres: migrate %s: %w", version, err)
		}
		done := false
		err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext(current_schema()))`, migrationLock); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version    text COLLATE "C" NOT NULL PRIMARY KEY,
				applied_at timestamptz NOT NULL DEFAULT now()
			)`); err != nil {
				return err
			}
			var seen bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)`, version).Scan(&seen); err != nil {
				return err
			}
			if seen {
				return nil
			}
			if _, err := tx.Exec(ctx, string(body)); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, version); err != nil {
				return err
			}
			done = true
			return nil
		})
		if err != nil {
			return applied, fmt.Errorf("postgres: migrate %s: %w", version, err)
		}
		if done {
			applied = append(applied, version)
		}
	}
	return applied, nil
}

// Close closes the store's connections.
func (s *Store) Close() error {
	s.pool.close()
	return nil
}

// querier is what *pgx.Conn and pgx.Tx have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// do runs fn on a pooled connection.
func (s *Store) do(ctx context.Context, fn func(q querier) error) error {
	c, err := s.pool.acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	defer s.pool.release(c)
	return fn(c)
}

// txAttempts is how many times inTx runs a transaction that PostgreSQL aborted as a deadlock
// victim or serialisation failure.
const txAttempts = 3

// inTx runs fn in a READ COMMITTED transaction on a pooled connection, committing if it
// returns nil. fn may run again (see txAttempts), so it must set its results afresh each time.
// Transactions take row locks in one order, grants before their tokens, to avoid deadlocks;
// the retry covers what ordering cannot (rows locked by one statement come in index order).
func (s *Store) inTx(ctx context.Context, fn func(q querier) error) error {
	c, err := s.pool.acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	defer s.pool.release(c)
	for attempt := 1; ; attempt++ {
		err = pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error { return fn(tx) })
		var pe *pgconn.PgError
		if attempt < txAttempts && errors.As(err, &pe) && (pe.Code == "40P01" || pe.Code == "40001") {
			continue
		}
		return err
	}
}

// classify wraps constraint violations in the store's sentinel errors.
func classify(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			if pe.ConstraintName == "users_email_lower" {
				return fmt.Errorf("%w: %w: %w", store.ErrAlreadyExists, store.ErrEmailTaken, err)
			}
			return fmt.Errorf("%w: %w", store.ErrAlreadyExists, err)
		case "23503": // foreign_key_violation
			return fmt.Errorf("%w: %w", store.ErrNotFound, err)
		}
	}
	return err
}

// affected returns store.ErrNotFound if the statement changed no row.
func affected(tag pgconn.CommandTag, err error) error {
	if err != nil {
		return classify(err)
	}
	if tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return nil
}

// noRows turns pgx.ErrNoRows into store.ErrNotFound.
func noRows(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// list encodes a string list for a NOT NULL text[] column.
func list(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// unlist normalises lists read back: empty becomes nil.
func unlist(vs ...*[]string) {
	for _, v := range vs {
		if len(*v) == 0 {
			*v = nil
		}
	}
}

func nullDuration(d *time.Duration) *int64 {
	if d == nil {
		return nil
	}
	v := int64(*d)
	return &v
}

// row is what pgx.Row and pgx.Rows have in common.
type row interface {
	Scan(dest ...any) error
}

// collect scans every row with scan.
func collect[T any](rows pgx.Rows, err error, scan func(row) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
