package sqlite

import (
	"testing"

	"github.com/visage-idp/visage/store/storetest"
)

func TestRiskConformance(t *testing.T) {
	storetest.RunRiskConformance(t, func(t *testing.T) storetest.RiskBackend {
		s, _ := openTemp(t)
		return s
	})
}
