# The two commands: `make run` brings EMS up, `make test` runs every suite.
# Both start by installing what is missing (scripts/deps.sh, idempotent).

BUILD      ?= build
BUILD_ASAN ?= build-asan
JOBS       ?= $(shell nproc)

.PHONY: run test deps build build-asan web unit clean diagram cluster cluster-stop

run: deps build web
	@bash scripts/run.sh $(BUILD)

test: deps build build-asan web
	bash tests/run_all.sh $(BUILD) $(BUILD_ASAN)

deps:
	@bash scripts/deps.sh

build:
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan:
	@cmake -S . -B $(BUILD_ASAN) -DCMAKE_BUILD_TYPE=Debug -DEMS_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD_ASAN) -j $(JOBS)

web:
	@bash scripts/web.sh

unit: build
	ctest --test-dir $(BUILD) -L unit --output-on-failure

cluster: deps build
	bash deploy/local/cluster.sh start

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)

# docs/deployment.svg from docs/deployment.puml (needs: apt-get install plantuml graphviz).
diagram:
	plantuml -tsvg docs/deployment.puml

cluster-stop:
	bash deploy/local/cluster.sh stop
