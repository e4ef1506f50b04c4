package postgres

import (
	"testing"

	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/store/storetest"
)

func TestSessionsConformance(t *testing.T) {
	srv := testServer(t)
	storetest.RunSessionsConformance(t, func(t *testing.T) store.SessionsStorage {
		return open(t, srv.schema(t))
	})
}
