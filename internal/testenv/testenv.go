// Package testenv locates what tests need outside the repository: the shared test data
// (VISAGE_TESTDATA, default ../shared/testdata beside the checkout) and the fetched model
// weights (VISAGE_MODELS_DIR, default models/weights). Tests fail, not skip, when they are
// missing: `make test` fetches the models and CI provides the data.
package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

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

// TestData returns the root of the shared test data; it fails the test if it is absent.
func TestData(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("VISAGE_TESTDATA")
	if dir == "" {
		dir = filepath.Join(RepoRoot(t), "..", "shared", "testdata")
	}
	dir, _ = filepath.Abs(dir)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		t.Fatalf("testenv: test data not found at %s (set VISAGE_TESTDATA)", dir)
	}
	return dir
}

// Path joins elems onto the test data root.
func Path(t testing.TB, elems ...string) string {
	t.Helper()
	return filepath.Join(append([]string{TestData(t)}, elems...)...)
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
