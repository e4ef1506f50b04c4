package liveness

import "github.com/visage-idp/visage/internal/ortenv"

// initORT initialises the process's ONNX Runtime environment (shared with the face matcher)
// with the library in modelsDir.
func initORT(modelsDir string) error {
	if err := ortenv.Init(modelsDir); err != nil {
		return newError(CodeModelUnavailable, ErrModel, err)
	}
	return nil
}
