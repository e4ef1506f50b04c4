package postgres

import (
	"testing"

	"github.com/visage-idp/visage/store/storetest"
)

func TestRiskConformance(t *testing.T) {
	srv := testServer(t)
	storetest.RunRiskConformance(t, func(t *testing.T) storetest.RiskBackend {
		return open(t, srv.schema(t))
	})
}
