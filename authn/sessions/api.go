package sessions

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/visage-idp/visage/store"
)

// Routes registers the API, its OpenAPI document and the hosted page on mux. Everything under
// /v3/ answers JSON, unknown paths and methods included.
func (s *Service) Routes(mux *http.ServeMux) {
	api := http.NewServeMux()
	for _, p := range []string{"/v3/session/{$}", "/v3/session"} {
		api.HandleFunc("POST "+p, s.authed(s.createSession))
	}
	for _, suffix := range []string{"/{$}", ""} {
		api.HandleFunc("GET /v3/session/{id}/decision"+suffix, s.authed(s.getDecision))
		api.HandleFunc("PATCH /v3/session/{id}/update-status"+suffix, s.authed(s.updateStatus))
		api.HandleFunc("DELETE /v3/session/{id}/delete"+suffix, s.authed(s.deleteSession))
		api.HandleFunc("GET /v3/sessions"+suffix, s.authed(s.listSessions))
	}
	api.HandleFunc("GET /v3/openapi.json", s.openAPI)
	mux.Handle("/v3/", jsonErrors(api))
	mux.HandleFunc("GET /session/{token}", s.hostedPage)
	mux.HandleFunc("POST /session/{token}/challenge", s.hostedChallenge)
	mux.HandleFunc("POST /session/{token}/capture", s.hostedCapture)
	mux.HandleFunc("POST /session/{token}/leave", s.hostedLeave)
}

// jsonErrors serves api, answering its unknown paths (404) and wrong methods (405, with Allow)
// in JSON, {"detail": "..."}, instead of ServeMux's plain text.
func jsonErrors(api *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := api.Handler(r)
		if pattern != "" {
			api.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		switch {
		case rec.status == http.StatusMethodNotAllowed:
			w.Header().Set("Allow", rec.header.Get("Allow"))
			writeJSON(w, rec.status, map[string]string{"detail": fmt.Sprintf("Method %q not allowed.", r.Method)})
		case rec.status == http.StatusMovedPermanently || rec.status == http.StatusPermanentRedirect:
			w.Header().Set("Location", rec.header.Get("Location"))
			writeJSON(w, rec.status, map[string]string{"detail": "Moved to " + rec.header.Get("Location") + "."})
		default:
			writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
		}
	})
}

// statusRecorder keeps the status and headers ServeMux's error handlers write, and drops
// their plain-text body.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

// caller is the authenticated application of a request.
type caller struct {
	key store.APIKey
	app store.Application
}

// apiHandler is a handler of an authenticated API route.
type apiHandler func(w http.ResponseWriter, r *http.Request, c caller)

// authed checks the x-api-key header: a missing, unknown or revoked key gets 401.
func (s *Service) authed(h apiHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		raw := r.Header.Get("x-api-key")
		k, app, err := s.Authenticate(r.Context(), raw)
		if errors.Is(err, ErrUnauthorized) {
			detail := "Invalid API key."
			if raw == "" {
				detail = "Authentication credentials were not provided."
			}
			writeJSON(w, http.StatusUnauthorized, map[string]string{"detail": detail})
			return
		} else if err != nil {
			s.internal(w, r, "authenticate", err)
			return
		}
		h(w, r, caller{key: k, app: app})
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Service) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, ErrBusy) {
		s.log.WarnContext(r.Context(), what, "err", err)
		w.Header().Set("Retry-After", "2")
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"detail": "The face engine is busy. Try again shortly."})
		return
	}
	s.log.ErrorContext(r.Context(), what, "err", err)
	writeJSON(w, http.StatusInternalServerError, map[string]string{"detail": "Internal error; nothing was changed."})
}

// writeError answers the service's errors: request errors 400, unknown sessions 404,
// anything else 500 (503 when busy).
func (s *Service) writeError(w http.ResponseWriter, r *http.Request, what string, err error) {
	var re *RequestError
	switch {
	case errors.As(err, &re):
		writeJSON(w, http.StatusBadRequest, re.Body())
	case errors.Is(err, ErrNotFound):
		writeJSON(w, http.StatusNotFound, map[string]string{"detail": "Not found."})
	case errors.Is(err, store.ErrStatusChanged):
		writeJSON(w, http.StatusConflict, map[string]string{"detail": "The session changed meanwhile; read it again."})
	case errors.Is(err, ErrNotResubmittable):
		writeJSON(w, http.StatusConflict, map[string]string{"detail": "The session can no longer be resubmitted: " + strings.TrimPrefix(err.Error(), ErrNotResubmittable.Error()+": ")})
	case errors.Is(err, ErrConflict):
		writeJSON(w, http.StatusConflict, map[string]string{"detail": "An open session of this workflow and vendor_data exists with another portrait_image, callback or metadata. Finish or delete it first, or send the same request."})
	case errors.Is(err, store.ErrAlreadyExists):
		writeJSON(w, http.StatusConflict, map[string]string{"detail": "Another open session of this workflow and vendor_data exists."})
	default:
		s.internal(w, r, what, err)
	}
}

// CreateResponse is the body of POST /v3/session/.
type CreateResponse struct {
	SessionID     string          `json:"session_id"`
	SessionNumber int64           `json:"session_number"`
	SessionToken  string          `json:"session_token"`
	URL           string          `json:"url"`
	SessionURL    string          `json:"session_url"` // the same address, under the name the guide reads
	Status        string          `json:"status"`
	VendorData    string          `json:"vendor_data"`
	Metadata      json.RawMessage `json:"metadata"`
	Callback      string          `json:"callback"`
	WorkflowID    string          `json:"workflow_id"`
}

