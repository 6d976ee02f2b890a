#!/usr/bin/env bash
# Builds keyhold_VERSION_ARCH.deb with dpkg-deb from a release build (Debian 12).
#
#   deploy/package.sh [--build] [--output DIR]
#
#   --build        run the release build first (swift build -c release --static-swift-stdlib); without it the
#                  script refuses a missing or out-of-date build and prints the command to run
#   --output DIR   where the .deb goes (default: the repository's root)
#
# KEYHOLD_SCRATCH_PATH   SwiftPM's scratch path of the release build (default .build, SwiftPM's own default)
# KEYHOLD_MAINTAINER     the Maintainer: field (default: the project's address)
#
# VERSION is Keyhold's version (CommandMain.version in Sources/KeyholdCommandLine/CommandMain.swift), then, unless HEAD is
# tagged v<version>, "~git<commits>.g<hash>": `~` sorts a snapshot before the release it leads to, and the commit
# count makes later snapshots sort after earlier ones (apt upgrades along main). A tree with uncommitted changes
# adds ".dirty". The Debian revision is -1.
#
# The package is assembled in a temporary directory and moved into place only when complete: a failed run leaves
# no .deb behind. Needs dpkg-dev (dpkg-shlibdeps: Depends: is computed from what the binaries link) and binutils.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)

build=no
output=$repo
while [ $# -gt 0 ]; do
  case $1 in
  --build) build=yes ;;
  --output)
    [ $# -ge 2 ] || { echo "package: --output needs a directory" >&2; exit 2; }
    output=$2
    shift
    ;;
  -h | --help)
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *)
    echo "package: unknown argument '$1' (see $0 --help)" >&2
    exit 2
    ;;
  esac
  shift
done

fail() {
  echo "package: error: $*" >&2
  exit 1
}

scratch=${KEYHOLD_SCRATCH_PATH:-.build}
case $scratch in /*) ;; *) scratch=$repo/$scratch ;; esac
build_command="swift build -c release --static-swift-stdlib --scratch-path $scratch"
[ -d "$output" ] || fail "the output directory $output does not exist"
output=$(cd "$output" && pwd)

for tool in dpkg-deb dpkg-shlibdeps strip gzip; do
  command -v "$tool" >/dev/null || fail "$tool is missing: apt-get install dpkg-dev binutils"
done

if [ "$build" = yes ]; then
  # The four programs the package ships, not the benchmarks.
  for product in keyhold keyholdd keyhold-exec keyhold-mount; do
    echo "package: $build_command --product $product"
    $build_command --product "$product" || fail "the release build failed (above)"
  done
fi

# --- The release build: present, up to date, linking only Debian libraries ---
release=$scratch/release
programs=(keyhold keyholdd keyhold-exec keyhold-mount)
for program in "${programs[@]}"; do
  [ -x "$release/$program" ] ||
    fail "no release build: $release/$program is missing. Run: $build_command (or deploy/package.sh --build)"
done
# Each program against the sources it is built from (SwiftPM relinks a program only when its own inputs change). After
# --build SwiftPM has just decided what is up to date, so the check is for a build made earlier.
# (`|| true`: head closes the pipe early, and pipefail would make that a failure.)
sources_of() {
  case $1 in
  keyhold-exec) echo Sources/keyhold-exec Sources/KeyholdExecPayload Sources/CSeccomp ;;
  keyhold-mount) echo Sources/keyhold-mount Sources/CMountNamespace ;;
  keyhold) echo Sources/keyhold Sources/KeyholdCommandLine Sources/KeyholdClient Sources/KeyholdCore Sources/KeyholdVault ;;
  keyholdd) find Sources -mindepth 1 -maxdepth 1 -type d ! -name keyhold ! -name keyhold-exec ! -name keyhold-mount ! -name KeyholdTesting ;;
  esac
}
if [ "$build" = no ]; then
  for program in "${programs[@]}"; do
    # shellcheck disable=SC2046 # directory names, one word each
    newer=$(find $(sources_of "$program") -type f -newer "$release/$program" 2>/dev/null | head -3 || true)
    [ -z "$newer" ] ||
      fail "the release build's $program is older than its sources (e.g. $(echo "$newer" | tr '\n' ' ')). Run: $build_command (or deploy/package.sh --build)"
  done
fi
for program in "${programs[@]}"; do
  libraries=$(ldd "$release/$program") || fail "ldd $release/$program failed"
  if grep -q 'not found' <<<"$libraries"; then
    fail "$program links a library that is missing here: $(grep 'not found' <<<"$libraries" | tr -s ' \t' ' ')"
  fi
  if grep -qE 'libswift|libFoundation|libdispatch|libBlocksRuntime|/opt/swift|/usr/share/swift' <<<"$libraries"; then
    fail "$program links the Swift runtime dynamically ($(grep -oE 'lib(swift|Foundation|dispatch|BlocksRuntime)[^ ]*' <<<"$libraries" | head -3 | tr '\n' ' ')), which no Debian package provides. Rebuild with --static-swift-stdlib: $build_command"
  fi
done

# --- Version ---
upstream=$(sed -n 's/.*static let version = "\([^"]*\)".*/\1/p' Sources/KeyholdCommandLine/CommandMain.swift | head -1)
[ -n "$upstream" ] || fail "cannot read CommandMain.version from Sources/KeyholdCommandLine/CommandMain.swift"
built_version=$("$release/keyhold" --version 2>/dev/null || true)
[ "$built_version" = "$upstream" ] ||
  fail "the release build says version '$built_version' but the sources say '$upstream': rebuild with $build_command"
