package sqlite

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/store/storetest"
)

// helperEnv, when set to a database path, turns the test binary into a racer process for
// TestCrossProcessRace (see racerMain).
const helperEnv = "VISAGE_SQLITE_RACER_DB"

func TestMain(m *testing.M) {
	if path := os.Getenv(helperEnv); path != "" {
		os.Exit(racerMain(path))
	}
	os.Exit(m.Run())
}

func openTemp(t *testing.T) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "visage.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, path
}

func TestConformance(t *testing.T) {
	storetest.RunConformance(t, func(t *testing.T) store.Storage {
		s, _ := openTemp(t)
		return s
	})
}

func TestConnectionSettings(t *testing.T) {
	s, _ := openTemp(t)
	ctx := t.Context()
	// Hold several connections at once so the check covers more than one.
	var conns []interface{ Close() error }
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range 3 {
		conn, err := s.db.Conn(ctx)
		if err != nil {
			t.Fatalf("Conn: %v", err)
		}
		conns = append(conns, conn)
		for pragma, want := range map[string]string{
			"journal_mode": "wal",
			"foreign_keys": "1",
			"busy_timeout": "5000",
			"synchronous":  "1", // NORMAL
		} {
			var got string
			if err := conn.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("PRAGMA %s: %v", pragma, err)
			}
			if got != want {
				t.Errorf("connection %d: PRAGMA %s = %q, want %q", i, pragma, got, want)
			}
		}
	}
}

func TestNewFileIsPrivate(t *testing.T) {
	s, path := openTemp(t)
	if err := s.CreateUser(t.Context(), store.User{ID: "u-1", Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Errorf("stat: %v", err)
			continue
		}
		if mode := st.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s: mode %o, want 600", filepath.Base(p), mode)
		}
	}
}

func TestOpenRejectsNonFiles(t *testing.T) {
	for _, path := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		if s, err := Open(t.Context(), path); err == nil {
			s.Close()
			t.Errorf("Open(%q): no error, want one (a database file is required)", path)
		}
	}
}

func TestOpenPathWithSpecialCharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir?with#odd%chars")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "visage.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer s.Close()
	if err := s.CreateUser(t.Context(), store.User{ID: "u-1", Username: "alice"}); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("the database is not at the path given: %v", err)
	}
}

func TestMigrate(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "visage.db")
	all, err := migrationFiles.ReadDir("migrations")
	if err != nil || len(all) == 0 {
		t.Fatalf("embedded migrations: %d files, %v", len(all), err)
	}

	db, err := OpenDB(ctx, path)
	if err != nil {
		t.Fatalf("OpenDB: %v", err)
	}
	applied, err := Migrate(ctx, db)
	if err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	if len(applied) != len(all) || applied[0] != "0001_init" {
		t.Errorf("Migrate on a new database applied %v, want all %d migrations from 0001_init", applied, len(all))
	}
	applied, err = Migrate(ctx, db)
	if err != nil || len(applied) != 0 {
		t.Errorf("Migrate again: applied %v, err %v; want nothing", applied, err)
	}
	db.Close()

	// Open migrates too, and twice in a row is a no-op that keeps the data.
	for i := range 2 {
		s, err := Open(ctx, path)
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
		var n int
		if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM schema_migrations").Scan(&n); err != nil {
			t.Fatalf("count schema_migrations: %v", err)
		}
		if n != len(all) {
			t.Errorf("Open #%d: schema_migrations has %d rows, want %d", i+1, n, len(all))
		}
		s.Close()
	}
}

func TestMigrateConcurrently(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "visage.db")
	const n = 4
	applied := make([][]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			db, err := OpenDB(ctx, path) // one pool each, as separate processes would have
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			applied[i], errs[i] = Migrate(ctx, db)
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

// TestTwoConnectionsRace races single-use operations through two separately opened stores on
// one file: two connection pools, as the CLI and the server have.
func TestTwoConnectionsRace(t *testing.T) {
	a, path := openTemp(t)
	b, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open second: %v", err)
	}
	defer b.Close()
	ctx := t.Context()
	stores := []*Store{a, b}

	const values, racers = 30, 8
	g := store.Grant{ID: "grant", ClientID: "app", UserID: "u-1"}
	if err := a.CreateGrant(ctx, g); err != nil {
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
		s := stores[r%2]
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
		if err := a.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash LIKE ?", fmt.Sprintf("rt-%d-next-%%", i)).Scan(&n); err != nil || n != 1 {
			t.Errorf("rt-%d: %d successors stored (err %v), want 1", i, n, err)
		}
	}
}

