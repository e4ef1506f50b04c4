// Package liveness tells a live person in front of the camera from a presentation attack (a
// printed photo, a screen, a replayed video) with the three methods Didit's API names: PASSIVE
// (one frame, two fused MiniFASNet models run with ONNX Runtime), ACTIVE_3D (a random head-turn
// challenge whose frames must show a 3D head following the issued order) and FLASHING (a random
// sequence of screen colours whose reflection on the face must follow the issued timing). Every
// check runs on the server from the frames alone; nothing a browser says about itself is trusted.
// It is a library without HTTP: authn/web parses the requests and renders the answers, and
// cmd/idp evaluates it (idp eval liveness). Results carry a 0-100 score and Didit-style warning
// codes. Face data (frames, descriptors, landmarks) is never logged.
//
// Process-wide state: onnxruntime_go keeps one ONNX Runtime environment per process (a C
// library handle it stores in package variables). This package initialises it once, on the
// first NewPassive, from ModelsDir/onnxruntime/libonnxruntime.so.1, and never destroys it, so
// Passive values can be created and closed any number of times; every later NewPassive must
// name the same library file. That is the only mutable package-level state.
package liveness
