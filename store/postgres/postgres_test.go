package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/store/storetest"
)

// defaultDSN is the test server when VISAGE_TEST_POSTGRES_DSN is unset. CI provides PostgreSQL:
// the tests fail, rather than skip, when it is unreachable.
const defaultDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// server is a connection to the test server for creating and dropping schemas.
type server struct {
	dsn   string
	admin *pgx.Conn
}

func testServer(t *testing.T) *server {
	t.Helper()
	dsn := os.Getenv("VISAGE_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = defaultDSN
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("postgres: cannot reach the test server at %s: %v\n"+
			"These tests need PostgreSQL: start it, or point VISAGE_TEST_POSTGRES_DSN at one.", redact(dsn), err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	return &server{dsn: dsn, admin: admin}
}

// redact hides a password in a URL DSN.
func redact(dsn string) string {
	if u, err := url.Parse(dsn); err == nil && u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), "xxx")
			return u.String()
		}
	}
	return dsn
}

// schema creates a fresh schema, dropped when the test ends, and returns a DSN whose
// search_path selects it.
func (srv *server) schema(t *testing.T) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "visage_test_" + hex.EncodeToString(b)
	ctx := context.Background()
	if _, err := srv.admin.Exec(ctx, "CREATE SCHEMA "+name); err != nil {
		t.Fatalf("create schema %s: %v", name, err)
	}
	t.Cleanup(func() {
		if _, err := srv.admin.Exec(context.Background(), "DROP SCHEMA "+name+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", name, err)
		}
	})
	return withSearchPath(srv.dsn, name)
}

// withSearchPath adds search_path=schema to a URL or key=value DSN.
func withSearchPath(dsn, schema string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			q := u.Query()
			q.Set("search_path", schema)
			u.RawQuery = q.Encode()
			return u.String()
		}
	}
	return dsn + " search_path=" + schema
}

// open opens a Store on dsn, closed when the test ends.
func open(t *testing.T, dsn string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() }) // registered after the schema's: runs before the DROP
	return s
}

func TestConformance(t *testing.T) {
	srv := testServer(t)
	storetest.RunConformance(t, func(t *testing.T) store.Storage {
		return open(t, srv.schema(t))
	})
}

func TestMigrate(t *testing.T) {
	srv := testServer(t)
	dsn := srv.schema(t)
	ctx := t.Context()
	all, err := migrationFiles.ReadDir("migrations")
	if err != nil || len(all) == 0 {
		t.Fatalf("embedded migrations: %d files, %v", len(all), err)
	}

	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	applied, err := Migrate(ctx, conn)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if len(applied) != len(all) || applied[0] != "0001_init" {
		t.Errorf("Migrate on a new schema applied %v, want all %d migrations from 0001_init", applied, len(all))
	}
	applied, err = Migrate(ctx, conn)
	if err != nil || len(applied) != 0 {
		t.Errorf("Migrate again: applied %v, err %v; want nothing", applied, err)
	}

	// Open migrates too; twice in a row is a no-op that keeps the data.
	for i := range 2 {
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatalf("Open #%d: %v", i+1, err)
		}
		if i == 0 {
			if err := s.CreateUser(ctx, store.User{ID: "u-1", Username: "alice"}); err != nil {
				t.Fatalf("CreateUser: %v", err)
			}
		} else if _, err := s.GetUser(ctx, "u-1"); err != nil {
			t.Errorf("GetUser after reopening: %v", err)
		}
		s.Close()
		var n int
		if err := conn.QueryRow(ctx, "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil {
			t.Fatalf("count schema_migrations: %v", err)
		}
		if n != len(all) {
			t.Errorf("Open #%d: schema_migrations has %d rows, want %d", i+1, n, len(all))
		}
	}
}

func TestMigrateConcurrently(t *testing.T) {
	srv := testServer(t)
	dsn := srv.schema(t)
	ctx := t.Context()
	const n = 4
	applied := make([][]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			conn, err := pgx.Connect(ctx, dsn)
			if err != nil {
				errs[i] = err
				return
			}
			defer conn.Close(context.Background())
			applied[i], errs[i] = Migrate(ctx, conn)
		})
	}
	wg.Wait()
	total := 0
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Migrate %d: %v", i, errs[i])
		}
		total += len(applied[i])
	}
	all, _ := migrationFiles.ReadDir("migrations")
	if total != len(all) {
		t.Errorf("%d concurrent Migrate calls applied %d migrations in all, want %d (each exactly once)", n, total, len(all))
	}
}

