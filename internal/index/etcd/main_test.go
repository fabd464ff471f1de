package etcd

import (
	"testing"

	"davkv/internal/testenv"
)

// TestMain fails the tests if a server they started outlives them.
func TestMain(m *testing.M) { testenv.Main(m) }
