package sqlite

import (
	"testing"

	"github.com/visage-idp/visage/store"
	"github.com/visage-idp/visage/store/storetest"
)

func TestSessionsConformance(t *testing.T) {
	storetest.RunSessionsConformance(t, func(t *testing.T) store.SessionsStorage {
		s, _ := openTemp(t)
		return s
	})
}