func TestOpenErrors(t *testing.T) {
	cases := []struct{ name, dsn string }{
		{"unreachable server", "postgres://postgres@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2"},
		{"bad DSN", "postgres://%zz"},
		{"bad pool_max_conns", "postgres://postgres@127.0.0.1:1/postgres?pool_max_conns=0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := Open(t.Context(), c.dsn)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q): no error", c.dsn)
			}
			if !strings.HasPrefix(err.Error(), "postgres: open") {
				t.Errorf("Open(%q): error %q lacks context", c.dsn, err)
			}
		})
	}
}

func TestPool(t *testing.T) {
	srv := testServer(t)
	dsn := srv.schema(t)
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := newConnPool(cfg, 2)
	ctx := t.Context()
	a, err := p.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := p.acquire(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("acquire beyond max: %v, want context.DeadlineExceeded", err)
	}

	// A connection left inside a transaction is not reused.
	if _, err := a.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	p.release(a)
	if !a.IsClosed() {
		t.Errorf("a connection released inside a transaction was kept")
	}
	c, err := p.acquire(ctx)
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	var now time.Time
	if err := c.QueryRow(ctx, "SELECT now()").Scan(&now); err != nil || now.Location() != time.UTC {
		t.Errorf("timestamptz scanned in %v (err %v), want UTC", now.Location(), err)
	}
	p.release(c)
	p.release(b)

	// A healthy connection is reused.
	d, err := p.acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d != b && d != c {
		t.Errorf("a healthy idle connection was not reused")
	}
	p.close()
	p.release(d)
	if !d.IsClosed() {
		t.Errorf("a connection released after close was kept open")
	}
	if _, err := p.acquire(ctx); !errors.Is(err, errPoolClosed) {
		t.Errorf("acquire after close: %v, want errPoolClosed", err)
	}
}

// TestTwoStoresRace races single-use operations through two Stores (two pools, as two nodes
// have) on one schema.
func TestTwoStoresRace(t *testing.T) {
	srv := testServer(t)
	dsn := srv.schema(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := t.Context()

	const values, racers = 20, 8
	if err := a.CreateGrant(ctx, store.Grant{ID: "grant", ClientID: "app", UserID: "u-1"}); err != nil {
		t.Fatal(err)
	}
	for i := range values {
		if err := a.CreateAuthCode(ctx, store.AuthCode{CodeHash: fmt.Sprint("code-", i), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		if err := b.CreateRefreshToken(ctx, store.RefreshToken{TokenHash: fmt.Sprint("rt-", i), GrantID: "grant"}); err != nil {
			t.Fatal(err)
		}
	}
	codeWins := make([][]string, values)
	rotateWins := make([]int, values)
	var mu sync.Mutex
	start := make(chan struct{})
	var wg sync.WaitGroup
	for r := range racers {
		s := []*Store{a, b}[r%2]
		wg.Go(func() {
			<-start
			for i := range values {
				grant := fmt.Sprintf("grant-%d", r)
				_, err := s.UseAuthCode(ctx, fmt.Sprint("code-", i), grant, time.Now())
				switch {
				case err == nil:
					mu.Lock()
					codeWins[i] = append(codeWins[i], grant)
					mu.Unlock()
				case !errors.Is(err, store.ErrAlreadyUsed):
					t.Errorf("UseAuthCode: %v", err)
				}
				next := store.RefreshToken{TokenHash: fmt.Sprintf("rt-%d-next-%d", i, r), GrantID: "grant"}
				_, err = s.RotateRefreshToken(ctx, fmt.Sprint("rt-", i), next, time.Now())
				switch {
				case err == nil:
					mu.Lock()
					rotateWins[i]++
					mu.Unlock()
				case !errors.Is(err, store.ErrAlreadyUsed):
					t.Errorf("RotateRefreshToken: %v", err)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for i := range values {
		if len(codeWins[i]) != 1 {
			t.Errorf("code-%d was used successfully %d times: %v", i, len(codeWins[i]), codeWins[i])
			continue
		}
		c, err := b.GetAuthCode(ctx, fmt.Sprint("code-", i))
		if err != nil || c.GrantID != codeWins[i][0] {
			t.Errorf("code-%d: stored GrantID %q (err %v), want the winner's %q", i, c.GrantID, err, codeWins[i][0])
		}
		if rotateWins[i] != 1 {
			t.Errorf("rt-%d was rotated %d times, want 1", i, rotateWins[i])
		}
		var n int
		err = a.do(ctx, func(q querier) error {
			return q.QueryRow(ctx, "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash LIKE $1", fmt.Sprintf("rt-%d-next-%%", i)).Scan(&n)
		})
		if err != nil || n != 1 {
			t.Errorf("rt-%d: %d successors stored (err %v), want 1", i, n, err)
		}
	}
}
