# doc: the manual pages (installed) and the documents beside them.
dist_man_MANS += doc/mqgate.8 doc/mqgate.conf.5
EXTRA_DIST += doc/HACKING.md doc/protocol.md
