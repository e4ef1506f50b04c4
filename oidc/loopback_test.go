package oidc

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// loopback is an httptest server whose URL is known before its handler exists (the provider
// needs its issuer).
type loopback struct {
	srv *httptest.Server
	url string
}

func newLoopback(t testing.TB) *loopback {
	srv := httptest.NewUnstartedServer(nil)
	t.Cleanup(srv.Close)
	return &loopback{srv: srv, url: "http://" + srv.Listener.Addr().String()}
}

func (l *loopback) start(h http.Handler) {
	l.srv.Config.Handler = h
	l.srv.Start()
}
