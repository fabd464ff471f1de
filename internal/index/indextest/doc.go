// Package indextest is the suite every index backend runs (Run), litestream-style: what
// the master relies on of any backend, checked the same way on each.
package indextest