if git rev-parse --git-dir >/dev/null 2>&1; then
  commit=$(git rev-parse --short=12 HEAD)
  if [ "$(git describe --tags --exact-match HEAD 2>/dev/null || true)" = "v$upstream" ]; then
    version=$upstream
  else
    version="$upstream~git$(git rev-list --count HEAD).g$commit"
  fi
  [ -z "$(git status --porcelain --untracked-files=no -- Sources Package.swift Package.resolved plans sandbox-profiles deploy 2>/dev/null)" ] ||
    version="$version.dirty"
  commit_time=$(git log -1 --format=%ct HEAD)
else
  commit=unknown
  version="$upstream~nogit"
  commit_time=$(stat -c %Y Sources/KeyholdCommandLine/CommandMain.swift)
fi
debian_version="$version-1"
arch=$(dpkg --print-architecture)
maintainer=${KEYHOLD_MAINTAINER:-Keyhold <dev@keyhold.invalid>}
export SOURCE_DATE_EPOCH=$commit_time
deb_name="keyhold_${debian_version}_${arch}.deb"

# --- Staging, in a temporary directory removed on every exit ---
work=$(mktemp -d /var/tmp/keyhold-package.XXXXXX)
partial=$output/.$deb_name.partial
trap 'rm -rf "$work" "$partial"' EXIT
root=$work/root
umask 022
install -d "$root/DEBIAN" "$root/usr/bin" "$root/usr/libexec/keyhold" "$root/usr/share/keyhold" \
  "$root/lib/systemd/system" "$root/usr/share/doc/keyhold" "$root/usr/share/man/man1" \
  "$root/etc/keyhold/plans" "$root/etc/keyhold/sandbox-profiles"

# Stripped (Debian policy; Swift's reflection metadata is in sections strip keeps, not in the symbol table).
install -m 0755 "$release/keyhold" "$release/keyholdd" "$root/usr/bin/"
install -m 0755 "$release/keyhold-exec" "$release/keyhold-mount" "$root/usr/libexec/keyhold/"
strip --strip-unneeded --remove-section=.comment --remove-section=.note \
  "$root/usr/bin/keyhold" "$root/usr/bin/keyholdd" "$root/usr/libexec/keyhold/keyhold-exec" "$root/usr/libexec/keyhold/keyhold-mount"
for program in keyhold keyholdd; do
  "$root/usr/bin/$program" --version >/dev/null || fail "the stripped $program does not run"
done

