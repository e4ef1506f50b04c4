// Package ortenv owns the process's one ONNX Runtime environment. onnxruntime_go keeps the
// environment and the shared-library path in package variables, so it can be initialised once
// per process; every package that runs an ONNX model (the face matcher, passive liveness) calls
// Init with its models folder and shares the same environment. It is never destroyed (sessions
// are destroyed by their owners).
package ortenv

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// Library is the ONNX Runtime library under a models folder, as `make models` lays it out.
const Library = "onnxruntime/libonnxruntime.so.1"

var env struct {
	mu   sync.Mutex
	path string // the library the environment was initialised with
}

// Init initialises the ONNX Runtime environment with the library in modelsDir, or checks that
// it was initialised with the same library file. It is safe for concurrent use.
func Init(modelsDir string) error {
	lib, err := filepath.Abs(filepath.Join(modelsDir, Library))
	if err != nil {
		return fmt.Errorf("onnxruntime library path: %w", err)
	}
	env.mu.Lock()
	defer env.mu.Unlock()
	if env.path != "" {
		if env.path != lib && !sameFile(env.path, lib) {
			return fmt.Errorf("onnxruntime already initialised from %s, cannot switch to %s in the same process", env.path, lib)
		}
		return nil
	}
	if _, err := os.Stat(lib); err != nil {
		return fmt.Errorf("onnxruntime library: %w (run `make models`)", err)
	}
	if ort.IsInitialized() {
		// Initialised outside this package; we cannot know with what library.
		env.path = lib
		return nil
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return fmt.Errorf("initialising onnxruntime from %s: %w", lib, err)
	}
	env.path = lib
	return nil
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
