package sessions

import (
	_ "embed"
	"net/http"
)

// OpenAPI is the OpenAPI 3.1 document of the Sessions API and its webhook, served at
// /v3/openapi.json. The tests check every response of the API against it.
//
//go:embed openapi.json
var OpenAPI []byte

func (s *Service) openAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(OpenAPI)
}
