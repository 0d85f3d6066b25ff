# www: the dashboard and the browser client library, installed into
# $(pkgdatadir)/www (the daemon's default docroot).
wwwdir = $(pkgdatadir)/www
dist_www_DATA = \
	www/index.html \
	www/dashboard.js \
	www/dashboard.css \
	www/mqgate.js \
	www/mqgate.esm.js \
	www/mqgate-worker.js
EXTRA_DIST += www/README.md
