// Package sessions is Visage's Didit-compatible re-authentication Sessions API: a second door
// into the same face pipeline as the OIDC login. An application authenticated by an API key
// (header x-api-key) creates a session for one of its users (POST /v3/session/), sends the
// user to the hosted page at the session's url, where the camera script of the login page
// takes a selfie that runs the workflow's liveness check and the face match against the
// reference face, and learns the verdict from a signed webhook and from
// GET /v3/session/{id}/decision/. Sessions can be listed, decided by hand, resubmitted,
// deleted for real, and expire; they follow Didit's statuses (Not Finished, Resubmitted and Kyc
// Expired included) and answer in both Didit's array shapes and the top-level liveness and face
// blocks of Didit's biometric re-authentication guide. A hosted session's liveness method is
// never weaker than its workflow's, and the step-up policy's Tor/VPN rule escalates it. Every status change writes its webhook to an outbox in the same transaction;
// Dispatcher delivers the outbox with retries (package webhook signs). The OpenAPI 3 document
// of the API is served at /v3/openapi.json.
//
// Handlers are thin: they parse (ParseCreateRequest), call the Service, and write JSON in
// Didit's shapes. Face data (images, templates, descriptors) is never logged; logs carry
// session ids, statuses and warning codes.
package sessions
