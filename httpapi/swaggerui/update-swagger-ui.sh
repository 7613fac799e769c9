#!/bin/sh
# Vendors Swagger UI from the npm package swagger-ui-dist into this folder and
# records what was taken in VERSION.
#
#   httpapi/swaggerui/update-swagger-ui.sh 5.35.0   (needs npm and node)
#
# `npm pack` only downloads the package's tarball: nothing is installed and no
# package script runs, so swagger-ui-dist's dependency @scarf/scarf
# (install-time analytics) is never fetched.
set -eu
if [ $# -ne 1 ]; then
	echo "usage: $0 VERSION   (e.g. 5.35.0; npm view swagger-ui-dist version gives the latest)" >&2
	exit 2
fi
version=$1
dir=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent --json "swagger-ui-dist@$version" >pack.json
integrity=$(node -p 'require("./pack.json")[0].integrity')
tar xzf swagger-ui-dist-"$version".tgz
# Only what the page loads, and the licences that must go with it.
files="swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css LICENSE NOTICE"
for f in $files; do cp "package/$f" "$dir/$f"; done
{
	echo "swagger-ui-dist $version from the npm registry (npm pack), by update-swagger-ui.sh"
	echo "tarball integrity $integrity"
	(cd "$dir" && sha256sum $files)
} >"$dir/VERSION"
echo "vendored swagger-ui-dist $version into $dir"
