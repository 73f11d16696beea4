# The DVC plots page without a network (included by the root Makefile).
#
# `dvc plots show` alone writes dvc_plots/index.html with <script> tags that load vega, vega-lite
# and vega-embed from a CDN: offline its vega-lite plots stay blank. `make plots` passes DVC an
# HTML template (`--html-template`, the same setting as `dvc config plots.html_template`) that
# carries the three libraries inline, at the exact versions of plots/package-lock.json, installed
# from the npm registry with `npm ci` into plots/node_modules (ignored) and inlined by
# plots/build.mjs into plots/build/template.html (ignored). The page needs no network.

PLOTS_TEMPLATE := plots/build/template.html

.PHONY: plots plots-template setup-browser

plots: setup $(PLOTS_TEMPLATE)  ## dvc_plots/index.html, drawn offline
	$(BIN)/dvc plots show --html-template "$(CURDIR)/$(PLOTS_TEMPLATE)"

plots-template: $(PLOTS_TEMPLATE)  ## only the offline HTML template (npm ci + plots/build.mjs)

$(PLOTS_TEMPLATE): plots/package.json plots/package-lock.json plots/build.mjs
	@command -v npm >/dev/null && command -v node >/dev/null || { \
		echo "make: the offline plots template needs Node.js and npm (apt-get install -y nodejs npm), or run 'dvc plots show' (vega from a CDN)" >&2; \
		exit 1; }
	cd plots && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	node plots/build.mjs

# Headless Chromium for tests/test_plots_offline.py (Debian's package); a no-op when installed.
setup-browser:
	@if command -v chromium >/dev/null; then echo "chromium: $$(command -v chromium)"; \
	else \
		if [ "$$(id -u)" = 0 ]; then sudo=; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; \
		else echo "make setup-browser: chromium is missing; as root: apt-get install -y chromium" >&2; exit 1; fi; \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null && \
		echo "chromium: installed $$(command -v chromium)"; \
	fi
