# Sourced by the scripts/data/make-*.sh scripts: Debian packages fetched and unpacked without
# installing them (no root at run time), cached in a folder. The caller defines die and say.
#
#   fetch_debs SRC PKG...   downloads each PKG's .deb into SRC (unless one is there) and unpacks
#                           them all into SRC/root (once; delete SRC/root/.unpacked to redo it)
fetch_debs() {
    local src=$1 pkg deb
    shift
    command -v apt-get >/dev/null || die "apt-get not found: this script needs Debian's apt to fetch $*"
    # apt-get download writes into the current directory.
    for pkg in "$@"; do
        if ! ls "$src/${pkg}"_*.deb >/dev/null 2>&1; then
            say "downloading $pkg into $src"
            (cd "$src" && apt-get download "$pkg" >&2) \
                || die "apt-get download $pkg failed; refresh the package lists (sudo apt-get update) and check that Debian's main archive is reachable"
        fi
    done
    # dpkg -x: no install, no root; all packages into one tree.
    if [[ ! -f $src/root/.unpacked ]]; then
        rm -rf "$src/root"
        for pkg in "$@"; do
            deb="$(ls "$src/${pkg}"_*.deb | head -n1)"
            say "unpacking $(basename "$deb")"
            dpkg -x "$deb" "$src/root" || die "dpkg -x $deb failed; the download may be damaged: delete it and rerun"
        done
        touch "$src/root/.unpacked"
    fi
}