# Plans and profiles: the shipped copies in /usr/share/keyhold (reference: `diff -r` shows a provider's edits),
# the ones the daemon reads in /etc/keyhold (conffiles: an upgrade never overwrites a provider's edits silently).
cp -r plans sandbox-profiles "$root/usr/share/keyhold/"
install -m 0644 plans/*.yaml "$root/etc/keyhold/plans/"
install -m 0644 sandbox-profiles/*.json "$root/etc/keyhold/sandbox-profiles/"
find "$root/usr/share/keyhold" -type d -exec chmod 0755 {} + && find "$root/usr/share/keyhold" -type f -exec chmod 0644 {} +
(cd "$root" && find etc -type f | sort | sed 's|^|/|') >"$root/DEBIAN/conffiles"

install -m 0644 deploy/keyhold.service "$root/lib/systemd/system/keyhold.service"

install -m 0644 README.md deploy/openapi.yaml deploy/grafana-dashboard.json "$root/usr/share/doc/keyhold/"
if grep -qv '^#' deploy/debian/lintian-overrides 2>/dev/null; then
  install -D -m 0644 deploy/debian/lintian-overrides "$root/usr/share/lintian/overrides/keyhold"
fi

# changelog.Debian.gz: one entry for this build (the project's history is its git log).
changelog_date=$(date -R -u -d "@$commit_time")
cat >"$work/changelog.Debian" <<EOF
keyhold ($debian_version) bookworm; urgency=medium

  * Built from commit $commit by deploy/package.sh.

 -- $maintainer  $changelog_date
EOF
gzip -9n <"$work/changelog.Debian" >"$root/usr/share/doc/keyhold/changelog.Debian.gz"

# copyright: Keyhold, the Swift runtime, then every Swift package the build resolved (linked statically).
{
  cat deploy/debian/copyright.in
  for checkout in "$scratch"/checkouts/*/; do
    name=$(basename "$checkout")
    license_file=$(find "$checkout" -maxdepth 1 -type f \( -iname 'license*' -o -iname 'licence*' -o -iname 'copying*' \) | sort | head -1)
    [ -n "$license_file" ] || fail "no license file in the checkout $checkout: cannot write the copyright file"
    holder=$(grep -m1 -iE '^ *(\(c\) *)?copyright *(\(c\))? *[0-9]' "$license_file" | sed -E 's/^ *(\([cC]\) *)?[Cc]opyright *(\([cC]\))? *//' || true)
    echo
    echo "Files: swift-packages/$name/*"
    echo "Copyright: ${holder:-the $name authors}"
    if grep -q 'Apache License' "$license_file" && grep -q 'Version 2.0' "$license_file"; then
      echo "License: Apache-2.0"
      echo " On Debian systems, the full text of the Apache License, Version 2.0 can be"
      echo " found in the file /usr/share/common-licenses/Apache-2.0."
    elif grep -q 'Permission is hereby granted, free of charge' "$license_file"; then
      echo "License: Expat"
      sed -e 's/^[[:space:]]*$/./' -e 's/^/ /' "$license_file"
    else
      fail "cannot classify the license of $name ($license_file): extend deploy/package.sh"
    fi
    # Licenses of code vendored inside a package (e.g. llhttp in swift-nio).
    while IFS= read -r nested; do
      echo
      echo "Files: swift-packages/$name/$(dirname "${nested#"$checkout"}")/*"
      echo "Copyright: $(grep -m1 -i 'copyright' "$nested" | sed -E 's/^ *[Cc]opyright *(\([cC]\))? *//')"
      echo "License: Expat"
      sed -e 's/^[[:space:]]*$/./' -e 's/^/ /' "$nested"
    done < <(find "$checkout/Sources" -mindepth 2 -type f \( -iname 'license*' -o -iname 'copying*' \) 2>/dev/null | sort)
  done
} >"$root/usr/share/doc/keyhold/copyright"

# Man pages: swift-argument-parser's generate-manual (from the checkout the build resolved: offline), one page per
# command (keyhold.1, keyhold-tenant-create.1, ...) from `keyhold --experimental-dump-help`.
parser=$scratch/checkouts/swift-argument-parser
[ -f "$parser/Package.swift" ] || fail "no swift-argument-parser checkout in $scratch/checkouts: run $build_command"
generator=$scratch/generate-manual/release/generate-manual
if [ ! -x "$generator" ] || [ -n "$(find "$parser/Tools/generate-manual" -newer "$generator" -type f | head -1 || true)" ]; then
  echo "package: building generate-manual (swift-argument-parser's man page generator)"
  swift build -c release --package-path "$parser" --scratch-path "$scratch/generate-manual" --product generate-manual >"$work/generate-manual.log" 2>&1 ||
    { cat "$work/generate-manual.log" >&2; fail "building generate-manual failed (log above)"; }
