#!/bin/sh
# Regenerates configure and the Makefile templates (needs autoconf, automake, libtool).
set -e
cd "$(dirname "$0")"
autoreconf --force --install --warnings=all
