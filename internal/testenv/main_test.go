package testenv

import "testing"

// TestMain fails the tests if a server they started outlives them.
func TestMain(m *testing.M) { Main(m) }