fi
# keyholdd's pages document the commands keyhold hands it (keyholdd-serve(1) for `keyhold serve`).
for program in keyhold keyholdd; do
  "$generator" "$root/usr/bin/$program" --multi-page --section 1 --date "$(date -u -d "@$commit_time" +%Y-%m-%d)" \
    --authors "The Keyhold authors" --output-directory "$root/usr/share/man/man1"
  [ -f "$root/usr/share/man/man1/$program.1" ] || fail "generate-manual wrote no $program.1"
done
# Pages named like git's (keyhold-tenant-create(1), `man keyhold-tenant-create`), with a NAME that whatis and lintian
# can parse (one word, an unquoted description); the SYNOPSIS still shows the command as typed: keyhold tenant create.
python3 - "$root/usr/share/man/man1" <<'PYTHON' || fail "rewriting the man pages failed"
import os, re, sys
directory = sys.argv[1]
for name in sorted(os.listdir(directory)):
    page = name[: -len(".1")].replace(".", "-")
    with open(os.path.join(directory, name)) as f:
        lines = f.read().split("\n")
    out, section, synopsis_named, command = [], None, False, None
    for line in lines:
        if line.startswith(".Sh "):
            section = line[4:].strip('"')
        if line.startswith(".Dt "):
            line = ".Dt " + page.upper() + " 1"
        elif section == "NAME" and line.startswith(".Nm "):
            command = line[4:].strip('"')
            line = ".Nm " + page
        elif section == "NAME" and line.startswith('.Nd "') and line.endswith('"'):
            line = ".Nd " + line[5:-1]
        elif section == "SYNOPSIS" and line == ".Nm" and not synopsis_named and command != page:
            line, synopsis_named = '.Nm "' + command + '"', True
        elif re.match(r"\.Xr keyholdd?\.", line):
            line = re.sub(r"^\.Xr (keyholdd?\.[^ ]+)", lambda m: ".Xr " + m.group(1).replace(".", "-"), line)
        out.append(line)
    os.remove(os.path.join(directory, name))
    with open(os.path.join(directory, page + ".1"), "w") as f:
        f.write("\n".join(out))
PYTHON
find "$root/usr/share/man/man1" -type f -name '*.1' -exec chmod 0644 {} + -exec gzip -9n {} +

# --- Control files ---
install -m 0755 deploy/debian/postinst deploy/debian/prerm deploy/debian/postrm "$root/DEBIAN/"
# Depends: what the binaries link (dpkg-shlibdeps reads the shlibs/symbols files of the libraries' packages), and
# what the daemon runs: systemd (PID 1 starts the sandboxes; systemd-creds seals the keys), init-system-helpers
# (deb-systemd-helper in the maintainer scripts).
mkdir -p "$work/shlibdeps/debian"
printf 'Source: keyhold\n\nPackage: keyhold\nArchitecture: any\n' >"$work/shlibdeps/debian/control"
shlibs=$(cd "$work/shlibdeps" && dpkg-shlibdeps -O --warnings=7 \
  "$root/usr/bin/keyhold" "$root/usr/bin/keyholdd" "$root/usr/libexec/keyhold/keyhold-exec" "$root/usr/libexec/keyhold/keyhold-mount" 2>"$work/shlibdeps.err") ||
  { cat "$work/shlibdeps.err" >&2; fail "dpkg-shlibdeps failed: a linked library belongs to no Debian package?"; }
shlib_depends=$(sed -n 's/^shlibs:Depends=//p' <<<"$shlibs")
[ -n "$shlib_depends" ] || fail "dpkg-shlibdeps found no dependencies"
depends="$shlib_depends, systemd (>= 250), init-system-helpers (>= 1.52)"
installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s|@VERSION@|$debian_version|" -e "s|@ARCH@|$arch|" -e "s|@MAINTAINER@|$maintainer|" \
  -e "s|@INSTALLED_SIZE@|$installed_size|" -e "s|@DEPENDS@|$depends|" deploy/debian/control.in >"$root/DEBIAN/control"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | sort | xargs md5sum) >"$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
find "$root" -exec touch -h -d "@$commit_time" {} +

dpkg-deb --root-owner-group -Zxz --build "$root" "$work/$deb_name" >/dev/null
# Into place in one rename (a copy to the output's file system first: /var/tmp may be another one).
cp "$work/$deb_name" "$partial"
mv -f "$partial" "$output/$deb_name"
echo "package: $output/$deb_name ($(stat -c %s "$output/$deb_name") bytes; Depends: $depends)"
