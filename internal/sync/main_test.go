package sync_test

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if childMain() || crashChildMain() {
		return
	}
	goleak.VerifyTestMain(m)
}