// TestCrossProcessRace races UseAuthCode and RotateRefreshToken on the same values from this
// process and two child processes (this test binary, run as racerMain).
func TestCrossProcessRace(t *testing.T) {
	s, path := openTemp(t)
	ctx := t.Context()
	if err := createRaceValues(ctx, s); err != nil {
		t.Fatal(err)
	}

	type child struct {
		name  string
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Scanner
	}
	var children []child
	for _, name := range []string{"child-a", "child-b"} {
		cmd := exec.CommandContext(ctx, os.Args[0])
		cmd.Env = append(os.Environ(), helperEnv+"="+path, "VISAGE_SQLITE_RACER_NAME="+name)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		c := child{name, cmd, stdin, bufio.NewScanner(stdout)}
		children = append(children, c)
		if !c.out.Scan() || c.out.Text() != "ready" {
			t.Fatalf("%s did not get ready: %q %v", name, c.out.Text(), c.out.Err())
		}
	}
	// Everyone starts at the same wall-clock instant, and goes through the values in the
	// same order, so the three processes contend for each value.
	startAt := time.Now().Add(200 * time.Millisecond)
	for _, c := range children {
		fmt.Fprintln(c.stdin, startAt.UnixNano())
		c.stdin.Close()
	}
	time.Sleep(time.Until(startAt))
	wins := map[string]int{}
	wins["parent"] = race(ctx, s, "parent")
	for _, c := range children {
		if !c.out.Scan() {
			t.Fatalf("%s: no result: %v", c.name, c.out.Err())
		}
		n, err := strconv.Atoi(strings.TrimPrefix(c.out.Text(), "won "))
		if err != nil {
			t.Fatalf("%s: result %q", c.name, c.out.Text())
		}
		wins[c.name] = n
		if err := c.cmd.Wait(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
	}
	t.Logf("wins per process: %v", wins)
	if total := wins["parent"] + wins["child-a"] + wins["child-b"]; total != 2*raceValues {
		t.Errorf("%d single-use values, %d successful uses across processes; want exactly %d", 2*raceValues, total, 2*raceValues)
	}
	for i := range raceValues {
		c, err := s.GetAuthCode(ctx, fmt.Sprint("code-", i))
		if err != nil || c.UsedAt == nil || wins[c.GrantID] == 0 {
			t.Errorf("code-%d: %+v, %v; want used by one of the racers", i, c, err)
		}
		var n int
		if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM refresh_tokens WHERE token_hash LIKE ?", fmt.Sprintf("rt-%d-next-%%", i)).Scan(&n); err != nil || n != 1 {
			t.Errorf("rt-%d: %d successors stored (err %v), want 1", i, n, err)
		}
	}
}

const raceValues = 100

func createRaceValues(ctx context.Context, s *Store) error {
	if err := s.CreateGrant(ctx, store.Grant{ID: "grant", ClientID: "app", UserID: "u-1"}); err != nil {
		return err
	}
	for i := range raceValues {
		if err := s.CreateAuthCode(ctx, store.AuthCode{CodeHash: fmt.Sprint("code-", i), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			return err
		}
		if err := s.CreateRefreshToken(ctx, store.RefreshToken{TokenHash: fmt.Sprint("rt-", i), GrantID: "grant"}); err != nil {
			return err
		}
	}
	return nil
}

// race tries every code and refresh token once, as racer name, and returns how many it won.
// Unexpected errors count as -1000 so the parent notices.
func race(ctx context.Context, s *Store, name string) int {
	wins := 0
	for i := range raceValues {
		_, err := s.UseAuthCode(ctx, fmt.Sprint("code-", i), name, time.Now())
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrAlreadyUsed):
			fmt.Fprintf(os.Stderr, "%s: UseAuthCode: %v\n", name, err)
			wins -= 1000
		}
		next := store.RefreshToken{TokenHash: fmt.Sprintf("rt-%d-next-%s", i, name), GrantID: "grant"}
		_, err = s.RotateRefreshToken(ctx, fmt.Sprint("rt-", i), next, time.Now())
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, store.ErrAlreadyUsed):
			fmt.Fprintf(os.Stderr, "%s: RotateRefreshToken: %v\n", name, err)
			wins -= 1000
		}
	}
	return wins
}

// racerMain is a child process of TestCrossProcessRace: it opens the database, prints "ready",
// reads the start time (Unix nanoseconds) from stdin, waits for it, races, and prints "won N".
func racerMain(path string) int {
	ctx := context.Background()
	name := os.Getenv("VISAGE_SQLITE_RACER_NAME")
	s, err := Open(ctx, path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
		return 1
	}
	defer s.Close()
	fmt.Println("ready")
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	startAt, convErr := strconv.ParseInt(strings.TrimSpace(line), 10, 64)
	if err != nil || convErr != nil {
		fmt.Fprintf(os.Stderr, "%s: reading the start time: %q %v %v\n", name, line, err, convErr)
		return 1
	}
	time.Sleep(time.Until(time.Unix(0, startAt)))
	fmt.Printf("won %d\n", race(ctx, s, name))
	return 0
}
