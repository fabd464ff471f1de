# The two commands of the README: `make run` starts a local cluster, `make test` runs
# every test. Both install what they need (nginx from Debian, Go modules).
GO ?= go

.PHONY: run test deps bench

deps:
	scripts/deps.sh nginx-light curl
	$(GO) mod download

run: deps
	scripts/run.sh

test: deps
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout 20m ./...

# Not part of the tests: measures davkv against the physical limit (see README, Performance).
bench:
	scripts/bench.sh
