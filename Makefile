# The single entry point. Quick start: `make demo`, then `make test`.
SHELL := /bin/bash
export SAM_CLI_TELEMETRY := 0
# moto and the tests must never reach AWS: dummy credentials, a fixed region.
TEST_ENV := AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing \
            AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
            POWERTOOLS_TRACE_DISABLED=1 POWERTOOLS_SERVICE_NAME=keyfix POWERTOOLS_METRICS_NAMESPACE=keyfix

.PHONY: setup demo test validate build pytest clean

setup:
	scripts/setup all

demo:
	scripts/setup project
	$(TEST_ENV) .venv/bin/keyfix demo

validate:
	scripts/setup tools
	.venv-tools/bin/sam validate --lint

# sam build looks for python3.13 on PATH; the project venv's interpreter is one.
build: validate
	scripts/setup project
	PATH="$(CURDIR)/.venv/bin:$$PATH" .venv-tools/bin/sam build --parallel
	# Lambda cannot write __pycache__: ship bytecode, or every cold start compiles the
	# dependencies from source (bench/README.md). unchecked-hash: zip timestamps are unreliable.
	.venv/bin/python -m compileall -q -j0 --invalidation-mode unchecked-hash .aws-sam/build/KeyfixFunction

pytest:
	scripts/setup project
	$(TEST_ENV) .venv/bin/python -m pytest tests/unit tests/integration tests/differential

# What CI runs (.ci/run): lint and build the SAM application, then every test.
test: build pytest

clean:
	rm -rf .aws-sam .venv .venv-tools tests/oracle/node_modules
