// Package testenv locates what tests need outside the repository: the public test data
// (VISAGE_TESTDATA; by default ../shared/testdata beside the checkout when it exists, else the
// folder `make testdata` fills, testdata/data) and the fetched model weights (VISAGE_MODELS_DIR,
// default models/weights).
//
// Missing models fail a test: `make test` always fetches them. Missing test data skips the test
// that needs it, naming the set and how to get it (`make testdata`), so that a clone without the
// data still runs every test that needs none; with VISAGE_REQUIRE_TESTDATA=1 (CI) missing data
// fails the test instead.
package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// RequireEnv names the variable that turns missing test data from a skip into a failure.
const RequireEnv = "VISAGE_REQUIRE_TESTDATA"

// RepoRoot returns the directory holding go.mod, found by walking up from the working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("testenv: no go.mod above the working directory")
		}
		dir = parent
	}
}

// dataRoot returns where the test data should be: VISAGE_TESTDATA, else ../shared/testdata
// beside the checkout when it exists, else testdata/data in the checkout.
func dataRoot(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv("VISAGE_TESTDATA"); dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			t.Fatalf("testenv: VISAGE_TESTDATA=%q: %v", dir, err)
		}
		return abs
	}
	root := RepoRoot(t)
	shared := filepath.Join(filepath.Dir(root), "shared", "testdata")
	if st, err := os.Stat(shared); err == nil && st.IsDir() {
		return shared
	}
	return filepath.Join(root, "testdata", "data")
}

// missing skips the test (or fails it under VISAGE_REQUIRE_TESTDATA=1) for want, a path that
// is not there, naming the data set it belongs to.
func missing(t testing.TB, root, want string) {
	t.Helper()
	set := "the test data"
	if rel, err := filepath.Rel(root, want); err == nil && rel != "." && !strings.HasPrefix(rel, "..") {
		set = "the test data set " + strings.Split(filepath.ToSlash(rel), "/")[0]
	}
	msg := "testenv: " + set + " is missing (" + want + " not found): run `make testdata`, " +
		"or point VISAGE_TESTDATA at a copy (testdata/README.md says where each set comes from)"
	if os.Getenv(RequireEnv) == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// TestData returns the root of the test data; without it, the test is skipped (failed under
// VISAGE_REQUIRE_TESTDATA=1).
func TestData(t testing.TB) string {
	t.Helper()
	dir := dataRoot(t)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		missing(t, dir, dir)
	}
	return dir
}

// Path joins elems onto the test data root; if that file or folder is absent, the test is
// skipped (failed under VISAGE_REQUIRE_TESTDATA=1), naming the set that holds it. For a glob
// pattern, the folder above its first wildcard must exist.
func Path(t testing.TB, elems ...string) string {
	t.Helper()
	root := dataRoot(t)
	p := filepath.Join(append([]string{root}, elems...)...)
	check := p
	for strings.ContainsAny(check, "*?[") {
		check = filepath.Dir(check)
	}
	if _, err := os.Stat(check); err != nil {
		missing(t, root, check)
	}
	return p
}

// ModelsDir returns the folder that `make models` fills; it fails the test if it is absent.
func ModelsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("VISAGE_MODELS_DIR")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "models", "weights")
	}
	if _, err := os.Stat(filepath.Join(dir, "dlib", "dlib_face_recognition_resnet_model_v1.dat")); err != nil {
		t.Fatalf("testenv: models not found in %s (run `make models`, or set VISAGE_MODELS_DIR)", dir)
	}
	return dir
}
