# make demo: install ocilens with pip (no venv) and analyse the bundled sample image.
# make test: install what the tests need (Debian tools included) and run the whole suite.

PYTHON ?= python3
OCILENS ?= $(PYTHON) -m ocilens
DEB_PACKAGES := umoci skopeo docker-registry zstd pigz apache2-utils chromium debootstrap rpm
# the Docker and Podman engines the tests start themselves, without what Debian recommends beside them
ENGINE_PACKAGES := docker.io podman
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)
# Debian's own python3 refuses `pip install` outside a venv (PEP 668); this install is venv-less on
# purpose. No effect on a Python that is not externally managed (pyenv, conda, python.org builds).
export PIP_BREAK_SYSTEM_PACKAGES := 1

.PHONY: demo test install install-test debian-deps

demo: install
	$(OCILENS) analyze --json sample.json --html report.html

test: debian-deps install-test
	$(PYTHON) -m pytest

install:
	$(PYTHON) -m pip install -e .

install-test:
	$(PYTHON) -m pip install -e '.[test]'

# apt-get update runs only when a package (or pip itself) is missing.
debian-deps:
	@missing=""; \
	for p in $(DEB_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; done; \
	$(PYTHON) -m pip --version >/dev/null 2>&1 || missing="$$missing python3-pip"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	engines=""; \
	for p in $(ENGINE_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || engines="$$engines $$p"; done; \
	if [ -n "$$missing$$engines" ]; then \
		echo "installing Debian packages:$$missing$$engines"; \
		$(SUDO) apt-get update; \
	else echo "Debian packages present: $(DEB_PACKAGES) $(ENGINE_PACKAGES)"; fi; \
	if [ -n "$$missing" ]; then \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing || exit 1; fi; \
	if [ -n "$$engines" ]; then \
		$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $$engines || exit 1; fi
