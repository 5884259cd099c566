# The single entry point. Quick start: `make demo`, then `make test`.
SHELL := /bin/bash
export SAM_CLI_TELEMETRY := 0
# moto and the tests must never reach AWS: dummy credentials, a fixed region.
TEST_ENV := AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_SESSION_TOKEN=testing \
            AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
            POWERTOOLS_TRACE_DISABLED=1 POWERTOOLS_SERVICE_NAME=keyfix POWERTOOLS_METRICS_NAMESPACE=keyfix

.PHONY: setup demo test validate scan build package deploy pytest clean stackset org-validate

# Deploying (README, Deploy). CONFIG_ENV picks a samconfig.toml environment (default, prod);
# package needs S3_BUCKET. DRY_RUN=1 prints the AWS-facing sam command instead of running it
# (everything before it - validate, scan, build - runs as usual).
CONFIG_ENV ?= default
S3_BUCKET ?=
S3_PREFIX ?= keyfix
PACKAGED ?= .aws-sam/packaged.yaml
RUN_AWS := $(if $(filter 1 true yes,$(DRY_RUN)),@echo DRY_RUN:,)
BUILT := .aws-sam/build/KeyfixFunction

setup:
	scripts/setup all

demo:
	scripts/setup project
	$(TEST_ENV) .venv/bin/keyfix demo

validate:
	scripts/setup tools
	.venv-tools/bin/sam validate --lint

# The template's scanners, each in its own venv; every finding is fixed or suppressed in the
# template's Metadata with its reason. --skip-download: checkov would fetch guidelines from
# its vendor's API; the checks themselves are local.
scan:
	scripts/setup scanners
	.venv-checkov/bin/checkov -f template.yaml --framework cloudformation --compact --quiet --skip-download
	.venv-cfn-lint-serverless/bin/cfn-lint template.yaml --append-rules cfn_lint_serverless.rules

# sam build looks for python3.13 on PATH; the project venv's interpreter is one.
build: validate
	scripts/setup project
	PATH="$(CURDIR)/.venv/bin:$$PATH" .venv-tools/bin/sam build --parallel
	# The function runs neither the simulator nor the demo (keyfix demo runs from the
	# project venv): CodeUri src/ copies them, so they go.
	rm -rf $(BUILT)/keyfix/sim $(BUILT)/keyfix/demo $(BUILT)/*.egg-info
	# Lambda cannot write __pycache__: ship bytecode, or every cold start compiles the
	# dependencies from source (bench/README.md). unchecked-hash: zip timestamps are unreliable.
	.venv/bin/python -m compileall -q -j0 --invalidation-mode unchecked-hash $(BUILT)
	@echo "keyfix build: artifact $$(du -sk $(BUILT) | cut -f1) KiB unzipped in $(BUILT)"

# The packaged template (code uploaded to S3_BUCKET) that an organisation's own pipeline or
# StackSets deploy; built exactly as the tests build.
package: build
	@test -n "$(S3_BUCKET)" || { echo "make package: set S3_BUCKET=<bucket in the target Region>" >&2; exit 2; }
	$(RUN_AWS) .venv-tools/bin/sam package --template-file .aws-sam/build/template.yaml \
	  --s3-bucket $(S3_BUCKET) --s3-prefix $(S3_PREFIX) --output-template-file $(PACKAGED)

# The StackSet template (README, Across an organisation): the packaged template with its SAM
# transform expanded (StackSets cannot run transforms) and org/member-additions.yaml merged in,
# then linted. DRY_RUN=1: no upload; the code location is a stand-in in S3_BUCKET.
STACKSET ?= org/member-stackset.yaml
STACKSET_SOURCE := $(if $(filter 1 true yes,$(DRY_RUN)),.aws-sam/build/template.yaml --code-uri s3://$(S3_BUCKET)/$(S3_PREFIX)/DRY-RUN.zip,$(PACKAGED))
stackset: package
	.venv-tools/bin/python scripts/stackset-template $(STACKSET_SOURCE) org/member-additions.yaml $(STACKSET)
	.venv-tools/bin/sam validate --lint --template-file $(STACKSET)

# The central stack (org/central.yaml) and a StackSet template built without S3, both linted.
org-validate:
	scripts/setup tools
	.venv-tools/bin/sam validate --lint --template-file org/central.yaml
	.venv-tools/bin/python scripts/stackset-template template.yaml org/member-additions.yaml .aws-sam/org-check.yaml --code-uri s3://example-bucket/keyfix/code.zip
	.venv-tools/bin/sam validate --lint --template-file .aws-sam/org-check.yaml

# sam deploy picks up .aws-sam/build/template.yaml, so what is deployed is what was built here.
deploy: build
	$(RUN_AWS) .venv-tools/bin/sam deploy --config-env $(CONFIG_ENV)

pytest:
	scripts/setup project
	$(TEST_ENV) .venv/bin/python -m pytest tests/unit tests/integration tests/differential

# What CI runs (.ci/run): lint, build and scan the SAM application, then every test.
test: build scan pytest

clean:
	rm -rf .aws-sam .venv .venv-tools .venv-checkov .venv-cfn-lint-serverless tests/oracle/node_modules
