package liveness

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	ort "github.com/yalue/onnxruntime_go"
)

// ortLibrary is the ONNX Runtime library under a models directory, as `make models` lays it out.
const ortLibrary = "onnxruntime/libonnxruntime.so.1"

// ortEnv guards onnxruntime_go's process-wide environment: the library keeps the environment
// and the shared-library path in package variables, so it can be initialised once per process.
// It is initialised on first use and never destroyed (sessions are destroyed by Close).
var ortEnv struct {
	mu   sync.Mutex
	path string // the library the environment was initialised with
}

// initORT initialises the ONNX Runtime environment with the library in modelsDir, or checks that
// it was initialised with the same library file.
func initORT(modelsDir string) error {
	lib, err := filepath.Abs(filepath.Join(modelsDir, ortLibrary))
	if err != nil {
		return newError(CodeModelUnavailable, ErrModel, fmt.Errorf("onnxruntime library path: %w", err))
	}
	ortEnv.mu.Lock()
	defer ortEnv.mu.Unlock()
	if ortEnv.path != "" {
		if ortEnv.path != lib && !sameFile(ortEnv.path, lib) {
			return newError(CodeModelUnavailable, ErrModel, fmt.Errorf("onnxruntime already initialised from %s, cannot switch to %s in the same process", ortEnv.path, lib))
		}
		return nil
	}
	if _, err := os.Stat(lib); err != nil {
		return newError(CodeModelUnavailable, ErrModel, fmt.Errorf("onnxruntime library: %w (run `make models`)", err))
	}
	if ort.IsInitialized() {
		// Someone else in the process initialised it; we cannot know with what library.
		ortEnv.path = lib
		return nil
	}
	ort.SetSharedLibraryPath(lib)
	if err := ort.InitializeEnvironment(ort.WithLogLevelError()); err != nil {
		return newError(CodeModelUnavailable, ErrModel, fmt.Errorf("initialising onnxruntime from %s: %w", lib, err))
	}
	ortEnv.path = lib
	return nil
}

func sameFile(a, b string) bool {
	sa, err1 := os.Stat(a)
	sb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}
