# The two set-up commands (see README): `make run` and `make test`.
.PHONY: run test release e2e

## Runs tandem on the embedded SQLite default at http://127.0.0.1:3000 (installs missing tools first).
run:
	./scripts/setup.sh build
	. scripts/env.sh && cargo leptos serve

## Runs every check and test (installs Chromium and the npm packages when missing).
test:
	./scripts/setup.sh test
	./scripts/test.sh

## Builds the deployable binary and site folder (target/release/tandem, target/site).
release:
	./scripts/setup.sh build
	. scripts/env.sh && cargo leptos build --release

## Only the Playwright suite.
e2e:
	./scripts/setup.sh test
	. scripts/env.sh && mkdir -p target/e2e && rm -f target/e2e/e2e.db* && TANDEM_DATABASE_URL=sqlite://target/e2e/e2e.db cargo leptos end-to-end
