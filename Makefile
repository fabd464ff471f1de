# The two commands of the README: `make run` starts a local cluster, `make test` runs
# every test. Both install what they need (nginx from Debian, Go modules).
GO ?= go

.PHONY: run test deps testdeps bench

deps:
	scripts/deps.sh nginx-light curl
	$(GO) mod download

run: deps
	scripts/run.sh

# The tests also drive Debian's S3 tools (the AWS CLI, boto3, rclone), make a volume
# unreachable with nftables, load the browse page in Chromium, and run etcd clusters
# and PostgreSQL servers.
testdeps: deps
	scripts/deps.sh awscli python3-boto3 rclone nftables chromium etcd-server postgresql

test: testdeps
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...
	@echo "the root package's suite again with every cluster's index in etcd, then in PostgreSQL (tests that start their own etcd or PostgreSQL ran above; the packages under internal/ start no cluster)"
	DAVKV_TEST_INDEX=etcd $(GO) test -race -count=1 -timeout 20m -skip '$(OWN_INDEX)' .
	DAVKV_TEST_INDEX=postgres $(GO) test -race -count=1 -timeout 20m -skip '$(OWN_INDEX)' .

# Tests that start etcd clusters or PostgreSQL servers of their own, which the etcd
# and PostgreSQL passes need not run again.
OWN_INDEX = TestLinearizable|TestDeleteRaces|TestPausedMasterFenced|TestMastersConflict|TestMasterKilledOnEtcd|TestEtcdMembersKilled|TestMigrate|TestMasterOnEtcd|TestLifecycleOnEtcd|TestMasterOnPostgres|TestMasterKilledOnPostgres|TestPostgresFailover|TestAuthMastersShareKeys

# Not part of the tests: measures davkv against the physical limit (see README, Performance).
bench:
	scripts/bench.sh
	scripts/bench-etcd.sh
	scripts/bench-postgres.sh