func (s *Service) createSession(w http.ResponseWriter, r *http.Request, c caller) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"detail": fmt.Sprintf("The request body is larger than %d bytes.", s.cfg.MaxBodyBytes)})
			return
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": "The request body could not be read."})
		return
	}
	req, err := ParseCreateRequest(body, s.cfg.MaxPortraitBytes)
	if err != nil {
		s.writeError(w, r, "create session", err)
		return
	}
	v, created, err := s.Create(r.Context(), c.app, req)
	if err != nil {
		s.writeError(w, r, "create session", err)
		return
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK
	}
	writeJSON(w, status, CreateResponse{SessionID: v.ID, SessionNumber: v.Number, SessionToken: s.Token(v.ID), URL: s.URL(v.ID),
		SessionURL: s.URL(v.ID), Status: v.Status, VendorData: v.VendorData, Metadata: v.Metadata, Callback: v.Callback, WorkflowID: v.WorkflowID})
}

func (s *Service) getDecision(w http.ResponseWriter, r *http.Request, c caller) {
	v, err := s.Get(r.Context(), c.app.ID, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, "decision", err)
		return
	}
	d, err := s.Decision(r.Context(), v)
	if err != nil {
		s.writeError(w, r, "decision", err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

// UpdateStatusRequest is the body of PATCH /v3/session/{id}/update-status/.
type UpdateStatusRequest struct {
	NewStatus string `json:"new_status"`
	Comment   string `json:"comment"`
}

func (s *Service) updateStatus(w http.ResponseWriter, r *http.Request, c caller) {
	var req UpdateStatusRequest
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&req); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"detail": "The request body is larger than 64 KiB."})
			return
		}
		writeJSON(w, http.StatusBadRequest, map[string]string{"detail": JSONErrorText(err, "a JSON object with new_status")})
		return
	}
	if len(req.Comment) > 2000 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"comment": "Ensure this field has no more than 2000 characters."})
		return
	}
	v, err := s.Get(r.Context(), c.app.ID, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, "update status", err)
		return
	}
	v, err = s.SetStatus(r.Context(), v, req.NewStatus, req.Comment, "api:"+c.key.ID)
	if err != nil {
		s.writeError(w, r, "update status", err)
		return
	}
	d, err := s.Decision(r.Context(), v)
	if err != nil {
		s.writeError(w, r, "update status", err)
		return
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Service) deleteSession(w http.ResponseWriter, r *http.Request, c caller) {
	if err := s.Delete(r.Context(), c.app.ID, r.PathValue("id")); err != nil {
		s.writeError(w, r, "delete session", err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// SessionSummary is one session in GET /v3/sessions/.
type SessionSummary struct {
	SessionID     string          `json:"session_id"`
	SessionNumber int64           `json:"session_number"`
	SessionURL    string          `json:"session_url"`
	Status        string          `json:"status"`
	WorkflowID    string          `json:"workflow_id"`
	VendorData    string          `json:"vendor_data"`
	Metadata      json.RawMessage `json:"metadata"`
	Callback      string          `json:"callback"`
	CreatedAt     string          `json:"created_at"`
	ExpiresAt     string          `json:"expires_at"`
}

// ListResponse is the body of GET /v3/sessions/ (limit/offset pagination).
type ListResponse struct {
	Count    int              `json:"count"`
	Next     *string          `json:"next"`
	Previous *string          `json:"previous"`
	Results  []SessionSummary `json:"results"`
}

func (s *Service) listSessions(w http.ResponseWriter, r *http.Request, c caller) {
	q := r.URL.Query()
	errs := map[string]string{}
	num := func(name string, def, lo, hi int) int {
		v := q.Get(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			errs[name] = fmt.Sprintf("Must be an integer from %d to %d.", lo, hi)
		}
		return n
	}
	limit := num("limit", 20, 1, 100)
	offset := num("offset", 0, 0, 1<<30)
	status := q.Get("status")
	if status != "" {
		ok := false
		for _, st := range store.AllStatuses {
			ok = ok || st == status
		}
		if !ok {
			errs["status"] = "Unknown status."
		}
	}
	if len(errs) > 0 {
		writeJSON(w, http.StatusBadRequest, errs)
		return
	}
	vs, total, err := s.List(r.Context(), store.VerificationFilter{AppID: c.app.ID, VendorData: q.Get("vendor_data"), Status: status, Limit: limit, Offset: offset})
	if err != nil {
		s.writeError(w, r, "list sessions", err)
		return
	}
	out := ListResponse{Count: total, Results: []SessionSummary{}}
	for _, v := range vs {
		out.Results = append(out.Results, SessionSummary{SessionID: v.ID, SessionNumber: v.Number, SessionURL: s.URL(v.ID), Status: v.Status,
			WorkflowID: v.WorkflowID, VendorData: v.VendorData, Metadata: v.Metadata, Callback: v.Callback,
			CreatedAt: timeText(v.CreatedAt), ExpiresAt: timeText(v.ExpiresAt)})
	}
	page := func(off int) *string {
		u := url.URL{Path: "/v3/sessions/"}
		pq := url.Values{}
		for k, v := range q {
			pq[k] = v
		}
		pq.Set("limit", strconv.Itoa(limit))
		pq.Set("offset", strconv.Itoa(off))
		u.RawQuery = pq.Encode()
		link := s.cfg.BaseURL + u.String()
		return &link
	}
	if offset+limit < total {
		out.Next = page(offset + limit)
	}
	if offset > 0 {
		out.Previous = page(max(offset-limit, 0))
	}
	writeJSON(w, http.StatusOK, out)
}
