# The two set-up commands (see README): `make run` and `make test`.
.PHONY: run test release e2e watch

## Runs tandem on the embedded SQLite default at http://127.0.0.1:3000 (installs missing tools first).
run:
	./scripts/setup.sh build
	. scripts/env.sh && cargo leptos serve --split

## Rebuilds and reloads on every change. cargo-leptos does not hash the
## files it rebuilds (its issue #271), so hashing is off here.
watch:
	./scripts/setup.sh build
	. scripts/env.sh && LEPTOS_HASH_FILES=false cargo leptos watch --split

## Runs every check and test (installs Chromium and the npm packages when missing).
test:
	./scripts/setup.sh test
	./scripts/test.sh

## Builds the deployable binary, one file with its site inside (target/release/tandem).
release:
	./scripts/setup.sh build
	. scripts/env.sh && cargo leptos build --release --split

## Only the Playwright suite (scripts/e2e.sh).
e2e:
	./scripts/setup.sh test
	./scripts/e2e.sh
